package classify

import (
	"fmt"
	"time"

	"github.com/cespare/xxhash/v2"
)

// Outcome is success (code "0") or failure.
type Outcome uint8

// Outcomes.
const (
	OutcomeFailure Outcome = iota
	OutcomeSuccess
)

// String returns the label value.
func (o Outcome) String() string {
	if o == OutcomeSuccess {
		return "success"
	}
	return "failure"
}

// Risk is the combined risk of the device and the identity.
type Risk uint8

// Risk values: unknown when the event carries neither level.
const (
	RiskUnknown Risk = iota
	RiskLow
	RiskHigh
)

var riskNames = [...]string{"unknown", "low", "high"}

// String returns the label value.
func (r Risk) String() string { return riskNames[r] }

// RiskLabels returns every Risk label value.
func RiskLabels() []string { return append([]string(nil), riskNames[:]...) }

// Platform is the device platform an event reports.
type Platform uint8

// Platforms.
const (
	PlatformUnknown Platform = iota // not given
	PlatformAndroid
	PlatformIOS
	PlatformOther
)

var platformNames = [...]string{"unknown", "android", "ios", "other"}

// String returns the label value.
func (p Platform) String() string { return platformNames[p] }

// PlatformLabels returns every Platform label value.
func PlatformLabels() []string { return append([]string(nil), platformNames[:]...) }

// Problem flags things in an accepted event that were ignored or doubtful.
type Problem uint16

// Problems.
const (
	ProblemDeviceLevelRange   Problem = 1 << iota // device_level outside 0..max (such as -1): counted as absent
	ProblemRiskLevelRange                         // risk_level outside 0..max: counted as absent
	ProblemDeviceLevelType                        // device_level not an integer: counted as absent
	ProblemRiskLevelType                          // risk_level not an integer: counted as absent
	ProblemRiskNotObject                          // risk is not an object: ignored
	ProblemTagsInvalid                            // a tag list held values that are not strings or integers
	ProblemTooManyTags                            // more than MaxTags tags in a list: the rest dropped
	ProblemUnknownDeviceTag                       // a device tag not in the catalog
	ProblemUnknownIdentityTag                     // an identity tag not in the catalog
	ProblemTagPlatform                            // a device tag the seed does not list for the event's platform
	numProblems               = iota
)

var problemNames = [numProblems]string{
	"device_level_out_of_range", "risk_level_out_of_range", "device_level_not_integer", "risk_level_not_integer",
	"risk_not_object", "tags_invalid", "too_many_tags", "unknown_device_tag", "unknown_identity_tag", "tag_platform_mismatch",
}

// Names returns the names of the flags set.
func (p Problem) Names() []string {
	var out []string
	for i := 0; i < numProblems; i++ {
		if p&(1<<i) != 0 {
			out = append(out, problemNames[i])
		}
	}
	return out
}

// Result is the classification of one event. Byte slices point into the
// message or the Classifier's buffers and stay valid until the next Classify.
type Result struct {
	Event Event

	Channel *Channel
	Family  *Family
	Code    *Code  // nil when the code is not in the catalog for the channel's family
	CodeRaw []byte // the code as normalised (canonical integer) text, or as written when not an integer (at most 64 bytes)

	TS          time.Time // event time, or time of receipt when the event has none
	TSFromEvent bool

	Outcome  Outcome
	Billable Billable
	// BillingRule says which rule decided Billable: "catalog", "billing_change",
	// "req_id_first", "req_id_repeat", "duplicate" or "unknown_code".
	BillingRule string

	Risk                   Risk
	DeviceLevel, RiskLevel int // -1 when absent
	Platform               Platform
	DeviceTags             [MaxTags]*DeviceTag
	NDeviceTags            int
	IdentityTags           [MaxTags]*IdentityTag
	NIdentityTags          int
	UnknownDeviceTags      int
	UnknownIdentityTags    int
	Problems               Problem
	Duplicate              bool

	codeBuf [64]byte
}

// IDKey is the 64-bit key under which an event id (or reqId) is remembered.
// It is the same in every process, so a dedupe store shared by replicas, or
// kept across a restart, recognises ids seen by another classifier.
func IDKey(id []byte) uint64 { return xxhash.Sum64(id) }

// Known reports whether the code is in the catalog for the channel's family.
func (r *Result) Known() bool { return r.Code != nil }

// Classifier classifies events against a catalog. It is pure: the same
// message, fallback channel and time of receipt always give the same Result;
// the rules that depend on earlier events (duplicates, the NFC reqId rule)
// belong to the stage that owns a partition's state (package books). It is
// not safe for concurrent use.
type Classifier struct {
	cat    *Catalog
	dec    Decoder
	future int64 // FutureTolerance in ns; 0: off
}

// Options configure a Classifier.
type Options struct {
	// Prefetch, when set, is told each event id's key as soon as the decoder
	// reads it, so that the duplicate lookup that follows finds it in cache.
	Prefetch Prefetcher
	// FutureTolerance is how much later than its message's time (the
	// received argument of Classify) an event's ts may be: an event whose ts
	// is later by more is rejected as ReasonFutureTS, so that one event
	// stamped years ahead cannot move the books' clocks (the ledger's newest
	// day, the duplicate and reqId windows). Exactly the tolerance is
	// accepted. 0 turns the rule off.
	FutureTolerance time.Duration
}

// New returns a Classifier for cat.
func New(cat *Catalog, opts Options) *Classifier {
	c := &Classifier{cat: cat, future: int64(opts.FutureTolerance)}
	c.dec.prefetch = opts.Prefetch
	return c
}

// Key returns IDKey(ev.ID), computed once.
func (ev *Event) Key() uint64 {
	if !ev.hasIDKey {
		ev.idKey, ev.hasIDKey = IDKey(ev.ID), true
	}
	return ev.idKey
}

// ReqIDCode returns the code the NFC reqId billing rule applies to (nil when
// the catalog has no such rule).
func (cat *Catalog) ReqIDCode() *Code {
	if cat.ReqIDRule.Family == "" {
		return nil
	}
	c, _ := cat.Lookup(cat.ReqIDRule.Family, cat.ReqIDRule.Code)
	return c
}

// Catalog returns the classifier's catalog.
func (c *Classifier) Catalog() *Catalog { return c.cat }

// Classify decodes msg and classifies it into r. fallbackChannel names the
// channel of an event that carries none (nil: none); received is the
// message's time (its JetStream timestamp, or the time of receipt on core
// NATS), used when the event has no ts and as the reference of the
// FutureTolerance rule. A rejected message returns a *RejectError.
func (c *Classifier) Classify(msg, fallbackChannel []byte, received time.Time, r *Result) error {
	ev := &r.Event
	if err := c.dec.Decode(msg, ev); err != nil {
		return err
	}
	chName := ev.Channel
	if len(chName) == 0 {
		chName = fallbackChannel
	}
	if len(chName) == 0 {
		return reject(ReasonMissingChannel, "the event has no channel")
	}
	ch, ok := c.cat.channels[string(chName)]
	if !ok {
		return reject(ReasonUnknownChannel, "the channel is not one of the catalog's channels")
	}
	if ev.CodeKind == KindAbsent || len(ev.Code) == 0 {
		return reject(ReasonMissingCode, "the event has no code")
	}
	if c.future > 0 && ev.HasTS {
		if at := received.UnixNano(); ev.TS > at && ev.TS-at > c.future {
			return reject(ReasonFutureTS, "ts is later than its message's time by more than the tolerance of %s", time.Duration(c.future))
		}
	}
	c.resolve(ch, received, r)
	return nil
}

func (c *Classifier) resolve(ch *Channel, received time.Time, r *Result) {
	ev := &r.Event
	r.Channel, r.Family = ch, ch.Family
	r.CodeRaw = normaliseCode(ev.Code, r.codeBuf[:0])
	r.Code = ch.Family.codes[string(r.CodeRaw)]
	if ev.HasTS {
		r.TS, r.TSFromEvent = time.Unix(0, ev.TS), true
	} else {
		r.TS, r.TSFromEvent = received, false
	}
	ts := r.TS.UnixNano()
	if len(r.CodeRaw) == 1 && r.CodeRaw[0] == '0' {
		r.Outcome = OutcomeSuccess
	} else {
		r.Outcome = OutcomeFailure
	}

	r.Duplicate = false
	switch {
	case r.Code == nil:
		r.Billable, r.BillingRule = BillableUnknown, "unknown_code"
	default:
		r.Billable = r.Code.billableAtUnix(ts)
		r.BillingRule = "catalog"
		if r.Code.changedAtNs != 0 {
			r.BillingRule = "billing_change"
		}
	}
	c.risk(r)
}

func (c *Classifier) risk(r *Result) {
	ev := &r.Event
	r.Problems = 0
	r.DeviceLevel = level(ev.DeviceLevel, ev.DeviceLevelKind, c.cat.DeviceLevel.Max, &r.Problems, ProblemDeviceLevelType, ProblemDeviceLevelRange)
	r.RiskLevel = level(ev.RiskLevel, ev.RiskLevelKind, c.cat.RiskLevel.Max, &r.Problems, ProblemRiskLevelType, ProblemRiskLevelRange)
	switch {
	case (r.DeviceLevel >= 0 && r.DeviceLevel >= c.cat.DeviceLevel.HighFrom) || (r.RiskLevel >= 0 && r.RiskLevel >= c.cat.RiskLevel.HighFrom):
		r.Risk = RiskHigh
	case r.DeviceLevel >= 0 || r.RiskLevel >= 0:
		r.Risk = RiskLow
	default:
		r.Risk = RiskUnknown
	}
	if ev.RiskNotObject {
		r.Problems |= ProblemRiskNotObject
	}
	r.Platform = platformOf(ev.Platform)

	r.NDeviceTags, r.UnknownDeviceTags = 0, 0
	for _, raw := range ev.DeviceTags.Items[:ev.DeviceTags.N] {
		t, ok := c.cat.deviceTags[string(raw)]
		if !ok {
			r.UnknownDeviceTags++
			r.Problems |= ProblemUnknownDeviceTag
			continue
		}
		if containsTag(r.DeviceTags[:r.NDeviceTags], t) {
			continue
		}
		r.DeviceTags[r.NDeviceTags] = t
		r.NDeviceTags++
		if (r.Platform == PlatformAndroid || r.Platform == PlatformIOS) && !supports(t, r.Platform) {
			r.Problems |= ProblemTagPlatform
		}
	}
	r.NIdentityTags, r.UnknownIdentityTags = 0, 0
	for _, raw := range ev.RiskTags.Items[:ev.RiskTags.N] {
		t, ok := c.cat.identityTags[string(raw)]
		if !ok {
			r.UnknownIdentityTags++
			r.Problems |= ProblemUnknownIdentityTag
			continue
		}
		dup := false
		for _, o := range r.IdentityTags[:r.NIdentityTags] {
			dup = dup || o == t
		}
		if !dup {
			r.IdentityTags[r.NIdentityTags] = t
			r.NIdentityTags++
		}
	}
	if ev.DeviceTags.Invalid || ev.RiskTags.Invalid {
		r.Problems |= ProblemTagsInvalid
	}
	if ev.DeviceTags.Dropped > 0 || ev.RiskTags.Dropped > 0 {
		r.Problems |= ProblemTooManyTags
	}
}

func containsTag(ts []*DeviceTag, t *DeviceTag) bool {
	for _, o := range ts {
		if o == t {
			return true
		}
	}
	return false
}

func supports(t *DeviceTag, p Platform) bool {
	for _, s := range t.Platforms {
		if s == platformNames[p] {
			return true
		}
	}
	return false
}

func level(v int64, kind ValueKind, max int, problems *Problem, typeFlag, rangeFlag Problem) int {
	switch kind {
	case KindAbsent:
		return -1
	case KindInt:
		if v < 0 || v > int64(max) {
			*problems |= rangeFlag
			return -1
		}
		return int(v)
	}
	*problems |= typeFlag
	return -1
}

func platformOf(p []byte) Platform {
	switch {
	case len(p) == 0:
		return PlatformUnknown
	case equalFold(p, "android"):
		return PlatformAndroid
	case equalFold(p, "ios"):
		return PlatformIOS
	}
	return PlatformOther
}

func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// normaliseCode writes the canonical form of a code: an optionally signed
// integer without leading zeros or spaces ("-0" is "0"). Anything else is kept
// as written, cut to 64 bytes; it cannot match the catalog.
func normaliseCode(raw []byte, buf []byte) []byte {
	v := trimSpace(raw)
	neg := false
	if len(v) > 0 && (v[0] == '-' || v[0] == '+') {
		neg, v = v[0] == '-', v[1:]
	}
	for len(v) > 1 && v[0] == '0' {
		v = v[1:]
	}
	ok := len(v) > 0 && len(v) <= 20
	for _, ch := range v {
		ok = ok && ch >= '0' && ch <= '9'
	}
	if !ok {
		if len(raw) > cap(buf) {
			raw = raw[:cap(buf)]
		}
		return append(buf, raw...)
	}
	if neg && !(len(v) == 1 && v[0] == '0') {
		buf = append(buf, '-')
	}
	return append(buf, v...)
}

// MaxShownCodeDigits is the longest unknown code shown in logs and the API:
// Tencent's codes are short integers; a longer number may be a phone (11
// digits) or an ID number (15 or 18), and text may be a name.
const MaxShownCodeDigits = 10

// HiddenCode replaces, in logs and the API, a raw code ShownCode hides.
const HiddenCode = "(hidden: not a short integer)"

var hiddenCode = []byte(HiddenCode)

// ShownCode returns a Result's CodeRaw as logs and the API may show it: an
// integer of at most MaxShownCodeDigits digits as it is, anything else (text,
// a long number: what a producer's mistake may fill with personal data) as
// HiddenCode.
// The result must not be modified.
func ShownCode(raw []byte) []byte {
	v := raw
	if len(v) > 0 && v[0] == '-' {
		v = v[1:]
	}
	if len(v) == 0 || len(v) > MaxShownCodeDigits {
		return hiddenCode
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return hiddenCode
		}
	}
	return raw
}

// ParseBillable parses a billable label value: "true", "false" or "unknown".
func ParseBillable(s string) (Billable, error) {
	for i, v := range billableValues {
		if v == s {
			return Billable(i), nil
		}
	}
	return 0, fmt.Errorf("billable %q is not one of true, false, unknown", s)
}
