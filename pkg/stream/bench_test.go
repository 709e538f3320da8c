package stream_test

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
	"github.com/faceid-observability/faceid-exporter/pkg/api"
	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/metrics"
	"github.com/faceid-observability/faceid-exporter/pkg/service"
	"github.com/faceid-observability/faceid-exporter/pkg/stream"
)

// benchEvent is a realistic 350-byte event; idAt is where its 16-hex-digit
// id counter sits, so every message published is a new event.
var benchEvent, idAt = func() ([]byte, int) {
	prefix := `{"id":"b6f1c2d4-`
	ev := prefix + `0000000000000000","ts":"2026-11-26T10:15:30.123+08:00","channel":"wechat_h5","code":"2006","req_id":"0d9b6c0e-2c4f-4a51-9f4c-7c2a3e5d1b90","app_id":"app-a","rule_id":"r1","risk":{"device_level":3,"risk_level":1,"device_tags":["202","5012"],"risk_tags":["02"],"platform":"android"},"extra":{"sdk":"3.2.1","note":"x"}}`
	for len(ev) < 350 {
		ev = ev[:len(ev)-3] + `x"}}`
	}
	return []byte(ev), len(prefix)
}()

func setID(msg []byte, i uint64) {
	const hex = "0123456789abcdef"
	for j := 15; j >= 0; j-- {
		msg[idAt+j] = hex[i&15]
		i >>= 4
	}
}

// naiveConsumer is the straightforward consumer: encoding/json into a struct,
// a catalog lookup, and CounterVec.WithLabelValues for every event.
type naiveConsumer struct {
	cat *classify.Catalog
	vec *prometheus.CounterVec
}

func newNaive(cat *classify.Catalog) *naiveConsumer {
	return &naiveConsumer{cat: cat, vec: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "faceid_verifications_total", Help: "x"}, []string{"channel", "code", "outcome", "billable"})}
}

type naiveEvent struct {
	ID      string `json:"id"`
	TS      string `json:"ts"`
	Channel string `json:"channel"`
	Code    string `json:"code"`
	Risk    struct {
		DeviceLevel int      `json:"device_level"`
		RiskLevel   int      `json:"risk_level"`
		DeviceTags  []string `json:"device_tags"`
		RiskTags    []string `json:"risk_tags"`
		Platform    string   `json:"platform"`
	} `json:"risk"`
}

func (n *naiveConsumer) handle(data []byte) {
	var ev naiveEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		return
	}
	ch, ok := n.cat.Channel(ev.Channel)
	if !ok {
		return
	}
	outcome, billable, code := "failure", "unknown", "unknown"
	if c, ok := n.cat.Lookup(ch.Family.Name, ev.Code); ok {
		code, billable = c.Code, c.Billable.String()
	}
	if ev.Code == "0" {
		outcome = "success"
	}
	n.vec.WithLabelValues(ev.Channel, code, outcome, billable).Inc()
}

// coreRun publishes b.N events as fast as one publisher can and waits until
// the subscriber set up by subscribe has handled all of them.
func coreRun(b *testing.B, subscribe func(nc *nats.Conn, done func()) func()) {
	s := natstest.RunServer(b)
	nc := natstest.Connect(b, s.ClientURL())
	var handled atomic.Int64
	n := int64(b.N)
	finished := make(chan struct{})
	stop := subscribe(nc, func() {
		if handled.Add(1) == n {
			close(finished)
		}
	})
	defer stop()
	if err := nc.Flush(); err != nil {
		b.Fatal(err)
	}
	pub := natstest.Connect(b, s.ClientURL())
	msg := append([]byte(nil), benchEvent...)
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		setID(msg, uint64(i))
		if err := pub.Publish("faceid.results.wechat_h5", msg); err != nil {
			b.Fatal(err)
		}
	}
	if err := pub.Flush(); err != nil {
		b.Fatal(err)
	}
	select {
	case <-finished:
	case <-time.After(60 * time.Second):
		b.Fatalf("handled %d of %d", handled.Load(), n)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msg/s")
}

// BenchmarkCore compares, in one run, core-NATS consumers fed by one
// publisher through an in-process server: a subscriber that does nothing,
// the straightforward encoding/json + WithLabelValues consumer, and the
// exporter's pipeline (stream.SubscribeCore + service.Pipeline), with and
// without duplicate detection.
func BenchmarkCore(b *testing.B) {
	cat := catalog(b)
	b.Run("noop_subscriber", func(b *testing.B) {
		coreRun(b, func(nc *nats.Conn, done func()) func() {
			sub, err := nc.QueueSubscribe(subject, "q", func(*nats.Msg) { done() })
			if err != nil {
				b.Fatal(err)
			}
			_ = sub.SetPendingLimits(-1, -1)
			return func() { _ = sub.Unsubscribe() }
		})
	})
	b.Run("encoding_json_withlabelvalues", func(b *testing.B) {
		naive := newNaive(cat)
		coreRun(b, func(nc *nats.Conn, done func()) func() {
			sub, err := nc.QueueSubscribe(subject, "q", func(m *nats.Msg) { naive.handle(m.Data); done() })
			if err != nil {
				b.Fatal(err)
			}
			_ = sub.SetPendingLimits(-1, -1)
			return func() { _ = sub.Unsubscribe() }
		})
	})
	for _, v := range []struct {
		name   string
		dedupe bool
	}{{"pipeline", true}, {"pipeline_without_dedupe", false}} {
		b.Run(v.name, func(b *testing.B) {
			r := newRig(b, cat, v.dedupe)
			coreRun(b, func(nc *nats.Conn, done func()) func() {
				p := &countingProcessor{p: r.pipe, done: done}
				core, err := stream.SubscribeCore(nc, stream.CoreOptions{Subject: subject, Queue: "q", PendingMsgs: -1, PendingBytes: -1}, p, stream.NewDeadLetter(nc, "faceid.deadletter", r.m), r.m, testLogger(b))
				if err != nil {
					b.Fatal(err)
				}
				return func() { _ = core.Stop(b.Context()) }
			})
			if got := sum(verifications(b, r)); got != float64(b.N) {
				b.Fatalf("counted %v of %d", got, b.N)
			}
		})
	}
}

type countingProcessor struct {
	p    stream.Processor
	done func()
}

func (c *countingProcessor) Process(data []byte, subject string) error {
	err := c.p.Process(data, subject)
	c.done()
	return err
}

// fillBench publishes n benchmark events with distinct ids, round-robin over
// the catalog's channel subjects, into a new stream FACEID and waits for the
// acks. A publish is not retried (a retried publish may land twice, on a
// server of its own right after the stream was created again) and carries no
// message id (whose header every consumer would parse): a fill that fails or
// does not hold n messages is purged and done again.
func fillBench(b *testing.B, url string, cat *classify.Catalog, n int) {
	b.Helper()
	js, err := jetstream.New(natstest.Connect(b, url))
	if err != nil {
		b.Fatal(err)
	}
	s, err := js.CreateStream(b.Context(), jetstream.StreamConfig{Name: "FACEID", Subjects: []string{subject}})
	if err != nil {
		b.Fatal(err)
	}
	fill := func() error {
		var futs []jetstream.PubAckFuture
		wait := func() error {
			defer func() { futs = futs[:0] }()
			for _, f := range futs {
				select {
				case <-f.Ok():
				case err := <-f.Err():
					return err
				}
			}
			return nil
		}
		msg := append([]byte(nil), benchEvent...)
		for i := 0; i < n; i++ {
			setID(msg, uint64(i))
			f, err := js.PublishAsync("faceid.results."+cat.Channels[i%len(cat.Channels)].Name, append([]byte(nil), msg...), jetstream.WithRetryAttempts(0))
			if err != nil {
				return err
			}
			if futs = append(futs, f); len(futs) == 500 {
				if err := wait(); err != nil {
					return err
				}
			}
		}
		if err := wait(); err != nil {
			return err
		}
		info, err := s.Info(b.Context())
		if err != nil {
			return err
		}
		if got := info.State.Msgs; got != uint64(n) {
			return fmt.Errorf("stream FACEID holds %d messages, want %d", got, n)
		}
		return nil
	}
	for attempt := 1; ; attempt++ {
		err := fill()
		if err == nil {
			return
		}
		if attempt == 3 {
			b.Fatalf("fill: %v", err)
		}
		b.Logf("fill again: %v", err)
		if err := s.Purge(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
}

// countHooks are the service's hooks (metrics, event rings, logs), and signal
// once n messages were received by the partitions.
type countHooks struct {
	stream.Hooks
	n    int64
	seen atomic.Int64
	done chan struct{}
}

func newCountHooks(b *testing.B, cat *classify.Catalog, n int) *countHooks {
	m := metrics.New(prometheus.NewRegistry(), cat, metrics.Options{})
	ev := api.NewEvents(api.Sizes{BillableFailure: 1000, HighRisk: 1000, UnknownCode: 200})
	return &countHooks{Hooks: service.NewHooks(m, ev, true, testLogger(b)), n: int64(n), done: make(chan struct{})}
}

func (h *countHooks) Received(n, counted int) {
	h.Hooks.Received(n, counted)
	if seen := h.seen.Add(int64(n)); seen == h.n {
		close(h.done)
	}
}

func waitDone(b *testing.B, done chan struct{}, what string) {
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("%s: not done within 5m", what)
	}
}

var benchServer = flag.String("bench.server", "", "BenchmarkJetStream: use the NATS server at this URL (run in its own process, with JetStream) instead of one in the test process; its stream FACEID and bucket ckpt are deleted before each run")

// benchURL returns the server a BenchmarkJetStream run uses: -bench.server,
// emptied of the previous run's stream and checkpoints, or a new in-process
// one.
func benchURL(b *testing.B) string {
	if *benchServer == "" {
		return natstest.RunServer(b).ClientURL()
	}
	js, err := jetstream.New(natstest.Connect(b, *benchServer))
	if err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{"FACEID", "KV_ckpt"} {
		if err := js.DeleteStream(b.Context(), name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			b.Fatal(err)
		}
		natstest.WaitFor(b, 10*time.Second, "stream "+name+" deleted", func() bool {
			_, err := js.Stream(b.Context(), name)
			return errors.Is(err, jetstream.ErrStreamNotFound)
		})
	}
	return *benchServer
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var consumeProfile = flag.String("bench.consumeprofile", "", "BenchmarkJetStream: write a CPU profile of each sub-benchmark's consuming phase alone (not the stream's filling) to this path, suffixed with the sub-benchmark's name")

// startConsumeProfile starts the CPU profile of -bench.consumeprofile, if
// set; the returned func stops it.
func startConsumeProfile(b *testing.B) func() {
	if *consumeProfile == "" {
		return func() {}
	}
	name := *consumeProfile + "." + strings.NewReplacer("/", "_", " ", "_").Replace(b.Name())
	f, err := os.Create(name)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJetStream compares, in one run, on streams holding the same b.N
// events: an ordered (ack-free) consumer that does nothing, a durable pull
// consumer with explicit acks that only acks, and the exporter's checkpointed
// mode (one partition: decode, classify, count, ledger, duplicate and reqId
// rules, the service's hooks, a checkpoint every second), then the checkpointed mode with three
// partitions spread over one, two and three replicas in this process.
func BenchmarkJetStream(b *testing.B) {
	cat := catalog(b)
	run := func(b *testing.B, consume func(url string, done func()) func()) {
		b.StopTimer()
		url := benchURL(b)
		fillBench(b, url, cat, b.N)
		var handled atomic.Int64
		finished := make(chan struct{})
		n := int64(b.N)
		b.SetBytes(int64(len(benchEvent)))
		stopProfile := startConsumeProfile(b)
		b.StartTimer()
		start, cpu := time.Now(), cpuTime(b)
		stop := consume(url, func() {
			if handled.Add(1) == n {
				close(finished)
			}
		})
		waitDone(b, finished, "consume")
		b.StopTimer()
		elapsed, cpu := time.Since(start), cpuTime(b)-cpu
		stopProfile()
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msg/s")
		// The test process's CPU per message: the consumer's alone with
		// -bench.server, the server's too without.
		b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(b.N), "cpu-µs/msg")
		stop()
	}
	b.Run("ordered_noop", func(b *testing.B) {
		run(b, func(url string, done func()) func() {
			js, _ := jetstream.New(natstest.Connect(b, url))
			c, err := js.OrderedConsumer(b.Context(), "FACEID", jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
			if err != nil {
				b.Fatal(err)
			}
			cc, err := c.Consume(func(jetstream.Msg) { done() }, jetstream.PullMaxMessages(1000))
			if err != nil {
				b.Fatal(err)
			}
			return cc.Stop
		})
	})
	b.Run("explicit_ack_noop", func(b *testing.B) {
		run(b, func(url string, done func()) func() {
			js, _ := jetstream.New(natstest.Connect(b, url))
			c, err := js.CreateOrUpdateConsumer(b.Context(), "FACEID", jetstream.ConsumerConfig{Durable: "acker", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 1000})
			if err != nil {
				b.Fatal(err)
			}
			cc, err := c.Consume(func(m jetstream.Msg) { _ = m.Ack(); done() }, jetstream.PullMaxMessages(500))
			if err != nil {
				b.Fatal(err)
			}
			return cc.Stop
		})
	})
	checkpointed := func(partitions, replicas int) func(b *testing.B) {
		return func(b *testing.B) {
			run(b, func(url string, done func()) func() {
				hooks := newCountHooks(b, cat, b.N)
				go func() {
					<-hooks.done
					for range b.N { // the runner counts one call per message
						done()
					}
				}()
				var groups []*groupRig
				for r := 0; r < replicas; r++ {
					groups = append(groups, startGroupHooks(b, url, cat, groupOpts{instance: fmt.Sprintf("r%d", r), partitions: partitions,
						interval: time.Second, takeover: 10 * time.Second, expectReplicas: replicas}, hooks))
				}
				return func() {
					for _, g := range groups {
						g.stop()
					}
				}
			})
		}
	}
	b.Run("checkpointed", checkpointed(1, 1))
	b.Run("checkpointed_3_partitions_1_replica", checkpointed(3, 1))
	b.Run("checkpointed_3_partitions_2_replicas", checkpointed(3, 2))
	b.Run("checkpointed_3_partitions_3_replicas", checkpointed(3, 3))
}
