package stream_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
	"github.com/faceid-observability/faceid-exporter/pkg/checkpoint"
)

// openStore opens the test bucket's store of group g on url.
func openStore(t *testing.T, url, g string) *checkpoint.Store {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, url))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := checkpoint.OpenBucket(t.Context(), js, checkpoint.BucketOptions{Bucket: "ckpt", Create: true})
	if err != nil {
		t.Fatal(err)
	}
	return checkpoint.NewStore(kv, "FACEID", g)
}

// kill makes a replica vanish as a killed process does: its connection
// closes, so it neither commits, heartbeats nor releases anything; its
// goroutines are stopped when the test ends.
func (r *groupRig) kill() {
	r.nc.Close()
	r.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = r.g.Stop(ctx)
	})
}

// TestGroupIgnoresDeadMembers: the member key a killed process left behind,
// written longer than a takeover timeout ago, does not count as a live
// replica when a watch starts (it used to be stamped with the time the watch
// showed it, so a replica aimed at half the partitions for a whole takeover
// timeout, and after a NATS restart released partitions nobody then owned).
func TestGroupIgnoresDeadMembers(t *testing.T) {
	const takeover = 8 * time.Second
	cat := catalog(t)
	opts := natstest.Options(t)
	s := natstest.Start(t, opts)
	js := newStream(t, s.ClientURL(), jetstream.StreamConfig{})
	fillStream(t, js, cat, 21, 300, time.Now().Add(-time.Hour))
	st := openStore(t, s.ClientURL(), "g")
	dead := st.MemberKey("killed-long-ago")
	if _, err := st.KV().Put(t.Context(), dead, []byte(`{"instance":"killed-long-ago","run":"0000","at":"2026-01-01T00:00:00Z"}`)); err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, 3*takeover, "the dead member's key is older than the takeover timeout", func() bool {
		e, err := st.KV().Get(t.Context(), dead)
		return err == nil && time.Since(e.Created()) > takeover+500*time.Millisecond
	})
	started := time.Now()
	a := startGroup(t, s.ClientURL(), cat, groupOpts{instance: "a", partitions: 2, takeover: takeover})
	defer a.stop()
	// Alone, a takes both at its first tick; counting the dead key it
	// would take one and wait a takeover timeout for the other.
	natstest.WaitFor(t, takeover-2*time.Second, "a owns both partitions before a takeover timeout", func() bool { return len(a.g.Owned()) == 2 })
	t.Logf("a owned both partitions %s after it started", time.Since(started).Round(time.Millisecond))

	// After a NATS restart a's watch starts again and shows the dead key
	// again: a keeps both partitions (it used to release one, which nobody
	// then owned for a takeover timeout).
	s = natstest.Restart(t, s, opts)
	natstest.WaitFor(t, 20*time.Second, "a reconnects", a.nc.IsConnected)
	for deadline := time.Now().Add(takeover - time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		recs, err := st.Records(t.Context())
		if err != nil {
			continue // the test's own connection may still be reconnecting
		}
		for p, rec := range recs {
			if rec.Released || rec.Owner != "a" {
				t.Fatalf("after the restart partition %d's record is owner %q released %v: a gave it up", p, rec.Owner, rec.Released)
			}
		}
	}
	if n := len(a.g.Owned()); n != 2 {
		t.Errorf("a owns %d partitions after the restart, want 2", n)
	}
}

// TestGroupDuplicateInstance: two live processes given the same
// --jetstream.instance do not take the partition from each other at every
// tick: each sees the other's heartbeats under its name, says so (not ready,
// with the reason), and neither takes a record by its name alone; once one
// leaves, the other is ready again.
func TestGroupDuplicateInstance(t *testing.T) {
	cat := catalog(t)
	s := natstest.RunServer(t)
	js := newStream(t, s.ClientURL(), jetstream.StreamConfig{})
	fillStream(t, js, cat, 22, 300, time.Now().Add(-time.Hour))
	o := groupOpts{instance: "pod-0", takeover: 2 * time.Second}
	a := startGroup(t, s.ClientURL(), cat, o)
	natstest.WaitFor(t, 20*time.Second, "a owns the partition", func() bool { return len(a.g.Owned()) == 1 })
	b := startGroup(t, s.ClientURL(), cat, o)
	duplicate := func(r *groupRig) bool {
		ok, why := r.g.Ready()
		return !ok && strings.Contains(why, `another live process uses --jetstream.instance "pod-0"`)
	}
	natstest.WaitFor(t, 10*time.Second, "both replicas report the shared name", func() bool { return duplicate(a) && duplicate(b) })
	epoch := func() uint64 {
		rec, _, err := a.store.Load(t.Context(), 0)
		if err != nil {
			t.Fatal(err)
		}
		return rec.Epoch
	}
	// No flapping: the record keeps its epoch (it used to change owner at
	// every tick, 10 a second here).
	first := epoch()
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if e := epoch(); e != first {
			t.Fatalf("the record's epoch moved from %d to %d while both replicas ran: they take it from each other", first, e)
		}
		if !duplicate(a) || !duplicate(b) {
			t.Fatal("a replica stopped reporting the shared name while both run")
		}
	}
	if n := len(a.g.Owned()) + len(b.g.Owned()); n != 1 {
		t.Errorf("%d owners of the one partition, want 1", n)
	}
	b.stop()
	natstest.WaitFor(t, 15*time.Second, "a is ready again once b left", func() bool { ok, _ := a.g.Ready(); return ok })
	natstest.WaitFor(t, 15*time.Second, "a owns the partition", func() bool { return len(a.g.Owned()) == 1 })
	a.stop()
}

// TestGroupInstanceResumesAtOnce: a process killed and started again under
// the same instance name takes its partition back at once, with a new epoch,
// instead of waiting out the takeover timeout (here 30 s); it counts no
// takeover.
func TestGroupInstanceResumesAtOnce(t *testing.T) {
	const takeover = 30 * time.Second
	cat := catalog(t)
	s := natstest.RunServer(t)
	js := newStream(t, s.ClientURL(), jetstream.StreamConfig{})
	fillStream(t, js, cat, 23, 300, time.Now().Add(-time.Hour))
	o := groupOpts{instance: "pod-0", takeover: takeover}
	a := startGroup(t, s.ClientURL(), cat, o)
	last := lastSeq(t, js)
	natstest.WaitFor(t, 20*time.Second, "a commits the stream", allCommitted(t, a.store, 1, last))
	before, _, err := a.store.Load(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	a.kill()
	restarted := time.Now()
	a2 := startGroup(t, s.ClientURL(), cat, o)
	natstest.WaitFor(t, takeover/3, "the restarted process owns its partition", func() bool { return len(a2.g.Owned()) == 1 })
	t.Logf("took its partition back %s after the restart", time.Since(restarted).Round(time.Millisecond))
	after, _, err := a2.store.Load(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if after.Owner != "pod-0" || after.Epoch != before.Epoch+1 {
		t.Errorf("record owner %q epoch %d, want pod-0 at epoch %d", after.Owner, after.Epoch, before.Epoch+1)
	}
	if n := gatherCounter(t, a2.reg, "faceid_exporter_takeovers_total", ""); n != 0 {
		t.Errorf("%v takeovers counted for taking back its own partition", n)
	}
	want, _ := reference(t, js, cat)
	diffCounters(t, booksCounters(a2.g.Owned()[0].Books), booksCounters(want))
	a2.stop()
}

// TestGroupUnpartitionedFollowsPartition0: the count of messages no partition
// reads is reported by partition 0's owner only while it owns it; once the
// partition moves, the former owner stops reporting it (its
// FaceIDInputUnpartitioned used to keep firing).
func TestGroupUnpartitionedFollowsPartition0(t *testing.T) {
	cat := catalog(t)
	s := natstest.RunServer(t)
	js := newStream(t, s.ClientURL(), jetstream.StreamConfig{})
	fillStream(t, js, cat, 24, 200, time.Now().Add(-time.Hour))
	pub, wait := jsPublish(t, js)
	for range 7 {
		pub("faceid.results.not_a_channel", []byte(`{"code":"0"}`))
	}
	wait()
	a := startGroup(t, s.ClientURL(), cat, groupOpts{instance: "a", partitions: 2, takeover: 30 * time.Second})
	defer a.stop()
	natstest.WaitFor(t, 20*time.Second, "a reports 7 unpartitioned messages", func() bool {
		n, ok := a.g.Unpartitioned()
		return ok && n == 7
	})
	// A rival takes partition 0 (the record's compare-and-set).
	rec, rev, err := a.store.Load(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	rival := *rec
	rival.Owner, rival.Epoch = "rival", rec.Epoch+1
	if _, err := a.store.Commit(t.Context(), &rival, rev); err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, 10*time.Second, "a owns partition 1 only", func() bool {
		o := a.g.Owned()
		return len(o) == 1 && o[0].Status.Partition == 1
	})
	if n, ok := a.g.Unpartitioned(); ok {
		t.Fatalf("a still reports %d unpartitioned messages after losing partition 0", n)
	}
}

// TestGroupBucketBounded: the checkpoint bucket does not grow with restarts
// and takeovers. Eight replicas in turn, each with a new name, own the
// group's two partitions and then stop cleanly or are killed; at the end the
// bucket holds only the records, the values they reference (and each value's
// other slot), and the live member: earlier epochs' values, dead members'
// keys and deletion markers are gone.
func TestGroupBucketBounded(t *testing.T) {
	const partitions, rounds = 2, 8
	cat := catalog(t)
	s := natstest.RunServer(t)
	js := newStream(t, s.ClientURL(), jetstream.StreamConfig{})
	st := openStore(t, s.ClientURL(), "g")
	day := time.Now().Add(-72 * time.Hour)
	o := groupOpts{partitions: partitions, takeover: time.Second, gcInterval: 200 * time.Millisecond, memberExpiry: 2 * time.Second}
	messages := func() uint64 {
		status, err := st.KV().Status(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return status.Values()
	}
	var counts []uint64
	var r *groupRig
	for i := range rounds {
		// Each round's events fall on a new Beijing day: more ledger days.
		fillStream(t, js, cat, int64(30+i), 150, day.Add(time.Duration(i)*12*time.Hour))
		o.instance = fmt.Sprintf("replica-%d", i)
		r = startGroup(t, s.ClientURL(), cat, o)
		want, _ := reference(t, js, cat)
		natstest.WaitFor(t, 30*time.Second, o.instance+" commits the whole stream", func() bool {
			got, err := readCommitted(t.Context(), st, partitions)
			if err != nil {
				return false // not committed yet, or a value replaced while read
			}
			w := booksCounters(want)
			for k, v := range w {
				if got[k] != v {
					return false
				}
			}
			return len(got) == len(w)
		})
		natstest.WaitFor(t, 30*time.Second, o.instance+" owns both partitions", func() bool {
			recs, err := st.Records(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range recs {
				if rec.Owner != o.instance {
					return false
				}
			}
			return len(recs) == partitions && len(r.g.Owned()) == partitions
		})
		counts = append(counts, messages())
		if i == rounds-1 {
			break
		}
		if i%2 == 0 {
			r.stop()
		} else {
			r.kill()
		}
	}
	defer r.stop()
	// The bound: each record, each referenced chunk and its other slot's,
	// the deltas of each record's chain, one member key (the live replica's).
	bound := func() (uint64, string) {
		recs, err := st.Records(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		n := uint64(len(recs) + 1)
		for _, rec := range recs {
			n += recordKeys(t, st, rec)
		}
		return n, fmt.Sprint(len(recs), " records")
	}
	var got, limit uint64
	err := pollUntil(30*time.Second, func() bool {
		got = messages()
		limit, _ = bound()
		return got <= limit
	})
	t.Logf("bucket messages after each round: %v; at the end %d, bound %d", counts, got, limit)
	if err != nil {
		keys, _ := st.KV().ListKeys(t.Context())
		var names []string
		for k := range keys.Keys() {
			names = append(names, k)
		}
		t.Fatalf("the bucket holds %d messages after %d owners, want at most %d (records, referenced values and their other slots, the live member); keys: %v", got, rounds, limit, names)
	}
	// The killed replicas' member keys in particular go once they expire
	// (the last was killed a moment ago).
	var members []string
	if err := pollUntil(20*time.Second, func() bool {
		lister, err := st.KV().ListKeysFiltered(t.Context(), st.MemberKey("*"))
		if err != nil {
			t.Fatal(err)
		}
		members = members[:0]
		for k := range lister.Keys() {
			members = append(members, k)
		}
		return len(members) == 1 && members[0] == st.MemberKey(o.instance)
	}); err != nil {
		t.Errorf("member keys %v, want only the live replica's %s: %v", members, st.MemberKey(o.instance), err)
	}
}

// readCommitted reads the committed counters of every partition, summed.
func readCommitted(ctx context.Context, st *checkpoint.Store, partitions int) (map[string]uint64, error) {
	recs, err := st.Records(ctx)
	if err != nil {
		return nil, err
	}
	if len(recs) != partitions {
		return nil, fmt.Errorf("%d records", len(recs))
	}
	out := map[string]uint64{}
	for p, rec := range recs {
		if rec.Counters.Key == "" {
			return nil, fmt.Errorf("partition %d: acquired, nothing committed yet", p)
		}
		data, err := recordCounters(ctx, st, rec)
		if err != nil {
			return nil, err
		}
		var m map[string]uint64
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, err
		}
		for k, v := range m {
			out[k] += v
		}
	}
	return out, nil
}

// pollUntil polls cond every 50ms until it holds or within passes.
func pollUntil(within time.Duration, cond func() bool) error {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", within)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// recordKeys is how many bucket keys rec may account for besides itself:
// each chunk of a value it references and of that value's other slot, and
// the deltas of its chain since the snapshot.
func recordKeys(t *testing.T, st *checkpoint.Store, rec *checkpoint.Record) uint64 {
	t.Helper()
	refs := []checkpoint.Ref{rec.Counters, rec.Rules}
	if rec.DaysIndex != nil {
		refs = append(refs, *rec.DaysIndex)
	}
	days, err := st.DayRefs(t.Context(), rec)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range days {
		refs = append(refs, d)
	}
	var n uint64
	for _, ref := range refs {
		n += 2 * uint64(ref.Chunks)
	}
	if c := rec.Deltas; c != nil {
		n += uint64(c.Len * c.Chunks)
	}
	return n
}
