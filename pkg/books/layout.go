package books

import (
	"strconv"
	"strings"

	"github.com/faceid-observability/faceid-exporter/pkg/classify"
)

// Label values used besides the catalog's.
const (
	Unknown = "unknown"
	Absent  = "absent"
	Other   = "other"
	None    = "none"
)

// Family is one counter metric: its name, help and label names, and the
// range of slots its series occupy.
type Family struct {
	Name, Help string
	Labels     []string
	Base, N    int
}

// Layout maps every counter series the books can hold to a slot, from the
// catalog, closed enums and the config's allowlists only. One Layout serves
// every partition.
type Layout struct {
	cat       *classify.Catalog
	codeSlots int // len(cat.Codes)+1: slot 0 is "unknown"
	dlSlots   int // device levels 0..max plus absent
	ilSlots   int // identity levels 0..max plus absent
	dtSlots   int // device tags plus unknown
	itSlots   int // identity tags plus unknown

	apps, rules         map[string]int // allowlisted value → slot (2..)
	appNames, ruleNames []string       // by slot: none, other, allowlisted...
	business            bool
	ruleSlots           int // ledger rule_id slots: "", "other", allowlisted

	fams                                                                                              []Family
	ver, risk, dl, il, dt, it, unk, prob, biz, dup, rej, dlt, dedupeEv, reqIDEv, lost, resets, tooOld int // family bases

	values  [][]string     // label values by slot
	channel []int          // channel index of each slot, -1 when the series has none
	preset  []bool         // exported at zero
	keys    []string       // stable key of each slot (name{labels})
	famOf   []int          // family of each slot
	index   map[string]int // key → slot
}

// LayoutOptions are the allowlists of the business dimensions; with both nil,
// faceid_business_verifications_total is off and the ledger has no rule_id.
type LayoutOptions struct {
	AppIDs, RuleIDs []string
}

// NewLayout returns the layout for cat.
func NewLayout(cat *classify.Catalog, o LayoutOptions) *Layout {
	l := &Layout{
		cat:       cat,
		codeSlots: len(cat.Codes) + 1,
		dlSlots:   cat.DeviceLevel.Max + 2,
		ilSlots:   cat.RiskLevel.Max + 2,
		dtSlots:   len(cat.DeviceTags) + 1,
		itSlots:   len(cat.IdentityTags) + 1,
		apps:      map[string]int{}, rules: map[string]int{},
		appNames: []string{None, Other}, ruleNames: []string{None, Other},
		business: o.AppIDs != nil || o.RuleIDs != nil,
		index:    map[string]int{},
	}
	for _, a := range o.AppIDs {
		l.apps[a] = len(l.appNames)
		l.appNames = append(l.appNames, a)
	}
	for _, r := range o.RuleIDs {
		l.rules[r] = len(l.ruleNames)
		l.ruleNames = append(l.ruleNames, r)
	}
	l.ruleSlots = 1
	if o.RuleIDs != nil {
		l.ruleSlots = len(l.ruleNames)
	}
	nch := len(cat.Channels)
	billable := classify.BillableLabels()
	platforms := classify.PlatformLabels()
	outcomes := []classify.Outcome{classify.OutcomeFailure, classify.OutcomeSuccess}

	l.ver = l.family("faceid_verifications_total",
		"Verification results that are not duplicates, by channel, return code (\"unknown\" when not in the catalog for the channel's family), outcome and billability.",
		[]string{"channel", "code", "outcome", "billable"}, nch*l.codeSlots*2*3)
	for _, ch := range cat.Channels {
		for slot := 0; slot < l.codeSlots; slot++ {
			code := Unknown
			var c *classify.Code
			if slot > 0 {
				c = cat.Codes[slot-1]
				if c.Family != ch.Family.Name {
					continue
				}
				code = c.Code
			}
			for _, o := range outcomes {
				if c != nil && (c.Code == "0") != (o == classify.OutcomeSuccess) {
					continue // a known code has one outcome
				}
				for b := range billable {
					i := l.VerIndex(ch.Index, slot, o, classify.Billable(b))
					l.set(i, ch.Index, []string{ch.Name, code, o.String(), billable[b]}, presetVer(cat, c, o, classify.Billable(b)))
				}
			}
		}
	}
	l.risk = l.family("faceid_risk_events_total",
		"Verification results by channel and combined risk (high when the device or the identity level reaches the catalog's high mark; unknown when the event has neither level).",
		[]string{"channel", "risk"}, nch*3)
	l.dl = l.family("faceid_device_level_events_total",
		"Verification results by channel and device risk level (deviceInfoLevel; \"absent\" when missing or invalid).",
		[]string{"channel", "level"}, nch*l.dlSlots)
	l.il = l.family("faceid_identity_level_events_total",
		"Verification results by channel and identity risk level (riskInfoLevel; \"absent\" when missing or invalid).",
		[]string{"channel", "level"}, nch*l.ilSlots)
	l.dt = l.family("faceid_device_tags_total",
		"Device risk tags (deviceInfoTag) reported, by channel, catalog tag (\"unknown\" when not in the catalog), tag name and platform.",
		[]string{"channel", "tag", "name", "platform"}, nch*l.dtSlots*len(platforms))
	l.it = l.family("faceid_identity_tags_total",
		"Identity risk tags (riskInfoTag) reported, by channel, catalog tag (\"unknown\" when not in the catalog) and type (attack or business).",
		[]string{"channel", "tag", "type"}, nch*l.itSlots)
	l.unk = l.family("faceid_exporter_unknown_codes_total",
		"Verification results whose return code is not in the catalog for the channel's family.",
		[]string{"channel"}, nch)
	for _, ch := range cat.Channels {
		c := ch.Index
		for r, name := range classify.RiskLabels() {
			l.set(l.risk+c*3+r, c, []string{ch.Name, name}, true)
		}
		for lv := -1; lv <= cat.DeviceLevel.Max; lv++ {
			l.set(l.dl+c*l.dlSlots+lv+1, c, []string{ch.Name, levelLabel(lv)}, true)
		}
		for lv := -1; lv <= cat.RiskLevel.Max; lv++ {
			l.set(l.il+c*l.ilSlots+lv+1, c, []string{ch.Name, levelLabel(lv)}, true)
		}
		for p, pname := range platforms {
			l.set(l.dt+(c*l.dtSlots)*len(platforms)+p, c, []string{ch.Name, Unknown, Unknown, pname}, true)
			for _, t := range cat.DeviceTags {
				l.set(l.dt+(c*l.dtSlots+t.Index+1)*len(platforms)+p, c, []string{ch.Name, t.Tag, t.Name, pname}, true)
			}
		}
		l.set(l.it+c*l.itSlots, c, []string{ch.Name, Unknown, Unknown}, true)
		for _, t := range cat.IdentityTags {
			l.set(l.it+c*l.itSlots+t.Index+1, c, []string{ch.Name, t.Tag, t.Type}, true)
		}
		l.set(l.unk+c, c, []string{ch.Name}, true)
	}
	l.prob = l.family("faceid_exporter_event_problems_total",
		"Accepted events with a problem that was ignored (out-of-range level, unknown tag, too many tags, ...), by problem.",
		[]string{"problem"}, 16)
	for i := 0; i < 16; i++ {
		if names := classify.Problem(1 << i).Names(); len(names) == 1 {
			l.set(l.prob+i, -1, []string{names[0]}, true)
		}
	}
	if l.business {
		l.biz = l.family("faceid_business_verifications_total",
			"Verification results that are not duplicates by channel and the allowlisted business dimensions app_id and rule_id (\"other\" when not allowlisted, \"none\" when absent), outcome and billability.",
			[]string{"channel", "app_id", "rule_id", "outcome", "billable"}, nch*len(l.appNames)*len(l.ruleNames)*2*3)
		for _, ch := range cat.Channels {
			for a := range l.appNames {
				for r := range l.ruleNames {
					for _, o := range outcomes {
						for b := range billable {
							l.set(l.bizIndex(ch.Index, a, r, o, classify.Billable(b)), ch.Index,
								[]string{ch.Name, l.appNames[a], l.ruleNames[r], o.String(), billable[b]}, false)
						}
					}
				}
			}
		}
	}
	l.dup = l.family("faceid_exporter_duplicates_total",
		"Events not counted because their id was seen within the dedupe window (redeliveries, producer retries).", nil, 1)
	l.set(l.dup, -1, nil, true)
	l.rej = l.family("faceid_exporter_events_rejected_total", "Messages rejected as bad input, by reason.", []string{"reason"}, 16)
	l.dlt = l.family("faceid_exporter_dead_letters_total", "Rejected messages republished to the dead-letter subject, by reason.", []string{"reason"}, 16)
	for _, r := range classify.Reasons() {
		l.set(l.rej+int(r&15), -1, []string{r.String()}, true)
		l.set(l.dlt+int(r&15), -1, []string{r.String()}, true)
	}
	l.dedupeEv = l.family("faceid_exporter_dedupe_evictions_total",
		"Event ids forgotten for room inside the dedupe window; a redelivery of one would be counted again.", nil, 1)
	l.set(l.dedupeEv, -1, nil, true)
	l.reqIDEv = l.family("faceid_exporter_reqid_evictions_total",
		"ReqIds forgotten for room inside their billing window; a repeat of one would be billed again.", nil, 1)
	l.set(l.reqIDEv, -1, nil, true)
	l.lost = l.family("faceid_exporter_jetstream_lost_messages_total",
		"Stream messages removed (limits, purge) before the partition read them: the books miss them. With more than one partition, one that keeps up counts none of the others' messages; one that is behind, or was not running, counts the removed sequences it had not reached (an upper bound).", nil, 1)
	l.set(l.lost, -1, nil, true)
	l.resets = l.family("faceid_exporter_jetstream_stream_resets_total",
		"Times the stream was found re-created under the same name (its creation time changed): unread messages of the old stream are lost.", nil, 1)
	l.set(l.resets, -1, nil, true)
	l.tooOld = l.family("faceid_exporter_ledger_too_old_events_total",
		"Counted events whose Beijing day lies more than the ledger's retention (--ledger.retention-days, default 400) before the newest accepted day: in the counters, not in the ledger.", nil, 1)
	l.set(l.tooOld, -1, nil, true)
	return l
}

func (l *Layout) family(name, help string, labels []string, n int) int {
	base := len(l.values)
	l.fams = append(l.fams, Family{Name: name, Help: help, Labels: labels, Base: base, N: n})
	l.values = append(l.values, make([][]string, n)...)
	l.channel = append(l.channel, make([]int, n)...)
	l.preset = append(l.preset, make([]bool, n)...)
	l.keys = append(l.keys, make([]string, n)...)
	for i := base; i < base+n; i++ {
		l.channel[i] = -1
		l.famOf = append(l.famOf, len(l.fams)-1)
	}
	return base
}

func (l *Layout) set(slot, channel int, values []string, preset bool) {
	f := l.fams[l.famOf[slot]]
	l.values[slot], l.channel[slot], l.preset[slot] = values, channel, preset
	var b strings.Builder
	b.WriteString(f.Name)
	b.WriteByte('{')
	for i, v := range values {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(f.Labels[i])
		b.WriteString("=")
		b.WriteString(strconv.Quote(v))
	}
	b.WriteByte('}')
	l.keys[slot] = b.String()
	l.index[l.keys[slot]] = slot
}

// presetVer says whether a verification series is exported at zero: the
// billable values an event with code can get (its own, the one before a dated
// billing change, false for repeats under the reqId rule and duplicates are
// not counted), and "unknown" codes as failures with billable unknown.
func presetVer(cat *classify.Catalog, code *classify.Code, o classify.Outcome, b classify.Billable) bool {
	if code == nil {
		return o == classify.OutcomeFailure && b == classify.BillableUnknown
	}
	if (code.Code == "0") != (o == classify.OutcomeSuccess) {
		return false
	}
	if b == code.Billable || (!code.ChangedAt.IsZero() && b == code.BillableBefore) {
		return true
	}
	r := cat.ReqIDRule
	return r.Family == code.Family && r.Code == code.Code && b == classify.BillableFalse
}

func levelLabel(l int) string {
	if l < 0 {
		return Absent
	}
	return strconv.Itoa(l)
}

// VerIndex returns the slot of faceid_verifications_total for a channel, code
// slot (0 unknown, else code index+1), outcome and billability.
func (l *Layout) VerIndex(ch, codeSlot int, o classify.Outcome, b classify.Billable) int {
	return l.ver + ((ch*l.codeSlots+codeSlot)*2+int(o))*3 + int(b)
}

func (l *Layout) bizIndex(ch, app, rule int, o classify.Outcome, b classify.Billable) int {
	return l.biz + (((ch*len(l.appNames)+app)*len(l.ruleNames)+rule)*2+int(o))*3 + int(b)
}

// Slots returns the number of counter slots.
func (l *Layout) Slots() int { return len(l.values) }

// Families returns the counter families.
func (l *Layout) Families() []Family { return l.fams }

// Values returns the label values of a slot (nil for a slot no series uses).
func (l *Layout) Values(slot int) []string { return l.values[slot] }

// Preset reports whether a slot's series is exported at zero for a partition
// that owns the channels in owns (nil: every channel).
func (l *Layout) Preset(slot int, owns []bool) bool {
	if !l.preset[slot] {
		return false
	}
	ch := l.channel[slot]
	return ch < 0 || owns == nil || owns[ch]
}

// Key returns a slot's stable key: the metric name with its labels, as the
// checkpoint stores it.
func (l *Layout) Key(slot int) string { return l.keys[slot] }

// Slot returns the slot of a stable key.
func (l *Layout) Slot(key string) (int, bool) {
	s, ok := l.index[key]
	return s, ok
}

// Catalog returns the layout's catalog.
func (l *Layout) Catalog() *classify.Catalog { return l.cat }

// ruleSlot returns the ledger's rule_id slot of an event.
func (l *Layout) ruleSlot(ruleID []byte) int {
	if l.ruleSlots == 1 || len(ruleID) == 0 {
		return 0
	}
	if i, ok := l.rules[string(ruleID)]; ok {
		return i
	}
	return 1
}

// ruleName returns the ledger's rule_id of a slot.
func (l *Layout) ruleName(slot int) string {
	if slot == 0 {
		return ""
	}
	return l.ruleNames[slot]
}

func slotOf(allow map[string]int, v []byte) int {
	if len(v) == 0 {
		return 0
	}
	if i, ok := allow[string(v)]; ok {
		return i
	}
	return 1
}
