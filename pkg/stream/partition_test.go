package stream_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
)

// publishEvents publishes n valid, distinct events of channel ch (ids
// prefix-0 … prefix-n-1) and waits for their acknowledgements.
func publishEvents(t *testing.T, js jetstream.JetStream, prefix string, n int, ch string) {
	t.Helper()
	pub, wait := jsPublish(t, js)
	ts := time.Now().UTC().Format(time.RFC3339Nano)
	for i := range n {
		pub("faceid.results."+ch, fmt.Appendf(nil, `{"id":"%s-%d","ts":%q,"channel":%q,"code":"0"}`, prefix, i, ts, ch))
	}
	wait()
}

// verified sums the faceid_verifications_total counters.
func verified(c map[string]uint64) uint64 {
	var n uint64
	for k, v := range c {
		if strings.HasPrefix(k, "faceid_verifications_total{") {
			n += v
		}
	}
	return n
}

func streamCreated(t *testing.T, js jetstream.JetStream) time.Time {
	t.Helper()
	s, err := js.Stream(t.Context(), "FACEID")
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().Created
}

// TestRecreatedStreamCountsOnce (defect 2): a stream deleted and re-created
// while the group reads it is counted once. The ordered consumer re-creates
// itself at the old sequence + 1 on the new stream; its messages must not be
// counted under the old stream's identity (and then again from the new
// stream's start): 50 messages, delete, re-create, 300 new → 350, not 600.
// The poll interval is long, so that only the per-consumer identity check
// can notice the new stream before its messages are counted.
func TestRecreatedStreamCountsOnce(t *testing.T) {
	cat := catalog(t)
	s := natstest.RunServer(t)
	js := newStream(t, s.ClientURL(), jetstream.StreamConfig{})
	publishEvents(t, js, "old", 50, "wechat_h5")
	a := startGroup(t, s.ClientURL(), cat, groupOpts{instance: "a", poll: 30 * time.Second})
	natstest.WaitFor(t, 20*time.Second, "a commits the first stream", allCommitted(t, a.store, 1, 50))
	if err := js.DeleteStream(t.Context(), "FACEID"); err != nil {
		t.Fatal(err)
	}
	newStream(t, s.ClientURL(), jetstream.StreamConfig{})
	created := streamCreated(t, js)
	publishEvents(t, js, "new", 300, "wechat_h5")
	var c map[string]uint64
	natstest.WaitFor(t, 40*time.Second, "a commits the whole new stream under its identity", func() bool {
		rec, _, err := a.store.Load(t.Context(), 0)
		if err != nil || rec.Seq != 300 || !rec.StreamCreated.Equal(created) {
			return false
		}
		c = committedCounters(t, a.store)
		return true
	})
	if got := verified(c); got != 350 {
		t.Errorf("committed %d verifications, want 350 (50 of the first stream, 300 of the new one)", got)
	}
	// Duplicate detection would hide a second count of the same ids; what
	// it caught says so.
	if got := c["faceid_exporter_duplicates_total{}"]; got != 0 {
		t.Errorf("%d duplicates counted; every message was read once", got)
	}
	if got := c["faceid_exporter_jetstream_stream_resets_total{}"]; got != 1 {
		t.Errorf("stream resets %d, want 1", got)
	}
	natstest.WaitFor(t, 10*time.Second, "a exposes the partition", func() bool { return len(a.g.Owned()) == 1 })
	if got := verified(booksCounters(a.g.Owned()[0].Books)); got != 350 {
		t.Errorf("the live books hold %d verifications, want 350", got)
	}
	a.stop()
}

// TestQuietPartitionLosesNothing (defect 3): with two partitions and a
// stream that keeps 20 messages, 60 messages of one channel, all read, age
// out of the stream: no partition counts any as lost (the quiet one used to
// count the other's 40), and both record how far their consumer looked.
func TestQuietPartitionLosesNothing(t *testing.T) {
	cat := catalog(t)
	s := natstest.RunServer(t)
	js := newStream(t, s.ClientURL(), jetstream.StreamConfig{MaxMsgs: 20, Discard: jetstream.DiscardOld})
	a := startGroup(t, s.ClientURL(), cat, groupOpts{instance: "a", partitions: 2})
	natstest.WaitFor(t, 20*time.Second, "a owns both partitions", func() bool { return len(a.g.Owned()) == 2 })
	for i := range 3 {
		publishEvents(t, js, fmt.Sprintf("burst%d", i), 20, "wechat_h5")
	}
	state := ""
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last state: %s", state)
		}
	})
	natstest.WaitFor(t, 30*time.Second, "both partitions committed past every removed message", func() bool {
		recs, err := a.store.Records(t.Context())
		if err != nil || len(recs) != 2 {
			state = fmt.Sprint(recs, err)
			return false
		}
		for _, r := range recs {
			if r.Counters.Key == "" {
				state = "a partition has not committed yet"
				return false
			}
		}
		n := verified(committedCounters(t, a.store))
		state = fmt.Sprintf("%d verifications committed; partition 0 seq %d lost_up_to %d; partition 1 seq %d lost_up_to %d", n, recs[0].Seq, recs[0].LostUpTo, recs[1].Seq, recs[1].LostUpTo)
		for _, r := range recs {
			if max(r.Seq, r.LostUpTo) < 40 {
				return false
			}
		}
		return n == 60
	})
	c := committedCounters(t, a.store)
	if got := c["faceid_exporter_jetstream_lost_messages_total{}"]; got != 0 {
		recs, _ := a.store.Records(t.Context())
		for p, r := range recs {
			t.Logf("partition %d: seq %d lost_up_to %d", p, r.Seq, r.LostUpTo)
		}
		t.Errorf("%d messages counted as lost; every one was read", got)
	}
	a.stop()
}

// TestUnacknowledgedDeadLetterNeverCommitted (defect 4): a dead letter whose
// publication failed is never committed as stored: after the periodic
// commit that found the failure, a stop (SIGTERM, release) that comes before
// the group's next tick must not commit past it either.
func TestUnacknowledgedDeadLetterNeverCommitted(t *testing.T) {
	cat := catalog(t)
	s := natstest.RunServer(t)
	js := newStream(t, s.ClientURL(), jetstream.StreamConfig{})
	// The dead-letter stream is full and refuses new messages.
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "DL", Subjects: []string{"faceid.deadletter"}, MaxMsgs: 1, Discard: jetstream.DiscardNew}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(t.Context(), "faceid.deadletter", []byte("full")); err != nil {
		t.Fatal(err)
	}
	publishEvents(t, js, "before", 10, "eid")
	if _, err := js.Publish(t.Context(), "faceid.results.eid", []byte(`{"channel":`)); err != nil {
		t.Fatal(err)
	}
	const bad = 11
	publishEvents(t, js, "after", 10, "eid")
	// The group ticks every interval from its start, the partition commits
	// every interval from its acquisition (just after): the commit that
	// finds the refused dead letter comes just after a tick, and the group
	// sees the failure only at the next one, an interval later.
	a := startGroup(t, s.ClientURL(), cat, groupOpts{instance: "a", interval: 4 * time.Second, takeover: 20 * time.Second, deadLetterJS: true})
	natstest.WaitFor(t, 20*time.Second, "the commit finds the dead letter refused", func() bool {
		return gatherCounter(t, a.reg, "faceid_exporter_dead_letter_errors_total", "") > 0
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := a.g.Stop(ctx)
	t.Logf("stop: %v", err)
	rec, _, lerr := a.store.Load(t.Context(), 0)
	if lerr != nil {
		t.Fatal(lerr)
	}
	if rec.Seq >= bad {
		t.Errorf("the record was committed at sequence %d (released %v), past the dead letter at %d that was never stored", rec.Seq, rec.Released, bad)
	}
	if err == nil {
		t.Error("stop reported no error although its final commit could not be made")
	}
}
