package refmodel

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// The model's own tests: every expectation below is counted by hand from the
// seed table (/work/shared/seed/faceid-saas-return-codes.md), docs/codes.md,
// docs/metrics.md, docs/ledger.md and issue 15's decisions, not computed.

func testCatalog(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("../../pkg/classify/catalog.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newModel(t testing.TB, cfg Config) *Model {
	t.Helper()
	cfg.CatalogYAML = testCatalog(t)
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var (
	bj = time.FixedZone("+08:00", 8*3600)
	// stamp is the JetStream timestamp of every message below unless a test
	// says otherwise: 2026-11-25 12:00 Beijing.
	stamp = time.Date(2026, 11, 25, 12, 0, 0, 0, bj)
)

// feeder applies messages with increasing sequences.
type feeder struct {
	t   *testing.T
	m   *Model
	seq uint64
}

func (f *feeder) at(st time.Time, subject, body string) {
	f.seq++
	f.m.Apply(Msg{Seq: f.seq, Subject: subject, Data: []byte(body), Stamp: st})
}

// send publishes body on the channel's subject at stamp.
func (f *feeder) send(channel, body string) { f.at(stamp, "faceid.results."+channel, body) }

func ts(t time.Time) string { return t.Format(time.RFC3339Nano) }

func ver(ch, code, outcome, billable string) string {
	return CounterKey("faceid_verifications_total", "channel", ch, "code", code, "outcome", outcome, "billable", billable)
}

// check compares the model's counters of the given keys with want (a key
// missing from the model is 0).
func check(t *testing.T, m *Model, want map[string]uint64) {
	t.Helper()
	got := m.Expect().Counters
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %d, want %d", k, got[k], w)
		}
	}
}

func checkLedger(t *testing.T, m *Model, want map[LedgerKey]uint64) {
	t.Helper()
	got := m.Expect().Ledger
	for k, w := range want {
		if got[k] != w {
			t.Errorf("ledger %+v = %d, want %d", k, got[k], w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("ledger %+v = %d, want no row", k, g)
		}
	}
}

// TestCatalogChannels: the channels in catalog order, the order the exporter
// numbers them in (partition = index % partitions).
func TestCatalogChannels(t *testing.T) {
	m := newModel(t, Config{})
	want := "wechat_h5 wechat_miniprogram eid app_sdk standalone_h5 pc_h5 willingness nfc_server nfc_terminal"
	if got := strings.Join(m.Channels(), " "); got != want {
		t.Fatalf("channels %q, want %q", got, want)
	}
	if f := m.Family("eid"); f != "wechat" {
		t.Fatalf("family of eid %q", f)
	}
}

// TestBillingChange: WeChat codes 2007 and 2009-2015 were billed before
// 2021-07-19T00:00:00+08:00 and are not from then on, by the event's time;
// 2006 and 2016 are billed on both sides, 2001 on neither.
func TestBillingChange(t *testing.T) {
	change := time.Date(2021, 7, 19, 0, 0, 0, 0, bj)
	cases := []struct {
		name     string
		ts       string // "" : no ts, the stamp decides
		stamp    time.Time
		code     string
		billable string
	}{
		{"1ms before, Beijing offset", "2021-07-18T23:59:59.999+08:00", stamp, "2007", "true"},
		{"at the change, Beijing offset", "2021-07-19T00:00:00+08:00", stamp, "2007", "false"},
		{"1ms before, UTC", "2021-07-18T15:59:59.999Z", stamp, "2015", "true"},
		{"at the change, UTC", "2021-07-18T16:00:00Z", stamp, "2015", "false"},
		{"at the change, -05:00", "2021-07-18T11:00:00-05:00", stamp, "2011", "false"},
		{"1ms before, -05:00", "2021-07-18T10:59:59.999-05:00", stamp, "2011", "true"},
		{"1ms before, integer ms", fmt.Sprint(change.UnixMilli() - 1), stamp, "2009", "true"},
		{"at the change, integer ms", fmt.Sprint(change.UnixMilli()), stamp, "2009", "false"},
		{"a day after", "2021-07-20T00:00:00+08:00", stamp, "2013", "false"},
		{"years before", "2019-01-01T00:00:00+08:00", stamp, "2014", "true"},
		{"no ts, stamped before", "", change.Add(-time.Millisecond), "2010", "true"},
		{"no ts, stamped at", "", change, "2010", "false"},
		{"2012 before", "2021-07-18T23:59:59.999+08:00", stamp, "2012", "true"},
		{"2006 before", "2021-07-18T23:59:59.999+08:00", stamp, "2006", "true"},
		{"2006 after", "2021-07-19T00:00:00+08:00", stamp, "2006", "true"},
		{"2016 after", "2021-07-19T00:00:00+08:00", stamp, "2016", "true"},
		{"2001 before", "2021-07-18T23:59:59.999+08:00", stamp, "2001", "false"},
		{"2007 on app_sdk is unknown", "2021-07-18T23:59:59.999+08:00", stamp, "2007", "unknown"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := newModel(t, Config{})
			f := &feeder{t: t, m: m}
			ch := "wechat_h5"
			if strings.Contains(c.name, "app_sdk") {
				ch = "app_sdk"
			}
			body := `{"code":"` + c.code + `"}`
			if c.ts != "" {
				q := `"`
				if !strings.Contains(c.ts, "-") {
					q = "" // integer ms
				}
				body = `{"code":"` + c.code + `","ts":` + q + c.ts + q + `}`
			}
			f.at(c.stamp, "faceid.results."+ch, body)
			code := c.code
			if c.billable == "unknown" {
				code = "unknown"
			}
			check(t, m, map[string]uint64{ver(ch, code, "failure", c.billable): 1})
			if n := len(m.Expect().Ledger); n != 1 {
				t.Errorf("%d ledger rows, want 1", n)
			}
		})
	}
	// All eight dated codes, both sides.
	for _, code := range []string{"2007", "2009", "2010", "2011", "2012", "2013", "2014", "2015"} {
		m := newModel(t, Config{})
		f := &feeder{t: t, m: m}
		f.send("eid", `{"code":`+code+`,"ts":"2021-07-18T23:59:59.999+08:00"}`)
		f.send("eid", `{"code":`+code+`,"ts":"2021-07-19T00:00:00.000+08:00"}`)
		check(t, m, map[string]uint64{ver("eid", code, "failure", "true"): 1, ver("eid", code, "failure", "false"): 1})
		checkLedger(t, m, map[LedgerKey]uint64{
			{Day: "2021-07-18", Channel: "eid", Code: code, Billable: "true"}:  1,
			{Day: "2021-07-19", Channel: "eid", Code: code, Billable: "false"}: 1,
		})
	}
}

// TestNFCReqID: an NFC server success is billed once per req_id per 5 minutes,
// the window anchored at the billed success; the first success at or after
// the window's end is billed and opens a new one; a success before the
// anchor is billed only a whole window before it (and moves no anchor).
func TestNFCReqID(t *testing.T) {
	T := time.Date(2026, 11, 25, 10, 0, 0, 0, bj)
	type step struct {
		at     time.Duration // after T
		req    string
		code   string
		billed bool // for code 0: billable true, else false
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"repeats inside, the boundary, and again", []step{
			{0, "r", "0", true},
			{time.Second, "r", "0", false},
			{5*time.Minute - time.Millisecond, "r", "0", false},
			{5 * time.Minute, "r", "0", true}, // the window's end: billed, new anchor at T+5m
			{10*time.Minute - time.Millisecond, "r", "0", false},
			{10 * time.Minute, "r", "0", true},
		}},
		{"the window is anchored at the billed success, not the last repeat", []step{
			{0, "r", "0", true},
			{4 * time.Minute, "r", "0", false},
			{8 * time.Minute, "r", "0", true}, // 8m after the anchor, though 4m after the repeat
		}},
		{"out of order before the anchor", []step{
			{0, "r", "0", true},
			{-time.Minute, "r", "0", false},                      // inside the window before the anchor
			{-5*time.Minute + time.Millisecond, "r", "0", false}, // 1ms short of a whole window
			{-5 * time.Minute, "r", "0", true},                   // a whole window before: billed, anchor stays at T
			{4 * time.Minute, "r", "0", false},                   // still inside T's window
			{5 * time.Minute, "r", "0", true},
		}},
		{"the window's end while the anchor is still held", []step{
			{time.Minute, "a", "0", true},
			{0, "r", "0", true},               // put after a: held until a expires
			{5 * time.Minute, "r", "0", true}, // exactly the window after r's anchor
		}},
		{"reqIds are independent, no req_id is always billed", []step{
			{0, "a", "0", true},
			{time.Second, "b", "0", true},
			{2 * time.Second, "a", "0", false},
			{3 * time.Second, "", "0", true},
			{4 * time.Second, "", "0", true},
		}},
		{"failures neither bill nor open a window", []step{
			{0, "r", "66664003", false},
			{time.Second, "r", "0", true},
			{2 * time.Second, "r", "66664005", false},
			{3 * time.Second, "r", "0", false},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := newModel(t, Config{})
			f := &feeder{t: t, m: m}
			want := map[string]uint64{}
			for i, s := range c.steps {
				req := ""
				if s.req != "" {
					req = `,"req_id":"` + s.req + `"`
				}
				f.send("nfc_server", fmt.Sprintf(`{"id":"e%d","code":"%s","ts":"%s"%s}`, i, s.code, ts(T.Add(s.at)), req))
				b, o := "false", "failure"
				if s.code == "0" {
					o = "success"
					if s.billed {
						b = "true"
					}
				}
				want[ver("nfc_server", s.code, o, b)]++
			}
			check(t, m, want)
		})
	}
	t.Run("nfc_terminal success is never billed, reqId or not", func(t *testing.T) {
		m := newModel(t, Config{})
		f := &feeder{t: t, m: m}
		f.send("nfc_terminal", `{"code":"0","req_id":"r"}`)
		f.send("nfc_server", `{"code":"0","req_id":"r"}`)
		check(t, m, map[string]uint64{ver("nfc_terminal", "0", "success", "false"): 1, ver("nfc_server", "0", "success", "true"): 1})
	})
	t.Run("a duplicate of the billed success moves nothing", func(t *testing.T) {
		m := newModel(t, Config{})
		f := &feeder{t: t, m: m}
		f.send("nfc_server", `{"id":"x","code":"0","req_id":"r","ts":"`+ts(T)+`"}`)
		f.send("nfc_server", `{"id":"x","code":"0","req_id":"r","ts":"`+ts(T.Add(6*time.Minute))+`"}`) // same id, within the 10m dedupe window
		f.send("nfc_server", `{"id":"y","code":"0","req_id":"r","ts":"`+ts(T.Add(7*time.Minute))+`"}`)
		check(t, m, map[string]uint64{
			ver("nfc_server", "0", "success", "true"): 2, "faceid_exporter_duplicates_total": 1,
			ver("nfc_server", "0", "success", "false"): 0,
		})
	})
	t.Run("capacity: a forgotten reqId is billed again", func(t *testing.T) {
		m := newModel(t, Config{ReqIDCapacity: 2})
		f := &feeder{t: t, m: m}
		for i, r := range []string{"a", "b", "c", "a"} { // c evicts a; a repeats inside its window
			f.send("nfc_server", fmt.Sprintf(`{"code":"0","req_id":"%s","ts":"%s"}`, r, ts(T.Add(time.Duration(i)*time.Second))))
		}
		check(t, m, map[string]uint64{
			ver("nfc_server", "0", "success", "true"): 4, "faceid_exporter_reqid_evictions_total": 2, // c evicts a, a evicts b
		})
	})
}

// TestDuplicates: an event whose id was seen less than the dedupe window
// before or after it (by event time) is a duplicate: in
// faceid_exporter_duplicates_total only.
func TestDuplicates(t *testing.T) {
	T := time.Date(2026, 11, 25, 10, 0, 0, 0, bj)
	w := 10 * time.Minute
	cases := []struct {
		name  string
		at    []time.Duration // the same id each time, after T
		dups  uint64
		count uint64
	}{
		{"same time", []time.Duration{0, 0}, 1, 1},
		{"1ms short of the window", []time.Duration{0, w - time.Millisecond}, 1, 1},
		{"exactly the window later", []time.Duration{0, w}, 0, 2},
		{"1ms short of the window earlier", []time.Duration{0, -w + time.Millisecond}, 1, 1},
		{"exactly the window earlier", []time.Duration{0, -w}, 0, 2},
		{"a late event does not replace the record", []time.Duration{0, -w, -2*w + time.Millisecond, w - time.Millisecond}, 1, 3},
		{"remembered from its latest count, not its first", []time.Duration{0, w, w + w/2, 2*w - time.Millisecond}, 2, 2},
		{"forgotten a window after its latest count", []time.Duration{0, w, w + w/2, 2 * w}, 1, 3},
		{"three redeliveries", []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second}, 3, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := newModel(t, Config{})
			f := &feeder{t: t, m: m}
			for _, d := range c.at {
				f.send("app_sdk", `{"id":"x","code":"0","ts":"`+ts(T.Add(d))+`"}`)
			}
			check(t, m, map[string]uint64{"faceid_exporter_duplicates_total": c.dups, ver("app_sdk", "0", "success", "true"): c.count})
		})
	}
	t.Run("the id, not the body; integer and string ids are one id; no id never", func(t *testing.T) {
		m := newModel(t, Config{})
		f := &feeder{t: t, m: m}
		f.send("app_sdk", `{"id":"123","code":"0"}`)
		f.send("app_sdk", `{"id":123,"code":"66660004"}`) // duplicate of "123", though another code
		f.send("wechat_h5", `{"id":"123","code":"2006"}`) // another channel, one partition: duplicate
		f.send("app_sdk", `{"code":"0"}`)                 // no id
		f.send("app_sdk", `{"code":"0"}`)                 // no id
		f.send("app_sdk", `{"id":"","code":"0"}`)         // empty id = none
		f.send("app_sdk", `{"id":1.5,"code":"0"}`)        // a float id = none
		f.send("app_sdk", `{"id":1.5,"code":"0"}`)        // a float id = none
		check(t, m, map[string]uint64{"faceid_exporter_duplicates_total": 2, ver("app_sdk", "0", "success", "true"): 6})
		checkLedger(t, m, map[LedgerKey]uint64{{Day: "2026-11-25", Channel: "app_sdk", Code: "0", Billable: "true"}: 6})
	})
	t.Run("no ts: the stamp is the event's time", func(t *testing.T) {
		m := newModel(t, Config{})
		f := &feeder{t: t, m: m}
		f.at(stamp, "faceid.results.app_sdk", `{"id":"x","code":"0"}`)
		f.at(stamp.Add(w-time.Millisecond), "faceid.results.app_sdk", `{"id":"x","code":"0"}`)
		f.at(stamp.Add(2*w), "faceid.results.app_sdk", `{"id":"x","code":"0"}`)
		check(t, m, map[string]uint64{"faceid_exporter_duplicates_total": 1, ver("app_sdk", "0", "success", "true"): 2})
	})
	t.Run("capacity: the oldest put goes first and is counted", func(t *testing.T) {
		m := newModel(t, Config{DedupeCapacity: 3})
		f := &feeder{t: t, m: m}
		for i, id := range []string{"a", "b", "c", "d", "a", "d", "c"} {
			f.send("app_sdk", fmt.Sprintf(`{"id":"%s","code":"0","ts":"%s"}`, id, ts(T.Add(time.Duration(i)*time.Second))))
		}
		// d evicts a; a (forgotten) is counted again and evicts b; d and c are caught.
		check(t, m, map[string]uint64{
			"faceid_exporter_duplicates_total": 2, "faceid_exporter_dedupe_evictions_total": 2,
			ver("app_sdk", "0", "success", "true"): 5,
		})
	})
	t.Run("expiry in put order (the model's pick)", func(t *testing.T) {
		// y is put after x with an older time: it is not forgotten before x
		// is, so its late redelivery is still caught although newest is more
		// than a window past y.
		m := newModel(t, Config{})
		f := &feeder{t: t, m: m}
		f.send("app_sdk", `{"id":"x","code":"0","ts":"`+ts(T)+`"}`)
		f.send("app_sdk", `{"id":"y","code":"0","ts":"`+ts(T.Add(-20*time.Minute))+`"}`)
		f.send("app_sdk", `{"id":"y","code":"0","ts":"`+ts(T.Add(-20*time.Minute+time.Second))+`"}`)
		// Once x expires (newest a window past T), y goes with it.
		f.send("app_sdk", `{"id":"z","code":"0","ts":"`+ts(T.Add(w))+`"}`)
		f.send("app_sdk", `{"id":"y","code":"0","ts":"`+ts(T.Add(-20*time.Minute+2*time.Second))+`"}`)
		check(t, m, map[string]uint64{"faceid_exporter_duplicates_total": 1, ver("app_sdk", "0", "success", "true"): 4})
	})
	t.Run("off", func(t *testing.T) {
		m := newModel(t, Config{DedupeWindow: -1})
		f := &feeder{t: t, m: m}
		f.send("app_sdk", `{"id":"x","code":"0"}`)
		f.send("app_sdk", `{"id":"x","code":"0"}`)
		check(t, m, map[string]uint64{"faceid_exporter_duplicates_total": 0, ver("app_sdk", "0", "success", "true"): 2})
	})
}

// TestBeijingDays: an event lands on the Beijing day of its ts (of its
// stamp without ts).
func TestBeijingDays(t *testing.T) {
	cases := []struct {
		ts, day string
	}{
		{`"2026-11-25T23:59:59.999+08:00"`, "2026-11-25"},
		{`"2026-11-26T00:00:00+08:00"`, "2026-11-26"},
		{`"2026-11-26T00:00:00.000+08:00"`, "2026-11-26"},
		{`"2026-11-25T15:59:59.999Z"`, "2026-11-25"},
		{`"2026-11-25T16:00:00Z"`, "2026-11-26"},
		{`"2026-11-25T10:59:59.999-05:00"`, "2026-11-25"},
		{`"2026-11-25T11:00:00-05:00"`, "2026-11-26"},
		{fmt.Sprint(time.Date(2026, 11, 26, 0, 0, 0, 0, bj).UnixMilli() - 1), "2026-11-25"},
		{fmt.Sprint(time.Date(2026, 11, 26, 0, 0, 0, 0, bj).UnixMilli()), "2026-11-26"},
		{`"1970-01-01T00:00:00Z"`, "1970-01-01"},
		{`0`, "1970-01-01"},
		{`"2024-02-29T23:59:59.999+08:00"`, "2024-02-29"},
		{`"2026-11-25t15:59:59.9999999999z"`, "2026-11-25"}, // lower case t and z, digits past the nanosecond ignored
		{`"2026-11-25T16:00:00.000000000001Z"`, "2026-11-26"},
		{`"2026-11-25T23:59:59+00:00"`, "2026-11-26"},
	}
	for _, c := range cases {
		t.Run(c.ts, func(t *testing.T) {
			m := newModel(t, Config{FutureTolerance: -1})
			f := &feeder{t: t, m: m}
			f.send("pc_h5", `{"code":"0","ts":`+c.ts+`}`)
			checkLedger(t, m, map[LedgerKey]uint64{{Day: c.day, Channel: "pc_h5", Code: "0", Billable: "true"}: 1})
		})
	}
	t.Run("no ts: the stamp's Beijing day", func(t *testing.T) {
		m := newModel(t, Config{})
		f := &feeder{t: t, m: m}
		f.at(time.Date(2026, 11, 25, 23, 59, 59, 999e6, bj), "faceid.results.pc_h5", `{"code":"0"}`)
		f.at(time.Date(2026, 11, 25, 16, 0, 0, 0, time.UTC), "faceid.results.pc_h5", `{"code":"0","ts":null}`)
		checkLedger(t, m, map[LedgerKey]uint64{
			{Day: "2026-11-25", Channel: "pc_h5", Code: "0", Billable: "true"}: 1,
			{Day: "2026-11-26", Channel: "pc_h5", Code: "0", Billable: "true"}: 1,
		})
	})
}

// TestRetention: the ledger keeps RetentionDays days before the newest
// counted day; older events are in the counters and in
// faceid_exporter_ledger_too_old_events_total instead.
func TestRetention(t *testing.T) {
	D := time.Date(2026, 11, 25, 12, 0, 0, 0, bj)
	day := func(n int) string { return D.AddDate(0, 0, n).Format("2006-01-02") }
	at := func(n int) string { return `"` + ts(D.AddDate(0, 0, n)) + `"` }
	key := func(n int) LedgerKey { return LedgerKey{Day: day(n), Channel: "app_sdk", Code: "0", Billable: "true"} }
	// Every message is stamped two days after D, so that none is in the future.
	later := D.AddDate(0, 0, 2)

	t.Run("400 days before is kept, 401 is too old", func(t *testing.T) {
		m := newModel(t, Config{})
		f := &feeder{t: t, m: m}
		f.at(later, "faceid.results.app_sdk", `{"code":"0","ts":`+at(0)+`}`)
		f.at(later, "faceid.results.app_sdk", `{"code":"0","ts":`+at(-400)+`}`)
		f.at(later, "faceid.results.app_sdk", `{"code":"0","ts":`+at(-401)+`}`)
		checkLedger(t, m, map[LedgerKey]uint64{key(0): 1, key(-400): 1})
		check(t, m, map[string]uint64{"faceid_exporter_ledger_too_old_events_total": 1, ver("app_sdk", "0", "success", "true"): 3})
	})
	t.Run("a newer day drops what falls out", func(t *testing.T) {
		m := newModel(t, Config{})
		f := &feeder{t: t, m: m}
		f.at(later, "faceid.results.app_sdk", `{"code":"0","ts":`+at(-400)+`}`)
		f.at(later, "faceid.results.app_sdk", `{"code":"0","ts":`+at(-399)+`}`)
		f.at(later, "faceid.results.app_sdk", `{"code":"0","ts":`+at(0)+`}`)    // newest: -400 still kept
		f.at(later, "faceid.results.app_sdk", `{"code":"0","ts":`+at(1)+`}`)    // newest +1: -400 dropped
		f.at(later, "faceid.results.app_sdk", `{"code":"0","ts":`+at(-400)+`}`) // now too old
		checkLedger(t, m, map[LedgerKey]uint64{key(-399): 1, key(0): 1, key(1): 1})
		check(t, m, map[string]uint64{"faceid_exporter_ledger_too_old_events_total": 1, ver("app_sdk", "0", "success", "true"): 5})
	})
	t.Run("events more than the retention apart", func(t *testing.T) {
		m := newModel(t, Config{RetentionDays: 10})
		f := &feeder{t: t, m: m}
		f.at(later, "faceid.results.app_sdk", `{"code":"0","ts":`+at(-11)+`}`)
		f.at(later, "faceid.results.app_sdk", `{"code":"0","ts":`+at(0)+`}`)
		f.at(later, "faceid.results.app_sdk", `{"code":"0","ts":`+at(-10)+`}`)
		checkLedger(t, m, map[LedgerKey]uint64{key(0): 1, key(-10): 1})
		check(t, m, map[string]uint64{"faceid_exporter_ledger_too_old_events_total": 0})
	})
	t.Run("per partition", func(t *testing.T) {
		// app_sdk is index 3 (partition 0 of 3), pc_h5 index 5 (partition 2):
		// a new day on one partition drops nothing on the other.
		m := newModel(t, Config{Partitions: 3, SubjectPrefix: "faceid.results"})
		f := &feeder{t: t, m: m}
		f.at(later, "faceid.results.pc_h5", `{"code":"0","ts":`+at(-401)+`}`)
		f.at(later, "faceid.results.app_sdk", `{"code":"0","ts":`+at(0)+`}`)
		checkLedger(t, m, map[LedgerKey]uint64{key(0): 1, {Day: day(-401), Channel: "pc_h5", Code: "0", Billable: "true"}: 1})
	})
	t.Run("far past: 1970 and 2000", func(t *testing.T) {
		m := newModel(t, Config{})
		f := &feeder{t: t, m: m}
		f.at(later, "faceid.results.app_sdk", `{"code":"0","ts":"1970-01-01T00:00:00Z"}`) // the only day yet: kept
		f.at(later, "faceid.results.app_sdk", `{"code":"0","ts":`+at(0)+`}`)              // drops 1970
		f.at(later, "faceid.results.app_sdk", `{"code":"0","ts":"2000-01-01T00:00:00Z"}`) // too old
		f.at(later, "faceid.results.app_sdk", `{"code":"0","ts":0}`)                      // too old
		checkLedger(t, m, map[LedgerKey]uint64{key(0): 1})
		check(t, m, map[string]uint64{"faceid_exporter_ledger_too_old_events_total": 2, ver("app_sdk", "0", "success", "true"): 4})
	})
}

// TestFutureTS: issue 15's rule. An event whose ts is later than its
// message's stamp by more than the tolerance (5m) is rejected as future_ts
// and dead-lettered; it moves nothing else.
func TestFutureTS(t *testing.T) {
	tol := 5 * time.Minute
	cases := []struct {
		name     string
		ts       string
		rejected bool
	}{
		{"exactly stamp + tolerance", ts(stamp.Add(tol)), false},
		{"1ms past it", ts(stamp.Add(tol + time.Millisecond)), true},
		{"1ns past it", ts(stamp.Add(tol + time.Nanosecond)), true},
		{"an hour ahead", ts(stamp.Add(time.Hour)), true},
		{"2199", "2199-01-01T00:00:00Z", true},
		{"the last instant accepted as a time", "2199-12-31T23:59:59.999+08:00", true},
		{"in the past", ts(stamp.Add(-time.Hour)), false},
		{"a minute ahead", ts(stamp.Add(time.Minute)), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := newModel(t, Config{})
			f := &feeder{t: t, m: m}
			f.send("app_sdk", `{"code":"0","ts":"`+c.ts+`"}`)
			n := uint64(0)
			if c.rejected {
				n = 1
			}
			check(t, m, map[string]uint64{
				CounterKey("faceid_exporter_events_rejected_total", "reason", "future_ts"): n,
				CounterKey("faceid_exporter_dead_letters_total", "reason", "future_ts"):    n,
				ver("app_sdk", "0", "success", "true"):                                     1 - n,
			})
		})
	}
	t.Run("integer ms ahead", func(t *testing.T) {
		m := newModel(t, Config{})
		f := &feeder{t: t, m: m}
		f.send("app_sdk", fmt.Sprintf(`{"code":"0","ts":%d}`, stamp.Add(tol).UnixMilli()))
		f.send("app_sdk", fmt.Sprintf(`{"code":"0","ts":%d}`, stamp.Add(tol).UnixMilli()+1))
		check(t, m, map[string]uint64{CounterKey("faceid_exporter_events_rejected_total", "reason", "future_ts"): 1})
	})
	t.Run("checked after the rest of the contract", func(t *testing.T) {
		m := newModel(t, Config{})
		f := &feeder{t: t, m: m}
		f.send("app_sdk", `{"channel":"bogus","code":"0","ts":"2199-01-01T00:00:00Z"}`)
		f.send("app_sdk", `{"ts":"2199-01-01T00:00:00Z"}`)
		check(t, m, map[string]uint64{
			CounterKey("faceid_exporter_events_rejected_total", "reason", "unknown_channel"): 1,
			CounterKey("faceid_exporter_events_rejected_total", "reason", "missing_code"):    1,
			CounterKey("faceid_exporter_events_rejected_total", "reason", "future_ts"):       0,
		})
	})
	t.Run("a rejected event moves nothing", func(t *testing.T) {
		// Issue 15, defect 1: one 2199 event ahead of a stream must not
		// become the newest day, the dedupe window's newest time or a reqId anchor.
		m := newModel(t, Config{DedupeCapacity: 2})
		f := &feeder{t: t, m: m}
		now := ts(stamp)
		f.send("app_sdk", `{"id":"a","code":"0","ts":"`+now+`"}`)
		f.send("app_sdk", `{"id":"far","code":"0","ts":"2199-01-01T00:00:00Z"}`)
		f.send("nfc_server", `{"id":"nfc1","code":"0","req_id":"r","ts":"2199-01-01T00:00:00Z"}`)
		f.send("app_sdk", `{"id":"a","code":"0","ts":"`+now+`"}`)                    // caught: a is still remembered
		f.send("nfc_server", `{"id":"nfc2","code":"0","req_id":"r","ts":"`+now+`"}`) // billed: no anchor from 2199
		f.send("app_sdk", `{"id":"far","code":"0","ts":"`+now+`"}`)                  // the rejected id was never put
		check(t, m, map[string]uint64{
			CounterKey("faceid_exporter_events_rejected_total", "reason", "future_ts"): 2,
			"faceid_exporter_duplicates_total":                                         1,
			"faceid_exporter_dedupe_evictions_total":                                   1, // a, nfc2, then far (now) evicts a: the rejected ones took no slot
			ver("nfc_server", "0", "success", "true"):                                  1,
			ver("app_sdk", "0", "success", "true"):                                     2,
			"faceid_exporter_ledger_too_old_events_total":                              0,
		})
		checkLedger(t, m, map[LedgerKey]uint64{
			{Day: "2026-11-25", Channel: "app_sdk", Code: "0", Billable: "true"}:    2,
			{Day: "2026-11-25", Channel: "nfc_server", Code: "0", Billable: "true"}: 1,
		})
	})
	t.Run("without the rule (main before issue 15): 2199 empties the ledger", func(t *testing.T) {
		m := newModel(t, Config{FutureTolerance: -1})
		f := &feeder{t: t, m: m}
		f.send("app_sdk", `{"code":"0","ts":"`+ts(stamp)+`"}`)
		f.send("app_sdk", `{"code":"0","ts":"2199-01-01T00:00:00Z"}`)
		f.send("app_sdk", `{"code":"0","ts":"`+ts(stamp)+`"}`)
		checkLedger(t, m, map[LedgerKey]uint64{{Day: "2199-01-01", Channel: "app_sdk", Code: "0", Billable: "true"}: 1})
		check(t, m, map[string]uint64{"faceid_exporter_ledger_too_old_events_total": 1})
	})
	t.Run("no ts is never in the future", func(t *testing.T) {
		m := newModel(t, Config{})
		f := &feeder{t: t, m: m}
		f.send("app_sdk", `{"code":"0"}`)
		check(t, m, map[string]uint64{ver("app_sdk", "0", "success", "true"): 1})
	})
}

// TestRejections: each reason of docs/metrics.md, counted in the rejected
// and the dead-letter counters and nowhere else, in the order the checks run.
func TestRejections(t *testing.T) {
	big := `{"code":"0","pad":"` + strings.Repeat("x", MaxMessageBytes-len(`{"code":"0","pad":""}`)) + `"}`
	cases := []struct {
		name, subject, body, reason string
	}{
		{"64 KiB exactly is accepted", "app_sdk", big, ""},
		{"one byte more is oversize", "app_sdk", big + " ", "oversize"},
		{"empty", "app_sdk", ``, "invalid_json"},
		{"blank", "app_sdk", "  \n", "invalid_json"},
		{"truncated", "app_sdk", `{"code":"0"`, "invalid_json"},
		{"trailing comma", "app_sdk", `{"code":"0",}`, "invalid_json"},
		{"two objects", "app_sdk", `{"code":"0"}{"code":"0"}`, "invalid_json"},
		{"array", "app_sdk", `[1,2]`, "not_object"},
		{"string", "app_sdk", `"x"`, "not_object"},
		{"null", "app_sdk", `null`, "not_object"},
		{"number", "app_sdk", ` 42 `, "not_object"},
		{"no channel, subject names none", ">", `{"code":"0"}`, "missing_channel"},
		{"empty channel, subject names none", "*", `{"channel":"","code":"0"}`, "missing_channel"},
		{"unknown channel", "app_sdk", `{"channel":"bogus","code":"0"}`, "unknown_channel"},
		{"unknown subject channel", "bogus", `{"code":"0"}`, "unknown_channel"},
		{"channel not a string", "app_sdk", `{"channel":5.5,"code":"0"}`, "unknown_channel"},
		{"channel an integer", "app_sdk", `{"channel":5,"code":"0"}`, "unknown_channel"},
		{"channel checked before code", "app_sdk", `{"channel":true,"code":1.5}`, "unknown_channel"},
		{"no code", "app_sdk", `{"channel":"app_sdk"}`, "missing_code"},
		{"null code", "app_sdk", `{"code":null}`, "missing_code"},
		{"empty code", "app_sdk", `{"code":""}`, "missing_code"},
		{"float code", "app_sdk", `{"code":1.5}`, "invalid_code"},
		{"exponent code", "app_sdk", `{"code":1e3}`, "invalid_code"},
		{"bool code", "app_sdk", `{"code":true}`, "invalid_code"},
		{"code checked before the channel's presence", ">", `{"code":[]}`, "invalid_code"},
		{"code checked before ts", "app_sdk", `{"code":{},"ts":"x"}`, "invalid_code"},
		{"ts not a time", "app_sdk", `{"code":"0","ts":"yesterday"}`, "invalid_ts"},
		{"ts without offset", "app_sdk", `{"code":"0","ts":"2026-11-26T10:15:30"}`, "invalid_ts"},
		{"ts offset hour 24", "app_sdk", `{"code":"0","ts":"2026-11-26T10:15:30+24:00"}`, "invalid_ts"},
		{"ts comma fraction", "app_sdk", `{"code":"0","ts":"2026-11-26T10:15:30,5Z"}`, "invalid_ts"},
		{"ts empty fraction", "app_sdk", `{"code":"0","ts":"2026-11-26T10:15:30.Z"}`, "invalid_ts"},
		{"ts second 60", "app_sdk", `{"code":"0","ts":"2026-11-26T10:15:60Z"}`, "invalid_ts"},
		{"ts space", "app_sdk", `{"code":"0","ts":"2026-11-26 10:15:30Z"}`, "invalid_ts"},
		{"ts month 13", "app_sdk", `{"code":"0","ts":"2026-13-01T00:00:00Z"}`, "invalid_ts"},
		{"ts Feb 30", "app_sdk", `{"code":"0","ts":"2026-02-30T00:00:00Z"}`, "invalid_ts"},
		{"ts year 2200", "app_sdk", `{"code":"0","ts":"2200-01-01T00:00:00Z"}`, "invalid_ts"},
		{"ts year 1969", "app_sdk", `{"code":"0","ts":"1969-12-31T23:59:59Z"}`, "invalid_ts"},
		{"ts negative ms", "app_sdk", `{"code":"0","ts":-1}`, "invalid_ts"},
		{"ts ms past 2199", "app_sdk", `{"code":"0","ts":7258118400001}`, "invalid_ts"},
		{"ts float", "app_sdk", `{"code":"0","ts":1.7e12}`, "invalid_ts"},
		{"ts object", "app_sdk", `{"code":"0","ts":{}}`, "invalid_ts"},
		{"the last occurrence counts", "app_sdk", `{"code":1.5,"code":"0","ts":"x","ts":null}`, ""},
		{"the last occurrence counts (bad)", "app_sdk", `{"code":"0","code":1.5}`, "invalid_code"},
		{"ts ms of 2200-01-01 exactly", "app_sdk", `{"code":"0","ts":7258118400000}`, "future_ts"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := newModel(t, Config{})
			f := &feeder{t: t, m: m}
			f.send(c.subject, c.body)
			e := m.Expect()
			if c.reason == "" {
				if e.Counters[ver("app_sdk", "0", "success", "true")] != 1 || len(e.Ledger) != 1 {
					t.Fatalf("not counted: %v", e.Counters)
				}
				return
			}
			want := map[string]uint64{
				CounterKey("faceid_exporter_events_rejected_total", "reason", c.reason): 1,
				CounterKey("faceid_exporter_dead_letters_total", "reason", c.reason):    1,
			}
			if r := m.Rejected(); len(r) != 1 || r[1] != c.reason {
				t.Errorf("Rejected() = %v, want {1: %s}", r, c.reason)
			}
			if len(e.Counters) != 2 || len(e.Ledger) != 0 {
				t.Errorf("counters %v, ledger %v: want only the rejection", e.Counters, e.Ledger)
			}
			check(t, m, want)
		})
	}
}

// TestCodesAndRisk: code normalisation, unknown codes, levels, tags and
// problems of single events, counted by hand.
func TestCodesAndRisk(t *testing.T) {
	t.Run("codes", func(t *testing.T) {
		m := newModel(t, Config{})
		f := &feeder{t: t, m: m}
		f.send("wechat_h5", `{"code":" 2006 "}`)                         // 2006
		f.send("wechat_h5", `{"code":2006}`)                             // 2006
		f.send("wechat_h5", `{"code":"0007"}`)                           // 7
		f.send("wechat_h5", `{"code":"+0"}`)                             // 0, success
		f.send("wechat_h5", `{"code":-0}`)                               // 0, success
		f.send("wechat_h5", `{"code":"66660004"}`)                       // an sdk code: unknown on wechat
		f.send("wechat_h5", `{"code":"abc"}`)                            // unknown
		f.send("app_sdk", `{"code":-5008}`)                              // -5008
		f.send("app_sdk", `{"code":"-05008"}`)                           // -5008
		f.send("willingness", `{"code":0}`)                              // willingness success: billable unknown
		f.send("app_sdk", `{"channel":"willingness","code":"66666006"}`) // the body's channel wins over the subject's
		check(t, m, map[string]uint64{
			ver("wechat_h5", "2006", "failure", "true"):                               2,
			ver("wechat_h5", "7", "failure", "false"):                                 1,
			ver("wechat_h5", "0", "success", "true"):                                  2,
			ver("wechat_h5", "unknown", "failure", "unknown"):                         2,
			ver("app_sdk", "-5008", "failure", "false"):                               2,
			ver("willingness", "0", "success", "unknown"):                             1,
			ver("willingness", "66666006", "failure", "true"):                         1,
			CounterKey("faceid_exporter_unknown_codes_total", "channel", "wechat_h5"): 2,
		})
	})
	t.Run("levels and risk", func(t *testing.T) {
		m := newModel(t, Config{})
		f := &feeder{t: t, m: m}
		f.send("eid", `{"code":"0","risk":{"device_level":3}}`)                    // high
		f.send("eid", `{"code":"0","risk":{"device_level":"2","risk_level":5}}`)   // high (risk 5)
		f.send("eid", `{"code":"0","risk":{"device_level":-1,"risk_level":4}}`)    // low; device out of range
		f.send("eid", `{"code":"0","risk":{"device_level":2.5,"risk_level":"x"}}`) // unknown; both not integers
		f.send("eid", `{"code":"0","risk":{"device_level":null,"risk_level":6}}`)  // unknown; risk out of range
		f.send("eid", `{"code":"0","risk":"high"}`)                                // unknown; risk not an object
		f.send("eid", `{"code":"0"}`)                                              // unknown
		lv := func(name, level string) string {
			return CounterKey(name, "channel", "eid", "level", level)
		}
		check(t, m, map[string]uint64{
			CounterKey("faceid_risk_events_total", "channel", "eid", "risk", "high"):                   2,
			CounterKey("faceid_risk_events_total", "channel", "eid", "risk", "low"):                    1,
			CounterKey("faceid_risk_events_total", "channel", "eid", "risk", "unknown"):                4,
			lv("faceid_device_level_events_total", "3"):                                                1,
			lv("faceid_device_level_events_total", "2"):                                                1,
			lv("faceid_device_level_events_total", "absent"):                                           5,
			lv("faceid_identity_level_events_total", "5"):                                              1,
			lv("faceid_identity_level_events_total", "4"):                                              1,
			lv("faceid_identity_level_events_total", "absent"):                                         5,
			CounterKey("faceid_exporter_event_problems_total", "problem", "device_level_out_of_range"): 1,
			CounterKey("faceid_exporter_event_problems_total", "problem", "risk_level_out_of_range"):   1,
			CounterKey("faceid_exporter_event_problems_total", "problem", "device_level_not_integer"):  1,
			CounterKey("faceid_exporter_event_problems_total", "problem", "risk_level_not_integer"):    1,
			CounterKey("faceid_exporter_event_problems_total", "problem", "risk_not_object"):           1,
		})
	})
	t.Run("tags", func(t *testing.T) {
		m := newModel(t, Config{})
		f := &feeder{t: t, m: m}
		// 202 once (repeated), 5001 (an integer), 9999 unknown, null: invalid; 205 is android-only: mismatch on iOS.
		f.send("app_sdk", `{"code":"0","risk":{"device_tags":["202","202"," 9999",5001,null,"205"],"platform":"iOS"}}`)
		// a comma-separated string, blanks skipped; identity tags 01 twice, 99 unknown twice.
		f.send("app_sdk", `{"code":"0","risk":{"device_tags":"205, 206,,","risk_tags":"01,01, 99,99","platform":"harmony"}}`)
		// 40 unknown tags: 32 read (each counted), 8 dropped.
		many := make([]string, 40)
		for i := range many {
			many[i] = fmt.Sprintf(`"%d"`, 9000+i)
		}
		f.send("app_sdk", `{"code":"0","risk":{"device_tags":[`+strings.Join(many, ",")+`]}}`)
		f.send("app_sdk", `{"code":"0","risk":{"device_tags":3,"risk_tags":{}}}`) // invalid lists
		dt := func(tag, name, platform string) string {
			return CounterKey("faceid_device_tags_total", "channel", "app_sdk", "tag", tag, "name", name, "platform", platform)
		}
		prob := func(p string) string { return CounterKey("faceid_exporter_event_problems_total", "problem", p) }
		check(t, m, map[string]uint64{
			dt("202", "root_jailbreak", "ios"):        1,
			dt("5001", "root_jailbreak", "ios"):       1,
			dt("205", "hook", "ios"):                  1,
			dt("unknown", "unknown", "ios"):           1,
			dt("205", "hook", "other"):                1,
			dt("206", "virtual_environment", "other"): 1,
			dt("unknown", "unknown", "unknown"):       32,
			CounterKey("faceid_identity_tags_total", "channel", "app_sdk", "tag", "01", "type", "business"):     1,
			CounterKey("faceid_identity_tags_total", "channel", "app_sdk", "tag", "unknown", "type", "unknown"): 2,
			prob("tags_invalid"):          2,
			prob("unknown_device_tag"):    2,
			prob("unknown_identity_tag"):  1,
			prob("tag_platform_mismatch"): 1,
			prob("too_many_tags"):         1,
		})
	})
}

// TestBusiness: app_id and rule_id allowlisted, "other" and "none"; the
// ledger's rule_id.
func TestBusiness(t *testing.T) {
	m := newModel(t, Config{AppIDs: []string{"app-a"}, RuleIDs: []string{"r1"}})
	f := &feeder{t: t, m: m}
	f.send("app_sdk", `{"code":"0","app_id":"app-a","rule_id":"r1"}`)
	f.send("app_sdk", `{"code":"0","app_id":"app-z","rule_id":"r9"}`)
	f.send("app_sdk", `{"code":"0","app_id":5,"rule_id":""}`)
	f.send("app_sdk", `{"code":"0"}`)
	biz := func(app, rule string) string {
		return CounterKey("faceid_business_verifications_total", "channel", "app_sdk", "app_id", app, "rule_id", rule, "outcome", "success", "billable", "true")
	}
	check(t, m, map[string]uint64{biz("app-a", "r1"): 1, biz("other", "other"): 1, biz("other", "none"): 1, biz("none", "none"): 1})
	k := LedgerKey{Day: "2026-11-25", Channel: "app_sdk", Code: "0", Billable: "true"}
	r1, other := k, k
	r1.RuleID, other.RuleID = "r1", "other"
	checkLedger(t, m, map[LedgerKey]uint64{r1: 1, other: 1, k: 2})

	t.Run("app_id only: no rule_id in the ledger", func(t *testing.T) {
		m := newModel(t, Config{AppIDs: []string{"app-a"}})
		f := &feeder{t: t, m: m}
		f.send("app_sdk", `{"code":"0","app_id":"app-a","rule_id":"r1"}`)
		check(t, m, map[string]uint64{biz("app-a", "other"): 1})
		checkLedger(t, m, map[LedgerKey]uint64{k: 1})
	})
	t.Run("off", func(t *testing.T) {
		m := newModel(t, Config{})
		f := &feeder{t: t, m: m}
		f.send("app_sdk", `{"code":"0","app_id":"app-a","rule_id":"r1"}`)
		for key := range m.Expect().Counters {
			if strings.HasPrefix(key, "faceid_business") {
				t.Fatalf("business series without allowlists: %s", key)
			}
		}
	})
}

// TestPartitions: the subject decides the partition (channel index %
// partitions); each partition has its own windows; unread subjects count nowhere.
func TestPartitions(t *testing.T) {
	m := newModel(t, Config{Partitions: 3, SubjectPrefix: "faceid.results.>"})
	for subject, p := range map[string]int{
		"faceid.results.wechat_h5": 0, "faceid.results.eid": 2, "faceid.results.app_sdk": 0,
		"faceid.results.nfc_server": 1, "faceid.results.nfc_terminal": 2, "faceid.results.other": -1, "other.app_sdk": -1,
	} {
		if got := m.PartitionOf(subject); got != p {
			t.Errorf("PartitionOf(%s) = %d, want %d", subject, got, p)
		}
	}
	f := &feeder{t: t, m: m}
	f.send("app_sdk", `{"id":"x","code":"0"}`)
	f.send("app_sdk", `{"id":"x","code":"0"}`)                       // duplicate on partition 0
	f.send("pc_h5", `{"id":"x","code":"0"}`)                         // partition 2: its own window
	f.send("wechat_h5", `{"id":"x","channel":"app_sdk","code":"0"}`) // partition 0 (the subject), counted as app_sdk: duplicate
	f.send("other", `{"channel":"app_sdk","code":"0"}`)              // read by no partition
	m.Lost(1, 3)
	m.Lost(2, 2)
	m.LostMsg("faceid.results.eid")   // partition 2
	m.LostMsg("faceid.results.other") // no partition
	m.StreamReset()
	check(t, m, map[string]uint64{
		ver("app_sdk", "0", "success", "true"): 1, ver("pc_h5", "0", "success", "true"): 1,
		"faceid_exporter_duplicates_total": 2, "faceid_exporter_jetstream_lost_messages_total": 6,
		"faceid_exporter_jetstream_stream_resets_total": 3,
	})
	if u := m.Expect().Unread; u != 1 {
		t.Errorf("unread %d, want 1", u)
	}
	one := newModel(t, Config{})
	if one.PartitionOf("anything.at.all") != 0 {
		t.Error("one partition reads every subject")
	}
}

// TestParseScrape: replicas' scrapes summed over partition and instance,
// zero series and other families left out; Diff names every difference.
func TestParseScrape(t *testing.T) {
	a := []byte(`# TYPE faceid_verifications_total counter
faceid_verifications_total{billable="true",channel="app_sdk",code="0",outcome="success",partition="0"} 3
faceid_verifications_total{billable="false",channel="app_sdk",code="2",outcome="failure",partition="0"} 0
# TYPE faceid_exporter_duplicates_total counter
faceid_exporter_duplicates_total{partition="0"} 2
# TYPE faceid_exporter_events_received_total counter
faceid_exporter_events_received_total{transport="jetstream"} 9
`)
	b := []byte(`# TYPE faceid_verifications_total counter
faceid_verifications_total{partition="1",outcome="success",code="0",channel="app_sdk",billable="true",instance="b"} 4
# TYPE faceid_exporter_duplicates_total counter
faceid_exporter_duplicates_total{partition="1"} 1
`)
	got, err := ParseScrape(a, b)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{ver("app_sdk", "0", "success", "true"): 7, "faceid_exporter_duplicates_total": 3}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if d := Diff(Expected{Counters: want}, Expected{Counters: got}); d != "" {
		t.Fatalf("equal maps differ: %s", d)
	}
	d := Diff(Expected{Counters: map[string]uint64{"x": 1}, Ledger: map[LedgerKey]uint64{{Day: "d"}: 2}},
		Expected{Counters: map[string]uint64{"y": 1}})
	if strings.Count(d, "\n") != 2 || !strings.Contains(d, "want 1, got 0") || !strings.Contains(d, "want 0, got 1") || !strings.Contains(d, "want 2, got 0") {
		t.Fatalf("diff:\n%s", d)
	}
	csv := "day,channel,code,billable,count,rule_id\n2026-11-25,app_sdk,0,true,5,r1\n2026-11-25,app_sdk,0,true,2,\n"
	rows, err := ParseLedgerCSV(strings.NewReader(csv))
	if err != nil {
		t.Fatal(err)
	}
	if rows[LedgerKey{"2026-11-25", "app_sdk", "0", "true", "r1"}] != 5 || rows[LedgerKey{"2026-11-25", "app_sdk", "0", "true", ""}] != 2 {
		t.Fatalf("csv rows %v", rows)
	}
}
