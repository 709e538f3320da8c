// Package refmodel is an independent reference model of the exporter's exact
// books, for tests only: given the stream's messages in sequence order (with
// their JetStream timestamps and subjects) and the configuration, it computes
// every checkpointed counter series (summed over partitions) and the ledger
// rows a correct exporter must hold.
//
// It shares nothing with the production code but the catalog's data (the
// bytes of pkg/classify/catalog.yaml, which it parses itself). It is written
// to be read: encoding/json, maps and slices, the rules of the seed table
// (/work/shared/seed, docs/codes.md) and of docs/metrics.md, docs/ledger.md and
// docs/service.md as written. Where the documents leave a choice open, the
// comment at the rule says which one the model makes, and model_test.go pins
// it with a hand-counted case.
package refmodel

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Msg is one stream message.
type Msg struct {
	Seq     uint64    // stream sequence
	Subject string    // e.g. "faceid.results.wechat_h5"
	Data    []byte    // the payload
	Stamp   time.Time // the message's JetStream timestamp (core mode: the time of receipt)
}

// Config is the exporter's configuration as far as the books depend on it.
// Zero values take the exporter's defaults; a negative duration turns a rule off.
type Config struct {
	CatalogYAML []byte // the bytes of pkg/classify/catalog.yaml

	// Partitions is --jetstream.partitions (default 1). With one partition
	// every message of the stream is read; with more, a message is read by
	// the partition of its subject's channel (SubjectPrefix + "." + channel,
	// partition = catalog index of the channel % Partitions) and by no
	// partition when its subject is not one of those.
	Partitions    int
	SubjectPrefix string // e.g. "faceid.results" (a trailing "." or ".>" is ignored)

	DedupeWindow   time.Duration // dedupe.window (default 10m; negative: off)
	DedupeCapacity int           // dedupe.capacity (default 100000)
	ReqIDCapacity  int           // reqIds the NFC rule remembers (default 100000)

	// FutureTolerance: an event whose ts is later than its message's Stamp by
	// more than this is rejected as future_ts (issue 15; default 5m; negative: no
	// such rule, as on main before issue 15).
	FutureTolerance time.Duration
	RetentionDays   int // ledger retention in days before the newest accepted day (default 400)

	// Business dimensions: the config file's allowlists. Both nil: off (no
	// faceid_business_verifications_total, no rule_id in the ledger).
	AppIDs, RuleIDs []string
}

// Defaults of the exporter.
const (
	DefaultDedupeWindow    = 10 * time.Minute
	DefaultDedupeCapacity  = 100000
	DefaultReqIDCapacity   = 100000
	DefaultFutureTolerance = 5 * time.Minute
	DefaultRetentionDays   = 400
)

// LedgerKey is one ledger row's key. RuleID is "" unless the config
// allowlists rule ids (then: the allowlisted id, "other", or "" for none).
type LedgerKey struct{ Day, Channel, Code, Billable, RuleID string }

// Expected is what the exporter's books must hold.
type Expected struct {
	// Counters: every exact (checkpointed) counter series with a nonzero
	// value, summed over partitions, keyed by CounterKey (metric name and its
	// labels without partition, sorted by name, in Prometheus text form).
	Counters map[string]uint64
	// Ledger rows with a nonzero count, summed over partitions.
	Ledger map[LedgerKey]uint64
	// Unread counts the messages no partition reads (subjects outside the
	// partitions' filters): in no counter.
	Unread uint64
}

// Model is the reference model. It is not safe for concurrent use.
type Model struct {
	cfg   Config
	cat   *catalog
	parts []*part
	apps  map[string]bool
	rules map[string]bool

	unread   uint64
	last     uint64            // the last sequence applied
	rejected map[uint64]string // stream sequence -> rejection reason
}

// part is one partition's books.
type part struct {
	counters map[string]uint64
	ids      *window
	anchors  *window
	// the ledger: Beijing day -> row -> count, and the newest day counted.
	days      map[int64]map[LedgerKey]uint64
	newestDay int64
	hasDay    bool
}

// New returns an empty model.
func New(cfg Config) (*Model, error) {
	cat, err := parseCatalog(cfg.CatalogYAML)
	if err != nil {
		return nil, err
	}
	if cfg.Partitions <= 0 {
		cfg.Partitions = 1
	}
	if cfg.Partitions > len(cat.channels) {
		return nil, fmt.Errorf("refmodel: %d partitions, at most %d (one per channel)", cfg.Partitions, len(cat.channels))
	}
	cfg.SubjectPrefix = strings.TrimSuffix(strings.TrimSuffix(cfg.SubjectPrefix, ".>"), ".")
	if cfg.Partitions > 1 && cfg.SubjectPrefix == "" {
		return nil, fmt.Errorf("refmodel: %d partitions need a SubjectPrefix", cfg.Partitions)
	}
	if cfg.DedupeWindow == 0 {
		cfg.DedupeWindow = DefaultDedupeWindow
	}
	if cfg.DedupeCapacity == 0 {
		cfg.DedupeCapacity = DefaultDedupeCapacity
	}
	if cfg.ReqIDCapacity == 0 {
		cfg.ReqIDCapacity = DefaultReqIDCapacity
	}
	if cfg.FutureTolerance == 0 {
		cfg.FutureTolerance = DefaultFutureTolerance
	}
	if cfg.RetentionDays == 0 {
		cfg.RetentionDays = DefaultRetentionDays
	}
	m := &Model{cfg: cfg, cat: cat}
	if cfg.AppIDs != nil || cfg.RuleIDs != nil {
		m.apps, m.rules = map[string]bool{}, map[string]bool{}
		for _, a := range cfg.AppIDs {
			m.apps[a] = true
		}
		for _, r := range cfg.RuleIDs {
			m.rules[r] = true
		}
	}
	m.Reset()
	return m, nil
}

// Reset empties the books (as New does, without parsing the catalog again).
func (m *Model) Reset() {
	m.parts, m.unread, m.last, m.rejected = nil, 0, 0, map[uint64]string{}
	for range m.cfg.Partitions {
		p := &part{counters: map[string]uint64{}, days: map[int64]map[LedgerKey]uint64{}}
		if m.cfg.DedupeWindow > 0 && m.cfg.DedupeCapacity > 0 {
			p.ids = newWindow(m.cfg.DedupeWindow, m.cfg.DedupeCapacity)
		}
		if m.cat.reqFamily != "" {
			p.anchors = newWindow(m.cat.reqWindow, max(m.cfg.ReqIDCapacity, 1))
		}
		m.parts = append(m.parts, p)
	}
}

// Config returns the configuration with its defaults filled in.
func (m *Model) Config() Config { return m.cfg }

// PartitionOf returns the partition that reads a subject, or -1 when none does.
func (m *Model) PartitionOf(subject string) int {
	if m.cfg.Partitions == 1 {
		return 0
	}
	ch, ok := strings.CutPrefix(subject, m.cfg.SubjectPrefix+".")
	if !ok {
		return -1
	}
	for i, c := range m.cat.channels {
		if c == ch {
			return i % m.cfg.Partitions
		}
	}
	return -1
}

// Lost counts n messages removed from the stream before partition read them
// (faceid_exporter_jetstream_lost_messages_total of that partition).
func (m *Model) Lost(partition int, n uint64) {
	m.parts[partition].counters[CounterKey("faceid_exporter_jetstream_lost_messages_total")] += n
}

// LostMsg counts one message removed from the stream before the partition
// that reads its subject read it (none: the subject is read by no partition).
// It is the exact count of what each partition missed of its own subjects;
// Lost is for a harness that counts otherwise.
func (m *Model) LostMsg(subject string) {
	if p := m.PartitionOf(subject); p >= 0 {
		m.Lost(p, 1)
	}
}

// StreamReset records that the stream was deleted and re-created: every
// partition notices it once (faceid_exporter_jetstream_stream_resets_total);
// the books go on (the duplicate window, the reqId anchors and the ledger
// continue; sequences start again).
func (m *Model) StreamReset() {
	for p := range m.parts {
		m.StreamResetPartition(p)
	}
}

// StreamResetPartition counts one stream reset for one partition.
func (m *Model) StreamResetPartition(partition int) {
	m.parts[partition].counters[CounterKey("faceid_exporter_jetstream_stream_resets_total")]++
}

// Apply applies one stream message. Messages are applied in stream-sequence
// order (after a stream reset, the new stream's order).
func (m *Model) Apply(msg Msg) {
	m.last = msg.Seq
	pi := m.PartitionOf(msg.Subject)
	if pi < 0 {
		m.unread++
		return
	}
	m.parts[pi].apply(m, msg)
}

func (p *part) add(name string, n uint64, labels ...string) {
	if n > 0 {
		p.counters[CounterKey(name, labels...)] += n
	}
}

func (p *part) reject(m *Model, seq uint64, reason string) {
	p.add("faceid_exporter_events_rejected_total", 1, "reason", reason)
	p.add("faceid_exporter_dead_letters_total", 1, "reason", reason)
	m.rejected[seq] = reason
}

// Rejected returns the rejected messages so far: stream sequence -> reason.
// Each is dead-lettered once (docs/service.md "Dead letters once"), with the
// reason in its Faceid-Reject-Reason header. After a stream reset the new
// stream's sequences overwrite the old ones'.
func (m *Model) Rejected() map[uint64]string {
	out := make(map[uint64]string, len(m.rejected))
	for k, v := range m.rejected {
		out[k] = v
	}
	return out
}

func (p *part) apply(m *Model, msg Msg) {
	cat := m.cat
	ev, reason := decode(msg.Data, fallbackChannel(msg.Subject), cat.familyOf)
	if reason != "" {
		p.reject(m, msg.Seq, reason)
		return
	}
	// future_ts (issue 15): checked after every other rule of the input
	// contract, against the message's own stored timestamp (so every replay
	// decides the same). Exactly Stamp+tolerance is accepted.
	if m.cfg.FutureTolerance > 0 && ev.hasTS && ev.ts.Sub(msg.Stamp) > m.cfg.FutureTolerance {
		p.reject(m, msg.Seq, ReasonFutureTS)
		return
	}
	ts := msg.Stamp // an event without ts takes its message's timestamp
	if ev.hasTS {
		ts = ev.ts
	}
	family := cat.familyOf[ev.channel]
	codeNorm := normaliseCode(ev.code)
	cd, known := cat.codes[family+"/"+codeNorm]
	codeLabel, billable := "unknown", "unknown"
	if known {
		codeLabel, billable = codeNorm, cd.billable
		// The dated billing change: before the effective time (the event's
		// time, Beijing midnight 2021-07-19 for wechat) the old answer.
		if !cd.changedAt.IsZero() && ts.Before(cd.changedAt) {
			billable = cd.before
		}
	}
	outcome := "failure"
	if codeNorm == "0" {
		outcome = "success"
	}

	// The duplicate rule: an event with an id seen within the window (by
	// event time) is a redelivery: counted in duplicates only.
	dup := false
	if ev.id != "" && p.ids != nil {
		dup = p.ids.seen(ev.id, ts.UnixNano())
	}
	if dup {
		p.add("faceid_exporter_duplicates_total", 1)
		return
	}
	// The NFC reqId rule (seed table, code 0's 处理措施): a success is billed
	// once per reqId per window, anchored at the billed success.
	if known && family == cat.reqFamily && codeNorm == cat.reqCode && ev.reqID != "" && p.anchors != nil {
		if !p.anchors.bill(ev.reqID, ts.UnixNano()) {
			billable = "false"
		}
	}

	ch := ev.channel
	p.add("faceid_verifications_total", 1, "channel", ch, "code", codeLabel, "outcome", outcome, "billable", billable)
	if !known {
		p.add("faceid_exporter_unknown_codes_total", 1, "channel", ch)
	}

	// Risk.
	var problems []string
	dl := level(ev.deviceLevel, cat.deviceMax, "device_level", &problems)
	rl := level(ev.riskLevel, cat.riskMax, "risk_level", &problems)
	risk := "unknown"
	switch {
	case (dl >= 0 && dl >= cat.deviceHigh) || (rl >= 0 && rl >= cat.riskHigh):
		risk = "high"
	case dl >= 0 || rl >= 0:
		risk = "low"
	}
	if ev.riskNotObject {
		problems = append(problems, "risk_not_object")
	}
	p.add("faceid_risk_events_total", 1, "channel", ch, "risk", risk)
	p.add("faceid_device_level_events_total", 1, "channel", ch, "level", levelLabel(dl))
	p.add("faceid_identity_level_events_total", 1, "channel", ch, "level", levelLabel(rl))

	platform := platformOf(ev.platform)
	// Device tags: one per distinct catalog tag of the event; an unknown tag
	// counts once per occurrence under tag="unknown".
	seenTag := map[string]bool{}
	for _, t := range ev.deviceTags.items {
		dt, ok := cat.deviceTags[t]
		if !ok {
			p.add("faceid_device_tags_total", 1, "channel", ch, "tag", "unknown", "name", "unknown", "platform", platform)
			problems = append(problems, "unknown_device_tag")
			continue
		}
		if seenTag[t] {
			continue
		}
		seenTag[t] = true
		p.add("faceid_device_tags_total", 1, "channel", ch, "tag", t, "name", dt.name, "platform", platform)
		if (platform == "android" || platform == "ios") && !dt.platforms[platform] {
			problems = append(problems, "tag_platform_mismatch")
		}
	}
	seenTag = map[string]bool{}
	for _, t := range ev.riskTags.items {
		typ, ok := cat.identityTags[t]
		if !ok {
			p.add("faceid_identity_tags_total", 1, "channel", ch, "tag", "unknown", "type", "unknown")
			problems = append(problems, "unknown_identity_tag")
			continue
		}
		if seenTag[t] {
			continue
		}
		seenTag[t] = true
		p.add("faceid_identity_tags_total", 1, "channel", ch, "tag", t, "type", typ)
	}
	if ev.deviceTags.invalid || ev.riskTags.invalid {
		problems = append(problems, "tags_invalid")
	}
	if ev.deviceTags.dropped > 0 || ev.riskTags.dropped > 0 {
		problems = append(problems, "too_many_tags")
	}
	// A problem counts once per event.
	once := map[string]bool{}
	for _, pr := range problems {
		if !once[pr] {
			once[pr] = true
			p.add("faceid_exporter_event_problems_total", 1, "problem", pr)
		}
	}

	ruleID := ""
	if m.apps != nil {
		app := allowed(m.apps, ev.appID)
		rule := allowed(m.rules, ev.ruleID)
		p.add("faceid_business_verifications_total", 1, "channel", ch, "app_id", app, "rule_id", rule, "outcome", outcome, "billable", billable)
		if m.cfg.RuleIDs != nil && rule != "none" {
			ruleID = rule
		}
	}
	p.book(m, ts, LedgerKey{Channel: ch, Code: codeLabel, Billable: billable, RuleID: ruleID})
}

// allowed returns the business label of a value: itself when allowlisted,
// "none" when absent, else "other".
func allowed(list map[string]bool, v string) string {
	switch {
	case v == "":
		return "none"
	case list[v]:
		return v
	}
	return "other"
}

// level returns a risk level, or -1 when absent; a value that is not an
// integer or is out of 0..max counts as absent and is a problem.
func level(v levelValue, maxLevel int, name string, problems *[]string) int {
	switch {
	case !v.present:
		return -1
	case !v.isInt:
		*problems = append(*problems, name+"_not_integer")
		return -1
	case v.v < 0 || v.v > int64(maxLevel):
		*problems = append(*problems, name+"_out_of_range")
		return -1
	}
	return int(v.v)
}

func levelLabel(l int) string {
	if l < 0 {
		return "absent"
	}
	return strconv.Itoa(l)
}

// beijing is UTC+08:00 (China has no daylight saving time).
var beijing = time.FixedZone("Asia/Shanghai", 8*3600)

// dayNumber is a Beijing day as days since 1970-01-01 (Beijing).
func dayNumber(t time.Time) int64 {
	b := t.In(beijing)
	d := time.Date(b.Year(), b.Month(), b.Day(), 0, 0, 0, 0, time.UTC)
	return d.Unix() / 86400
}

func dayString(n int64) string { return time.Unix(n*86400, 0).UTC().Format("2006-01-02") }

// book adds a counted event to the ledger of its Beijing day. The ledger keeps
// RetentionDays days before the newest day counted: days older than that are
// dropped when a newer day arrives, and an event older than that is counted
// in faceid_exporter_ledger_too_old_events_total instead.
func (p *part) book(m *Model, ts time.Time, k LedgerKey) {
	day := dayNumber(ts)
	r := int64(m.cfg.RetentionDays)
	if !p.hasDay || day > p.newestDay {
		p.newestDay, p.hasDay = day, true
		for d := range p.days {
			if d < p.newestDay-r {
				delete(p.days, d)
			}
		}
	}
	if day < p.newestDay-r {
		p.add("faceid_exporter_ledger_too_old_events_total", 1)
		return
	}
	if p.days[day] == nil {
		p.days[day] = map[LedgerKey]uint64{}
	}
	k.Day = dayString(day)
	p.days[day][k]++
}

func fallbackChannel(subject string) string {
	t := subject[strings.LastIndexByte(subject, '.')+1:]
	if t == ">" || t == "*" {
		return ""
	}
	return t
}

// Expect returns what the books must hold after the messages applied so far.
func (m *Model) Expect() Expected {
	e := Expected{Counters: map[string]uint64{}, Ledger: map[LedgerKey]uint64{}, Unread: m.unread}
	for _, p := range m.parts {
		for k, v := range p.counters {
			if v > 0 {
				e.Counters[k] += v
			}
		}
		if p.ids != nil && p.ids.evicted > 0 {
			e.Counters[CounterKey("faceid_exporter_dedupe_evictions_total")] += p.ids.evicted
		}
		if p.anchors != nil && p.anchors.evicted > 0 {
			e.Counters[CounterKey("faceid_exporter_reqid_evictions_total")] += p.anchors.evicted
		}
		for _, rows := range p.days {
			for k, v := range rows {
				e.Ledger[k] += v
			}
		}
	}
	return e
}

// CounterKey returns the key of a series: the metric name and its labels
// (given as name, value pairs) sorted by name, in Prometheus text form, e.g.
// faceid_verifications_total{billable="true",channel="wechat_h5",code="0",outcome="success"}.
// A series without labels is its bare name.
func CounterKey(name string, labelPairs ...string) string {
	if len(labelPairs) == 0 {
		return name
	}
	type pair struct{ k, v string }
	var ps []pair
	for i := 0; i+1 < len(labelPairs); i += 2 {
		ps = append(ps, pair{labelPairs[i], labelPairs[i+1]})
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].k < ps[j].k })
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(p.k)
		b.WriteString(`="`)
		b.WriteString(escapeLabel(p.v))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

func escapeLabel(v string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v)
}
