package stream_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
	"github.com/faceid-observability/faceid-exporter/pkg/classify"
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
	// A takeover timeout long enough for a loaded machine: nothing here may
	// restart a partition (a restart from the checkpoint would really lose
	// messages from so short a stream).
	a := startGroup(t, s.ClientURL(), cat, groupOpts{instance: "a", partitions: 2, takeover: 10 * time.Second})
	natstest.WaitFor(t, 20*time.Second, "a owns both partitions", func() bool { return len(a.g.Owned()) == 2 })
	for i := range 3 {
		publishEvents(t, js, fmt.Sprintf("burst%d", i), 20, "wechat_h5")
		natstest.WaitFor(t, 20*time.Second, "the burst committed", func() bool {
			for _, r := range must(a.store.Records(t.Context())) {
				if r.Seq == uint64(20*(i+1)) {
					return true
				}
			}
			return false
		})
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

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// slowHooks make a partition slow: every counted message takes d.
type slowHooks struct {
	nopHooks
	d time.Duration
}

func (h slowHooks) Counted(*classify.Result, int64) { time.Sleep(h.d) }

// TestLaggingPartitionCountsItsLoss (defect 3, under churn): with two
// partitions, while one lags behind a burst of its own messages that the
// stream's limit removes unread, it counts them as lost, never more than it
// really missed, and the other partition counts none of them.
func TestLaggingPartitionCountsItsLoss(t *testing.T) {
	cat := catalog(t)
	s := natstest.RunServer(t)
	js := newStream(t, s.ClientURL(), jetstream.StreamConfig{MaxMsgs: 500, Discard: jetstream.DiscardOld})
	a := startGroupHooks(t, s.ClientURL(), cat, groupOpts{instance: "a", partitions: 2, takeover: 20 * time.Second}, slowHooks{d: time.Millisecond})
	natstest.WaitFor(t, 20*time.Second, "a owns both partitions", func() bool { return len(a.g.Owned()) == 2 })
	const published = 4000
	for i := range published / 500 {
		publishEvents(t, js, fmt.Sprintf("lag%d", i), 500, "wechat_h5")
	}
	last := lastSeq(t, js)
	var lost map[int]uint64
	var counted uint64
	natstest.WaitFor(t, 60*time.Second, "the lagging partition reaches the end", func() bool {
		recs, err := a.store.Records(t.Context())
		if err != nil || len(recs) != 2 {
			return false
		}
		done := false
		lost = map[int]uint64{}
		for p, r := range recs {
			if r.Seq == last {
				done = true
			}
			if r.Counters.Key == "" {
				return false
			}
			data, err := recordCounters(t.Context(), a.store, r)
			if err != nil {
				return false
			}
			var m map[string]uint64
			if err := json.Unmarshal(data, &m); err != nil {
				t.Fatal(err)
			}
			lost[p] = m["faceid_exporter_jetstream_lost_messages_total{}"]
		}
		counted = verified(committedCounters(t, a.store))
		return done
	})
	var total uint64
	for _, n := range lost {
		total += n
	}
	t.Logf("published %d, counted %d, really missed %d, counted lost by partition %v", published, counted, published-counted, lost)
	if counted == published {
		t.Skip("the partition kept up: nothing was removed unread (the machine was too fast for this test)")
	}
	if total == 0 {
		t.Errorf("%d messages were removed before they were read, none counted as lost", published-counted)
	}
	if counted+total > published {
		t.Errorf("%d counted and %d lost, more than the %d published", counted, total, published)
	}
	if min(lost[0], lost[1]) != 0 {
		t.Errorf("both partitions count lost messages (%v); every message was one partition's", lost)
	}
	a.stop()
}
