package books

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"reflect"
	"testing"
	"time"

	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
)

var deltaSeed = flag.Int64("delta.seed", 0, "seed of TestDeltaRestoresBooks (0: from the clock)")

// store is what a checkpoint bucket holds of one partition, as the
// partition's commit writes it: the full snapshot, each day's whole value,
// and the deltas since the snapshot in commit order.
type store struct {
	counters, rules []byte
	days            map[ledger.Day][]byte
	deltas          []*Snapshot
}

func (st *store) commit(s *Snapshot) {
	for d, data := range s.Days {
		if data == nil {
			delete(st.days, d)
			continue
		}
		st.days[d] = data
	}
	switch {
	case s.Full:
		st.counters, st.rules, st.deltas = s.Counters, s.Rules, nil
	case s.Changed():
		st.deltas = append(st.deltas, s)
	}
}

// restore builds books from the store: the snapshot with its deltas.
func (st *store) restore(t *testing.T, l *Layout, o RulesOptions) *Books {
	t.Helper()
	cs, rs := make([][]byte, len(st.deltas)), make([][]byte, len(st.deltas))
	var ds []map[ledger.Day][]ledger.Row
	for i, d := range st.deltas {
		cs[i], rs[i] = d.CountersDelta, d.RulesDelta
		dd, err := ledger.DecodeDaysDelta(d.DaysDelta)
		if err != nil {
			t.Fatalf("delta %d: %v", i, err)
		}
		ds = append(ds, dd)
	}
	counters, err := MergeCounters(st.counters, cs...)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := MergeRules(st.rules, rs...)
	if err != nil {
		t.Fatal(err)
	}
	days := map[ledger.Day][]byte{}
	for d, data := range st.days {
		f, err := ledger.MergeDay(d, data, ds...)
		if err != nil {
			t.Fatal(err)
		}
		if days[d], err = json.Marshal(f); err != nil {
			t.Fatal(err)
		}
	}
	b := New(l, o)
	if err := b.Restore(counters, rules, days); err != nil {
		t.Fatalf("restore: %v", err)
	}
	b.RestoredDeltas(ledger.ChangedDays(ds...))
	return b
}

// sameBooks compares books in every value: each counter, the rules' state,
// every ledger row.
func sameBooks(t *testing.T, what string, want, got *Books) {
	t.Helper()
	for slot := range want.l.Slots() {
		if want.Value(slot) != got.Value(slot) {
			t.Fatalf("%s: %s = %d restored as %d", what, want.l.Key(slot), want.Value(slot), got.Value(slot))
		}
	}
	if a, b := want.rules.AppendBinary(nil), got.rules.AppendBinary(nil); !bytes.Equal(a, b) {
		t.Fatalf("%s: rules state %d bytes restored as %d bytes, not the same", what, len(a), len(b))
	}
	if a, b := want.Rows(0, 1<<30), got.Rows(0, 1<<30); !reflect.DeepEqual(a, b) {
		bk := ledger.Books{}
		for _, r := range a {
			d, _ := ledger.ParseDay(r.Day)
			bk.Add(ledger.Key{Day: d, Channel: r.Channel, Code: r.Code, Billable: r.Billable, RuleID: r.RuleID}, r.Count)
		}
		for _, r := range b {
			d, _ := ledger.ParseDay(r.Day)
			k := ledger.Key{Day: d, Channel: r.Channel, Code: r.Code, Billable: r.Billable, RuleID: r.RuleID}
			if bk[k] != r.Count {
				t.Errorf("%s: row %+v restored with count %d, want %d", what, k, r.Count, bk[k])
			}
			delete(bk, k)
		}
		for k, n := range bk {
			t.Errorf("%s: row %+v (count %d) not restored", what, k, n)
		}
		t.FailNow()
	}
}

// TestDeltaRestoresBooks: books committed as a full snapshot now and then
// and deltas between, with commits that fail (written, never committed) and
// takeovers (books restored from the store carry on), restore from the
// snapshot and its deltas equal to the books in every value after every
// commit. Random events: duplicates, NFC reqIds repeated, days spread over
// more than the retention, windows and capacities small enough to expire and
// evict.
func TestDeltaRestoresBooks(t *testing.T) {
	seed := *deltaSeed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	t.Logf("seed %d (-delta.seed=%d repeats it)", seed, seed)
	rng := rand.New(rand.NewSource(seed))
	cat, err := classify.Default()
	if err != nil {
		t.Fatal(err)
	}
	l := NewLayout(cat, LayoutOptions{AppIDs: []string{"a1"}, RuleIDs: []string{"r1", "r2"}})
	o := RulesOptions{DedupeWindow: 10 * time.Minute, DedupeCapacity: 40, ReqIDCapacity: 12, RetentionDays: 5}
	c := classify.New(cat, classify.Options{})
	channels := []string{"wechat_h5", "nfc_server", "nfc_server", "app_sdk", "pc_h5"}
	codes := []string{"0", "0", "0", "1001", "2001", "-1", "66660004", "zz"}
	base := time.Date(2026, 12, 1, 10, 0, 0, 0, ledger.Beijing)
	clock := base
	id := 0
	event := func() []byte {
		clock = clock.Add(time.Duration(rng.Intn(90)) * time.Second)
		ts := clock
		switch rng.Intn(20) {
		case 0:
			ts = ts.Add(-time.Duration(rng.Intn(10*24)) * time.Hour) // late, days back
		case 1:
			ts = ts.Add(time.Duration(rng.Intn(3*24)) * time.Hour) // ahead
		}
		eid := id
		if rng.Intn(6) == 0 && id > 0 {
			eid = id - rng.Intn(min(id, 60)) // a redelivery, in or out of the window
		} else {
			id++
		}
		ch := channels[rng.Intn(len(channels))]
		code := codes[rng.Intn(len(codes))]
		rule := []string{"", "r1", "r2", "r9"}[rng.Intn(4)]
		return fmt.Appendf(nil, `{"id":"e%d","channel":%q,"code":%q,"req_id":"q%d","ts":%q,"rule_id":%q,"app_id":"a1"}`,
			eid, ch, code, rng.Intn(15), ts.Format(time.RFC3339Nano), rule)
	}
	live := New(l, o)
	st := &store{days: map[ledger.Day][]byte{}}
	needFull := true
	var r classify.Result
	fulls, deltas, failed, takeovers := 0, 0, 0, 0
	for step := range 400 {
		for range rng.Intn(40) {
			if err := c.Classify(event(), nil, clock, &r); err != nil {
				continue
			}
			live.Apply(&r)
		}
		var s *Snapshot
		if needFull || rng.Intn(8) == 0 {
			s, err = live.Snapshot()
		} else {
			s, err = live.SnapshotDelta()
		}
		if err != nil {
			t.Fatal(err)
		}
		if rng.Intn(10) == 0 {
			failed++ // written, never committed: the next delta is from the last commit
			continue
		}
		st.commit(s)
		live.Committed(s)
		needFull = false
		if s.Full {
			fulls++
		} else {
			deltas++
		}
		restored := st.restore(t, l, o)
		sameBooks(t, fmt.Sprintf("seed %d, step %d (%d deltas since the snapshot)", seed, step, len(st.deltas)), live, restored)
		if rng.Intn(25) == 0 {
			live, needFull = restored, true // a takeover: a new owner's first commit is full
			takeovers++
		}
	}
	t.Logf("%d full snapshots, %d deltas, %d failed commits, %d takeovers", fulls, deltas, failed, takeovers)
	if fulls == 0 || deltas == 0 || failed == 0 || takeovers == 0 {
		t.Fatal("the run did not cover full snapshots, deltas, failed commits and takeovers")
	}
}
