package exactly

import (
	"encoding/csv"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
)

// subjectPrefix is where producers publish: faceid.results.<channel>.
const subjectPrefix = "faceid.results."

// billingChange is when the WeChat codes 2007 and 2009–2015 stopped being
// billed (Beijing midnight).
var billingChange = time.Date(2021, 7, 19, 0, 0, 0, 0, ledger.Beijing)

// families maps every catalog channel to its code family (README, "The input
// contract").
var families = map[string]string{
	"wechat_h5": "wechat", "wechat_miniprogram": "wechat", "eid": "wechat",
	"app_sdk": "sdk", "standalone_h5": "sdk", "pc_h5": "sdk",
	"willingness": "willingness", "nfc_server": "nfc_server", "nfc_terminal": "nfc_terminal",
}

// channels lists the catalog channels in a fixed order.
var channels = func() []string {
	var out []string
	for c := range families {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}()

// codesOf are the codes the fixture draws per family: billed and free ones,
// the dated WeChat codes, and one code of no catalog (unknown).
var codesOf = map[string][]string{
	"wechat":       {"0", "0", "0", "2006", "2016", "2001", "2007", "2009", "2010", "2011", "2012", "2013", "2014", "2015", "99999"},
	"sdk":          {"0", "0", "-5008", "66660004", "66660010", "400101", "12345"},
	"willingness":  {"0", "66666006", "66666004"},
	"nfc_server":   {"66664002", "66664003"},
	"nfc_terminal": {"0", "600100", "66664020"},
}

// datedCodes are the WeChat codes billed only before billingChange.
var datedCodes = []string{"2007", "2009", "2010", "2011", "2012", "2013", "2014", "2015"}

// catalogEntry is one code of the exporter's catalog, as `exporter catalog
// --format csv` prints it.
type catalogEntry struct {
	billable  string
	before    string    // billable before changedAt ("" when the code never changed)
	changedAt time.Time // zero when the code never changed
}

// catalog maps family and code ("wechat/2007") to its entry.
type catalog map[string]catalogEntry

// parseCatalogCSV reads `exporter catalog --format csv`.
func parseCatalogCSV(r io.Reader) (catalog, error) {
	recs, err := csv.NewReader(r).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("catalog csv: %w", err)
	}
	if len(recs) < 2 {
		return nil, fmt.Errorf("catalog csv: %d records", len(recs))
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	for _, h := range []string{"family", "code", "billable", "billable_before", "billing_changed_at"} {
		if _, ok := col[h]; !ok {
			return nil, fmt.Errorf("catalog csv: no column %q in %v", h, recs[0])
		}
	}
	out := catalog{}
	for _, r := range recs[1:] {
		e := catalogEntry{billable: r[col["billable"]], before: r[col["billable_before"]]}
		if s := r[col["billing_changed_at"]]; s != "" {
			if e.changedAt, err = time.Parse(time.RFC3339, s); err != nil {
				return nil, fmt.Errorf("catalog csv: %s/%s: %w", r[col["family"]], r[col["code"]], err)
			}
		}
		out[r[col["family"]]+"/"+r[col["code"]]] = e
	}
	return out, nil
}

// label returns the code and billable labels the exporter gives code on
// channel at ts, before the NFC reqId rule.
func (c catalog) label(channel, code string, ts time.Time) (string, string) {
	e, ok := c[families[channel]+"/"+code]
	if !ok {
		return "unknown", "unknown"
	}
	if !e.changedAt.IsZero() && ts.Before(e.changedAt) {
		return code, e.before
	}
	return code, e.billable
}

// msg is one message of the fixture.
type msg struct {
	Subject string
	Data    []byte
	// MsgID is the Nats-Msg-Id it is published with, so that a publish
	// retried across a server restart is stored once.
	MsgID string
}

// verKey is a series of faceid_verifications_total summed over outcome and
// partition.
type verKey struct{ Channel, Code, Billable string }

func (k verKey) String() string { return k.Channel + "/" + k.Code + "/" + k.Billable }

// expectation is what a correct exporter counts for a fixture, whatever the
// order of messages within a publish batch.
type expectation struct {
	Total         int
	Duplicates    int
	Rejected      map[string]int // by reason
	Verifications map[verKey]int // accepted, not duplicates
	NoTS          int            // accepted events without ts (their day is their stream timestamp's)
}

// fixture is a generated stream and what it must count.
type fixture struct {
	Msgs   []msg
	Expect expectation
}

// serveDedupeWindow is the duplicate window of serve with no --config.file
// (config.DefaultDedupeWindow).
const serveDedupeWindow = 10 * time.Minute

// reqIDWindow is the NFC reqId rule's window.
const reqIDWindow = 5 * time.Minute

// fixtureOptions shape a generated fixture.
type fixtureOptions struct {
	Seed uint64
	N    int // messages, exactly
	// Now is when the fixture is published: events without ts are stamped
	// by the server when they are stored, minutes after Now at most.
	Now time.Time
	Cat catalog
	// DedupeWindow is the exporter's duplicate window (default
	// serveDedupeWindow): redeliveries come within half of it.
	DedupeWindow time.Duration
}

// event is an accepted event before encoding.
type event struct {
	id, channel, code, reqID string
	ts                       time.Time
	tsForm                   int // 0 RFC 3339 +08:00, 1 RFC 3339 Z, 2 Unix ms, 3 absent, 4 null
	codeInt                  bool
	risk                     string // raw JSON of the risk object, "" for none
}

func (e event) hasTS() bool { return e.tsForm < 3 }

func (e event) encode() []byte {
	var b strings.Builder
	b.WriteString(`{"id":"` + e.id + `"`)
	switch e.tsForm {
	case 0:
		b.WriteString(`,"ts":"` + e.ts.In(ledger.Beijing).Format("2006-01-02T15:04:05.000Z07:00") + `"`)
	case 1:
		b.WriteString(`,"ts":"` + e.ts.UTC().Format(time.RFC3339Nano) + `"`)
	case 2:
		b.WriteString(`,"ts":` + strconv.FormatInt(e.ts.UnixMilli(), 10))
	case 4:
		b.WriteString(`,"ts":null`)
	}
	b.WriteString(`,"channel":"` + e.channel + `"`)
	if e.codeInt {
		b.WriteString(`,"code":` + e.code)
	} else {
		b.WriteString(`,"code":"` + e.code + `"`)
	}
	if e.reqID != "" {
		b.WriteString(`,"req_id":"` + e.reqID + `"`)
	}
	if e.risk != "" {
		b.WriteString(`,"risk":` + e.risk)
	}
	b.WriteString("}")
	return []byte(b.String())
}

var risks = []string{
	`{"device_level":3,"risk_level":1,"device_tags":["202","5012"],"risk_tags":["02"],"platform":"android"}`,
	`{"device_level":1,"risk_level":0,"device_tags":[],"risk_tags":[],"platform":"ios"}`,
	`{"device_level":-1,"risk_level":5,"device_tags":"202,9999","platform":"harmony"}`,
	`{"device_level":"2","risk_level":"x"}`,
}

// badLines are rejected messages, with the reason the exporter gives them;
// %s is a unique id. They go to a catalog channel's subject.
var badLines = []struct{ format, reason string }{
	{`{"id":"%s","channel":"wechat_h5","code":`, "invalid_json"},
	{`{"id":"%s","channel":"wechat_h5" "code":"0"}`, "invalid_json"},
	{`["%s"]`, "not_object"},
	{`{"id":"%s","channel":"wechat_web","code":"0"}`, "unknown_channel"},
	{`{"id":"%s","channel":"wechat_h5"}`, "missing_code"},
	{`{"id":"%s","channel":"eid","code":null}`, "missing_code"},
	{`{"id":"%s","channel":"app_sdk","code":"0","ts":"yesterday"}`, "invalid_ts"},
	{`{"id":"%s","channel":"pc_h5","code":{"v":1}}`, "invalid_code"},
}

// maxJitter is how far an event's time strays from the traffic's clock.
const maxJitter = 30 * time.Second

// pending is a message scheduled for when the traffic's clock reaches at.
type pending struct {
	at time.Time
	ev event
}

// generator builds a fixture; see newFixture.
type generator struct {
	o       fixtureOptions
	rng     *rand.Rand
	fx      fixture
	next    int // id counter
	recent  []event
	newest  time.Time // the newest event time so far
	queue   []pending
	nfcBill map[string]time.Time // reqId -> billed success time
}

// newFixture generates o.N messages, deterministic in o (Now included). The
// traffic's clock runs through three segments in order: eight hours around
// the 2021-07-19 billing change (the dated WeChat codes on both sides, the
// exact instants included), the 26 hours before o.Now minus an hour (a
// Beijing midnight with events at 23:59:59.999, 23:59:59 and 00:00:00+08:00,
// late events of an earlier day), and three minutes around o.Now (events
// without ts too, which the server stamps at about that time). Within the
// clock's order events jitter by up to maxJitter; events of 2021 keep coming
// later (older than the ledger keeps); duplicates repeat the exact
// bytes of a recent event (see redeliverable); NFC server successes come in
// reqId pairs 1 minute (second not billed) or 7 minutes (both billed) apart,
// in the first two segments, where nothing stamped by the server moves the
// rules' clock; bad lines of every reason are spread throughout. The last
// message is a valid event.
//
// The rules' windows (duplicates, reqIds) run on the newest event time seen,
// so what the fixture expects holds as long as no message is stored more than
// a publish batch (publishBatch messages) away from its place, which is what
// publish guarantees across retries.
func newFixture(o fixtureOptions) fixture {
	if o.DedupeWindow == 0 {
		o.DedupeWindow = serveDedupeWindow
	}
	g := &generator{o: o, rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x5eed)), nfcBill: map[string]time.Time{}}
	g.fx.Expect.Rejected = map[string]int{}
	g.fx.Expect.Verifications = map[verKey]int{}
	now := o.Now.Truncate(time.Millisecond)
	segs := []struct {
		from, to time.Time
		share    float64
		noTS     bool
	}{
		{billingChange.Add(-4 * time.Hour), billingChange.Add(4 * time.Hour), 0.2, false},
		{now.Add(-27 * time.Hour), now.Add(-time.Hour), 0.55, false},
		{now.Add(-2 * time.Minute), now.Add(time.Minute), 0.25, true},
	}
	total := o.N - 1 // the last message is the closing event
	done := 0
	for i, s := range segs {
		n := int(float64(total) * s.share)
		if i == len(segs)-1 {
			n = total - done
		}
		g.segment(s.from, s.to, n, s.noTS)
		done += n
	}
	g.emit(event{id: g.id(), channel: "wechat_h5", code: "0", ts: now})
	return g.fx
}

func (g *generator) id() string {
	g.next++
	return fmt.Sprintf("fx%d-%06d", g.o.Seed, g.next)
}

func (g *generator) room(n int) bool { return len(g.fx.Msgs) < n }

// segment emits exactly n messages while the clock runs from from to to.
func (g *generator) segment(from, to time.Time, n int, noTS bool) {
	limit := len(g.fx.Msgs) + n
	span := to.Sub(from)
	// Redeliveries repeat events of this segment only: the duplicate window
	// is 24h of the newest event time, and the previous segment is older.
	g.recent = g.recent[:0]
	// Instants that must be present: the billing change in its segment,
	// every Beijing midnight in the others.
	var marks []time.Time
	if !from.After(billingChange) && to.After(billingChange) {
		marks = append(marks, billingChange)
	} else {
		for d := ledger.DayOf(from) + 1; d.Start().Before(to); d++ {
			marks = append(marks, d.Start())
		}
	}
	for j := 0; len(g.fx.Msgs) < limit; j++ {
		clock := from.Add(time.Duration(float64(span) * float64(j) / float64(n)))
		for len(marks) > 0 && !clock.Before(marks[0]) && g.room(limit-1) {
			g.boundary(marks[0], limit)
			marks = marks[1:]
		}
		g.release(clock, limit)
		if !g.room(limit) {
			break
		}
		g.draw(clock, noTS, limit)
	}
	// Anything still scheduled is dropped: the queue only holds NFC repeats,
	// whose first success stands alone then.
	g.queue = g.queue[:0]
}

// boundary emits events at the instants just before and at mark.
func (g *generator) boundary(mark time.Time, limit int) {
	codes := []string{"0"}
	if mark.Equal(billingChange) {
		codes = datedCodes
	}
	for _, code := range codes {
		for _, at := range []time.Time{mark.Add(-time.Millisecond), mark.Add(-time.Second), mark} {
			for form := range 3 {
				if !g.room(limit) {
					return
				}
				g.emit(event{id: g.id(), channel: "wechat_h5", code: code, ts: at, tsForm: form})
			}
		}
	}
}

// release emits the scheduled messages whose time has come.
func (g *generator) release(clock time.Time, limit int) {
	keep := g.queue[:0]
	for _, p := range g.queue {
		if !p.at.After(clock) && g.room(limit) {
			g.emit(p.ev)
		} else {
			keep = append(keep, p)
		}
	}
	g.queue = keep
}

// draw emits one randomly chosen kind of message at clock.
func (g *generator) draw(clock time.Time, noTS bool, limit int) {
	r := g.rng.Float64()
	jitter := time.Duration(g.rng.Int64N(int64(2*maxJitter))) - maxJitter
	at := clock.Add(jitter).Truncate(time.Millisecond)
	switch {
	case r < 0.08 && len(g.redeliverable()) > 0: // a redelivery of a recent event
		c := g.redeliverable()
		e := g.recent[c[g.rng.IntN(len(c))]]
		g.fx.Msgs = append(g.fx.Msgs, msg{Subject: subjectPrefix + e.channel, Data: e.encode(), MsgID: g.id()})
		g.fx.Expect.Total++
		g.fx.Expect.Duplicates++
	case r < 0.13: // a bad line
		b := badLines[g.rng.IntN(len(badLines))]
		ch := channels[g.rng.IntN(len(channels))]
		g.fx.Msgs = append(g.fx.Msgs, msg{Subject: subjectPrefix + ch, Data: fmt.Appendf(nil, b.format, g.id()), MsgID: g.id()})
		g.fx.Expect.Total++
		g.fx.Expect.Rejected[b.reason]++
	case r < 0.19 && at.After(billingChange) && !noTS: // an NFC reqId pair
		req := fmt.Sprintf("req-%d-%d", g.o.Seed, g.next)
		g.emit(event{id: g.id(), channel: "nfc_server", code: "0", reqID: req, ts: at})
		gap := time.Minute
		if g.rng.IntN(2) == 0 {
			gap = 7 * time.Minute
		}
		g.queue = append(g.queue, pending{at: at.Add(gap), ev: event{id: g.id(), channel: "nfc_server", code: "0", reqID: req, ts: at.Add(gap), tsForm: g.rng.IntN(3)}})
	case r < 0.20: // an NFC success without reqId: billed
		g.emit(event{id: g.id(), channel: "nfc_server", code: "0", ts: at, codeInt: true})
	case r < 0.22 && at.After(billingChange): // a late event, on an earlier day
		g.emit(event{id: g.id(), channel: g.channel(), code: "0", ts: at.Add(-36 * time.Hour), tsForm: g.rng.IntN(3)})
	case r < 0.225 && at.After(billingChange.Add(24*time.Hour)): // an event of 2021, long past the ledger's retention
		ts := billingChange.Add(time.Duration(g.rng.Int64N(int64(48*time.Hour))) - 24*time.Hour).Truncate(time.Millisecond)
		g.emit(event{id: g.id(), channel: "wechat_miniprogram", code: datedCodes[g.rng.IntN(len(datedCodes))], ts: ts, tsForm: g.rng.IntN(3)})
	default:
		ch := g.channel()
		codes := codesOf[families[ch]]
		e := event{id: g.id(), channel: ch, code: codes[g.rng.IntN(len(codes))], ts: at, tsForm: g.rng.IntN(3)}
		if noTS && g.rng.IntN(4) == 0 {
			e.tsForm = 3 + g.rng.IntN(2)
		}
		e.codeInt = g.rng.IntN(5) == 0
		if g.rng.IntN(3) == 0 {
			e.risk = risks[g.rng.IntN(len(risks))]
		}
		g.emit(e)
	}
}

func (g *generator) channel() string { return channels[g.rng.IntN(len(channels))] }

// emit appends an accepted event and what it counts.
func (g *generator) emit(e event) {
	g.fx.Msgs = append(g.fx.Msgs, msg{Subject: subjectPrefix + e.channel, Data: e.encode(), MsgID: g.id()})
	x := &g.fx.Expect
	x.Total++
	ts := e.ts
	if !e.hasTS() {
		x.NoTS++
		ts = g.o.Now
	}
	code, billable := g.o.Cat.label(e.channel, e.code, ts)
	if e.channel == "nfc_server" && e.code == "0" && e.reqID != "" {
		if prev, ok := g.nfcBill[e.reqID]; ok && ts.Sub(prev) < reqIDWindow {
			billable = "false"
		} else {
			g.nfcBill[e.reqID] = ts
		}
	}
	x.Verifications[verKey{e.channel, code, billable}]++
	if e.hasTS() && e.ts.After(g.newest) {
		g.newest = e.ts
	}
	g.recent = append(g.recent, e)
	if len(g.recent) > 64 {
		g.recent = g.recent[1:]
	}
}

// redeliverable returns the indexes of the recent events a redelivery may
// repeat: those without ts (stamped when stored, seconds before the repeat)
// and those at most a third of the dedupe window older than the newest event,
// whose ids the exporter still remembers even when publishing moved them a
// batch (publishBatch messages, minutes of event time at most) later.
func (g *generator) redeliverable() []int {
	var out []int
	for i, e := range g.recent {
		if !e.hasTS() || !e.ts.Before(g.newest.Add(-g.o.DedupeWindow/3)) {
			out = append(out, i)
		}
	}
	return out
}
