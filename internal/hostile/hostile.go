// Package hostile generates randomized, reproducible streams of verification
// results that break the exporter's books if anything can: timestamps missing,
// far past, far future, on Beijing day boundaries, more than the ledger's
// retention apart and out of order; duplicates inside and just outside the
// dedupe window and past its capacity; NFC reqIds repeated across the 5-minute
// boundary; the 2021-07-19 WeChat billing change; bad JSON, oversize messages,
// unknown codes, channels and tags; business dimensions.
//
// Generate is pure: the same Options give the same messages. Event times are
// written relative to Options.Now, the time the harness publishes at; a
// harness publishes the messages in order, reads them back from the stream
// with their real sequences and timestamps, and feeds those to the reference
// model (internal/refmodel). Rules that depend on the message timestamp
// (events without ts, future_ts) are only exercised with margins far larger
// than a publish run takes (minutes), so the real stamps decide as intended;
// the exact boundaries of those rules are pinned by refmodel's own tests.
package hostile

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/faceid-observability/faceid-exporter/internal/refmodel"
)

// Msg is one message to publish.
type Msg struct {
	Subject string
	Data    []byte
	Class   Class // the class that produced it (for reports)
}

// Class is a kind of input.
type Class string

// The classes. Ordinary traffic is always mixed in.
const (
	Ordinary       Class = "ordinary"        // valid events, ts within the last minutes, catalog codes and tags
	NoTS           Class = "no_ts"           // events without ts (their day is their message's timestamp's)
	OutOfOrder     Class = "out_of_order"    // ts hours to days in the past, in random order
	DayBoundary    Class = "day_boundary"    // 23:59:59.999+08:00 and 00:00:00+08:00 (and the same instants in UTC and ms)
	FarPast        Class = "far_past"        // 1970, 2000, 2015: past the ledger's retention
	RetentionGap   Class = "retention_gap"   // events more than the retention apart, both before now
	FarFuture      Class = "far_future"      // 2199 (issue 15, defect 1)
	NearFuture     Class = "near_future"     // ts ahead of now: a minute (accepted) and an hour or a day (future_ts)
	DupInside      Class = "dup_inside"      // an id repeated inside the dedupe window (1 ms short of it included)
	DupOutside     Class = "dup_outside"     // an id repeated exactly the window later, and later still
	DupCapacity    Class = "dup_capacity"    // more distinct ids than the dedupe capacity, then redeliveries of the oldest
	NFCReqID       Class = "nfc_reqid"       // NFC server successes of one reqId across the 5-minute boundary, in and out of order
	BillingChange  Class = "billing_change"  // WeChat 2007/2009-2015 around 2021-07-19T00:00+08:00
	BadJSON        Class = "bad_json"        // invalid JSON, not an object, bad channel/code/ts types
	Oversize       Class = "oversize"        // a message over 64 KiB
	UnknownCode    Class = "unknown_code"    // codes of no catalog family, another family's codes, odd spellings
	UnknownChannel Class = "unknown_channel" // channels and subjects of no catalog channel
	BadRisk        Class = "bad_risk"        // unknown tags, bad levels, too many tags, risk not an object
	Business       Class = "business"        // app_id / rule_id allowlisted, other and absent
)

// AllClasses lists every class.
func AllClasses() []Class {
	return []Class{Ordinary, NoTS, OutOfOrder, DayBoundary, FarPast, RetentionGap, FarFuture, NearFuture,
		DupInside, DupOutside, DupCapacity, NFCReqID, BillingChange, BadJSON, Oversize, UnknownCode,
		UnknownChannel, BadRisk, Business}
}

// OrdinaryClasses lists the classes the exporter was built to handle before
// issue 15: everything but far-past and future timestamps, retention gaps and
// dedupe capacity pressure.
func OrdinaryClasses() []Class {
	return []Class{Ordinary, NoTS, OutOfOrder, DayBoundary, DupInside, DupOutside, NFCReqID, BillingChange,
		BadJSON, Oversize, UnknownCode, UnknownChannel, BadRisk, Business}
}

// ParseClasses reads a comma-separated list of classes ("" or "all": every class).
func ParseClasses(s string) ([]Class, error) {
	if s == "" || s == "all" {
		return AllClasses(), nil
	}
	known := map[Class]bool{}
	for _, c := range AllClasses() {
		known[c] = true
	}
	var out []Class
	for _, f := range strings.Split(s, ",") {
		c := Class(strings.TrimSpace(f))
		if !known[c] {
			return nil, fmt.Errorf("unknown class %q (known: %v)", c, AllClasses())
		}
		out = append(out, c)
	}
	return out, nil
}

// Options shape a generated stream.
type Options struct {
	Seed    uint64
	N       int       // messages, at least (a group of related messages is never cut)
	Now     time.Time // the time the harness publishes at
	Classes []Class   // nil: AllClasses
	// SubjectPrefix: messages go to SubjectPrefix + "." + channel (default "faceid.results").
	SubjectPrefix string
	// Catalog knowledge (the generator draws from it; unknown values are its own).
	Channels       []string            // catalog channels
	FamilyOf       map[string]string   // channel -> family
	Codes          map[string][]string // family -> codes
	DeviceTags     []string
	IdentityTags   []string
	DedupeWindow   time.Duration // the exporter's (default 10m)
	DedupeCapacity int           // the exporter's (default 100000): dup_capacity puts this many + 10 ids
	RetentionDays  int           // the ledger's (default 400)
	AppIDs         []string      // the business allowlists the exporter is configured with
	RuleIDs        []string
}

// WithCatalog fills the catalog fields of o from the reference model's catalog.
func WithCatalog(o Options, m *refmodel.Model) Options {
	o.Channels = m.Channels()
	o.FamilyOf, o.Codes = map[string]string{}, map[string][]string{}
	for _, ch := range o.Channels {
		f := m.Family(ch)
		o.FamilyOf[ch] = f
		if o.Codes[f] == nil {
			cs := m.Codes(f)
			sort.Strings(cs) // the catalog's maps have no order: keep Generate reproducible
			o.Codes[f] = cs
		}
	}
	o.DeviceTags, o.IdentityTags = m.DeviceTags(), m.IdentityTags()
	sort.Strings(o.DeviceTags)
	sort.Strings(o.IdentityTags)
	return o
}

type gen struct {
	o   Options
	r   *rand.Rand
	out []Msg
	n   int // ids made
}

// Generate returns the messages, in publish order.
func Generate(o Options) []Msg {
	if o.SubjectPrefix == "" {
		o.SubjectPrefix = "faceid.results"
	}
	if o.DedupeWindow == 0 {
		o.DedupeWindow = 10 * time.Minute
	}
	if o.DedupeCapacity == 0 {
		o.DedupeCapacity = 100000
	}
	if o.RetentionDays == 0 {
		o.RetentionDays = 400
	}
	if o.Classes == nil {
		o.Classes = AllClasses()
	}
	if len(o.Channels) == 0 {
		panic("hostile: Options.Channels is empty")
	}
	g := &gen{o: o, r: rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))}
	capacityDone := false
	for len(g.out) < o.N {
		if g.r.IntN(3) == 0 {
			g.ordinary(Ordinary)
			continue
		}
		c := o.Classes[g.r.IntN(len(o.Classes))]
		if c == DupCapacity {
			if capacityDone || o.DedupeCapacity > 5000 {
				c = Ordinary // one round per stream, and only when the exporter's capacity is small
			}
			capacityDone = true
		}
		g.class(c)
	}
	return g.out
}

// event is a message body; nil fields are left out.
type event map[string]any

func (g *gen) id() string {
	g.n++
	return fmt.Sprintf("ev-%x-%d", g.o.Seed&0xffff, g.n)
}

func (g *gen) pick(s []string) string { return s[g.r.IntN(len(s))] }

func (g *gen) channel() string { return g.pick(g.o.Channels) }

func (g *gen) code(ch string) string {
	cs := g.o.Codes[g.o.FamilyOf[ch]]
	if len(cs) == 0 || g.r.IntN(3) == 0 {
		return "0"
	}
	return g.pick(cs)
}

// tsString writes t in one of the forms the contract accepts.
func (g *gen) tsValue(t time.Time) any {
	switch g.r.IntN(4) {
	case 0:
		return t.UnixMilli() // integer Unix ms (the instant is rounded to a millisecond)
	case 1:
		return t.UTC().Format("2006-01-02T15:04:05.000Z")
	case 2:
		return t.In(time.FixedZone("", -5*3600)).Format("2006-01-02T15:04:05.000-07:00")
	}
	return t.In(time.FixedZone("", 8*3600)).Format("2006-01-02T15:04:05.000+08:00")
}

func (g *gen) risk() any {
	if g.r.IntN(3) == 0 {
		return nil
	}
	r := map[string]any{}
	if g.r.IntN(2) == 0 {
		r["device_level"] = g.r.IntN(5)
	}
	if g.r.IntN(2) == 0 {
		r["risk_level"] = strconv.Itoa(g.r.IntN(6))
	}
	if g.r.IntN(2) == 0 && len(g.o.DeviceTags) > 0 {
		var ts []string
		for range g.r.IntN(3) + 1 {
			ts = append(ts, g.pick(g.o.DeviceTags))
		}
		r["device_tags"] = ts
	}
	if g.r.IntN(3) == 0 && len(g.o.IdentityTags) > 0 {
		r["risk_tags"] = g.pick(g.o.IdentityTags) + "," + g.pick(g.o.IdentityTags)
	}
	switch g.r.IntN(4) {
	case 0:
		r["platform"] = "android"
	case 1:
		r["platform"] = "iOS"
	case 2:
		r["platform"] = "harmony"
	}
	return r
}

// emit appends an event on its channel's subject.
func (g *gen) emit(c Class, ch string, ev event) {
	g.emitOn(c, g.o.SubjectPrefix+"."+ch, ev)
}

func (g *gen) emitOn(c Class, subject string, ev event) {
	b, err := json.Marshal(map[string]any(ev))
	if err != nil {
		panic(err)
	}
	g.out = append(g.out, Msg{Subject: subject, Data: b, Class: c})
}

func (g *gen) emitRaw(c Class, subject string, data []byte) {
	g.out = append(g.out, Msg{Subject: subject, Data: data, Class: c})
}

// base returns an ordinary event of ch at t.
func (g *gen) base(ch string, t time.Time) event {
	ev := event{"id": g.id(), "ts": g.tsValue(t), "code": g.code(ch)}
	if g.r.IntN(4) != 0 {
		ev["channel"] = ch // else the subject's last token names it
	}
	if r := g.risk(); r != nil {
		ev["risk"] = r
	}
	if g.r.IntN(2) == 0 {
		g.business(ev)
	}
	if g.r.IntN(10) == 0 {
		ev["name"] = "张三" // personal data the exporter must ignore
	}
	return ev
}

func (g *gen) business(ev event) {
	pickOr := func(list []string, field string) {
		switch k := g.r.IntN(4); {
		case k == 0:
		case k == 1 || len(list) == 0:
			ev[field] = fmt.Sprintf("x-%d", g.r.IntN(1000))
		default:
			ev[field] = g.pick(list)
		}
	}
	pickOr(g.o.AppIDs, "app_id")
	pickOr(g.o.RuleIDs, "rule_id")
}

// recent returns a time up to five minutes before now.
func (g *gen) recent() time.Time {
	return g.o.Now.Add(-time.Duration(g.r.Int64N(int64(5 * time.Minute))))
}

func (g *gen) ordinary(c Class) {
	ch := g.channel()
	g.emit(c, ch, g.base(ch, g.recent()))
}

func beijingDay(t time.Time) time.Time {
	b := t.In(time.FixedZone("", 8*3600))
	return time.Date(b.Year(), b.Month(), b.Day(), 0, 0, 0, 0, b.Location())
}

func (g *gen) class(c Class) {
	o := g.o
	switch c {
	case Ordinary:
		g.ordinary(c)
	case NoTS:
		ch := g.channel()
		ev := g.base(ch, o.Now)
		delete(ev, "ts")
		if g.r.IntN(2) == 0 {
			ev["ts"] = nil // null is absent too
		}
		g.emit(c, ch, ev)
	case OutOfOrder:
		for range g.r.IntN(4) + 1 {
			ch := g.channel()
			g.emit(c, ch, g.base(ch, o.Now.Add(-time.Duration(g.r.Int64N(int64(72*time.Hour))))))
		}
	case DayBoundary:
		// Midnight Beijing of a recent day, and one millisecond before.
		mid := beijingDay(o.Now).AddDate(0, 0, -g.r.IntN(3))
		for _, t := range []time.Time{mid.Add(-time.Millisecond), mid, mid.Add(time.Millisecond)} {
			ch := g.channel()
			g.emit(c, ch, g.base(ch, t))
		}
	case FarPast:
		ch := g.channel()
		t := g.pickTime(time.Unix(0, 0), time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2015, 6, 1, 12, 0, 0, 0, time.UTC))
		ev := g.base(ch, t)
		if t.Unix() == 0 && g.r.IntN(2) == 0 {
			ev["ts"] = 0
		}
		g.emit(c, ch, ev)
	case RetentionGap:
		// Two events the retention (and a day) apart, both in the past: the
		// later one must not drop more than the retention allows.
		late := o.Now.Add(-time.Duration(g.r.IntN(10)) * 24 * time.Hour)
		days := o.RetentionDays + g.r.IntN(3) - 1 // retention -1, retention, retention+1 days before
		early := late.AddDate(0, 0, -days)
		order := []time.Time{early, late}
		if g.r.IntN(2) == 0 {
			order = []time.Time{late, early}
		}
		for _, t := range order {
			ch := g.channel()
			g.emit(c, ch, g.base(ch, t))
		}
	case FarFuture:
		ch := g.channel()
		t := g.pickTime(time.Date(2199, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2199, 12, 31, 15, 59, 59, 999e6, time.UTC), time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC))
		ev := g.base(ch, t)
		if g.r.IntN(2) == 0 {
			ev["code"] = "0"
			if g.o.FamilyOf[ch] == "nfc_server" {
				ev["req_id"] = "req-future"
			}
		}
		g.emit(c, ch, ev)
	case NearFuture:
		ch := g.channel()
		ahead := []time.Duration{time.Minute, time.Hour, 24 * time.Hour, 30 * 24 * time.Hour}[g.r.IntN(4)]
		g.emit(c, ch, g.base(ch, o.Now.Add(ahead)))
	case DupInside, DupOutside:
		ch := g.channel()
		t := g.recent().Add(-o.DedupeWindow * 4) // every redelivery below stays in the past
		ev := g.base(ch, t)
		g.emit(c, ch, ev)
		var later []time.Duration
		if c == DupInside {
			later = []time.Duration{0, time.Millisecond, o.DedupeWindow / 2, o.DedupeWindow - time.Millisecond, -(o.DedupeWindow - time.Millisecond)}
			later = later[:g.r.IntN(len(later))+1]
		} else {
			w := o.DedupeWindow
			later = [][]time.Duration{
				{w},                           // exactly the window later: counted, and the record moves to it
				{w + time.Millisecond},        // just outside
				{w, w + w/2},                  // counted, then caught against the moved record
				{-w, w / 2},                   // a window earlier: counted; the record stays, so the next is caught
				{-w, -2*w + time.Millisecond}, // both late ones counted: the record stays at the first
				{3 * w},                       // far later
			}[g.r.IntN(6)]
		}
		for _, d := range later {
			// Interleave other traffic, then redeliver with another time
			// (a producer retry can restamp it) and maybe another body.
			if g.r.IntN(2) == 0 {
				g.ordinary(Ordinary)
			}
			dup := event{}
			for k, v := range ev {
				dup[k] = v
			}
			dup["ts"] = t.Add(d).UTC().Format("2006-01-02T15:04:05.000Z")
			if g.r.IntN(3) == 0 {
				dup["code"] = g.code(ch)
			}
			g.emit(c, ch, dup)
		}
	case DupCapacity:
		// Capacity+10 distinct ids, then redeliveries of the first ones (they
		// were evicted: counted again) and of the last ones (caught).
		ch := g.channel()
		var evs []event
		t := o.Now.Add(-time.Minute)
		for i := range o.DedupeCapacity + 10 {
			ev := g.base(ch, t.Add(time.Duration(i)*time.Millisecond))
			evs = append(evs, ev)
			g.emit(c, ch, ev)
		}
		for _, i := range []int{0, 1, 5, len(evs) - 1, len(evs) - 2} {
			g.emit(c, ch, evs[i])
		}
	case NFCReqID:
		g.nfc()
	case BillingChange:
		wechat := []string{}
		for _, ch := range o.Channels {
			if o.FamilyOf[ch] == "wechat" {
				wechat = append(wechat, ch)
			}
		}
		if len(wechat) == 0 {
			g.ordinary(Ordinary)
			return
		}
		change := time.Date(2021, 7, 19, 0, 0, 0, 0, time.FixedZone("", 8*3600))
		codes := []string{"2007", "2009", "2010", "2011", "2012", "2013", "2014", "2015", "2006", "0"}
		for _, d := range []time.Duration{-time.Millisecond, 0, time.Millisecond, -8 * time.Hour, -24 * time.Hour, 8 * time.Hour} {
			if g.r.IntN(2) == 0 {
				continue
			}
			ch := g.pick(wechat)
			ev := g.base(ch, change.Add(d))
			ev["code"] = g.pick(codes)
			if g.r.IntN(2) == 0 {
				ev["ts"] = change.Add(d).UTC().Format("2006-01-02T15:04:05.000Z") // 2021-07-18T16:00:00Z is already the new rule
			}
			g.emit(c, ch, ev)
		}
	case BadJSON:
		ch := g.channel()
		subj := o.SubjectPrefix + "." + ch
		bad := []string{
			`{"code":"0"`, `{"code":0,}`, `not json`, ``, `   `, `[1,2]`, `"a string"`, `42`, `null`, `true`,
			`{"code":"0","channel":5.5}`, `{"code":1.5}`, `{"code":true}`, `{"code":[]}`,
			`{"code":"0","ts":"yesterday"}`, `{"code":"0","ts":"2026-13-01T00:00:00Z"}`, `{"code":"0","ts":-1}`,
			`{"code":"0","ts":1.7e12}`, `{"code":"0","ts":{}}`, `{"code":"0","ts":"2200-01-01T00:00:00Z"}`,
			`{"code":"0","ts":7258118400001}`, `{"code":"0","ts":"2026-11-26T10:15:30"}`,
			`{"code":null}`, `{"code":""}`, `{"channel":"` + ch + `"}`, `{"code":"0"}{"code":"0"}`,
			`{"code":"0","channel":{"x":1}}`,
		}
		g.emitRaw(c, subj, []byte(g.pick(bad)))
	case Oversize:
		ch := g.channel()
		ev := g.base(ch, g.recent())
		ev["padding"] = strings.Repeat("x", 64<<10)
		g.emit(c, ch, ev)
	case UnknownCode:
		ch := g.channel()
		ev := g.base(ch, g.recent())
		other := g.pick(o.Channels)
		ev["code"] = g.pick([]string{"99999", "-1", " 2006 ", "+0", "-0", "0007", "abc", "66660004", "2006", g.code(other)})
		if g.r.IntN(3) == 0 {
			if n, err := strconv.Atoi(ev["code"].(string)); err == nil {
				ev["code"] = n
			}
		}
		g.emit(c, ch, ev)
	case UnknownChannel:
		ch := g.channel()
		ev := g.base(ch, g.recent())
		switch g.r.IntN(3) {
		case 0:
			ev["channel"] = "bogus_channel" // on a catalog channel's subject
			g.emit(c, ch, ev)
		case 1:
			delete(ev, "channel") // a subject of no catalog channel, no channel field
			g.emitOn(c, o.SubjectPrefix+".bogus", ev)
		default:
			ev["channel"] = ch // a subject of no catalog channel, channel named in the body
			g.emitOn(c, o.SubjectPrefix+".other", ev)
		}
	case BadRisk:
		ch := g.channel()
		ev := g.base(ch, g.recent())
		risks := []any{
			"high", []any{1, 2}, 7,
			map[string]any{"device_level": -1, "risk_level": 9},
			map[string]any{"device_level": "3", "risk_level": 2.5},
			map[string]any{"device_level": true, "risk_level": "x"},
			map[string]any{"device_tags": []any{"202", "202", "9999", 5001, nil}, "platform": "ios"},
			map[string]any{"device_tags": "205, 206,,9999", "risk_tags": "01, 99", "platform": "IOS"},
			map[string]any{"device_tags": manyTags(40), "risk_tags": []any{"02", "02", "21"}},
			map[string]any{"device_tags": 3, "risk_tags": map[string]any{}},
			map[string]any{"platform": 5, "device_level": 4, "risk_level": 5},
		}
		ev["risk"] = risks[g.r.IntN(len(risks))]
		g.emit(c, ch, ev)
	case Business:
		ch := g.channel()
		ev := g.base(ch, g.recent())
		g.business(ev)
		if g.r.IntN(4) == 0 {
			ev["app_id"] = g.r.IntN(100) // an integer is read as its digits
		}
		g.emit(c, ch, ev)
	default:
		panic("hostile: unknown class " + string(c))
	}
}

func manyTags(n int) []string {
	var out []string
	for i := range n {
		out = append(out, strconv.Itoa(9000+i))
	}
	return out
}

func (g *gen) pickTime(ts ...time.Time) time.Time { return ts[g.r.IntN(len(ts))] }

// nfc emits NFC server successes of one reqId around the 5-minute window:
// the first (billed), repeats inside (not billed), at exactly the window's
// end (billed, a new anchor), 1 ms before it, and out of order before the
// anchor (billed only a whole window before it).
func (g *gen) nfc() {
	ch := ""
	for _, c := range g.o.Channels {
		if g.o.FamilyOf[c] == "nfc_server" {
			ch = c
		}
	}
	if ch == "" {
		g.ordinary(Ordinary)
		return
	}
	req := fmt.Sprintf("req-%d-%d", g.o.Seed&0xffff, g.n)
	anchor := g.recent().Add(-20 * time.Minute)
	offsets := []time.Duration{0, time.Second, 5*time.Minute - time.Millisecond, 5 * time.Minute, 5*time.Minute + time.Second,
		10 * time.Minute, -time.Minute, -5 * time.Minute, -5*time.Minute + time.Millisecond}
	// Keep the anchor first, shuffle a few of the rest.
	rest := offsets[1:]
	g.r.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
	rest = rest[:g.r.IntN(len(rest))+1]
	if g.r.IntN(2) == 0 {
		sort.Slice(rest, func(i, j int) bool { return rest[i] < rest[j] })
	}
	for _, d := range append([]time.Duration{0}, rest...) {
		ev := event{"id": g.id(), "ts": anchor.Add(d).UTC().Format("2006-01-02T15:04:05.000Z"),
			"code": "0", "req_id": req, "channel": ch}
		if g.r.IntN(5) == 0 {
			ev["code"] = "66664003" // a failure with the reqId: not under the rule
		}
		g.emit(NFCReqID, ch, ev)
	}
	// A success without req_id is billed.
	g.emit(NFCReqID, ch, event{"id": g.id(), "ts": anchor.UTC().Format("2006-01-02T15:04:05.000Z"), "code": 0, "channel": ch})
}
