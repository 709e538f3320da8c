package stream_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
	"github.com/faceid-observability/faceid-exporter/pkg/books"
	"github.com/faceid-observability/faceid-exporter/pkg/checkpoint"
	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
	"github.com/faceid-observability/faceid-exporter/pkg/metrics"
	"github.com/faceid-observability/faceid-exporter/pkg/simulate"
	"github.com/faceid-observability/faceid-exporter/pkg/stream"
)

// groupRig is one replica of a consumer group in this process.
type groupRig struct {
	t     testing.TB
	g     *stream.Group
	store *checkpoint.Store
	reg   *prometheus.Registry
	m     *metrics.Metrics
	nc    *nats.Conn
}

type nopHooks struct{}

func (nopHooks) Received(int, int)                           {}
func (nopHooks) Counted(*classify.Result, int64)             {}
func (nopHooks) Rejected(string, *classify.RejectError, int) {}
func (nopHooks) Processed(time.Duration)                     {}

type groupOpts struct {
	group, instance string
	partitions      int
	interval        time.Duration
	takeover        time.Duration
	poll            time.Duration // lag and lost-input checks; 200ms if zero
	deadLetterJS    bool
	gcInterval      time.Duration // 0: the group's default
	memberExpiry    time.Duration // 0: the group's default
	deltaRatio      float64       // 0: the group's default; negative: a full snapshot at every commit
	// expectReplicas announces replicas r0..rN-1 as members before starting,
	// so that each aims at its fair share from the first tick.
	expectReplicas int
}

func startGroup(t *testing.T, url string, cat *classify.Catalog, o groupOpts) *groupRig {
	t.Helper()
	return startGroupHooks(t, url, cat, o, nopHooks{})
}

func startGroupHooks(t testing.TB, url string, cat *classify.Catalog, o groupOpts, hooks stream.Hooks) *groupRig {
	t.Helper()
	if o.group == "" {
		o.group = "g"
	}
	if o.interval == 0 {
		o.interval = 100 * time.Millisecond
	}
	if o.takeover == 0 {
		o.takeover = time.Second
	}
	nc := natstest.Connect(t, url)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := checkpoint.OpenBucket(t.Context(), js, checkpoint.BucketOptions{Bucket: "ckpt", Create: true})
	if err != nil {
		t.Fatal(err)
	}
	store := checkpoint.NewStore(kv, "FACEID", o.group)
	for i := 0; i < o.expectReplicas; i++ {
		if _, err := kv.Put(t.Context(), store.MemberKey(fmt.Sprintf("r%d", i)), []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	filters := [][]string{{subject}}
	owns := [][]bool{nil}
	if o.partitions > 1 {
		filters, owns = make([][]string, o.partitions), make([][]bool, o.partitions)
		for p := range owns {
			owns[p] = make([]bool, len(cat.Channels))
		}
		for _, ch := range cat.Channels {
			p := ch.Index % o.partitions
			filters[p] = append(filters[p], "faceid.results."+ch.Name)
			owns[p][ch.Index] = true
		}
	}
	if o.poll == 0 {
		o.poll = 200 * time.Millisecond
	}
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, cat, metrics.Options{})
	g, err := stream.StartGroup(t.Context(), nc, js, store, stream.GroupOptions{
		Stream: "FACEID", Group: o.group, Filters: filters, Subject: subject, Owns: owns, Instance: o.instance,
		CheckpointInterval: o.interval, TakeoverTimeout: o.takeover, PollInterval: o.poll,
		GCInterval: o.gcInterval, MemberExpiry: o.memberExpiry, DeltaRatio: o.deltaRatio,
		Catalog: cat, Layout: books.NewLayout(cat, books.LayoutOptions{}),
		Rules:      books.RulesOptions{DedupeWindow: 10 * time.Minute, DedupeCapacity: 100000},
		DeadLetter: stream.NewDeadLetter(nc, "faceid.deadletter", m), DeadLetterJetStream: o.deadLetterJS,
		Hooks: hooks, Observer: m, Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	return &groupRig{t: t, g: g, store: store, reg: reg, m: m, nc: nc}
}

func (r *groupRig) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.g.Stop(ctx); err != nil {
		r.t.Fatal(err)
	}
}

// committedSeqs returns each partition's committed sequence.
func committedSeqs(t *testing.T, st *checkpoint.Store) map[int]uint64 {
	recs, err := st.Records(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]uint64{}
	for p, r := range recs {
		out[p] = r.Seq
	}
	return out
}

// reference applies every message of the stream, in order, to fresh books:
// what one uninterrupted process decides.
func reference(t *testing.T, js jetstream.JetStream, cat *classify.Catalog) (*books.Books, uint64) {
	t.Helper()
	l := books.NewLayout(cat, books.LayoutOptions{})
	b := books.New(l, books.RulesOptions{DedupeWindow: 10 * time.Minute, DedupeCapacity: 100000})
	c := classify.New(cat, classify.Options{})
	s, err := js.Stream(t.Context(), "FACEID")
	if err != nil {
		t.Fatal(err)
	}
	last := s.CachedInfo().State.LastSeq
	var r classify.Result
	for seq := uint64(1); seq <= last; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			continue
		}
		if err := c.Classify(m.Data, stream.FallbackChannel(m.Subject), m.Time, &r); err != nil {
			var rej *classify.RejectError
			if ok := asReject(err, &rej); ok {
				b.Reject(rej.Reason)
				b.DeadLettered(rej.Reason)
			}
			continue
		}
		b.Apply(&r)
	}
	return b, last
}

func asReject(err error, rej **classify.RejectError) bool {
	e, ok := err.(*classify.RejectError)
	*rej = e
	return ok
}

// booksCounters returns every nonzero counter of the given books, summed, by
// stable key.
func booksCounters(bs ...*books.Books) map[string]uint64 {
	out := map[string]uint64{}
	for _, b := range bs {
		l := b.Layout()
		for s := 0; s < l.Slots(); s++ {
			if v := b.Value(s); v != 0 {
				out[l.Key(s)] += v
			}
		}
	}
	return out
}

// committedCounters reads every partition's committed counters from KV.
func committedCounters(t *testing.T, st *checkpoint.Store) map[string]uint64 {
	t.Helper()
	recs, err := st.Records(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, r := range recs {
		data, err := recordCounters(t.Context(), st, r)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]uint64
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		for k, v := range m {
			out[k] += v
		}
	}
	return out
}

func diffCounters(t *testing.T, got, want map[string]uint64) {
	t.Helper()
	n := 0
	for k, w := range want {
		if g := got[k]; g != w {
			n++
			if n < 20 {
				t.Errorf("%s: got %d, want %d", k, g, w)
			}
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			n++
			if n < 20 {
				t.Errorf("%s: got %d, want none", k, g)
			}
		}
	}
	if n > 0 {
		t.Fatalf("%d counters differ", n)
	}
}

// fillStream publishes n messages of a scenario, with every id sent twice
// (redeliveries) for one message in ten.
func fillStream(t *testing.T, js jetstream.JetStream, cat *classify.Catalog, seed int64, n int, start time.Time) {
	t.Helper()
	gen, err := simulate.NewGenerator(cat, simulate.Baseline, seed, simulate.WithRunID(fmt.Sprintf("r%d", seed)))
	if err != nil {
		t.Fatal(err)
	}
	pub, wait := jsPublish(t, js)
	buf := make([]byte, 0, 1024)
	for i := 0; i < n; i++ {
		msg, subj, _ := gen.Next(buf, start.Add(time.Duration(i)*time.Second))
		buf = msg[:0]
		m := append([]byte(nil), msg...)
		pub(subj, m)
		if i%10 == 3 {
			pub(subj, m)
		}
		if i%97 == 5 {
			pub(subj, []byte(`{"channel":`))
		}
	}
	wait()
}

func newStream(t *testing.T, url string, cfg jetstream.StreamConfig) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, url))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Name = "FACEID"
	if cfg.Subjects == nil {
		cfg.Subjects = []string{subject}
	}
	if _, err := js.CreateStream(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	return js
}

func lastSeq(t *testing.T, js jetstream.JetStream) uint64 {
	s, err := js.Stream(t.Context(), "FACEID")
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().State.LastSeq
}

func allCommitted(t *testing.T, st *checkpoint.Store, partitions int, last uint64) func() bool {
	return func() bool {
		seqs := committedSeqs(t, st)
		if len(seqs) != partitions {
			return false
		}
		for _, s := range seqs {
			if s < last {
				return false
			}
		}
		return true
	}
}

// TestGroupResumesExactlyAfterRestart stops a replica midway through the
// stream and starts another: the committed counters and ledger equal one
// uninterrupted pass, and the new owner's series continue from the committed
// values.
func TestGroupResumesExactlyAfterRestart(t *testing.T) {
	cat := catalog(t)
	s := natstest.RunServer(t)
	js := newStream(t, s.ClientURL(), jetstream.StreamConfig{})
	// Both sides of the 2021-07-19 billing change (counted, but older than
	// the ledger keeps once newer events arrive), then two recent days.
	fillStream(t, js, cat, 1, 600, time.Date(2021, 7, 18, 23, 55, 0, 0, ledger.Beijing))
	today := ledger.DayOf(time.Now())
	start := (today - 1).Start().Add(-25 * time.Minute)
	fillStream(t, js, cat, 3, 2400, start)

	a := startGroup(t, s.ClientURL(), cat, groupOpts{instance: "a"})
	natstest.WaitFor(t, 20*time.Second, "replica a commits past the middle", func() bool {
		return committedSeqs(t, a.store)[0] > 1500
	})
	a.stop()
	fillStream(t, js, cat, 2, 2000, start.Add(3000*time.Second))
	last := lastSeq(t, js)
	b := startGroup(t, s.ClientURL(), cat, groupOpts{instance: "b"})
	natstest.WaitFor(t, 30*time.Second, "replica b commits the whole stream", allCommitted(t, b.store, 1, last))
	want, _ := reference(t, js, cat)
	diffCounters(t, committedCounters(t, b.store), booksCounters(want))
	owned := b.g.Owned()
	if len(owned) != 1 {
		t.Fatalf("replica b owns %d partitions, want 1", len(owned))
	}
	diffCounters(t, booksCounters(owned[0].Books), booksCounters(want))
	kv := b.store.KV()
	rows, err := ledger.Read(t.Context(), kv, "FACEID", "g", 0, ledger.DayOf(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	want.Lock()
	wantRows := want.Rows(0, ledger.DayOf(time.Now()))
	want.Unlock()
	if fmt.Sprint(rows) != fmt.Sprint(wantRows) {
		t.Fatalf("ledger differs:\n got %v\nwant %v", rows, wantRows)
	}
	if days := fmt.Sprint(rows); !strings.Contains(days, (today-2).String()) || !strings.Contains(days, (today-1).String()) {
		t.Fatalf("ledger rows do not span both days: %v", rows)
	}
	if c := booksCounters(want); c["faceid_exporter_ledger_too_old_events_total{}"] == 0 {
		t.Error("no 2021 event was counted as older than the ledger keeps")
	}
	b.stop()
}

// TestGroupFencing: an owner whose partition was taken over has its next
// commit refused by the record's compare-and-set (its watch is stopped, so the
// refusal, not the watch, is what fences it: counted once as a fenced
// checkpoint failure), stops exposing the partition, never overwrites the new
// record; and a new replica takes the partition over from the last committed
// checkpoint, counts it as its takeover, and finishes the stream exactly.
func TestGroupFencing(t *testing.T) {
	cat := catalog(t)
	s := natstest.RunServer(t)
	js := newStream(t, s.ClientURL(), jetstream.StreamConfig{})
	fillStream(t, js, cat, 5, 500, time.Now().Add(-time.Hour))
	a := startGroup(t, s.ClientURL(), cat, groupOpts{instance: "a", takeover: 2 * time.Second})
	natstest.WaitFor(t, 20*time.Second, "a owns the partition", func() bool { return len(a.g.Owned()) == 1 })
	fenced := func() float64 {
		return gatherCounter(t, a.reg, "faceid_exporter_checkpoint_failures_total", `reason="fenced"`)
	}
	if n := fenced(); n != 0 {
		t.Fatalf("%v fenced commits before any rival", n)
	}
	// Without its watch, a learns of the rival only from its own commit.
	a.g.PauseWatch()
	// A rival takes the record over with a compare-and-set, as a standby
	// does once the owner has been silent for the takeover timeout.
	rec, rev, err := a.store.Load(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	rival := *rec
	rival.Owner, rival.Epoch = "rival", rec.Epoch+1
	if _, err := a.store.Commit(t.Context(), &rival, rev); err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, 5*time.Second, "a's next commit is refused", func() bool { return fenced() >= 1 })
	natstest.WaitFor(t, 2*time.Second, "a drops the partition", func() bool { return len(a.g.Owned()) == 0 })
	// Stopped before the rival's silence lets it take the partition back.
	a.stop()
	if n := fenced(); n != 1 {
		t.Errorf("%v fenced commits, want exactly 1 (the first after the takeover; none after it)", n)
	}
	if n := gatherCounter(t, a.reg, "faceid_exporter_takeovers_total", ""); n != 0 {
		t.Errorf("a counted %v takeovers, want 0", n)
	}
	// The stale owner's record never overwrote the rival's.
	now, _, err := a.store.Load(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if now.Owner != "rival" || now.Epoch != rival.Epoch || now.Commit != rival.Commit || now.Seq != rival.Seq {
		t.Fatalf("record owner %q epoch %d commit %d seq %d after the takeover, want the rival's %d/%d/%d", now.Owner, now.Epoch, now.Commit, now.Seq, rival.Epoch, rival.Commit, rival.Seq)
	}
	// The rival is silent: after the takeover timeout a new replica takes
	// the partition over from the checkpoint and finishes the stream exactly.
	fillStream(t, js, cat, 6, 300, time.Now().Add(-time.Hour))
	b := startGroup(t, s.ClientURL(), cat, groupOpts{instance: "b", takeover: 2 * time.Second})
	last := lastSeq(t, js)
	natstest.WaitFor(t, 30*time.Second, "b takes over and commits the stream", allCommitted(t, b.store, 1, last))
	want, _ := reference(t, js, cat)
	diffCounters(t, committedCounters(t, b.store), booksCounters(want))
	if owned := b.g.Owned(); len(owned) != 1 {
		t.Fatalf("b owns %d partitions, want 1", len(owned))
	}
	diffCounters(t, booksCounters(b.g.Owned()[0].Books), booksCounters(want))
	if n := gatherCounter(t, b.reg, "faceid_exporter_takeovers_total", ""); n != 1 {
		t.Errorf("b counted %v takeovers, want 1 (from the silent rival)", n)
	}
	now, _, err = b.store.Load(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if now.Owner != "b" || now.Epoch != rival.Epoch+1 {
		t.Errorf("record owner %q epoch %d, want b at epoch %d (the rival's + 1)", now.Owner, now.Epoch, rival.Epoch+1)
	}
	b.stop()
}

// TestGroupSpreadsPartitions: three replicas of a group with three partitions
// end up owning one each, and the counts summed over them are exact.
func TestGroupSpreadsPartitions(t *testing.T) {
	cat := catalog(t)
	s := natstest.RunServer(t)
	js := newStream(t, s.ClientURL(), jetstream.StreamConfig{})
	fillStream(t, js, cat, 7, 3000, time.Now().Add(-2*time.Hour))
	var rigs []*groupRig
	for _, id := range []string{"x", "y", "z"} {
		rigs = append(rigs, startGroup(t, s.ClientURL(), cat, groupOpts{instance: id, partitions: 3}))
	}
	natstest.WaitFor(t, 30*time.Second, "one partition per replica", func() bool {
		for _, r := range rigs {
			if len(r.g.Owned()) != 1 {
				return false
			}
		}
		return true
	})
	last := lastSeq(t, js)
	natstest.WaitFor(t, 30*time.Second, "every partition committed up to its last message", func() bool {
		for _, r := range rigs {
			for _, o := range r.g.Owned() {
				if o.Status.Lag != 0 {
					return false
				}
			}
		}
		recs, _ := rigs[0].store.Records(t.Context())
		return len(recs) == 3 && recs[0].Seq > 0
	})
	_ = last
	time.Sleep(0) // commits follow the lag within an interval
	natstest.WaitFor(t, 10*time.Second, "committed counts equal one uninterrupted pass", func() bool {
		want, _ := reference(t, js, cat)
		got := committedCounters(t, rigs[0].store)
		w := booksCounters(want)
		for k, v := range w {
			if got[k] != v {
				return false
			}
		}
		return len(got) == len(w)
	})
	var live []*books.Books
	for _, r := range rigs {
		for _, o := range r.g.Owned() {
			live = append(live, o.Books)
		}
	}
	want, _ := reference(t, js, cat)
	diffCounters(t, booksCounters(live...), booksCounters(want))
	for _, r := range rigs {
		r.stop()
	}
}

// TestGroupLostInput: messages removed before they were read (limits, purge)
// and a re-created stream are counted.
func TestGroupLostInput(t *testing.T) {
	cat := catalog(t)
	t.Run("limits", func(t *testing.T) {
		s := natstest.RunServer(t)
		js := newStream(t, s.ClientURL(), jetstream.StreamConfig{MaxMsgs: 100})
		fillStream(t, js, cat, 8, 50, time.Now())
		a := startGroup(t, s.ClientURL(), cat, groupOpts{instance: "a"})
		natstest.WaitFor(t, 20*time.Second, "a commits the stream", allCommitted(t, a.store, 1, lastSeq(t, js)))
		committed := committedSeqs(t, a.store)[0]
		a.stop()
		fillStream(t, js, cat, 9, 200, time.Now()) // 200+ more: the first of them age out unread
		st, _ := js.Stream(t.Context(), "FACEID")
		first := st.CachedInfo().State.FirstSeq
		b := startGroup(t, s.ClientURL(), cat, groupOpts{instance: "b"})
		natstest.WaitFor(t, 20*time.Second, "b commits the stream", allCommitted(t, b.store, 1, lastSeq(t, js)))
		got := committedCounters(t, b.store)["faceid_exporter_jetstream_lost_messages_total{}"]
		if want := first - 1 - committed; got != want {
			t.Fatalf("lost %d, want %d (first sequence %d, committed %d)", got, want, first, committed)
		}
		b.stop()
	})
	t.Run("purge", func(t *testing.T) {
		s := natstest.RunServer(t)
		js := newStream(t, s.ClientURL(), jetstream.StreamConfig{})
		fillStream(t, js, cat, 10, 100, time.Now())
		a := startGroup(t, s.ClientURL(), cat, groupOpts{instance: "a"})
		natstest.WaitFor(t, 20*time.Second, "a commits the stream", allCommitted(t, a.store, 1, lastSeq(t, js)))
		a.stop()
		fillStream(t, js, cat, 11, 40, time.Now())
		unread := lastSeq(t, js) - committedSeqs(t, a.store)[0]
		st, _ := js.Stream(t.Context(), "FACEID")
		if err := st.Purge(t.Context()); err != nil {
			t.Fatal(err)
		}
		fillStream(t, js, cat, 12, 10, time.Now())
		b := startGroup(t, s.ClientURL(), cat, groupOpts{instance: "b"})
		natstest.WaitFor(t, 20*time.Second, "b commits the stream", allCommitted(t, b.store, 1, lastSeq(t, js)))
		if got := committedCounters(t, b.store)["faceid_exporter_jetstream_lost_messages_total{}"]; got != unread {
			t.Fatalf("lost %d, want the %d purged unread", got, unread)
		}
		b.stop()
	})
	t.Run("recreated", func(t *testing.T) {
		s := natstest.RunServer(t)
		js := newStream(t, s.ClientURL(), jetstream.StreamConfig{})
		fillStream(t, js, cat, 13, 100, time.Now())
		a := startGroup(t, s.ClientURL(), cat, groupOpts{instance: "a"})
		natstest.WaitFor(t, 20*time.Second, "a commits the stream", allCommitted(t, a.store, 1, lastSeq(t, js)))
		before := committedCounters(t, a.store)
		a.stop()
		if err := js.DeleteStream(t.Context(), "FACEID"); err != nil {
			t.Fatal(err)
		}
		newStream(t, s.ClientURL(), jetstream.StreamConfig{})
		fillStream(t, js, cat, 14, 30, time.Now())
		b := startGroup(t, s.ClientURL(), cat, groupOpts{instance: "b"})
		natstest.WaitFor(t, 20*time.Second, "b commits the new stream", func() bool {
			rec, _, err := b.store.Load(t.Context(), 0)
			return err == nil && rec.Owner == "b" && rec.Seq == lastSeq(t, js)
		})
		after := committedCounters(t, b.store)
		if after["faceid_exporter_jetstream_stream_resets_total{}"] != 1 {
			t.Fatalf("stream resets %d, want 1", after["faceid_exporter_jetstream_stream_resets_total{}"])
		}
		// The books keep what they had and add the new stream.
		if after["faceid_exporter_duplicates_total{}"] < before["faceid_exporter_duplicates_total{}"] {
			t.Fatal("the books lost counts when the stream was re-created")
		}
		b.stop()
	})
}

func gatherCounter(t *testing.T, g prometheus.Gatherer, name, label string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label != "" && !strings.Contains(fmt.Sprint(m.GetLabel()), strings.Split(label, "=")[1]) {
				continue
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// TestGroupEmptyStreamLosesNothing: a group that starts on an empty stream,
// then sees messages arrive, counts no lost input.
func TestGroupEmptyStreamLosesNothing(t *testing.T) {
	cat := catalog(t)
	s := natstest.RunServer(t)
	js := newStream(t, s.ClientURL(), jetstream.StreamConfig{})
	a := startGroup(t, s.ClientURL(), cat, groupOpts{instance: "a"})
	natstest.WaitFor(t, 10*time.Second, "a owns the partition", func() bool { return len(a.g.Owned()) == 1 })
	fillStream(t, js, cat, 21, 50, time.Now())
	natstest.WaitFor(t, 10*time.Second, "a commits the stream", allCommitted(t, a.store, 1, lastSeq(t, js)))
	if n := committedCounters(t, a.store)["faceid_exporter_jetstream_lost_messages_total{}"]; n != 0 {
		t.Fatalf("%d messages counted as lost on a stream that lost none", n)
	}
	a.stop()
}

// TestGroupWatchSurvivesServerRestart: a replica whose KV watch stalls across
// a NATS server restart restarts it, so it sees a replica that joins
// afterwards and hands it its fair share within seconds (the stalled watch
// took ~18 s to recover by itself).
func TestGroupWatchSurvivesServerRestart(t *testing.T) {
	cat := catalog(t)
	opts := natstest.Options(t)
	s := natstest.Start(t, opts)
	js := newStream(t, s.ClientURL(), jetstream.StreamConfig{})
	fillStream(t, js, cat, 8, 1000, time.Now().Add(-time.Hour))
	a := startGroup(t, s.ClientURL(), cat, groupOpts{instance: "a", partitions: 2, takeover: 2 * time.Second})
	natstest.WaitFor(t, 20*time.Second, "a owns both partitions", func() bool { return len(a.g.Owned()) == 2 })

	s = natstest.Restart(t, s, opts)
	natstest.WaitFor(t, 20*time.Second, "a reconnects", a.nc.IsConnected)

	joined := time.Now()
	b := startGroup(t, s.ClientURL(), cat, groupOpts{instance: "b", partitions: 2, takeover: 2 * time.Second})
	natstest.WaitFor(t, 10*time.Second, "a hands b one partition", func() bool {
		return len(a.g.Owned()) == 1 && len(b.g.Owned()) == 1
	})
	t.Logf("a handed b a partition %s after b started", time.Since(joined).Round(time.Millisecond))
	fillStream(t, js, cat, 9, 500, time.Now().Add(-time.Hour))
	want, _ := reference(t, js, cat)
	natstest.WaitFor(t, 30*time.Second, "the committed counts equal one uninterrupted pass", func() bool {
		got, w := committedCounters(t, a.store), booksCounters(want)
		for k, v := range w {
			if got[k] != v {
				return false
			}
		}
		return len(got) == len(w)
	})
	b.stop()
	a.stop()
}
