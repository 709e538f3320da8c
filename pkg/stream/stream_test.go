package stream_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/dedupe"
	"github.com/faceid-observability/faceid-exporter/pkg/dedupekv"
	"github.com/faceid-observability/faceid-exporter/pkg/simulate"
	"github.com/faceid-observability/faceid-exporter/pkg/stream"
)

const subject = "faceid.results.>"

// publish sends n generated events of a scenario through pub and returns
// their ground truth.
func publish(t testing.TB, cat *classify.Catalog, sc simulate.Scenario, seed int64, n int, pub func(subject string, msg []byte)) *truth {
	t.Helper()
	gen, err := simulate.NewGenerator(cat, sc, seed, simulate.WithRunID("t"+strings.ReplaceAll(string(sc), "-", "")))
	if err != nil {
		t.Fatal(err)
	}
	tr := newTruth()
	buf := make([]byte, 0, 1024)
	now := time.Now()
	for i := 0; i < n; i++ {
		msg, subj, x := gen.Next(buf, now.Add(time.Duration(i)*time.Millisecond))
		buf = msg[:0]
		pub(subj, append([]byte(nil), msg...))
		tr.add(x)
	}
	return tr
}

func TestCoreCountsMatchGroundTruth(t *testing.T) {
	cat := catalog(t)
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s.ClientURL())
	r := newRig(t, cat, dedupe.NewWindow(10*time.Minute, 100000))
	dl := stream.NewDeadLetter(nc, "faceid.deadletter", r.m)
	core, err := stream.SubscribeCore(nc, stream.CoreOptions{Subject: subject, Queue: "faceid-exporter"}, r.pipes.New(false), dl, r.m, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if ok, why := core.Ready(); !ok {
		t.Fatalf("not ready: %s", why)
	}
	pubc := natstest.Connect(t, s.ClientURL())
	const n = 5000
	tr := publish(t, cat, simulate.Baseline, 1, n, func(subj string, msg []byte) {
		if err := pubc.Publish(subj, msg); err != nil {
			t.Fatal(err)
		}
	})
	if err := pubc.Flush(); err != nil {
		t.Fatal(err)
	}
	received := r.m.ReceivedCounter(false)
	natstest.WaitFor(t, 10*time.Second, "every event received", func() bool { return testutil.ToFloat64(received) == n })
	if err := core.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	compare(t, verifications(t, r.reg), tr.byCode)
	if got := sum(family(t, r.reg, "faceid_exporter_duplicates_total")); got != 0 {
		t.Errorf("duplicates = %v, want 0", got)
	}
	if tr.accepted < n*9/10 {
		t.Fatalf("only %d of %d events accepted: the baseline should be almost all valid", tr.accepted, n)
	}
}

func TestJetStreamCountsMatchGroundTruth(t *testing.T) {
	cat := catalog(t)
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s.ClientURL())
	r := newRig(t, cat, dedupe.NewWindow(10*time.Minute, 100000))
	dl := stream.NewDeadLetter(nc, "faceid.deadletter", r.m)
	ctx := t.Context()
	opts := stream.JetStreamOptions{Stream: "FACEID", Consumer: "faceid-exporter", Subject: subject, CreateStream: true, MaxAckPending: 1000, AckWait: 30 * time.Second}
	js, err := stream.ConsumeJetStream(ctx, nc, opts, r.pipes.New(true), dl, r.m, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, 10*time.Second, "consumer bound", func() bool { ok, _ := js.Ready(); return ok })

	pubc := natstest.Connect(t, s.ClientURL())
	pjs, err := jetstream.New(pubc)
	if err != nil {
		t.Fatal(err)
	}
	const n = 3000
	pub, wait := jsPublish(t, pjs)
	tr := publish(t, cat, simulate.Baseline, 2, n, pub)
	wait()
	received := r.m.ReceivedCounter(true)
	natstest.WaitFor(t, 20*time.Second, "every event received", func() bool { return testutil.ToFloat64(received) >= n })
	// Acked: nothing pending for the consumer.
	info := consumerInfo(t, pjs, "FACEID", "faceid-exporter", func(ci *jetstream.ConsumerInfo) bool {
		return ci.NumAckPending == 0 && ci.NumPending == 0
	})
	if info.NumRedelivered != 0 {
		t.Errorf("%d redelivered", info.NumRedelivered)
	}
	if err := js.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	compare(t, verifications(t, r.reg), tr.byCode)
	if got := testutil.ToFloat64(received); got != n {
		t.Errorf("received %v, want %d", got, n)
	}
}

// jsPublish returns a publisher into the stream that waits for the server's
// acknowledgements every few hundred messages and fails the test on any error.
// filledStream starts a server with the FACEID stream on subject and publishes
// n events of the scenario into it, acknowledged; it returns the server, a
// JetStream client of the publisher's connection and the ground truth.
func filledStream(t *testing.T, cat *classify.Catalog, sc simulate.Scenario, seed int64, n int) (*server.Server, jetstream.JetStream, *truth) {
	t.Helper()
	s := natstest.RunServer(t)
	pjs, err := jetstream.New(natstest.Connect(t, s.ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pjs.CreateStream(t.Context(), jetstream.StreamConfig{Name: "FACEID", Subjects: []string{subject}}); err != nil {
		t.Fatal(err)
	}
	pub, wait := jsPublish(t, pjs)
	tr := publish(t, cat, sc, seed, n, pub)
	wait()
	return s, pjs, tr
}

func jsPublish(t testing.TB, js jetstream.JetStream) (pub func(subject string, msg []byte), wait func()) {
	var futs []jetstream.PubAckFuture
	wait = func() {
		for _, f := range futs {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				t.Fatal(err)
			}
		}
		futs = futs[:0]
	}
	return func(subject string, msg []byte) {
		f, err := js.PublishAsync(subject, msg)
		if err != nil {
			t.Fatal(err)
		}
		if futs = append(futs, f); len(futs) == 500 {
			wait()
		}
	}, wait
}

// consumerInfo polls the consumer's info until ok holds.
func consumerInfo(t testing.TB, js jetstream.JetStream, streamName, name string, ok func(*jetstream.ConsumerInfo) bool) *jetstream.ConsumerInfo {
	t.Helper()
	var info *jetstream.ConsumerInfo
	natstest.WaitFor(t, 20*time.Second, "consumer state", func() bool {
		c, err := js.Consumer(context.Background(), streamName, name)
		if err != nil {
			return false
		}
		info, err = c.Info(context.Background())
		return err == nil && ok(info)
	})
	return info
}

// TestJetStreamRestartExact stops the exporter in the middle of a stream and
// starts a new one, with fresh memory, on the same durable consumer; the two
// together must count every event exactly once.
//   - graceful (in-memory dedupe store): the first one drains, so what it
//     fetched is counted and acked.
//   - crash (JetStream KV dedupe and reqId stores): the first one's
//     connection is cut with no drain, right after it counted a message: what
//     it counted and had not acked comes again to the second one, which finds
//     those ids in the shared bucket: its duplicates are exactly those
//     redeliveries; the reqId anchors the first one wrote are in the shared
//     reqId bucket, so the NFC server code 0 billable split is exact too.
func TestJetStreamRestartExact(t *testing.T) {
	for _, mode := range []string{"graceful", "crash"} {
		t.Run(mode, func(t *testing.T) { testRestart(t, mode == "crash") })
	}
}

// crashingProcessor closes a connection right after its at-th message is
// counted, so that message (and whatever else was not acked yet) is left
// unacknowledged; busy tells whether a message is being processed.
type crashingProcessor struct {
	p    stream.Processor
	at   int64
	nc   *nats.Conn
	n    atomic.Int64
	busy atomic.Int32
}

func (c *crashingProcessor) Process(data []byte, subject string) error {
	c.busy.Add(1)
	defer c.busy.Add(-1)
	err := c.p.Process(data, subject)
	if c.n.Add(1) == c.at {
		c.nc.Close()
	}
	return err
}

// kvStore opens the JetStream KV dedupe and reqId stores on their own
// connection, as one process would.
func kvStore(t *testing.T, url string, cat *classify.Catalog) (*dedupekv.Store, *dedupekv.ReqIDs) {
	t.Helper()
	nc := natstest.Connect(t, url)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := dedupekv.New(t.Context(), js, dedupekv.Options{Bucket: "faceid-dedupe", Window: 10 * time.Minute, Capacity: 100000, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	req, err := dedupekv.NewReqIDs(t.Context(), js, dedupekv.ReqIDOptions{Bucket: "faceid-dedupe-reqid", Window: cat.ReqIDRule.Window})
	if err != nil {
		t.Fatal(err)
	}
	return st, req
}

func testRestart(t *testing.T, crash bool) {
	cat := catalog(t)
	const n = 6000
	s, pjs, tr := filledStream(t, cat, simulate.HighRiskDeviceSurge, 3, n)
	if len(tr.rejected) != 0 {
		t.Fatalf("the scenario sent rejects %v: the duplicate arithmetic below assumes none", tr.rejected)
	}
	opts := stream.JetStreamOptions{Stream: "FACEID", Consumer: "faceid-exporter", Subject: subject, MaxAckPending: 500, AckWait: time.Second, PullMaxMessages: 500}
	var storeA, storeB dedupe.Store
	var kvA, kvB *dedupekv.Store
	var reqA, reqB *dedupekv.ReqIDs
	var reqIDsA, reqIDsB classify.ReqIDStore // nil: in memory
	if crash {
		// Each process its own stores, fresh memory, one bucket each.
		kvA, reqA = kvStore(t, s.ClientURL(), cat)
		storeA, reqIDsA = kvA, reqA
	} else {
		storeA = dedupe.NewWindow(10*time.Minute, 100000)
	}

	// First exporter: stopped after about a third.
	ncA := natstest.Connect(t, s.ClientURL())
	a := newRigReqIDs(t, cat, storeA, reqIDsA)
	recA := a.m.ReceivedCounter(true)
	var proc stream.Processor
	crasher := &crashingProcessor{p: a.pipes.New(true), at: n / 3, nc: ncA}
	if crash {
		proc = crasher
	} else {
		proc = &slowProcessor{p: a.pipes.New(true), pause: 20 * time.Microsecond}
	}
	jsA, err := stream.ConsumeJetStream(t.Context(), ncA, opts, proc, stream.NewDeadLetter(ncA, "faceid.deadletter", a.m), a.m, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, 20*time.Second, "a third received", func() bool { return testutil.ToFloat64(recA) >= n/3 })
	start := time.Now()
	if crash {
		// Wait until the handler has finished what it had in hand.
		last, stable := -1.0, 0
		natstest.WaitFor(t, 10*time.Second, "the first exporter idle", func() bool {
			got := testutil.ToFloat64(recA)
			if got == last && crasher.busy.Load() == 0 {
				stable++
			} else {
				stable = 0
			}
			last = got
			return stable >= 10
		})
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = jsA.Stop(ctx) // the connection is gone: nothing to drain
		cancel()
	} else if err := jsA.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("stop took %s", d)
	}
	countedA := sum(verifications(t, a.reg))
	if countedA >= float64(tr.accepted) {
		t.Fatalf("the first exporter counted everything (%v): nothing tests the restart", countedA)
	}
	info := consumerInfo(t, pjs, "FACEID", "faceid-exporter", func(*jetstream.ConsumerInfo) bool { return true })
	ackedA := float64(info.Delivered.Stream) - float64(info.NumAckPending)
	unackedCounted := testutil.ToFloat64(recA) - ackedA
	t.Logf("after stop: received %v, counted %v, ack floor %d, delivered %d, ack pending %d: %v counted and not acked",
		testutil.ToFloat64(recA), countedA, info.AckFloor.Stream, info.Delivered.Stream, info.NumAckPending, unackedCounted)
	if crash && unackedCounted < 1 {
		t.Fatalf("the crash left no counted message unacknowledged: nothing tests the shared store")
	}
	if !crash && unackedCounted != 0 {
		// Messages the server had sent but the client never handed to the
		// exporter (in flight when the pull subscription drained) stay
		// pending and are redelivered after AckWait; every message the
		// exporter received must have been acknowledged.
		t.Errorf("graceful stop left %v received messages unacknowledged", unackedCounted)
	}
	ncA.Close()

	// Second exporter: fresh memory; the rest, and the redeliveries.
	if crash {
		kvB, reqB = kvStore(t, s.ClientURL(), cat)
		storeB, reqIDsB = kvB, reqB
	} else {
		storeB = dedupe.NewWindow(10*time.Minute, 100000)
	}
	ncB := natstest.Connect(t, s.ClientURL())
	b := newRigReqIDs(t, cat, storeB, reqIDsB)
	jsB, err := stream.ConsumeJetStream(t.Context(), ncB, opts, b.pipes.New(true), stream.NewDeadLetter(ncB, "faceid.deadletter", b.m), b.m, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	info = consumerInfo(t, pjs, "FACEID", "faceid-exporter", func(ci *jetstream.ConsumerInfo) bool {
		return ci.NumPending == 0 && ci.NumAckPending == 0
	})
	if err := jsB.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := verifications(t, a.reg, b.reg)
	if tr.byCode["billable=true,channel=nfc_server,code=0"] == 0 || tr.byCode["billable=false,channel=nfc_server,code=0"] == 0 {
		t.Fatalf("the scenario has no billed and repeated NFC reqIds: nothing tests the reqId rule across the restart")
	}
	if crash {
		// The reqId anchors are in the shared bucket: every row is exact.
		compare(t, got, tr.byCode)
	} else {
		// The in-memory reqId store lives in each classifier: the second
		// process does not know the reqIds the first one billed, so across a
		// restart only the total of the reqId rule's code is exact, not its
		// billable split.
		compare(t, got, tr.byCode, "channel=nfc_server,code=0")
	}
	dups := sum(family(t, b.reg, "faceid_exporter_duplicates_total"))
	t.Logf("A counted %v, B counted %v, B suppressed %v duplicates; redelivered %d", countedA, sum(verifications(t, b.reg)), dups, info.NumRedelivered)
	if crash {
		if dups != unackedCounted {
			t.Errorf("B suppressed %v duplicates, want %v: the messages A counted and did not ack", dups, unackedCounted)
		}
		if kvB.RemoteDuplicates() != uint64(dups) {
			t.Errorf("B found %d duplicates in the bucket, want %v", kvB.RemoteDuplicates(), dups)
		}
		if e := kvA.Errors() + kvB.Errors(); e != 0 {
			t.Errorf("%d dedupe store errors", e)
		}
		if e := reqA.Errors() + reqB.Errors(); e != 0 {
			t.Errorf("%d reqId store errors", e)
		}
	} else if dups != 0 {
		t.Errorf("B suppressed %v duplicates after a graceful stop, want 0", dups)
	}
}

// TestJetStreamRedeliveryNotCountedTwice has the broker drop the exporter's
// connection repeatedly while it consumes with a short ack wait, so acks are
// lost and messages come again; the dedupe window keeps counts exact.
func TestJetStreamRedeliveryNotCountedTwice(t *testing.T) {
	cat := catalog(t)
	const n = 4000
	s, pjs, tr := filledStream(t, cat, simulate.Baseline, 4, n)

	r := newRig(t, cat, dedupe.NewWindow(10*time.Minute, 100000))
	nc, err := stream.Connect(stream.ConnOptions{URLs: s.ClientURL()}, r.m, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// The handler pauses after counting and before acking, so a disconnect
	// lands between the two.
	slow := &slowProcessor{p: r.pipes.New(true), pause: 200 * time.Microsecond}
	opts := stream.JetStreamOptions{Stream: "FACEID", Consumer: "faceid-exporter", Subject: subject, MaxAckPending: 200, AckWait: 500 * time.Millisecond, PullMaxMessages: 100}
	js, err := stream.ConsumeJetStream(t.Context(), nc, opts, slow, stream.NewDeadLetter(nc, "faceid.deadletter", r.m), r.m, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	received := r.m.ReceivedCounter(true)
	for i := 0; i < 4; i++ {
		natstest.WaitFor(t, 20*time.Second, "progress", func() bool { return testutil.ToFloat64(received) >= float64((i+1)*n/6) })
		cid, err := nc.GetClientID()
		if err != nil {
			t.Fatal(err)
		}
		if err := s.DisconnectClientByID(cid); err != nil {
			t.Fatal(err)
		}
	}
	consumerInfo(t, pjs, "FACEID", "faceid-exporter", func(ci *jetstream.ConsumerInfo) bool {
		return ci.NumPending == 0 && ci.NumAckPending == 0
	})
	if err := js.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	dups := sum(family(t, r.reg, "faceid_exporter_duplicates_total"))
	t.Logf("received %v for %d events, %v duplicates suppressed", testutil.ToFloat64(received), n, dups)
	compare(t, verifications(t, r.reg), tr.byCode)
	if got := testutil.ToFloat64(received) - dups - float64(n-tr.accepted); got < float64(tr.accepted) {
		t.Errorf("counted %v, want %d", got, tr.accepted)
	}
	if testutil.ToFloat64(received) == n {
		t.Log("no redelivery happened this run; the counts were checked all the same")
	}
	if rc := sum(family(t, r.reg, "faceid_exporter_nats_reconnects_total")); rc < 1 {
		t.Errorf("reconnects = %v, want ≥ 1", rc)
	}
}

type slowProcessor struct {
	p     stream.Processor
	pause time.Duration
}

func (s *slowProcessor) Process(data []byte, subject string) error {
	err := s.p.Process(data, subject)
	time.Sleep(s.pause)
	return err
}

// TestDeadLetters sends malformed, oversize and unknown-channel messages: each
// is counted by reason and republished with its reason, and the service goes
// on counting good events.
func TestDeadLetters(t *testing.T) {
	for _, mode := range []string{"core", "jetstream"} {
		t.Run(mode, func(t *testing.T) {
			cat := catalog(t)
			s := natstest.RunServer(t)
			nc := natstest.Connect(t, s.ClientURL())
			r := newRig(t, cat, dedupe.NewWindow(10*time.Minute, 100000))
			dl := stream.NewDeadLetter(nc, "faceid.deadletter", r.m)

			obs := natstest.Connect(t, s.ClientURL())
			var mu sync.Mutex
			var dead []*nats.Msg
			if _, err := obs.Subscribe("faceid.deadletter", func(m *nats.Msg) { mu.Lock(); dead = append(dead, m); mu.Unlock() }); err != nil {
				t.Fatal(err)
			}
			if err := obs.Flush(); err != nil {
				t.Fatal(err)
			}

			var pubf func(subj string, msg []byte)
			var stop func()
			var pjs jetstream.JetStream
			if mode == "core" {
				core, err := stream.SubscribeCore(nc, stream.CoreOptions{Subject: subject, Queue: "q"}, r.pipes.New(false), dl, r.m, testLogger(t))
				if err != nil {
					t.Fatal(err)
				}
				if err := nc.Flush(); err != nil {
					t.Fatal(err)
				}
				pubf = func(subj string, msg []byte) {
					if err := obs.Publish(subj, msg); err != nil {
						t.Fatal(err)
					}
				}
				stop = func() { _ = core.Stop(context.Background()) }
			} else {
				opts := stream.JetStreamOptions{Stream: "FACEID", Consumer: "c", Subject: subject, CreateStream: true, MaxAckPending: 100, AckWait: dlAckWait}
				js, err := stream.ConsumeJetStream(t.Context(), nc, opts, r.pipes.New(true), dl, r.m, testLogger(t))
				if err != nil {
					t.Fatal(err)
				}
				natstest.WaitFor(t, 10*time.Second, "bound", func() bool { ok, _ := js.Ready(); return ok })
				pjs, _ = jetstream.New(obs)
				pubf = func(subj string, msg []byte) {
					if _, err := pjs.Publish(t.Context(), subj, msg); err != nil {
						t.Fatal(err)
					}
				}
				stop = func() { _ = js.Stop(context.Background()) }
			}
			good := `{"id":"g1","channel":"app_sdk","code":"0"}`
			oversize := append([]byte(`{"id":"big","channel":"app_sdk","code":"0","pad":"`), bytes.Repeat([]byte("x"), classify.MaxMessageBytes)...)
			oversize = append(oversize, `"}`...)
			cases := []struct {
				subject string
				msg     []byte
				reason  string
			}{
				{"faceid.results.app_sdk", []byte(`{"id":"x1","code":`), "invalid_json"},
				{"faceid.results.app_sdk", []byte(`[1,2,3]`), "not_object"},
				{"faceid.results.telegram", []byte(`{"id":"x2","code":"0"}`), "unknown_channel"},
				{"faceid.results.app_sdk", []byte(`{"id":"x3","channel":"app_sdk"}`), "missing_code"},
				{"faceid.results.app_sdk", oversize, "oversize"},
			}
			for _, c := range cases {
				pubf(c.subject, c.msg)
			}
			pubf("faceid.results.app_sdk", []byte(good))
			// An event without channel takes the subject's last token.
			pubf("faceid.results.wechat_h5", []byte(`{"id":"g2","code":"0"}`))
			natstest.WaitFor(t, 10*time.Second, "dead letters", func() bool { mu.Lock(); defer mu.Unlock(); return len(dead) == len(cases) })
			natstest.WaitFor(t, 10*time.Second, "good events counted", func() bool { return sum(verifications(t, r.reg)) == 2 })
			mu.Lock()
			for i, c := range cases {
				m := dead[i]
				if got := m.Header.Get(stream.HeaderReason); got != c.reason {
					t.Errorf("dead letter %d: reason %q, want %q", i, got, c.reason)
				}
				if m.Header.Get(stream.HeaderDetail) == "" {
					t.Errorf("dead letter %d: no detail", i)
				}
				if got := m.Header.Get(stream.HeaderOriginalSubject); got != c.subject {
					t.Errorf("dead letter %d: original subject %q, want %q", i, got, c.subject)
				}
				if !bytes.Equal(m.Data, c.msg) {
					t.Errorf("dead letter %d: payload of %d bytes, want the original %d bytes", i, len(m.Data), len(c.msg))
				}
			}
			mu.Unlock()
			rejected := family(t, r.reg, "faceid_exporter_events_rejected_total")
			dls := family(t, r.reg, "faceid_exporter_dead_letters_total")
			for _, c := range cases {
				if rejected["reason="+c.reason] != 1 || dls["reason="+c.reason] != 1 {
					t.Errorf("%s: rejected %v, dead-lettered %v, want 1 and 1", c.reason, rejected["reason="+c.reason], dls["reason="+c.reason])
				}
			}
			v := verifications(t, r.reg)
			if v["billable=true,channel=app_sdk,code=0"] != 1 || v["billable=true,channel=wechat_h5,code=0"] != 1 {
				t.Errorf("good events: %v", v)
			}
			if mode == "jetstream" {
				// Terminated, not redelivered: still nothing pending once the
				// ack wait has passed three times.
				time.Sleep(3 * dlAckWait)
				ci := consumerInfo(t, pjs, "FACEID", "c", func(ci *jetstream.ConsumerInfo) bool { return ci.NumAckPending == 0 && ci.NumPending == 0 })
				if ci.NumRedelivered != 0 {
					t.Errorf("%d messages redelivered", ci.NumRedelivered)
				}
				if got := testutil.ToFloat64(r.m.ReceivedCounter(true)); got != float64(len(cases)+2) {
					t.Errorf("received %v, want %d: a rejected message came again", got, len(cases)+2)
				}
			}
			stop()
		})
	}
}

const dlAckWait = 300 * time.Millisecond

func TestConnectSecurity(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := dir + "/" + name
		if err := writeFile(p, content); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pw := write("password", "s3cret\n")
	tok := write("token", "tok-123\n")
	bad := write("bad-password", "nope\n")
	tests := []struct {
		name    string
		server  func(*server.Options)
		opts    stream.ConnOptions
		wantErr string // from option checks, before connecting
		connect bool
	}{
		{"user_password", func(o *server.Options) { o.Username, o.Password = "exporter", "s3cret" }, stream.ConnOptions{User: "exporter", PasswordFile: pw}, "", true},
		{"wrong_password", func(o *server.Options) { o.Username, o.Password = "exporter", "s3cret" }, stream.ConnOptions{User: "exporter", PasswordFile: bad}, "", false},
		{"token", func(o *server.Options) { o.Authorization = "tok-123" }, stream.ConnOptions{TokenFile: tok}, "", true},
		{"two_methods", nil, stream.ConnOptions{User: "u", TokenFile: tok}, "give only one of", false},
		{"password_without_user", nil, stream.ConnOptions{PasswordFile: pw}, "needs --nats.user", false},
		{"cert_without_key", nil, stream.ConnOptions{TLSCertFile: pw}, "go together", false},
		{"missing_token_file", nil, stream.ConnOptions{TokenFile: dir + "/none"}, "no such file", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := natstest.RunServer(t, tc.server)
			o := tc.opts
			o.URLs = s.ClientURL()
			r := newRig(t, catalog(t), nil)
			nc, err := stream.Connect(o, r.m, testLogger(t))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if tc.connect {
				natstest.WaitFor(t, 5*time.Second, "connected", nc.IsConnected)
				if sum(family(t, r.reg, "faceid_exporter_nats_connected")) != 1 {
					t.Error("faceid_exporter_nats_connected is not 1")
				}
				return
			}
			waitAuthError(t, nc)
			if nc.IsConnected() || sum(family(t, r.reg, "faceid_exporter_nats_connected")) != 0 {
				t.Fatal("connected with the wrong password")
			}
		})
	}
}

func TestNKeyAndTLS(t *testing.T) {
	testNKey(t)
	testTLS(t)
}
