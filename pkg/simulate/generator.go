package simulate

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/faceid-observability/faceid-exporter/pkg/books"
	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/stream"
)

// DefaultSubjectPrefix is the subject prefix producers publish under; events
// go to <prefix>.<channel>.
const DefaultSubjectPrefix = "faceid.results"

// Truth is what the generator meant a message to be and what a
// classify.Classifier on the same catalog made of it when it was generated:
// exactly what a correct exporter counts for it.
type Truth struct {
	// Kind is the part of the scenario the message was drawn from.
	Kind Kind
	// Flaw is the rejection built into a malformed message on purpose;
	// ReasonNone for a well-formed one.
	Flaw classify.Reason
	// Reject is the Classifier's verdict: ReasonNone when it accepted the
	// message; then the fields below are set.
	Reject classify.Reason

	Channel  *classify.Channel
	Code     *classify.Code // nil: not in the catalog for the channel's family
	Outcome  classify.Outcome
	Billable classify.Billable
	Risk     classify.Risk
	// BillingRule is the classifier's rule for Billable (catalog, req_id_first, ...).
	BillingRule string
}

// CodeLabel returns the code as the exporter labels it: the catalog code, or
// "unknown".
func (t Truth) CodeLabel() string {
	if t.Code == nil {
		return "unknown"
	}
	return t.Code.Code
}

// Option changes a Generator.
type Option func(*Generator) error

// WithSubjectPrefix publishes under prefix instead of DefaultSubjectPrefix.
func WithSubjectPrefix(prefix string) Option {
	return func(g *Generator) error {
		if err := validSubjectPrefix(prefix); err != nil {
			return err
		}
		g.prefix = prefix
		return nil
	}
}

// WithRunID starts every event id with id instead of the seed-derived
// default, so that runs with the same seed are not duplicates of each other.
func WithRunID(id string) Option {
	return func(g *Generator) error {
		if err := validRunID(id); err != nil {
			return err
		}
		g.runID = id
		return nil
	}
}

// Generator produces synthetic events for one scenario. Given the same
// catalog, scenario, seed, options and sequence of times, it produces the same
// messages. It is not safe for concurrent use.
type Generator struct {
	cat      *classify.Catalog
	scenario Scenario
	rng      *rand.Rand
	prefix   string
	runID    string
	seq      uint64

	kind  Kind
	share float64

	chans      []chanInfo
	channels   weighted[int]
	bfChannels weighted[int] // channels whose family has billable failures
	bogus      []chanInfo    // unknown channels for malformed messages
	flaws      weighted[classify.Reason]

	surgeTags, highTags, lowTags [3][]*classify.DeviceTag // by platform: none, android, ios
	attackIDTags, businessIDTags []*classify.IdentityTag
	lowDevLevels, lowRiskLevels  weighted[int]

	reqIDFamily string
	recent      [256]reqIDEntry
	nRecent     int
	nextRecent  int

	cls   *classify.Classifier
	rules *books.Rules // the reqId rule, as a partition applies it (ids are unique: no duplicates)
	res   classify.Result
}

type chanInfo struct {
	name     string
	nameB    []byte
	subject  string
	fam      *famInfo
	platform bool // events report a mobile platform
}

type famInfo struct {
	name     string
	shape    familyShape
	success  string // "" when the family has no code "0"
	billable weighted[string]
	other    weighted[string]
	unknown  weighted[string]
	sdk      bool
}

type reqIDEntry struct {
	id uint64
	at int64
}

// NewGenerator returns a generator of scenario's traffic over cat's channels
// and codes, seeded with seed.
func NewGenerator(cat *classify.Catalog, scenario Scenario, seed int64, opts ...Option) (*Generator, error) {
	if cat == nil {
		return nil, errors.New("no catalog")
	}
	if _, err := ParseScenario(string(scenario)); err != nil {
		return nil, err
	}
	h := fnv.New64a()
	fmt.Fprintf(h, "%d", seed)
	g := &Generator{
		cat:         cat,
		scenario:    scenario,
		rng:         rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15)),
		prefix:      DefaultSubjectPrefix,
		runID:       "s" + strconv.FormatUint(h.Sum64()&0xffffffff, 16),
		reqIDFamily: cat.ReqIDRule.Family,
		cls:         classify.New(cat, classify.Options{}),
		rules:       books.NewRules(cat, books.RulesOptions{}),
	}
	g.kind, g.share = injectShare(scenario)
	for _, o := range opts {
		if err := o(g); err != nil {
			return nil, err
		}
	}
	if err := g.build(); err != nil {
		return nil, err
	}
	return g, nil
}

// Scenario returns the generator's scenario.
func (g *Generator) Scenario() Scenario { return g.scenario }

// RunID returns the prefix of the generator's event ids.
func (g *Generator) RunID() string { return g.runID }

func (g *Generator) build() error {
	fams := map[string]*famInfo{}
	for _, f := range g.cat.Families {
		fi := &famInfo{name: f.Name, shape: defaultShape, sdk: f.Name == "sdk"}
		if s, ok := familyShapes[f.Name]; ok {
			fi.shape = s
		}
		fams[f.Name] = fi
	}
	for _, c := range g.cat.Codes {
		fi := fams[c.Family]
		if c.Code == "0" {
			fi.success = c.Code
			continue
		}
		w := defaultCodeWeight
		if cw, ok := codeWeights[c.Family][c.Code]; ok {
			w = cw
		}
		if c.Billable == classify.BillableTrue {
			fi.billable.add(c.Code, w)
		} else {
			fi.other.add(c.Code, w)
		}
	}
	for name, fi := range fams {
		for _, code := range unknownCodes[name] {
			if _, known := g.cat.Lookup(name, code); !known {
				fi.unknown.add(code, 4)
			}
		}
		for _, code := range unknownTextCodes {
			fi.unknown.add(code, 1)
		}
		if fi.success == "" && fi.other.len() == 0 && fi.billable.len() == 0 {
			return fmt.Errorf("family %q has no codes to draw from", name)
		}
	}
	for _, ch := range g.cat.Channels {
		fi := fams[ch.Family.Name]
		idx := len(g.chans)
		g.chans = append(g.chans, chanInfo{
			name: ch.Name, nameB: []byte(ch.Name), subject: g.prefix + "." + ch.Name, fam: fi,
			platform: ch.Name != "pc_h5",
		})
		w, ok := channelWeights[ch.Name]
		if !ok {
			w = 1
		}
		g.channels.add(idx, w)
		if fi.billable.len() > 0 {
			g.bfChannels.add(idx, w)
		}
	}
	if g.channels.len() == 0 {
		return errors.New("the catalog has no channels")
	}
	if g.kind == KindBillableFailure && g.bfChannels.len() == 0 {
		return errors.New("the catalog has no billable failure codes")
	}
	for _, name := range bogusChannels {
		if _, ok := g.cat.Channel(name); ok {
			continue
		}
		g.bogus = append(g.bogus, chanInfo{name: name, nameB: []byte(name), subject: g.prefix + "." + name, fam: g.chans[0].fam, platform: true})
	}
	for _, f := range []struct {
		r classify.Reason
		w float64
	}{
		{classify.ReasonInvalidJSON, 2}, {classify.ReasonNotObject, 2}, {classify.ReasonUnknownChannel, 2},
		{classify.ReasonMissingCode, 2}, {classify.ReasonInvalidTS, 2}, {classify.ReasonInvalidCode, 1},
		{classify.ReasonOversize, 1},
	} {
		if f.r == classify.ReasonUnknownChannel && len(g.bogus) == 0 {
			continue
		}
		g.flaws.add(f.r, f.w)
	}
	g.surgeTags = tagPools(g.cat, surgeTagNames)
	g.highTags = tagPools(g.cat, highRiskTagNames)
	g.lowTags = tagPools(g.cat, lowRiskTagNames)
	for _, t := range g.cat.IdentityTags {
		if t.Type == classify.IdentityAttack {
			g.attackIDTags = append(g.attackIDTags, t)
		} else {
			g.businessIDTags = append(g.businessIDTags, t)
		}
	}
	for lvl, w := range []float64{60, 25, 14, 5, 3} {
		if lvl < g.cat.DeviceLevel.HighFrom {
			g.lowDevLevels.add(lvl, w)
		}
	}
	for lvl, w := range []float64{55, 25, 12, 5, 3} {
		if lvl < g.cat.RiskLevel.HighFrom {
			g.lowRiskLevels.add(lvl, w)
		}
	}
	if g.lowDevLevels.len() == 0 {
		g.lowDevLevels.add(0, 1)
	}
	if g.lowRiskLevels.len() == 0 {
		g.lowRiskLevels.add(0, 1)
	}
	return nil
}

// tagPools returns the device tags with the given names, by platform: any,
// android, ios.
func tagPools(cat *classify.Catalog, names []string) [3][]*classify.DeviceTag {
	var out [3][]*classify.DeviceTag
	for _, t := range cat.DeviceTags {
		if !contains(names, t.Name) {
			continue
		}
		out[0] = append(out[0], t)
		for p, plat := range []string{"android", "ios"} {
			if contains(t.Platforms, plat) {
				out[p+1] = append(out[p+1], t)
			}
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

var cst = time.FixedZone("CST", 8*3600)

// Next appends the next message to buf[:0] and returns it with the subject to
// publish it on and its ground truth. now is the time of sending: event times
// lie a little before it.
func (g *Generator) Next(buf []byte, now time.Time) (msg []byte, subject string, truth Truth) {
	g.seq++
	r := g.rng
	kind := KindBaseline
	if g.share > 0 && r.Float64() < g.share {
		kind = g.kind
	}
	var ch *chanInfo
	if kind == KindBillableFailure {
		ch = &g.chans[g.bfChannels.pick(r)]
	} else {
		ch = &g.chans[g.channels.pick(r)]
	}
	fam := ch.fam
	flaw := classify.ReasonNone
	if kind == KindMalformed {
		flaw = g.flaws.pick(r)
	}
	if flaw == classify.ReasonUnknownChannel {
		ch = &g.bogus[r.IntN(len(g.bogus))]
	}
	code := g.code(fam, kind)

	delay := time.Duration(r.ExpFloat64() * float64(400*time.Millisecond))
	if delay > 10*time.Second {
		delay = 10 * time.Second
	}
	ts := now.Add(-delay)

	b := buf[:0]
	if flaw == classify.ReasonNotObject {
		switch r.IntN(4) {
		case 0:
			b = append(b, '[')
		case 1:
			b = append(b, '"')
			b = g.appendID(b)
			b = append(b, '"')
			return g.finish(b, ch, now, kind, flaw)
		case 2:
			b = append(b, "null"...)
			return g.finish(b, ch, now, kind, flaw)
		default:
			b = strconv.AppendInt(b, int64(r.IntN(100000)), 10)
			return g.finish(b, ch, now, kind, flaw)
		}
	}
	b = append(b, `{"id":"`...)
	b = g.appendID(b)
	b = append(b, '"')
	b = g.appendTS(b, ts, fam, flaw)
	if flaw == classify.ReasonUnknownChannel || r.Float64() >= 0.05 {
		b = append(b, `,"channel":"`...)
		b = append(b, ch.name...)
		b = append(b, '"')
	}
	b = g.appendCode(b, code, flaw)
	if fam.name == g.reqIDFamily {
		b = g.appendReqID(b, ts)
	}
	b = append(b, `,"app_id":"`...)
	b = append(b, appIDs[pickIndex(r, appW)]...)
	b = append(b, '"')
	if r.Float64() < 0.8 {
		b = append(b, `,"rule_id":"`...)
		b = append(b, ruleIDs[pickIndex(r, ruleW)]...)
		b = append(b, '"')
	}
	if fam.sdk {
		b = append(b, `,"sdk_version":"`...)
		b = append(b, sdkVersions[r.IntN(len(sdkVersions))]...)
		b = append(b, '"')
	}
	b = g.appendRisk(b, ch, kind == KindHighRisk)
	if flaw == classify.ReasonOversize {
		n := classify.MaxMessageBytes + 1 + r.IntN(4096)
		b = append(b, `,"debug":"`...)
		for i := 0; i < n; i++ {
			b = append(b, 'x')
		}
		b = append(b, '"')
	}
	b = append(b, '}')
	if kind == KindMalformed && b[0] == '[' {
		b = append(b, ']')
	}
	if flaw == classify.ReasonInvalidJSON {
		switch r.IntN(3) {
		case 0: // cut short, as by a broken producer
			b = b[:len(b)/3+r.IntN(len(b)-len(b)/3-1)]
		case 1: // trailing comma
			b = append(b[:len(b)-1], ",}"...)
		default: // data after the object
			b = append(b, '}')
		}
	}
	return g.finish(b, ch, now, kind, flaw)
}

var sdkVersions = []string{"4.9.6", "5.1.0", "5.2.3"}

func pickIndex(r *rand.Rand, w []float64) int {
	total := 0.0
	for _, v := range w {
		total += v
	}
	x := r.Float64() * total
	for i, v := range w {
		if x < v {
			return i
		}
		x -= v
	}
	return len(w) - 1
}

// code draws the event's code.
func (g *Generator) code(fam *famInfo, kind Kind) string {
	r := g.rng
	switch kind {
	case KindBillableFailure:
		return fam.billable.pick(r)
	case KindUnknownCode:
		return fam.unknown.pick(r)
	}
	switch {
	case fam.success != "" && r.Float64() < fam.shape.success:
		return fam.success
	case fam.billable.len() > 0 && (fam.other.len() == 0 || r.Float64() < fam.shape.billableFailures):
		return fam.billable.pick(r)
	case fam.other.len() > 0:
		return fam.other.pick(r)
	}
	return fam.success
}

func (g *Generator) appendID(b []byte) []byte {
	b = append(b, g.runID...)
	b = append(b, '-')
	var hex [12]byte
	v := g.seq
	for i := len(hex) - 1; i >= 0; i-- {
		hex[i] = "0123456789abcdef"[v&0xf]
		v >>= 4
	}
	return append(b, hex[:]...)
}

// appendTS writes ts as RFC 3339 at +08:00 (60 %) or Unix milliseconds; 1 %
// of events outside the reqId family carry no ts. A message with an invalid_ts
// flaw gets a ts the contract refuses.
func (g *Generator) appendTS(b []byte, ts time.Time, fam *famInfo, flaw classify.Reason) []byte {
	r := g.rng
	if flaw == classify.ReasonInvalidTS {
		b = append(b, `,"ts":`...)
		switch r.IntN(5) {
		case 0: // no "T", no offset
			b = append(b, '"')
			b = ts.In(cst).AppendFormat(b, "2006-01-02 15:04:05")
			return append(b, '"')
		case 1: // no offset
			b = append(b, '"')
			b = ts.In(cst).AppendFormat(b, "2006-01-02T15:04:05.000")
			return append(b, '"')
		case 2:
			return append(b, "-1"...)
		case 3:
			return append(b, "true"...)
		default:
			return append(b, `"yesterday"`...)
		}
	}
	u := r.Float64()
	switch {
	case u < 0.01 && fam.name != g.reqIDFamily:
		return b
	case u < 0.60:
		b = append(b, `,"ts":"`...)
		b = ts.In(cst).AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
		return append(b, '"')
	default:
		b = append(b, `,"ts":`...)
		return strconv.AppendInt(b, ts.UnixMilli(), 10)
	}
}

func (g *Generator) appendCode(b []byte, code string, flaw classify.Reason) []byte {
	r := g.rng
	switch flaw {
	case classify.ReasonMissingCode:
		switch r.IntN(3) {
		case 0:
			return b
		case 1:
			return append(b, `,"code":null`...)
		default:
			return append(b, `,"code":""`...)
		}
	case classify.ReasonInvalidCode:
		b = append(b, `,"code":`...)
		return append(b, invalidCodes[r.IntN(len(invalidCodes))]...)
	}
	b = append(b, `,"code":`...)
	if isInteger(code) && r.Float64() < 0.35 {
		return append(b, code...)
	}
	b = append(b, '"')
	b = append(b, code...)
	return append(b, '"')
}

var invalidCodes = []string{"true", "12.5", "[0]", `{"value":0}`}

func isInteger(s string) bool {
	if strings.HasPrefix(s, "-") {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// reqIDRepeat is how often an event of the reqId family re-uses a recent
// reqId, and reqIDRepeatWithin how recent it must be.
const (
	reqIDRepeat       = 0.2
	reqIDRepeatWithin = 4 * time.Minute
)

func (g *Generator) appendReqID(b []byte, ts time.Time) []byte {
	r := g.rng
	at := ts.UnixNano()
	var id uint64
	if g.nRecent > 0 && r.Float64() < reqIDRepeat {
		e := g.recent[r.IntN(g.nRecent)]
		if d := at - e.at; d < int64(reqIDRepeatWithin) && d > -int64(reqIDRepeatWithin) {
			id = e.id
		}
	}
	if id == 0 {
		id = r.Uint64() | 1
		g.recent[g.nextRecent] = reqIDEntry{id: id, at: at}
		g.nextRecent = (g.nextRecent + 1) % len(g.recent)
		if g.nRecent < len(g.recent) {
			g.nRecent++
		}
	}
	b = append(b, `,"req_id":"req-`...)
	b = strconv.AppendUint(b, id, 16)
	return append(b, '"')
}

// appendRisk writes the risk object: absent on 8 % of baseline events, levels
// sometimes absent or -1, tags as a list or a comma-separated string.
func (g *Generator) appendRisk(b []byte, ch *chanInfo, surge bool) []byte {
	r := g.rng
	if !surge && r.Float64() < 0.08 {
		return b
	}
	plat := 0 // none
	if ch.platform {
		android := 0.6
		if surge {
			android = 0.75
		}
		if r.Float64() < android {
			plat = 1
		} else {
			plat = 2
		}
	}
	dev, devKind := g.deviceLevel(surge)
	risk, riskKind := g.riskLevel(surge)
	b = append(b, `,"risk":{`...)
	sep := false
	field := func(name string) {
		if sep {
			b = append(b, ',')
		}
		sep = true
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, `":`...)
	}
	for _, l := range []struct {
		name string
		v    int
		kind int
	}{{"device_level", dev, devKind}, {"risk_level", risk, riskKind}} {
		switch l.kind {
		case levelAbsent:
		case levelMinusOne:
			field(l.name)
			b = append(b, "-1"...)
		case levelString:
			field(l.name)
			b = append(b, '"')
			b = strconv.AppendInt(b, int64(l.v), 10)
			b = append(b, '"')
		default:
			field(l.name)
			b = strconv.AppendInt(b, int64(l.v), 10)
		}
	}
	// Device tags.
	var dtags [2]*classify.DeviceTag
	nd := 0
	devHigh := devKind != levelAbsent && devKind != levelMinusOne && dev >= g.cat.DeviceLevel.HighFrom
	switch {
	case devHigh:
		pool := g.highTags[plat]
		if surge {
			pool = g.surgeTags[plat]
		}
		if len(pool) > 0 {
			dtags[0] = pool[r.IntN(len(pool))]
			nd = 1
			if r.Float64() < 0.3 {
				if t := pool[r.IntN(len(pool))]; t != dtags[0] {
					dtags[1] = t
					nd = 2
				}
			}
		}
	case r.Float64() < 0.03:
		if pool := g.lowTags[plat]; len(pool) > 0 {
			dtags[0] = pool[r.IntN(len(pool))]
			nd = 1
		}
	}
	emptyTags := nd == 0 && r.Float64() < 0.04
	if nd > 0 || emptyTags {
		field("device_tags")
		b = g.appendTags(b, [2]string{tagOf(dtags[0]), tagOf(dtags[1])}, nd, true)
	}
	// Identity tags.
	var itags [2]*classify.IdentityTag
	ni := 0
	riskHigh := riskKind != levelAbsent && riskKind != levelMinusOne && risk >= g.cat.RiskLevel.HighFrom
	u := r.Float64()
	switch {
	case riskHigh && len(g.attackIDTags) > 0:
		itags[0] = g.attackIDTags[r.IntN(len(g.attackIDTags))]
		ni = 1
		if r.Float64() < 0.3 {
			if t := g.attackIDTags[r.IntN(len(g.attackIDTags))]; t != itags[0] {
				itags[1] = t
				ni = 2
			}
		}
	case u < 0.05 && len(g.businessIDTags) > 0:
		itags[0] = g.businessIDTags[r.IntN(len(g.businessIDTags))]
		ni = 1
	case u < 0.07 && len(g.attackIDTags) > 0:
		itags[0] = g.attackIDTags[r.IntN(len(g.attackIDTags))]
		ni = 1
	}
	if ni > 0 {
		field("risk_tags")
		b = g.appendTags(b, [2]string{idTagOf(itags[0]), idTagOf(itags[1])}, ni, false)
	}
	switch plat {
	case 1:
		field("platform")
		b = append(b, `"android"`...)
	case 2:
		field("platform")
		if r.Float64() < 0.1 {
			b = append(b, `"iOS"`...)
		} else {
			b = append(b, `"ios"`...)
		}
	}
	return append(b, '}')
}

// appendTags writes n tags as a list of strings (60 %), a comma-separated
// string (30 %) or, when ints is set and every tag is a plain integer, a list
// of integers.
func (g *Generator) appendTags(b []byte, tags [2]string, n int, ints bool) []byte {
	u := g.rng.Float64()
	if ints && u >= 0.9 {
		for i := 0; i < n; i++ {
			t := tags[i]
			ints = ints && isInteger(t) && (t == "0" || t[0] != '0')
		}
	}
	switch {
	case u < 0.6 || (u >= 0.9 && !ints):
		b = append(b, '[')
		for i := 0; i < n; i++ {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = append(b, tags[i]...)
			b = append(b, '"')
		}
		return append(b, ']')
	case u < 0.9:
		b = append(b, '"')
		for i := 0; i < n; i++ {
			if i > 0 {
				b = append(b, ", "[:1+g.rng.IntN(2)]...)
			}
			b = append(b, tags[i]...)
		}
		return append(b, '"')
	default:
		b = append(b, '[')
		for i := 0; i < n; i++ {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, tags[i]...)
		}
		return append(b, ']')
	}
}

func tagOf(t *classify.DeviceTag) string {
	if t == nil {
		return ""
	}
	return t.Tag
}

func idTagOf(t *classify.IdentityTag) string {
	if t == nil {
		return ""
	}
	return t.Tag
}

// highLevel draws a level at or above rule.HighFrom.
func (g *Generator) highLevel(rule classify.LevelRule) int {
	if rule.Max <= rule.HighFrom {
		return rule.HighFrom
	}
	return rule.HighFrom + g.rng.IntN(rule.Max-rule.HighFrom+1)
}

// How a level is written.
const (
	levelInt = iota
	levelString
	levelAbsent
	levelMinusOne
)

// deviceLevel draws deviceInfoLevel: in a surge a high level; otherwise absent
// 5 %, -1 3 %, high 1 %, else low.
func (g *Generator) deviceLevel(surge bool) (int, int) {
	r := g.rng
	rule := g.cat.DeviceLevel
	if surge {
		return g.highLevel(rule), levelInt
	}
	u := r.Float64()
	switch {
	case u < 0.05:
		return 0, levelAbsent
	case u < 0.08:
		return -1, levelMinusOne
	case u < 0.09:
		return g.highLevel(rule), g.levelForm()
	}
	return g.lowDevLevels.pick(r), g.levelForm()
}

// riskLevel draws riskInfoLevel: in a surge high on a quarter of events;
// otherwise absent 10 %, -1 2 %, high 0.3 %, else low.
func (g *Generator) riskLevel(surge bool) (int, int) {
	r := g.rng
	rule := g.cat.RiskLevel
	if surge {
		if r.Float64() < 0.25 {
			return g.highLevel(rule), levelInt
		}
		return g.lowRiskLevels.pick(r), levelInt
	}
	u := r.Float64()
	switch {
	case u < 0.10:
		return 0, levelAbsent
	case u < 0.12:
		return -1, levelMinusOne
	case u < 0.123:
		return g.highLevel(rule), g.levelForm()
	}
	return g.lowRiskLevels.pick(r), g.levelForm()
}

func (g *Generator) levelForm() int {
	if g.rng.Float64() < 0.05 {
		return levelString
	}
	return levelInt
}

// finish classifies the message as the exporter will and returns it.
func (g *Generator) finish(b []byte, ch *chanInfo, now time.Time, kind Kind, flaw classify.Reason) ([]byte, string, Truth) {
	t := Truth{Kind: kind, Flaw: flaw}
	if err := g.cls.Classify(b, ch.nameB, now, &g.res); err != nil {
		var re *classify.RejectError
		if errors.As(err, &re) {
			t.Reject = re.Reason
		} else {
			t.Reject = classify.ReasonInvalidJSON
		}
		return b, ch.subject, t
	}
	res := &g.res
	g.rules.Apply(res)
	t.Channel, t.Code, t.Outcome, t.Billable, t.Risk, t.BillingRule = res.Channel, res.Code, res.Outcome, res.Billable, res.Risk, res.BillingRule
	return b, ch.subject, t
}

// validSubjectPrefix accepts a NATS subject of literal tokens, by the
// server's rules.
func validSubjectPrefix(p string) error {
	if p == "" {
		return errors.New("subject prefix is empty")
	}
	if !stream.IsValidLiteralSubject(p) {
		return fmt.Errorf("subject prefix %q is not a NATS subject of literal tokens", p)
	}
	return nil
}

// validRunID accepts 1–32 letters, digits, '_' or '.'.
func validRunID(id string) error {
	if id == "" || len(id) > 32 {
		return fmt.Errorf("run id %q must be 1 to 32 characters", id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return fmt.Errorf("run id %q may hold only letters, digits, '_', '.' and '-'", id)
		}
	}
	return nil
}
