package stream_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
	"github.com/faceid-observability/faceid-exporter/pkg/checkpoint"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
)

// TestGroupRestoresEveryRecordFormat: a record of full values only (what
// exporters before incremental checkpoints wrote: version 1, no deltas, the
// days in the record) restores, and its next owner goes on with deltas and a
// days index (version 2); a record with a chain of deltas restores too. After each owner the committed
// counters and ledger and the live books equal one uninterrupted process's.
func TestGroupRestoresEveryRecordFormat(t *testing.T) {
	cat := catalog(t)
	s := natstest.RunServer(t)
	defer s.Shutdown()
	js := newStream(t, s.ClientURL(), jetstream.StreamConfig{})
	start := time.Now().Add(-time.Hour)
	seed := int64(40)
	feed := func(n int) {
		fillStream(t, js, cat, seed, n, start)
		seed++
		start = start.Add(time.Duration(n) * time.Second)
	}
	check := func(r *groupRig, who string) *checkpoint.Record {
		t.Helper()
		last := lastSeq(t, js)
		natstest.WaitFor(t, 30*time.Second, who+" commits the whole stream", allCommitted(t, r.store, 1, last))
		want, _ := reference(t, js, cat)
		diffCounters(t, committedCounters(t, r.store), booksCounters(want))
		owned := r.g.Owned()
		if len(owned) != 1 {
			t.Fatalf("%s owns %d partitions, want 1", who, len(owned))
		}
		diffCounters(t, booksCounters(owned[0].Books), booksCounters(want))
		rows, err := ledger.Read(t.Context(), r.store.KV(), "FACEID", "g", 0, ledger.DayOf(time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		want.Lock()
		wantRows := want.Rows(0, ledger.DayOf(time.Now()))
		want.Unlock()
		if fmt.Sprint(rows) != fmt.Sprint(wantRows) {
			t.Fatalf("%s: ledger differs:\n got %v\nwant %v", who, rows, wantRows)
		}
		rec, _, err := r.store.Load(t.Context(), 0)
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}

	// a writes full values at every commit, as exporters did before; its
	// record is then rewritten as they wrote it: version 1, the days in the
	// record itself.
	feed(600)
	a := startGroup(t, s.ClientURL(), cat, groupOpts{instance: "a", deltaRatio: -1})
	if rec := check(a, "a"); rec.Deltas != nil || rec.DaysIndex == nil {
		t.Fatalf("a wrote deltas %+v and days index %+v, want no deltas and an index", rec.Deltas, rec.DaysIndex)
	}
	a.stop()
	rec, rev, err := a.store.Load(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Days, err = a.store.DayRefs(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	rec.DaysIndex = nil
	if _, err := a.store.Commit(t.Context(), rec, rev); err != nil {
		t.Fatal(err)
	}
	e, err := a.store.KV().Get(t.Context(), a.store.RecordKey(0))
	if err != nil {
		t.Fatal(err)
	}
	if v1 := string(e.Value()); !strings.Contains(v1, `"v":1,`) || strings.Contains(v1, "deltas") || strings.Contains(v1, "days_index") || !strings.Contains(v1, `"days":{`) {
		t.Fatalf("not a record of version 1 with its days: %s", v1)
	}

	// b restores it and commits deltas while events arrive.
	b := startGroup(t, s.ClientURL(), cat, groupOpts{instance: "b"})
	for range 5 {
		feed(300)
		check(b, "b")
	}
	// Thirty more days: the record does not grow with them (the days index
	// holds them).
	for k := range 30 {
		fillStream(t, js, cat, int64(500+k), 5, time.Now().Add(-time.Duration(k+2)*24*time.Hour))
	}
	rec = check(b, "b")
	days, err := b.store.DayRefs(t.Context(), rec)
	if err != nil {
		t.Fatal(err)
	}
	e, err = b.store.KV().Get(t.Context(), b.store.RecordKey(0))
	if err != nil {
		t.Fatal(err)
	}
	if len(days) < 30 || len(e.Value()) > 1500 {
		t.Fatalf("b's record names %d days in %d bytes, want at least 30 days in at most 1500 bytes: %s", len(days), len(e.Value()), e.Value())
	}
	if rec.Version != checkpoint.VersionDeltas || rec.Deltas == nil || rec.Deltas.Len < 2 {
		t.Fatalf("b's record: version %d, deltas %+v; want version %d with a chain of deltas", rec.Version, rec.Deltas, checkpoint.VersionDeltas)
	}
	t.Logf("b's record: a snapshot of %d + %d bytes and %d deltas of %d bytes", rec.Counters.Size, rec.Rules.Size, rec.Deltas.Len, rec.Deltas.Bytes)
	b.kill() // no last commit: c restores the snapshot and the chain as b left them

	// c restores the snapshot with its deltas.
	c := startGroup(t, s.ClientURL(), cat, groupOpts{instance: "c", takeover: time.Second})
	feed(200)
	check(c, "c")
	c.stop()
}

// TestDeltaChainsCollected: an owner whose deltas reach the ratio often
// (0.2 of a snapshot) starts chain after chain; the bucket keeps only the
// record, the values it names (two slots of each), its chain of deltas and
// the member key: every replaced delta is deleted.
func TestDeltaChainsCollected(t *testing.T) {
	cat := catalog(t)
	s := natstest.RunServer(t)
	defer s.Shutdown()
	js := newStream(t, s.ClientURL(), jetstream.StreamConfig{})
	r := startGroup(t, s.ClientURL(), cat, groupOpts{instance: "a", deltaRatio: 0.2, gcInterval: 200 * time.Millisecond})
	defer r.stop()
	start := time.Now().Add(-time.Hour)
	chains := map[uint64]bool{} // the first commit of each chain seen
	for i := range 40 {
		fillStream(t, js, cat, int64(60+i), 40, start.Add(time.Duration(i)*time.Minute))
		natstest.WaitFor(t, 30*time.Second, "the owner commits the stream", allCommitted(t, r.store, 1, lastSeq(t, js)))
		rec, _, err := r.store.Load(t.Context(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Deltas != nil {
			chains[rec.Deltas.First] = true
		}
	}
	if len(chains) < 3 {
		t.Fatalf("%d chains of deltas seen, want several (the ratio starts new ones)", len(chains))
	}
	bound := func() (uint64, uint64) {
		rec, _, err := r.store.Load(t.Context(), 0)
		if err != nil {
			t.Fatal(err)
		}
		n := 2 + recordKeys(t, r.store, rec) // the record, the member key
		status, err := r.store.KV().Status(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return status.Values(), n
	}
	var got, limit uint64
	if err := pollUntil(20*time.Second, func() bool {
		got, limit = bound()
		return got <= limit
	}); err != nil {
		t.Fatalf("the bucket holds %d messages after %d chains, want at most %d (the record, its values and their other slots, its chain, the member)", got, len(chains), limit)
	}
	t.Logf("%d chains; the bucket holds %d messages, bound %d", len(chains), got, limit)
	want, _ := reference(t, js, cat)
	diffCounters(t, committedCounters(t, r.store), booksCounters(want))
}
