package books

import (
	"fmt"
	"testing"
	"time"

	"github.com/faceid-observability/faceid-exporter/pkg/classify"
)

func mustDefault(t testing.TB) *classify.Catalog {
	t.Helper()
	c, err := classify.Default()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// stage is the classifier followed by the rules, as a partition runs them.
type stage struct {
	c     *classify.Classifier
	rules *Rules
}

func newStage(cat *classify.Catalog) *stage { return newStageDedupe(cat, 0) }

func newStageDedupe(cat *classify.Catalog, window time.Duration) *stage {
	r := NewRules(cat, RulesOptions{DedupeWindow: window, DedupeCapacity: 100})
	return &stage{c: classify.New(cat, classify.Options{Prefetch: r.Prefetcher()}), rules: r}
}

var receivedAt = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func classifyOne(t *testing.T, s *stage, msg string) *classify.Result {
	t.Helper()
	var r classify.Result
	if err := s.c.Classify([]byte(msg), nil, receivedAt, &r); err != nil {
		t.Fatalf("classify %s: %v", msg, err)
	}
	s.rules.Apply(&r)
	return &r
}

func TestNFCReqIDWindow(t *testing.T) {
	base := time.Date(2026, 11, 26, 10, 0, 0, 0, time.FixedZone("CST", 8*3600))
	type step struct {
		reqID  string
		code   string
		offset time.Duration
		want   classify.Billable
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"first_success_billed", []step{{"r1", "0", 0, classify.BillableTrue}}},
		{"repeat_inside_window", []step{{"r1", "0", 0, classify.BillableTrue}, {"r1", "0", time.Minute, classify.BillableFalse}, {"r1", "0", 4*time.Minute + 59*time.Second, classify.BillableFalse}}},
		{"exactly_at_window_end_billed_again", []step{{"r1", "0", 0, classify.BillableTrue}, {"r1", "0", 5 * time.Minute, classify.BillableTrue}}},
		{"after_expiry_billed_and_reanchored", []step{
			{"r1", "0", 0, classify.BillableTrue}, {"r1", "0", 3 * time.Minute, classify.BillableFalse}, {"r1", "0", 6 * time.Minute, classify.BillableTrue},
			{"r1", "0", 10 * time.Minute, classify.BillableFalse}, {"r1", "0", 11 * time.Minute, classify.BillableTrue}}},
		{"window_anchored_at_billed_not_at_repeat", []step{
			{"r1", "0", 0, classify.BillableTrue}, {"r1", "0", 4 * time.Minute, classify.BillableFalse}, {"r1", "0", 5*time.Minute + time.Second, classify.BillableTrue}}},
		{"interleaved_req_ids", []step{
			{"r1", "0", 0, classify.BillableTrue}, {"r2", "0", 30 * time.Second, classify.BillableTrue}, {"r1", "0", time.Minute, classify.BillableFalse},
			{"r2", "0", 2 * time.Minute, classify.BillableFalse}, {"r3", "0", 3 * time.Minute, classify.BillableTrue}, {"r1", "0", 5 * time.Minute, classify.BillableTrue},
			{"r2", "0", 5 * time.Minute, classify.BillableFalse}, {"r2", "0", 5*time.Minute + 30*time.Second, classify.BillableTrue}}},
		{"no_req_id_always_billed", []step{{"", "0", 0, classify.BillableTrue}, {"", "0", time.Second, classify.BillableTrue}}},
		{"failures_never_billed_and_open_no_window", []step{
			{"r1", "66664003", 0, classify.BillableFalse}, {"r1", "66664006", time.Second, classify.BillableFalse}, {"r1", "0", 2 * time.Second, classify.BillableTrue}}},
		{"out_of_order_inside_window_not_billed", []step{{"r1", "0", 2 * time.Minute, classify.BillableTrue}, {"r1", "0", 0, classify.BillableFalse}}},
		{"out_of_order_a_window_before_billed", []step{{"r1", "0", 10 * time.Minute, classify.BillableTrue}, {"r1", "0", 0, classify.BillableTrue}}},
	}
	cat := mustDefault(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newStage(cat)
			for i, s := range tc.steps {
				msg := fmt.Sprintf(`{"channel":"nfc_server","code":%q,"req_id":%q,"ts":%q}`, s.code, s.reqID, base.Add(s.offset).Format(time.RFC3339Nano))
				r := classifyOne(t, c, msg)
				if r.Billable != s.want {
					t.Fatalf("step %d (%s at +%s): billable = %s (%s), want %s", i, s.reqID, s.offset, r.Billable, r.BillingRule, s.want)
				}
			}
		})
	}
	t.Run("terminal_success_never_billed", func(t *testing.T) {
		c := newStage(cat)
		r := classifyOne(t, c, `{"channel":"nfc_terminal","code":0,"req_id":"r1"}`)
		if r.Billable != classify.BillableFalse || r.Outcome != classify.OutcomeSuccess {
			t.Fatalf("got billable=%s outcome=%s", r.Billable, r.Outcome)
		}
	})
}

func TestDuplicates(t *testing.T) {
	cat := mustDefault(t)
	c := newStageDedupe(cat, time.Hour)
	first := classifyOne(t, c, `{"id":"a","channel":"wechat_h5","code":"2006","ts":"2026-11-26T10:00:00Z"}`)
	if first.Duplicate || first.Billable != classify.BillableTrue {
		t.Fatalf("first delivery: dup=%v billable=%s", first.Duplicate, first.Billable)
	}
	again := classifyOne(t, c, `{"id":"a","channel":"wechat_h5","code":"2006","ts":"2026-11-26T10:00:00Z"}`)
	if !again.Duplicate || again.Billable != classify.BillableFalse {
		t.Fatalf("redelivery: dup=%v billable=%s", again.Duplicate, again.Billable)
	}
	other := classifyOne(t, c, `{"id":"b","channel":"wechat_h5","code":"2006","ts":"2026-11-26T10:00:01Z"}`)
	if other.Duplicate {
		t.Fatal("a new id is not a duplicate")
	}
	noID := classifyOne(t, c, `{"channel":"wechat_h5","code":"2006"}`)
	noID2 := classifyOne(t, c, `{"channel":"wechat_h5","code":"2006"}`)
	if noID.Duplicate || noID2.Duplicate {
		t.Fatal("events without id are never duplicates")
	}
	// A duplicate NFC success must not move the reqId window.
	n := newStageDedupe(cat, time.Hour)
	classifyOne(t, n, `{"id":"x","channel":"nfc_server","code":"0","req_id":"r","ts":"2026-11-26T10:00:00Z"}`)
	classifyOne(t, n, `{"id":"x","channel":"nfc_server","code":"0","req_id":"r","ts":"2026-11-26T10:00:00Z"}`)
	if r := classifyOne(t, n, `{"id":"y","channel":"nfc_server","code":"0","req_id":"r","ts":"2026-11-26T10:05:00Z"}`); r.Billable != classify.BillableTrue {
		t.Fatalf("success after the window: billable=%s", r.Billable)
	}
}
