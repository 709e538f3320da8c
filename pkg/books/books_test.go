package books

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
)

func apply(t *testing.T, b *Books, c *classify.Classifier, msg string) {
	t.Helper()
	var r classify.Result
	if err := c.Classify([]byte(msg), nil, receivedAt, &r); err != nil {
		var rej *classify.RejectError
		if e, ok := err.(*classify.RejectError); ok {
			rej = e
		}
		b.Reject(rej.Reason)
		return
	}
	b.Apply(&r)
}

func counters(b *Books) map[string]uint64 {
	out := map[string]uint64{}
	for s := 0; s < b.l.Slots(); s++ {
		if v := b.Value(s); v != 0 {
			out[b.l.Key(s)] = v
		}
	}
	return out
}

func events(n int, start time.Time) []string {
	var out []string
	for i := 0; i < n; i++ {
		ts := start.Add(time.Duration(i) * 7 * time.Minute).Format(time.RFC3339Nano)
		switch i % 5 {
		case 0:
			out = append(out, fmt.Sprintf(`{"id":"e%d","channel":"wechat_h5","code":"0","ts":%q,"rule_id":"r%d"}`, i%40, ts, i%3))
		case 1:
			again := start.Add(time.Duration(i)*7*time.Minute + 2*time.Minute).Format(time.RFC3339Nano)
			out = append(out, fmt.Sprintf(`{"id":"n%d","channel":"nfc_server","code":"0","req_id":"q%d","ts":%q}`, i, i%4, ts),
				fmt.Sprintf(`{"id":"m%d","channel":"nfc_server","code":"0","req_id":"q%d","ts":%q}`, i, i%4, again))
		case 2:
			out = append(out, fmt.Sprintf(`{"id":"w%d","channel":"wechat_miniprogram","code":"2007","ts":%q,"risk":{"device_level":4,"device_tags":"5012","platform":"android"}}`, i, ts))
		case 3:
			out = append(out, fmt.Sprintf(`{"channel":"app_sdk","code":"123456789","ts":%q}`, ts))
		default:
			out = append(out, `{"channel":`)
		}
	}
	return out
}

// TestSnapshotRestoreContinuesAlike: books restored from a snapshot taken at
// any point go on to count exactly as the uninterrupted books.
func TestSnapshotRestoreContinuesAlike(t *testing.T) {
	cat := mustDefault(t)
	l := NewLayout(cat, LayoutOptions{RuleIDs: []string{"r1"}})
	o := RulesOptions{DedupeWindow: time.Hour, DedupeCapacity: 30}
	evs := events(400, time.Date(2026, 11, 30, 22, 0, 0, 0, ledger.Beijing))
	ref := New(l, o)
	rc := classify.New(cat, classify.Options{})
	for _, e := range evs {
		apply(t, ref, rc, e)
	}
	for _, cut := range []int{0, 1, 133, 399} {
		t.Run(fmt.Sprintf("cut_%d", cut), func(t *testing.T) {
			a := New(l, o)
			c := classify.New(cat, classify.Options{})
			for _, e := range evs[:cut] {
				apply(t, a, c, e)
			}
			snap, err := a.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			b := New(l, o)
			if err := b.Restore(snap.Counters, snap.Rules, snap.Days); err != nil {
				t.Fatal(err)
			}
			for _, e := range evs[cut:] {
				apply(t, b, c, e)
			}
			if got, want := counters(b), counters(ref); !reflect.DeepEqual(got, want) {
				t.Fatalf("counters differ after restore at %d:\n got %v\nwant %v", cut, got, want)
			}
			if got, want := b.Rows(0, 1<<30), ref.Rows(0, 1<<30); !reflect.DeepEqual(got, want) {
				t.Fatalf("ledger differs after restore at %d:\n got %v\nwant %v", cut, got, want)
			}
		})
	}
	if counters(ref)[`faceid_verifications_total{channel="nfc_server",code="0",outcome="success",billable="false"}`] == 0 {
		t.Fatal("the events exercise no reqId repeat")
	}
}

// TestLedgerDays: events land on their Beijing day by event time; a late
// event lands on its own, earlier day; the midnight boundary is exact.
func TestLedgerDays(t *testing.T) {
	cat := mustDefault(t)
	b := New(NewLayout(cat, LayoutOptions{}), RulesOptions{})
	c := classify.New(cat, classify.Options{})
	for _, e := range []string{
		`{"channel":"wechat_h5","code":"0","ts":"2026-11-30T23:59:59.999+08:00"}`,
		`{"channel":"wechat_h5","code":"0","ts":"2026-12-01T00:00:00+08:00"}`,
		`{"channel":"wechat_h5","code":"0","ts":"2026-11-30T16:00:00Z"}`,      // 00:00 Beijing
		`{"channel":"wechat_h5","code":"0","ts":"2026-11-25T10:00:00+08:00"}`, // late
		`{"channel":"wechat_h5","code":"2006"}`,                               // no ts: time of receipt (2026-11-26 20:00 Beijing)
	} {
		apply(t, b, c, e)
	}
	var got []string
	for _, r := range b.Rows(0, 1<<30) {
		got = append(got, fmt.Sprintf("%s %s %s %d", r.Day, r.Code, r.Billable, r.Count))
	}
	want := []string{"2026-11-25 0 true 1", "2026-11-26 2006 true 1", "2026-11-30 0 true 1", "2026-12-01 0 true 2"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rows %v, want %v", got, want)
	}
}

// TestLedgerRetention: days more than the retention before the newest leave
// the ledger, and an event for such a day is counted as too old, not booked.
func TestLedgerRetention(t *testing.T) {
	cat := mustDefault(t)
	b := New(NewLayout(cat, LayoutOptions{}), RulesOptions{})
	c := classify.New(cat, classify.Options{})
	apply(t, b, c, `{"channel":"wechat_h5","code":"0","ts":"2025-01-01T12:00:00+08:00"}`)
	apply(t, b, c, `{"channel":"wechat_h5","code":"0","ts":"2026-12-01T12:00:00+08:00"}`)
	apply(t, b, c, `{"channel":"wechat_h5","code":"0","ts":"2025-02-01T12:00:00+08:00"}`)
	rows := b.Rows(0, 1<<30)
	if len(rows) != 1 || rows[0].Day != "2026-12-01" {
		t.Fatalf("rows %v, want only 2026-12-01", rows)
	}
	if n := counters(b)["faceid_exporter_ledger_too_old_events_total{}"]; n != 1 {
		t.Fatalf("too old %d, want 1", n)
	}
	snap, err := b.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := ledger.ParseDay("2025-01-01"); snap.Days[d] != nil {
		t.Fatal("the pruned day is not committed as removed")
	}
}

// TestLedgerRetentionSetting: RulesOptions.RetentionDays (serve's
// --ledger.retention-days) sets the days kept before the newest accepted
// day, exactly at its edge; a past event never moves the newest day; books
// restored with a shorter retention drop the days now past it and commit
// their removal.
func TestLedgerRetentionSetting(t *testing.T) {
	cat := mustDefault(t)
	l := NewLayout(cat, LayoutOptions{})
	c := classify.New(cat, classify.Options{})
	day := func(s string) ledger.Day {
		d, err := ledger.ParseDay(s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	days := func(b *Books) []string {
		var out []string
		for _, d := range b.Days() {
			out = append(out, d.String())
		}
		return out
	}
	b := New(l, RulesOptions{RetentionDays: 3})
	for _, e := range []string{
		`{"channel":"wechat_h5","code":"0","ts":"2026-12-10T12:00:00+08:00"}`,
		`{"channel":"wechat_h5","code":"0","ts":"2026-12-07T00:00:00+08:00"}`,     // 3 days before: kept
		`{"channel":"wechat_h5","code":"0","ts":"2026-12-06T23:59:59.999+08:00"}`, // 4 days before: too old
		`{"channel":"wechat_h5","code":"0","ts":"1970-01-01T00:00:00Z"}`,          // far past: too old, moves nothing
		`{"channel":"wechat_h5","code":"0","ts":"2026-12-09T12:00:00+08:00"}`,
	} {
		apply(t, b, c, e)
	}
	if got, want := days(b), []string{"2026-12-07", "2026-12-09", "2026-12-10"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("days %v, want %v", got, want)
	}
	if n := counters(b)["faceid_exporter_ledger_too_old_events_total{}"]; n != 2 {
		t.Fatalf("too old %d, want 2", n)
	}
	apply(t, b, c, `{"channel":"wechat_h5","code":"0","ts":"2026-12-11T12:00:00+08:00"}`) // 12-07 leaves
	if got, want := days(b), []string{"2026-12-09", "2026-12-10", "2026-12-11"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("days %v, want %v", got, want)
	}
	snap, err := b.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if data, ok := snap.Days[day("2026-12-07")]; !ok || data != nil {
		t.Fatal("the day that left is not committed as removed")
	}
	// Restored with a retention of 1: 12-09 is past it.
	short := New(l, RulesOptions{RetentionDays: 1})
	kept := map[ledger.Day][]byte{}
	for d, data := range snap.Days {
		if data != nil {
			kept[d] = data
		}
	}
	if err := short.Restore(snap.Counters, snap.Rules, kept); err != nil {
		t.Fatal(err)
	}
	if got, want := days(short), []string{"2026-12-10", "2026-12-11"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("restored days %v, want %v", got, want)
	}
	again, err := short.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if data, ok := again.Days[day("2026-12-09")]; !ok || data != nil {
		t.Fatalf("the day past the shorter retention is not committed as removed: %v", again.Days)
	}
	// The default is ledger.DefaultRetentionDays.
	def := New(l, RulesOptions{})
	apply(t, def, c, `{"channel":"wechat_h5","code":"0","ts":"2026-12-10T12:00:00+08:00"}`)
	apply(t, def, c, fmt.Sprintf(`{"channel":"wechat_h5","code":"0","ts":%q}`, (day("2026-12-10")-ledger.DefaultRetentionDays).Start().Format(time.RFC3339)))
	apply(t, def, c, fmt.Sprintf(`{"channel":"wechat_h5","code":"0","ts":%q}`, (day("2026-12-10")-ledger.DefaultRetentionDays-1).Start().Format(time.RFC3339)))
	if got := len(def.Days()); got != 2 {
		t.Fatalf("default retention keeps %d days, want 2", got)
	}
}

func TestRestoreRefusesWhatItCannotPlace(t *testing.T) {
	cat := mustDefault(t)
	l := NewLayout(cat, LayoutOptions{})
	for _, tc := range []struct {
		name, counters, day, want string
	}{
		{"unknown_counter", `{"faceid_verifications_total{channel=\"nowhere\"}":1}`, "", `checkpointed counter faceid_verifications_total{channel="nowhere"} has no series`},
		{"unknown_channel", "", `{"day":"2026-12-01","rows":[{"day":"2026-12-01","channel":"nowhere","code":"0","billable":"true","rule_id":"","count":1}]}`, `channel "nowhere" is not in the catalog`},
		{"unknown_code", "", `{"day":"2026-12-01","rows":[{"day":"2026-12-01","channel":"wechat_h5","code":"424242","billable":"true","rule_id":"","count":1}]}`, `code "424242" is not in the catalog for family wechat`},
		{"rule_without_allowlist", "", `{"day":"2026-12-01","rows":[{"day":"2026-12-01","channel":"wechat_h5","code":"0","billable":"true","rule_id":"r1","count":1}]}`, `rule_id "r1" but no business.rule_id allowlist`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			days := map[ledger.Day][]byte{}
			if tc.day != "" {
				days[ledger.DayOf(time.Now())] = []byte(tc.day)
			}
			err := New(l, RulesOptions{}).Restore([]byte(tc.counters), nil, days)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestBilledMonthToDate(t *testing.T) {
	cat := mustDefault(t)
	b := New(NewLayout(cat, LayoutOptions{}), RulesOptions{})
	c := classify.New(cat, classify.Options{})
	for _, e := range []string{
		`{"channel":"wechat_h5","code":"0","ts":"2026-11-30T23:59:59+08:00"}`, // last month
		`{"channel":"wechat_h5","code":"0","ts":"2026-12-01T00:00:00+08:00"}`,
		`{"channel":"wechat_h5","code":"2006","ts":"2026-12-02T10:00:00+08:00"}`, // billed failure
		`{"channel":"wechat_h5","code":"1001","ts":"2026-12-02T10:00:00+08:00"}`, // not billed
		`{"channel":"wechat_h5","code":"0","ts":"2026-12-03T10:00:00+08:00"}`,    // after now
	} {
		apply(t, b, c, e)
	}
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, ledger.Beijing)
	ch, _ := cat.Channel("wechat_h5")
	if got := b.BilledMonthToDate(now)[ch.Index]; got != 2 {
		t.Fatalf("billed month to date %d, want 2", got)
	}
}
