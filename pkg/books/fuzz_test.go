package books

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
)

// FuzzRestore: restoring a checkpoint's values never panics, whatever they
// hold; books that accepted them snapshot, and the snapshot (counters, rules
// state and every ledger day) restores books equal in every value: each
// counter, the rules' state, every ledger row; their own snapshot encodes
// the same bytes.
func FuzzRestore(f *testing.F) {
	cat, err := classify.Default()
	if err != nil {
		f.Fatal(err)
	}
	l := NewLayout(cat, LayoutOptions{RuleIDs: []string{"r1"}})
	o := RulesOptions{DedupeWindow: time.Hour, DedupeCapacity: 8}
	b := New(l, o)
	c := classify.New(cat, classify.Options{})
	var r classify.Result
	for _, m := range []string{`{"id":"a","channel":"wechat_h5","code":"0","ts":"2026-12-01T10:00:00+08:00","rule_id":"r1"}`,
		`{"id":"b","channel":"nfc_server","code":"0","req_id":"q","ts":"2026-12-01T10:00:00+08:00"}`,
		`{"id":"c","channel":"nfc_server","code":"0","req_id":"q","ts":"2026-12-01T10:01:00+08:00"}`} {
		if err := c.Classify([]byte(m), nil, time.Now(), &r); err != nil {
			f.Fatal(err)
		}
		b.Apply(&r)
	}
	snap, err := b.Snapshot()
	if err != nil {
		f.Fatal(err)
	}
	var day []byte
	for _, d := range snap.Days {
		day = d
	}
	f.Add(snap.Counters, snap.Rules, day, day)
	f.Add([]byte(`{}`), []byte{}, []byte(`{"day":"2026-12-01","rows":[]}`), []byte(nil))
	twice := []byte(`{"rows":[{"channel":"wechat_h5","code":"0","billable":"true","count":3},{"channel":"wechat_h5","code":"0","billable":"true","count":4}]}`)
	f.Add([]byte(`{"faceid_exporter_duplicates_total{}":1,"faceid_exporter_ledger_too_old_events_total{}":0}`), []byte{}, twice, day)
	newest, err := ledger.ParseDay("2026-12-01")
	if err != nil {
		f.Fatal(err)
	}
	old := newest - ledger.DefaultRetentionDays - 1 // past the retention: pruned
	f.Fuzz(func(t *testing.T, counters, rules, day, oldDay []byte) {
		days := map[ledger.Day][]byte{newest: day}
		if oldDay != nil {
			days[old] = oldDay
		}
		nb := New(l, o)
		if err := nb.Restore(counters, rules, days); err != nil {
			return
		}
		// What was accepted is held exactly (read independently of Restore).
		var in map[string]uint64
		if len(counters) > 0 {
			if err := json.Unmarshal(counters, &in); err != nil {
				t.Fatalf("accepted counters that do not parse: %v", err)
			}
		}
		for k, v := range in {
			if slot, ok := l.Slot(k); !ok || nb.Value(slot) != v {
				t.Fatalf("counter %s = %d restored as %d", k, v, nb.Value(slot))
			}
		}
		var f ledger.DayFile
		if err := json.Unmarshal(day, &f); err != nil {
			t.Fatalf("accepted a day that does not parse: %v", err)
		}
		want := ledger.Books{}
		for _, r := range f.Rows {
			want.Add(ledger.Key{Day: newest, Channel: r.Channel, Code: r.Code, Billable: r.Billable, RuleID: r.RuleID}, r.Count)
		}
		if got, want := nb.Rows(newest, newest), want.Rows(newest, newest); !reflect.DeepEqual(got, want) {
			t.Fatalf("day restored as\n%+v\nwant\n%+v", got, want)
		}
		s1, err := nb.Snapshot()
		if err != nil {
			t.Fatalf("restored books do not snapshot: %v", err)
		}
		all := map[ledger.Day][]byte{}
		for _, d := range nb.Days() {
			data, err := jsonDay(nb, d)
			if err != nil {
				t.Fatal(err)
			}
			all[d] = data
		}
		again := New(l, o)
		if err := again.Restore(s1.Counters, s1.Rules, all); err != nil {
			t.Fatalf("a snapshot does not restore: %v", err)
		}
		for slot := range l.Slots() {
			if nb.Value(slot) != again.Value(slot) {
				t.Fatalf("%s: %d restored as %d", l.Key(slot), nb.Value(slot), again.Value(slot))
			}
		}
		if nb.rules.DedupeEvicted() != again.rules.DedupeEvicted() || nb.rules.ReqIDEvicted() != again.rules.ReqIDEvicted() ||
			nb.rules.ids.Len() != again.rules.ids.Len() || nb.rules.anchors.Len() != again.rules.anchors.Len() {
			t.Fatal("rules' tables changed")
		}
		if a, b := nb.rules.AppendBinary(nil), again.rules.AppendBinary(nil); !bytes.Equal(a, b) {
			t.Fatalf("rules state changed:\n%x\n%x", a, b)
		}
		if a, b := nb.Rows(0, 1<<30), again.Rows(0, 1<<30); !reflect.DeepEqual(a, b) {
			t.Fatalf("ledger changed:\n%+v\n%+v", a, b)
		}
		for _, d := range nb.Days() {
			if d < newest-ledger.DefaultRetentionDays {
				t.Fatalf("day %s past the retention was restored", d)
			}
		}
		s2, err := again.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(s1.Counters, s2.Counters) || !bytes.Equal(s1.Rules, s2.Rules) {
			t.Fatalf("snapshots differ:\n%s %x\n%s %x", s1.Counters, s1.Rules, s2.Counters, s2.Rules)
		}
	})
}

// jsonDay encodes one day of b as a checkpoint stores it.
func jsonDay(b *Books, d ledger.Day) ([]byte, error) {
	rows := b.Rows(d, d)
	if rows == nil {
		rows = []ledger.Row{}
	}
	return json.Marshal(ledger.DayFile{Day: d.String(), Rows: rows})
}
