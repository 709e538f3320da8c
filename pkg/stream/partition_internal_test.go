package stream

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
	"github.com/faceid-observability/faceid-exporter/pkg/books"
	"github.com/faceid-observability/faceid-exporter/pkg/checkpoint"
	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/metrics"
)

type quietHooks struct{}

func (quietHooks) Received(int, int)                           {}
func (quietHooks) Counted(*classify.Result, int64)             {}
func (quietHooks) Rejected(string, *classify.RejectError, int) {}
func (quietHooks) Processed(time.Duration)                     {}

// logBuffer collects a test's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// internalRig is a server with the FACEID stream of n events and a
// checkpoint store, with group options for one partition.
type internalRig struct {
	url   string
	js    jetstream.JetStream
	store *checkpoint.Store
	o     GroupOptions
	logs  *logBuffer
}

func newInternalRig(t *testing.T, n int) *internalRig {
	t.Helper()
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s.ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "FACEID", Subjects: []string{"faceid.results.>"}}); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := js.Publish(t.Context(), "faceid.results.eid", fmt.Appendf(nil, `{"id":"e%d","channel":"eid","code":"0"}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	kv, err := checkpoint.OpenBucket(t.Context(), js, checkpoint.BucketOptions{Bucket: "ckpt", Create: true})
	if err != nil {
		t.Fatal(err)
	}
	cat, err := classify.Default()
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(prometheus.NewRegistry(), cat, metrics.Options{})
	logs := &logBuffer{}
	return &internalRig{url: s.ClientURL(), js: js, store: checkpoint.NewStore(kv, "FACEID", "g"), logs: logs, o: GroupOptions{
		Stream: "FACEID", Group: "g", Filters: [][]string{{"faceid.results.>"}}, Owns: [][]bool{nil},
		CheckpointInterval: 100 * time.Millisecond, TakeoverTimeout: 3 * time.Second, PollInterval: 200 * time.Millisecond, PullMaxMessages: 100,
		Catalog: cat, Layout: books.NewLayout(cat, books.LayoutOptions{}),
		Rules:      books.RulesOptions{DedupeWindow: 10 * time.Minute, DedupeCapacity: 1000},
		DeadLetter: NewDeadLetter(nc, "faceid.deadletter", m), Hooks: quietHooks{}, Observer: m,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}}
}

// commitAll runs a replica named instance until it has committed the whole
// stream, then stops it (released).
func (r *internalRig) commitAll(t *testing.T, instance string, last uint64) *checkpoint.Record {
	t.Helper()
	nc := natstest.Connect(t, r.url)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	o := r.o
	o.Instance = instance
	g, err := StartGroup(t.Context(), nc, js, r.store, o)
	if err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, 20*time.Second, instance+" commits the stream", func() bool {
		rec, _, err := r.store.Load(t.Context(), 0)
		return err == nil && rec.Seq == last
	})
	if err := g.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	rec, _, err := r.store.Load(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// idleGroup is a replica that does not run its ticks: the test calls acquire
// itself.
func (r *internalRig) idleGroup(t *testing.T, url, instance string) *Group {
	t.Helper()
	nc := natstest.Connect(t, url, nats.MaxReconnects(-1))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := checkpoint.OpenBucket(t.Context(), js, checkpoint.BucketOptions{Bucket: "ckpt"})
	if err != nil {
		t.Fatal(err)
	}
	o := r.o
	o.Instance = instance
	g := &Group{o: o, nc: nc, js: js, store: checkpoint.NewStore(kv, "FACEID", "g"), log: o.Logger, parts: map[int]*partition{}, seen: map[int]*seenRecord{},
		members: map[string]member{}, done: make(chan struct{}), resumeAt: map[int]uint64{}}
	// As StartGroup, without its run loop.
	g.o.GCInterval, g.o.MemberExpiry = time.Minute, 3*g.o.TakeoverTimeout
	g.runID, g.memberGCAt = newRunID(), time.Now()
	g.unpartitioned.Store(-1)
	t.Cleanup(func() {
		for _, pt := range g.parts {
			_ = pt.stop(context.Background())
		}
	})
	return g
}

// committedOwner is an idle replica named instance that took partition 0 and
// committed it at seq; it returns that record and its revision.
func (r *internalRig) committedOwner(t *testing.T, instance string, seq uint64) (*Group, *checkpoint.Record, uint64) {
	t.Helper()
	g := r.idleGroup(t, r.url, instance)
	if !g.acquire(t.Context(), 0) {
		t.Fatalf("%s could not take the partition:\n%s", instance, r.logs)
	}
	var rec *checkpoint.Record
	var rev uint64
	natstest.WaitFor(t, 20*time.Second, instance+" commits the stream", func() bool {
		var err error
		rec, rev, err = r.store.Load(t.Context(), 0)
		return err == nil && rec.Seq == seq
	})
	return g, rec, rev
}

// TestRetakenPartitionShowsSeries (defect 9): a replica that takes back a
// partition it had stopped itself (its books hidden until a replay reaches
// what it had processed), from a checkpoint another replica committed at the
// end of the stream, exposes the partition at once, with nothing left to
// read.
func TestRetakenPartitionShowsSeries(t *testing.T) {
	r := newInternalRig(t, 30)
	r.commitAll(t, "b", 30)
	a := r.idleGroup(t, r.url, "a")
	a.resumeAt[0] = 30 // a's partition had stopped itself after processing 30
	if !a.acquire(t.Context(), 0) {
		t.Fatalf("a could not take the partition back:\n%s", r.logs)
	}
	if got := len(a.Owned()); got != 1 {
		t.Fatalf("a exposes %d partitions right after taking back partition 0 at the end of the stream, want 1", got)
	}
}

// stallProxy forwards a client's connection to a NATS server and, once the
// client has sent trigger, holds the server's bytes for hold (a server that
// stops answering for a while, as one catching up after a restart), then
// delivers them.
type stallProxy struct {
	l       net.Listener
	target  string
	trigger []byte
	hold    time.Duration
	once    sync.Once
	stalled chan struct{}
}

func newStallProxy(t *testing.T, target, trigger string, hold time.Duration) *stallProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{l: l, target: strings.TrimPrefix(target, "nats://"), trigger: []byte(trigger), hold: hold, stalled: make(chan struct{})}
	t.Cleanup(func() { l.Close() })
	go p.serve(t)
	return p
}

func (p *stallProxy) url() string { return "nats://" + p.l.Addr().String() }

func (p *stallProxy) serve(t *testing.T) {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		t.Cleanup(func() { c.Close(); s.Close() })
		var mu sync.Mutex // held while the server's bytes are held
		go func() {
			buf := make([]byte, 32<<10)
			for {
				n, err := s.Read(buf)
				mu.Lock()
				_, werr := c.Write(buf[:n])
				mu.Unlock()
				if err != nil || werr != nil {
					c.Close()
					return
				}
			}
		}()
		go func() {
			buf := make([]byte, 32<<10)
			var seen []byte
			for {
				n, err := c.Read(buf)
				if n > 0 {
					seen = append(seen, buf[:n]...)
					if bytes.Contains(seen, p.trigger) {
						seen = nil
						p.once.Do(func() {
							mu.Lock()
							close(p.stalled)
							time.AfterFunc(p.hold, mu.Unlock)
						})
					}
					if len(seen) > 64<<10 {
						seen = append([]byte(nil), seen[len(seen)-len(p.trigger):]...)
					}
					if _, werr := s.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					s.Close()
					return
				}
			}
		}()
	}
}

// TestStartBoundedAndReleased (defect 10): a replica whose first read of a
// partition's checkpoint values gets no answer (the server holds its replies
// for a while) gives up within its bound instead of waiting 30 s while
// holding the record, says what it waited on, and releases the partition, so
// that any replica may take it at once.
func TestStartBoundedAndReleased(t *testing.T) {
	r := newInternalRig(t, 30)
	rec := r.commitAll(t, "b", 30)
	r.o.TakeoverTimeout = 6 * time.Second           // margins for a loaded machine
	step := max(r.o.TakeoverTimeout/3, time.Second) // partition.stepTimeout
	// The server's answers stop when a asks for the counters, for a little
	// longer than one read may wait: a's read times out, its release goes
	// through once the answers come again.
	p := newStallProxy(t, r.url, rec.Counters.Key+".c0", step+step/2)
	a := r.idleGroup(t, p.url(), "a")
	begin := time.Now()
	ok := a.acquire(t.Context(), 0)
	took := time.Since(begin)
	select {
	case <-p.stalled:
	default:
		t.Fatalf("the counters were never read through the proxy:\n%s", r.logs)
	}
	if ok {
		t.Fatalf("a started the partition after %s although its read of the counters waited longer than %s:\n%s", took.Round(time.Millisecond), step, r.logs)
	}
	if took > 3*step {
		t.Errorf("a's start gave up after %s, want about %s", took.Round(time.Millisecond), step)
	}
	logs := r.logs.String()
	if !strings.Contains(logs, "partition start waiting") || !strings.Contains(logs, rec.Counters.Key) {
		t.Errorf("no log line while a waited on %s:\n%s", rec.Counters.Key, logs)
	}
	now, _, err := r.store.Load(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !now.Released || now.Owner != "" || now.Seq != rec.Seq {
		t.Errorf("after the failed start the record is owner %q released %v seq %d, want released at %d:\n%s", now.Owner, now.Released, now.Seq, rec.Seq, logs)
	}
	// Any replica takes it at once, and nothing is lost.
	c := r.idleGroup(t, r.url, "c")
	if !c.acquire(t.Context(), 0) {
		t.Fatalf("c could not take the released partition:\n%s", r.logs)
	}
}

// TestUnacknowledgedDeadLetterNeverCommitted (defect 4): a dead letter whose
// publication failed is never committed as stored. The periodic commit that
// finds the failure stops the partition; a stop (SIGTERM, a release) that
// comes before the group's next tick has dropped it must not commit past the
// dead letter either. The group here runs no ticks, so the stop always
// comes first.
func TestUnacknowledgedDeadLetterNeverCommitted(t *testing.T) {
	r := newInternalRig(t, 10)
	// The dead-letter stream is full and refuses new messages.
	if _, err := r.js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "DL", Subjects: []string{"faceid.deadletter"}, MaxMsgs: 1, Discard: jetstream.DiscardNew}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.js.Publish(t.Context(), "faceid.deadletter", []byte("full")); err != nil {
		t.Fatal(err)
	}
	const bad = 11
	if _, err := r.js.Publish(t.Context(), "faceid.results.eid", []byte(`{"channel":`)); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := r.js.Publish(t.Context(), "faceid.results.eid", fmt.Appendf(nil, `{"id":"after%d","channel":"eid","code":"0"}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	r.o.DeadLetterJetStream = true
	a := r.idleGroup(t, r.url, "a")
	if !a.acquire(t.Context(), 0) {
		t.Fatalf("a could not take the partition:\n%s", r.logs)
	}
	pt := a.parts[0]
	select {
	case err := <-pt.failed:
		t.Logf("the partition stopped: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatalf("the refused dead letter did not stop the partition:\n%s", r.logs)
	}
	delete(a.parts, 0)
	err := pt.stop(t.Context())
	t.Logf("stop: %v", err)
	rec, _, lerr := r.store.Load(t.Context(), 0)
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

// countHooks counts what a partition reports received and counted.
type countHooks struct {
	quietHooks
	received, counted atomic.Int64
}

func (h *countHooks) Received(received, counted int) {
	h.received.Add(int64(received))
	h.counted.Add(int64(counted))
}

// TestReaderResetResumesAfterCounted: the partition's reader starts a new
// server-side consumer right after the last message its worker counted when
// the server deletes the consumer under it (a 409 on the waiting pull) and
// when a delivery is lost on the way (here the subscription's channel
// overflows while the worker is held: a gap in the delivery sequence). Every
// message is counted once: none twice, none skipped. Before the reader, the
// ordered consumer of nats.go restarted after the last message it had handed
// over, which the worker might not have counted (chaos seed 1013009033).
func TestReaderResetResumesAfterCounted(t *testing.T) {
	r := newInternalRig(t, 30)
	h := &countHooks{}
	r.o.Hooks = h
	a := r.idleGroup(t, r.url, "a")
	if !a.acquire(t.Context(), 0) {
		t.Fatalf("a could not take the partition:\n%s", r.logs)
	}
	pt := a.parts[0]
	natstest.WaitFor(t, 20*time.Second, "a counts the stream", func() bool { return pt.processed.Load() == 30 })
	publish := func(from, n int) {
		for i := range n {
			if _, err := r.js.Publish(t.Context(), "faceid.results.eid", fmt.Appendf(nil, `{"id":"late%d","channel":"eid","code":"0"}`, from+i)); err != nil {
				t.Fatal(err)
			}
		}
	}

	t.Run("consumer deleted", func(t *testing.T) {
		first := pt.rd.consumer().CachedInfo().Name
		if err := r.js.DeleteConsumer(t.Context(), "FACEID", first); err != nil {
			t.Fatal(err)
		}
		publish(0, 3)
		natstest.WaitFor(t, 20*time.Second, "the partition counts the new messages", func() bool { return pt.processed.Load() == 33 })
		if c := pt.consumer.Load(); c == nil || *c == first {
			t.Errorf("the messages after the deletion came from consumer %v, want a new one (the first was %s)", c, first)
		}
	})

	t.Run("delivery lost", func(t *testing.T) {
		before := *pt.consumer.Load()
		// Hold the worker (it takes the books' lock for every message) and
		// ask the consumer for many more messages than the reader's pulls
		// (and its subscription's channel) allow: the client drops the rest
		// as a slow consumer.
		pt.books.Lock()
		locked := true
		defer func() {
			if locked {
				pt.books.Unlock()
			}
		}()
		publish(100, 3*pt.g.o.PullMaxMessages+100)
		inbox, next := pt.rd.sub.Subject, pt.rd.next
		if err := r.js.Conn().PublishRequest(next, inbox, []byte(`{"batch":1000,"expires":5000000000}`)); err != nil {
			t.Fatal(err)
		}
		natstest.WaitFor(t, 20*time.Second, "the client drops messages", func() bool {
			n, _ := pt.rd.sub.Dropped()
			return n > 0
		})
		locked = false
		pt.books.Unlock()
		want := uint64(33 + 3*pt.g.o.PullMaxMessages + 100)
		natstest.WaitFor(t, 30*time.Second, "the partition counts every message", func() bool { return pt.processed.Load() == want })
		if c := *pt.consumer.Load(); c == before {
			t.Errorf("no new consumer after the lost deliveries (still %s)", c)
		}
	})
	if got, want := h.counted.Load(), int64(33+3*pt.g.o.PullMaxMessages+100); got != want {
		t.Errorf("counted %d messages, want %d (each once)\n%s", got, want, r.logs)
	}
	if got := h.received.Load(); got != h.counted.Load() {
		t.Errorf("received %d, counted %d: some were duplicates or rejected", got, h.counted.Load())
	}
}

// TestRefusedCommitStillOwnedRetries: a record write refused although the
// record is still this owner's (its own earlier commit, applied with its
// answer lost, shows a later revision and another position) is adopted and
// the partition goes on committing. Found by the chaos seed 697910899 (a
// 3-node cluster, an owner frozen past its commit's deadline while messages
// arrived): the commit loop took the refusal for a fence and ended, with the
// partition still held and never committed again.
func TestRefusedCommitStillOwnedRetries(t *testing.T) {
	r := newInternalRig(t, 30)
	a, rec, rev := r.committedOwner(t, "a", 30)
	// The owner's own commit, applied without its answer: same owner and
	// epoch, a later commit number, an earlier position.
	own := *rec
	own.Commit++
	own.Seq--
	if _, err := r.store.Commit(t.Context(), &own, rev); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := r.js.Publish(t.Context(), "faceid.results.eid", fmt.Appendf(nil, `{"id":"after%d","channel":"eid","code":"0"}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	natstest.WaitFor(t, 20*time.Second, "a commits again after adopting its own record", func() bool {
		now, _, err := r.store.Load(t.Context(), 0)
		return err == nil && now.Seq == 35 && now.Owner == "a" && now.Commit > own.Commit
	})
	if pt := a.parts[0]; pt == nil || pt.fenced.Load() {
		t.Errorf("a's partition was fenced by its own record:\n%s", r.logs)
	}
}

// TestFinalCommitAfterOwnWriteLanded: the record write of a periodic commit
// that stop cancelled may land after the loop has ended; the final commit's
// write is then refused although the record is still this owner's. stop
// adopts it and commits again instead of failing (found by
// TestGracefulShutdownUnderLoad under -race on a loaded machine: "stop
// consumer: partition 0: checkpoint fenced: another owner committed").
func TestFinalCommitAfterOwnWriteLanded(t *testing.T) {
	r := newInternalRig(t, 30)
	a, rec, rev := r.committedOwner(t, "a", 30)
	pt := a.parts[0]
	// The commit loop ends (as stop ends it) ...
	pt.cancel()
	<-pt.done
	// ... and its last record write lands afterwards: same owner and epoch,
	// a later commit number.
	own := *rec
	own.Commit++
	if _, err := r.store.Commit(t.Context(), &own, rev); err != nil {
		t.Fatal(err)
	}
	delete(a.parts, 0)
	if err := pt.stop(t.Context()); err != nil {
		t.Fatalf("stop: %v\n%s", err, r.logs)
	}
	now, _, err := r.store.Load(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !now.Released || now.Seq != 30 || now.Commit <= own.Commit {
		t.Errorf("record after stop: released %v, seq %d, commit %d; want released at 30 after commit %d\n%s", now.Released, now.Seq, now.Commit, own.Commit, r.logs)
	}
}
