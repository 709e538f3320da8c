package classify

import (
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/faceid-observability/faceid-exporter/pkg/dedupe"
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

// Classifier classifies events against a catalog, applying the duplicate and
// reqId rules across the events it sees. It is not safe for concurrent use.
type Classifier struct {
	cat    *Catalog
	dec    Decoder
	dedupe dedupe.Store
	reqIDs ReqIDStore   // nil when the catalog has no reqId rule
	reqMem *reqIDWindow // the default in-memory store, nil when one was injected
	window time.Duration
	rule   *Code // the code the reqId rule applies to
}

// ReqIDStore holds the state of the reqId billing rule: a success of the
// rule's code is billed once per reqId; a further success of the same reqId
// less than a window after the billed one is not billed; the window is
// anchored at the billed success, and a success at or after its end is billed
// and opens a new one. A success earlier than the anchor (out of order) is
// billed only when it lies a whole window before it.
type ReqIDStore interface {
	// Bill reports whether a success of key at at is billed under the rule
	// with the given window, and records it.
	Bill(key uint64, at time.Time, window time.Duration) bool
}

// Options configure a Classifier.
type Options struct {
	// Dedupe remembers event ids; nil turns duplicate detection off.
	Dedupe dedupe.Store
	// ReqIDs holds the reqId billing rule's state; nil: an in-memory store of
	// this classifier alone. A store shared by classifiers must be safe for
	// concurrent use.
	ReqIDs ReqIDStore
	// ReqIDCapacity bounds the reqIds the default in-memory store remembers
	// (default 100000). When full, the oldest is forgotten and a repeat of it
	// would be billed again; ReqIDEvicted counts those.
	ReqIDCapacity int
}

// New returns a Classifier for cat.
func New(cat *Catalog, opts Options) *Classifier {
	c := &Classifier{cat: cat, dedupe: opts.Dedupe}
	if pf, ok := opts.Dedupe.(dedupe.Prefetcher); ok {
		c.dec.prefetch = pf
	}
	if r := cat.ReqIDRule; r.Family != "" {
		c.rule, _ = cat.Lookup(r.Family, r.Code)
		capacity := opts.ReqIDCapacity
		if capacity <= 0 {
			capacity = 100000
		}
		c.window = r.Window
		if opts.ReqIDs != nil {
			c.reqIDs = opts.ReqIDs
		} else {
			c.reqMem = newReqIDWindow(capacity)
			c.reqIDs = c.reqMem
		}
	}
	return c
}

// Catalog returns the classifier's catalog.
func (c *Classifier) Catalog() *Catalog { return c.cat }

// ReqIDEvicted returns how many reqIds the default in-memory store forgot for
// room inside their window (0 with an injected store).
func (c *Classifier) ReqIDEvicted() uint64 {
	if c.reqMem == nil {
		return 0
	}
	return c.reqMem.evicted
}

// Classify decodes msg and classifies it into r. fallbackChannel names the
// channel of an event that carries none (nil: none); received is the time of
// receipt, used when the event has no ts. A rejected message returns a
// *RejectError.
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
		return reject(ReasonUnknownChannel, "channel %q is not one of the catalog's channels", truncate(chName))
	}
	if ev.CodeKind == KindAbsent || len(ev.Code) == 0 {
		return reject(ReasonMissingCode, "the event has no code")
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
	if c.dedupe != nil && len(ev.ID) > 0 {
		key := ev.idKey
		if !ev.hasIDKey {
			key = IDKey(ev.ID)
		}
		r.Duplicate = c.dedupe.Seen(key, r.TS)
	}
	switch {
	case r.Code == nil:
		r.Billable, r.BillingRule = BillableUnknown, "unknown_code"
	case r.Duplicate:
		r.Billable, r.BillingRule = BillableFalse, "duplicate"
	case r.Code == c.rule && len(ev.ReqID) > 0:
		if c.billReqID(IDKey(ev.ReqID), r.TS, ts) {
			r.Billable, r.BillingRule = r.Code.billableAtUnix(ts), "req_id_first"
		} else {
			r.Billable, r.BillingRule = BillableFalse, "req_id_repeat"
		}
	default:
		r.Billable = r.Code.billableAtUnix(ts)
		r.BillingRule = "catalog"
		if r.Code.changedAtNs != 0 {
			r.BillingRule = "billing_change"
		}
	}
	c.risk(r)
}

// billReqID applies the reqId rule, calling the default store directly.
func (c *Classifier) billReqID(key uint64, at time.Time, ts int64) bool {
	if c.reqMem != nil {
		return c.reqMem.bill(key, ts, int64(c.window))
	}
	return c.reqIDs.Bill(key, at, c.window)
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

// reqIDWindow is the default ReqIDStore: a bounded in-memory table of the
// anchors of one classifier. It is not safe for concurrent use.
type reqIDWindow struct {
	anchors *dedupe.TimeTable
	newest  int64
	evicted uint64
}

func newReqIDWindow(capacity int) *reqIDWindow {
	return &reqIDWindow{anchors: dedupe.NewTimeTable(capacity)}
}

// Bill implements ReqIDStore.
func (w *reqIDWindow) Bill(key uint64, at time.Time, window time.Duration) bool {
	return w.bill(key, at.UnixNano(), int64(window))
}

// bill reports whether a success of key at t is billed, and records it.
func (w *reqIDWindow) bill(key uint64, t, window int64) bool {
	if t > w.newest {
		w.newest = t
	}
	w.anchors.ExpireBefore(w.newest - window + 1)
	anchor, ok := w.anchors.Get(key)
	billed, reanchor := DecideReqID(anchor, ok, t, window)
	if reanchor && w.anchors.Put(key, t) {
		w.evicted++
	}
	return billed
}

// DecideReqID decides a success at t (Unix ns) of a reqId whose window is
// anchored at anchor (hasAnchor false: none is open): whether it is billed,
// and whether t becomes the reqId's anchor. A success earlier than the anchor
// (events out of order) is billed only when it lies a whole window before it,
// and leaves the anchor where it is, so a window never bills twice.
func DecideReqID(anchor int64, hasAnchor bool, t, window int64) (billed, reanchor bool) {
	switch {
	case !hasAnchor:
		return true, true
	case t >= anchor:
		billed = t-anchor >= window
		return billed, billed
	default:
		return anchor-t >= window, false
	}
}
