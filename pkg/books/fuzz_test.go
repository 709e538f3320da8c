package books

import (
	"testing"
	"time"

	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
)

// FuzzRestore: restoring a checkpoint's values never panics, whatever they
// hold; what is accepted restores books that snapshot again.
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
		`{"id":"b","channel":"nfc_server","code":"0","req_id":"q","ts":"2026-12-01T10:00:00+08:00"}`} {
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
	f.Add(snap.Counters, snap.Rules, day)
	f.Add([]byte(`{}`), []byte{}, []byte(`{"day":"2026-12-01","rows":[]}`))
	f.Fuzz(func(t *testing.T, counters, rules, day []byte) {
		nb := New(l, o)
		if err := nb.Restore(counters, rules, map[ledger.Day][]byte{ledger.DayOf(time.Now()): day}); err != nil {
			return
		}
		if _, err := nb.Snapshot(); err != nil {
			t.Fatalf("restored books do not snapshot: %v", err)
		}
	})
}
