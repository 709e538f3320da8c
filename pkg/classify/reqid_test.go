package classify

import (
	"fmt"
	"testing"
	"time"
)

// recordingReqIDs is a ReqIDStore that applies the rule to a map and records
// what the classifier asked it.
type recordingReqIDs struct {
	anchors map[uint64]int64
	calls   []reqIDCall
}

type reqIDCall struct {
	key    uint64
	at     time.Time
	window time.Duration
}

func (s *recordingReqIDs) Bill(key uint64, at time.Time, window time.Duration) bool {
	s.calls = append(s.calls, reqIDCall{key, at, window})
	anchor, ok := s.anchors[key]
	billed, reanchor := DecideReqID(anchor, ok, at.UnixNano(), int64(window))
	if reanchor {
		s.anchors[key] = at.UnixNano()
	}
	return billed
}

// TestReqIDStoreInjected checks that an injected ReqIDStore holds the rule's
// state: the classifier asks it, with the reqId's key, the event time and the
// catalog's window, only for successes of the rule's code that carry a reqId
// and are not duplicates, and bills as it answers.
func TestReqIDStoreInjected(t *testing.T) {
	cat := mustDefault(t)
	st := &recordingReqIDs{anchors: map[uint64]int64{}}
	c := New(cat, Options{ReqIDs: st})
	base := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	for i, s := range []struct {
		msg      string
		want     Billable
		wantRule string
	}{
		{`{"channel":"nfc_server","code":"0","req_id":"r1","ts":"2026-11-26T10:00:00Z"}`, BillableTrue, "req_id_first"},
		{`{"channel":"nfc_server","code":"0","req_id":"r1","ts":"2026-11-26T10:04:00Z"}`, BillableFalse, "req_id_repeat"},
		{`{"channel":"nfc_server","code":"66664003","req_id":"r1","ts":"2026-11-26T10:04:30Z"}`, BillableFalse, "catalog"},
		{`{"channel":"nfc_server","code":"0","ts":"2026-11-26T10:04:40Z"}`, BillableTrue, "catalog"},
		{`{"channel":"nfc_server","code":"0","req_id":"r1","ts":"2026-11-26T10:05:00Z"}`, BillableTrue, "req_id_first"},
	} {
		r := classifyOne(t, c, s.msg)
		if r.Billable != s.want || r.BillingRule != s.wantRule {
			t.Fatalf("step %d: billable %s (%s), want %s (%s)", i, r.Billable, r.BillingRule, s.want, s.wantRule)
		}
	}
	want := []reqIDCall{
		{IDKey([]byte("r1")), base, cat.ReqIDRule.Window},
		{IDKey([]byte("r1")), base.Add(4 * time.Minute), cat.ReqIDRule.Window},
		{IDKey([]byte("r1")), base.Add(5 * time.Minute), cat.ReqIDRule.Window},
	}
	if len(st.calls) != len(want) {
		t.Fatalf("%d calls, want %d: %v", len(st.calls), len(want), st.calls)
	}
	for i, w := range want {
		if g := st.calls[i]; g.key != w.key || !g.at.Equal(w.at) || g.window != w.window {
			t.Errorf("call %d: %+v, want %+v", i, g, w)
		}
	}
	if c.ReqIDEvicted() != 0 {
		t.Errorf("evicted %d with an injected store", c.ReqIDEvicted())
	}
}

// TestReqIDWindowBill checks the default store through the ReqIDStore
// interface, as another classifier would use it: the rule's cases, and
// evictions counted when it is full.
func TestReqIDWindowBill(t *testing.T) {
	const w = 5 * time.Minute
	base := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	var st ReqIDStore = newReqIDWindow(2)
	for i, s := range []struct {
		key    uint64
		offset time.Duration
		want   bool
	}{
		{1, 0, true},
		{1, 4*time.Minute + 59*time.Second, false},
		{1, 5 * time.Minute, true}, // window end: billed, new anchor
		{1, 9 * time.Minute, false},
		{1, -time.Minute, true},      // a whole window before the anchor
		{1, 8 * time.Minute, false},  // the anchor did not move back
		{1, 10 * time.Minute, true},  // the window of the billed one ended
		{2, 10 * time.Minute, true},  // table: 1, 2
		{3, 10 * time.Minute, true},  // evicts the oldest entry (1)
		{1, 11 * time.Minute, true},  // forgotten: billed again (counted)
		{0, 11 * time.Minute, true},  // key 0 is a key like another
		{0, 12 * time.Minute, false}, //
		{3, 20 * time.Minute, true},  // expired by event time
		{3, 24*time.Minute + 59*time.Second, false},
	} {
		if got := st.Bill(s.key, base.Add(s.offset), w); got != s.want {
			t.Fatalf("step %d: Bill(%d, +%s) = %v, want %v", i, s.key, s.offset, got, s.want)
		}
	}
	if ev := st.(*reqIDWindow).evicted; ev == 0 {
		t.Error("no eviction counted")
	}
}

func TestDecideReqID(t *testing.T) {
	const w = int64(5 * time.Minute)
	for _, tc := range []struct {
		anchor           int64
		has              bool
		t                int64
		billed, reanchor bool
	}{
		{0, false, 100, true, true},
		{100, true, 100, false, false},
		{100, true, 100 + w - 1, false, false},
		{100, true, 100 + w, true, true},
		{100, true, 100 - 1, false, false},
		{100, true, 100 - w + 1, false, false},
		{100, true, 100 - w, true, false},
	} {
		t.Run(fmt.Sprintf("anchor_%d_%v_t_%d", tc.anchor, tc.has, tc.t), func(t *testing.T) {
			b, r := DecideReqID(tc.anchor, tc.has, tc.t, w)
			if b != tc.billed || r != tc.reanchor {
				t.Errorf("got billed=%v reanchor=%v, want %v %v", b, r, tc.billed, tc.reanchor)
			}
		})
	}
}
