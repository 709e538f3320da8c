package stream_test

import (
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/dedupe"
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
			var store dedupe.Store
			if v.dedupe {
				store = dedupe.NewWindow(10*time.Minute, 100000)
			}
			r := newRig(b, cat, store)
			coreRun(b, func(nc *nats.Conn, done func()) func() {
				p := &countingProcessor{p: r.pipes.New(false), done: done}
				core, err := stream.SubscribeCore(nc, stream.CoreOptions{Subject: subject, Queue: "q", PendingMsgs: -1, PendingBytes: -1}, p, stream.NewDeadLetter(nc, "faceid.deadletter", r.m), r.m, testLogger(b))
				if err != nil {
					b.Fatal(err)
				}
				return func() { _ = core.Stop(b.Context()) }
			})
			if got := sum(verifications(b, r.reg)); got != float64(b.N) {
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

// BenchmarkJetStream compares, in one run, durable pull consumers with
// explicit acks on a stream holding b.N events: one that only acks, the
// exporter's (stream.ConsumeJetStream: count, then ack), and the exporter's
// without duplicate detection, to show what the dedupe store costs there.
func BenchmarkJetStream(b *testing.B) {
	cat := catalog(b)
	fill := func(b *testing.B) (*nats.Conn, jetstream.JetStream) {
		s := natstest.RunServer(b)
		nc := natstest.Connect(b, s.ClientURL())
		js, err := jetstream.New(nc)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := js.CreateStream(b.Context(), jetstream.StreamConfig{Name: "FACEID", Subjects: []string{subject}}); err != nil {
			b.Fatal(err)
		}
		pub, wait := jsPublish(b, js)
		msg := append([]byte(nil), benchEvent...)
		for i := 0; i < b.N; i++ {
			setID(msg, uint64(i))
			pub("faceid.results.wechat_h5", append([]byte(nil), msg...))
		}
		wait()
		return nc, js
	}
	opts := stream.JetStreamOptions{Stream: "FACEID", Consumer: "bench", Subject: subject, MaxAckPending: 1000, AckWait: 30 * time.Second}
	measure := func(b *testing.B, finished <-chan struct{}, handled *atomic.Int64, start time.Time) {
		select {
		case <-finished:
		case <-time.After(120 * time.Second):
			b.Fatalf("handled %d of %d", handled.Load(), b.N)
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msg/s")
	}
	b.Run("noop_acking_consumer", func(b *testing.B) {
		_, js := fill(b)
		cons, err := js.CreateOrUpdateConsumer(b.Context(), "FACEID", jetstream.ConsumerConfig{
			Durable: "bench", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: subject, MaxAckPending: opts.MaxAckPending, AckWait: opts.AckWait,
		})
		if err != nil {
			b.Fatal(err)
		}
		var handled atomic.Int64
		finished := make(chan struct{})
		b.SetBytes(int64(len(benchEvent)))
		b.ResetTimer()
		start := time.Now()
		cc, err := cons.Consume(func(m jetstream.Msg) {
			_ = m.Ack()
			if handled.Add(1) == int64(b.N) {
				close(finished)
			}
		}, jetstream.PullMaxMessages(500))
		if err != nil {
			b.Fatal(err)
		}
		defer cc.Stop()
		measure(b, finished, &handled, start)
	})
	for _, v := range []struct {
		name   string
		dedupe bool
	}{{"pipeline_acking_consumer", true}, {"pipeline_without_dedupe_acking_consumer", false}} {
		b.Run(v.name, func(b *testing.B) {
			nc, _ := fill(b)
			var store dedupe.Store
			if v.dedupe {
				store = dedupe.NewWindow(10*time.Minute, 100000)
			}
			r := newRig(b, cat, store)
			var handled atomic.Int64
			finished := make(chan struct{})
			p := &countingProcessor{p: r.pipes.New(true), done: func() {
				if handled.Add(1) == int64(b.N) {
					close(finished)
				}
			}}
			b.SetBytes(int64(len(benchEvent)))
			b.ResetTimer()
			start := time.Now()
			js, err := stream.ConsumeJetStream(b.Context(), nc, opts, p, stream.NewDeadLetter(nc, "faceid.deadletter", r.m), r.m, testLogger(b))
			if err != nil {
				b.Fatal(err)
			}
			measure(b, finished, &handled, start)
			_ = js.Stop(b.Context())
			if got := sum(verifications(b, r.reg)); got != float64(b.N) {
				b.Fatalf("counted %v of %d", got, b.N)
			}
		})
	}
}
