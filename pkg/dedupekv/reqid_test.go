package dedupekv

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
	"github.com/faceid-observability/faceid-exporter/pkg/classify"
)

const reqWindow = 5 * time.Minute

// openReqIDs opens a ReqIDs store on its own connection (one replica).
func openReqIDs(t testing.TB, url string, timeout time.Duration) *ReqIDs {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, url))
	if err != nil {
		t.Fatal(err)
	}
	st, err := NewReqIDs(t.Context(), js, ReqIDOptions{Bucket: "faceid-reqid", Window: reqWindow, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

var r0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

// TestReqIDsShared checks that two stores on one bucket (two replicas, or a
// process and its restart) apply the reqId rule as one: inside the window of
// a success billed by one, the other does not bill; at the window's end it
// bills and re-anchors; the window is anchored at the billed success, not at
// the repeats; a success a whole window before the anchor is billed without
// moving it.
func TestReqIDsShared(t *testing.T) {
	s := natstest.RunServer(t)
	a := openReqIDs(t, s.ClientURL(), 0)
	b := openReqIDs(t, s.ClientURL(), 0)
	for i, step := range []struct {
		name   string
		store  *ReqIDs
		key    uint64
		offset time.Duration
		want   bool
	}{
		{"a_first", a, 1, 0, true},
		{"b_inside_window", b, 1, time.Minute, false},
		{"a_inside_window", a, 1, 4*time.Minute + 59*time.Second, false},
		{"b_at_window_end", b, 1, 5 * time.Minute, true},
		{"a_anchored_at_b", a, 1, 9*time.Minute + 59*time.Second, false},
		{"b_out_of_order_inside", b, 1, 4 * time.Minute, false},
		{"a_out_of_order_window_before", a, 1, 0, true},
		{"b_anchor_not_moved_back", b, 1, 9 * time.Minute, false},
		{"a_after_window", a, 1, 10 * time.Minute, true},
		{"b_other_req_id", b, 2, 10 * time.Minute, true},
		{"a_other_req_id_repeat", a, 2, 11 * time.Minute, false},
		{"b_key_zero", b, 0, 0, true},
		{"a_key_zero_repeat", a, 0, time.Second, false},
	} {
		if got := step.store.Bill(step.key, r0.Add(step.offset), reqWindow); got != step.want {
			t.Fatalf("step %d %s: Bill(%d, +%s) = %v, want %v", i, step.name, step.key, step.offset, got, step.want)
		}
	}
	if a.Errors()+b.Errors() != 0 {
		t.Errorf("errors: %d, %d", a.Errors(), b.Errors())
	}
	// Only successes that became the anchor were written.
	if w := a.Writes() + b.Writes(); w != 5 {
		t.Errorf("%d writes, want 5 (three anchors of key 1, one of key 2, one of key 0)", w)
	}
	js, err := jetstream.New(natstest.Connect(t, s.ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(t.Context(), "faceid-reqid")
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Values() != 3 || st.TTL() != reqWindow || st.History() != 1 {
		t.Errorf("bucket: %d values, ttl %s, history %d; want 3, %s, 1", st.Values(), st.TTL(), st.History(), reqWindow)
	}
	e, err := kv.Get(t.Context(), Key(1))
	if err != nil {
		t.Fatal(err)
	}
	if got := time.Unix(0, int64(beUint64(e.Value()))); !got.Equal(r0.Add(10 * time.Minute)) {
		t.Errorf("anchor of key 1 = %s, want +10m", got)
	}
}

func beUint64(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// TestReqIDsConcurrent races successes of the same reqIds inside one window
// from several goroutines on two stores: each reqId is billed exactly once.
func TestReqIDsConcurrent(t *testing.T) {
	s := natstest.RunServer(t)
	stores := []*ReqIDs{openReqIDs(t, s.ClientURL(), 5*time.Second), openReqIDs(t, s.ClientURL(), 5*time.Second)}
	const keys, perStore = 50, 3
	var billed [keys]atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, st := range stores {
		for g := 0; g < perStore; g++ {
			wg.Go(func() {
				<-start
				for k := 0; k < keys; k++ {
					if st.Bill(uint64(k)+100, r0.Add(time.Duration(g)*time.Second), reqWindow) {
						billed[k].Add(1)
					}
				}
			})
		}
	}
	close(start)
	wg.Wait()
	for k := range billed {
		if n := billed[k].Load(); n != 1 {
			t.Errorf("reqId %d billed %d times, want 1", k, n)
		}
	}
	var errs, conflicts uint64
	for _, st := range stores {
		errs += st.Errors()
		conflicts += st.Conflicts()
	}
	if errs != 0 {
		t.Errorf("%d errors", errs)
	}
	t.Logf("%d compare-and-set conflicts resolved", conflicts)
}

// TestReqIDsConflict makes another replica bill the same reqId between this
// store's read and its write: the compare-and-set fails, the store reads the
// other's anchor and decides again, so the window is billed once. Both the
// Create (no anchor yet) and the Update (anchor to replace) paths are covered.
func TestReqIDsConflict(t *testing.T) {
	s := natstest.RunServer(t)
	a := openReqIDs(t, s.ClientURL(), 0)
	b := openReqIDs(t, s.ClientURL(), 0)
	for _, tc := range []struct {
		name     string
		key      uint64
		prior    time.Duration // a success billed before, or -1
		aAt, bAt time.Duration
	}{
		{"create", 7, -1, time.Minute, 0},
		{"update", 8, 0, 6 * time.Minute, 5 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := tc.key
			if tc.prior >= 0 && !b.Bill(key, r0.Add(tc.prior), reqWindow) {
				t.Fatal("prior success not billed")
			}
			var bBilled bool
			ran := false
			a.afterGet = func(k uint64) {
				if !ran {
					ran = true
					bBilled = b.Bill(k, r0.Add(tc.bAt), reqWindow)
				}
			}
			defer func() { a.afterGet = nil }()
			before := a.Conflicts()
			aBilled := a.Bill(key, r0.Add(tc.aAt), reqWindow)
			if !bBilled || aBilled {
				t.Errorf("b billed %v, a billed %v: want only b (it wrote first)", bBilled, aBilled)
			}
			if a.Conflicts() != before+1 {
				t.Errorf("conflicts %d, want %d", a.Conflicts(), before+1)
			}
		})
	}
}

// TestReqIDsUnreachable checks that a store whose server is gone bills (the
// success is counted as a first one) and counts the error.
func TestReqIDsUnreachable(t *testing.T) {
	s := natstest.RunServer(t)
	a := openReqIDs(t, s.ClientURL(), 200*time.Millisecond)
	if !a.Bill(1, r0, reqWindow) {
		t.Fatal("first success not billed")
	}
	s.Shutdown()
	s.WaitForShutdown()
	if !a.Bill(1, r0.Add(time.Second), reqWindow) {
		t.Error("a success the bucket could not decide was not billed")
	}
	if a.Errors() != 1 {
		t.Errorf("errors = %d, want 1", a.Errors())
	}
}

// TestNewReqIDsOptions checks the options' errors.
func TestNewReqIDsOptions(t *testing.T) {
	s := natstest.RunServer(t)
	js, err := jetstream.New(natstest.Connect(t, s.ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		o    ReqIDOptions
		want string
	}{
		{"no_bucket", ReqIDOptions{Window: time.Minute}, "reqid kv: no bucket name"},
		{"no_window", ReqIDOptions{Bucket: "b"}, "reqid kv: the window must be above 0"},
		{"ttl_below_window", ReqIDOptions{Bucket: "b", Window: time.Minute, TTL: time.Second}, "reqid kv: the ttl 1s is shorter than the window 1m0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewReqIDs(t.Context(), js, tc.o); err == nil || err.Error() != tc.want {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// BenchmarkReqIDClassify compares, in one run, the classification of an NFC
// server success carrying a req_id with the default in-memory reqId store and
// with the JetStream KV store (in-process server, file storage): a repeat
// inside the window (one KV Get) and a new reqId (a Get and a Create).
func BenchmarkReqIDClassify(b *testing.B) {
	cat, err := classify.Default()
	if err != nil {
		b.Fatal(err)
	}
	msg := func(buf []byte, id int) []byte {
		buf = append(buf[:0], `{"channel":"nfc_server","code":"0","ts":1764123330123,"req_id":"r`...)
		buf = strconv.AppendInt(buf, int64(id), 10)
		return append(buf, `"}`...)
	}
	run := func(b *testing.B, c *classify.Classifier, newIDs bool) {
		var r classify.Result
		buf := make([]byte, 0, 128)
		now := time.Now()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			id := 0
			if newIDs {
				id = i
			}
			if err := c.Classify(msg(buf, id), nil, now, &r); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name   string
		kv     bool
		newIDs bool
	}{
		{"memory_repeat", false, false},
		{"memory_new_reqid", false, true},
		{"jetstream_kv_repeat", true, false},
		{"jetstream_kv_new_reqid", true, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var opts classify.Options
			var st *ReqIDs
			if tc.kv {
				s := natstest.RunServer(b)
				st = openReqIDs(b, s.ClientURL(), 0)
				opts.ReqIDs = st
			}
			run(b, classify.New(cat, opts), tc.newIDs)
			if st != nil && st.Errors() != 0 {
				b.Fatalf("%d errors", st.Errors())
			}
		})
	}
}
