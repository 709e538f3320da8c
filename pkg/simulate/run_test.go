package simulate

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
)

// subscribe counts every message on prefix.> with its own classifier.
func subscribe(t *testing.T, nc *nats.Conn, prefix string, c *counter) {
	t.Helper()
	sub, err := nc.Subscribe(prefix+".>", func(m *nats.Msg) { c.add(m.Data, m.Subject, time.Now()) })
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

func TestRunCoreMatchesSubscriber(t *testing.T) {
	s := natstest.RunServer(t, natstest.CoreOnly)
	cat := defaultCatalog(t)
	for _, sc := range Scenarios() {
		t.Run(string(sc), func(t *testing.T) {
			sub := natstest.Connect(t, s.ClientURL())
			c := newCounter(cat)
			subscribe(t, sub, DefaultSubjectPrefix, c)
			rep, err := Run(context.Background(), Config{Catalog: cat, Scenario: sc, Rate: 4000, Duration: 500 * time.Millisecond, Seed: 3}, NewCorePublisher(natstest.Connect(t, s.ClientURL())))
			if err != nil {
				t.Fatal(err)
			}
			if rep.Sent != 2000 || rep.Errors != 0 || rep.Interrupted || rep.Transport != TransportCore || rep.Scenario != sc {
				t.Fatalf("report: sent %d, errors %d (%s), interrupted %v, transport %s, scenario %s", rep.Sent, rep.Errors, rep.LastError, rep.Interrupted, rep.Transport, rep.Scenario)
			}
			natstest.WaitFor(t, 10*time.Second, "the subscriber to receive every message", func() bool { return c.count() >= rep.Sent })
			c.compare(t, rep)
			if sc == Malformed && rep.MalformedTotal() < 300 {
				t.Errorf("malformed run rejected only %d of %d", rep.MalformedTotal(), rep.Sent)
			}
			if sc != Malformed && rep.MalformedTotal() != 0 {
				t.Errorf("%s run has %d malformed messages", sc, rep.MalformedTotal())
			}
		})
	}
}

func TestRunJetStream(t *testing.T) {
	s := natstest.RunServer(t)
	cat := defaultCatalog(t)
	nc := natstest.Connect(t, s.ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "FACEID", Subjects: []string{"faceid.results.>"}, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := NewJetStreamPublisher(ctx, nc, "FACEID")
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	rep, err := Run(ctx, Config{Catalog: cat, Scenario: Malformed, Rate: 5000, Duration: time.Second, Seed: 9, Progress: &progress, ProgressEvery: 200 * time.Millisecond}, pub)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sent != 5000 || rep.Errors != 0 || rep.Transport != TransportJetStream {
		t.Fatalf("sent %d, errors %d (%s), transport %s", rep.Sent, rep.Errors, rep.LastError, rep.Transport)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if int64(info.State.Msgs) != rep.Sent {
		t.Fatalf("stream holds %d messages, report says %d sent", info.State.Msgs, rep.Sent)
	}
	// Read the stream back and count it independently.
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	c := newCounter(cat)
	for c.count() < rep.Sent {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			c.add(m.Data(), m.Subject(), time.Now())
			got++
		}
		if got == 0 {
			t.Fatalf("stream read stopped at %d of %d messages: %v", c.count(), rep.Sent, batch.Error())
		}
	}
	c.compare(t, rep)
	if !strings.Contains(progress.String(), "simulate: elapsed=") || strings.Count(progress.String(), "\n") < 3 {
		t.Errorf("progress output:\n%s", progress.String())
	}
}

func TestJetStreamPublisherMissingStream(t *testing.T) {
	s := natstest.RunServer(t)
	_, err := NewJetStreamPublisher(context.Background(), natstest.Connect(t, s.ClientURL()), "NOPE")
	if err == nil || !strings.Contains(err.Error(), `jetstream stream "NOPE" does not exist`) {
		t.Fatalf("got %v", err)
	}
}

func TestRunRate(t *testing.T) {
	s := natstest.RunServer(t, natstest.CoreOnly)
	cat := defaultCatalog(t)
	var mu sync.Mutex
	var times []time.Time
	sub, err := natstest.Connect(t, s.ClientURL()).Subscribe("faceid.results.>", func(*nats.Msg) {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rep, err := Run(context.Background(), Config{Catalog: cat, Rate: 1000, Duration: 2 * time.Second, Seed: 1}, NewCorePublisher(natstest.Connect(t, s.ClientURL())))
	if err != nil {
		t.Fatal(err)
	}
	wall := time.Since(start)
	if rep.Sent != 2000 {
		t.Fatalf("sent %d, want 2000", rep.Sent)
	}
	if rate := float64(rep.Sent) / wall.Seconds(); rate < 800 || rate > 1200 {
		t.Errorf("%d events in %s: %.0f/s, want 1000/s ± 20 %%", rep.Sent, wall, rate)
	}
	natstest.WaitFor(t, 5*time.Second, "every message", func() bool { mu.Lock(); defer mu.Unlock(); return int64(len(times)) >= rep.Sent })
	// The rate holds inside the run, not only on average: count the second
	// in the middle.
	mu.Lock()
	defer mu.Unlock()
	from := times[0].Add(500 * time.Millisecond)
	inSecond := 0
	for _, at := range times {
		if !at.Before(from) && at.Before(from.Add(time.Second)) {
			inSecond++
		}
	}
	if inSecond < 800 || inSecond > 1200 {
		t.Errorf("%d events in the middle second, want 1000 ± 20 %%", inSecond)
	}
}

func TestRunUntilCancelled(t *testing.T) {
	s := natstest.RunServer(t, natstest.CoreOnly)
	cat := defaultCatalog(t)
	c := newCounter(cat)
	subscribe(t, natstest.Connect(t, s.ClientURL()), DefaultSubjectPrefix, c)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		rep Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := Run(ctx, Config{Catalog: cat, Scenario: UnknownCodes, Rate: 2000, Seed: 5}, NewCorePublisher(natstest.Connect(t, s.ClientURL())))
		done <- result{rep, err}
	}()
	natstest.WaitFor(t, 10*time.Second, "500 messages", func() bool { return c.count() >= 500 })
	cancel()
	var res result
	select {
	case res = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if res.err != nil {
		t.Fatal(res.err)
	}
	if !res.rep.Interrupted || res.rep.Sent < 500 || res.rep.DurationSeconds != 0 {
		t.Fatalf("interrupted %v, sent %d, duration %v", res.rep.Interrupted, res.rep.Sent, res.rep.DurationSeconds)
	}
	natstest.WaitFor(t, 10*time.Second, "every message", func() bool { return c.count() >= res.rep.Sent })
	c.compare(t, res.rep)
}

func TestRunPublishErrors(t *testing.T) {
	s := natstest.RunServer(t, natstest.CoreOnly)
	nc := natstest.Connect(t, s.ClientURL())
	nc.Close()
	rep, err := Run(context.Background(), Config{Catalog: defaultCatalog(t), Rate: 1000, Duration: 100 * time.Millisecond}, NewCorePublisher(nc))
	if err == nil || !strings.Contains(err.Error(), "flush") {
		t.Errorf("got error %v, want a flush error", err)
	}
	if rep.Sent != 0 || rep.Errors != 100 || !strings.Contains(rep.LastError, "connection closed") {
		t.Errorf("sent %d, errors %d, last error %q", rep.Sent, rep.Errors, rep.LastError)
	}
}

func TestRunConfigErrors(t *testing.T) {
	s := natstest.RunServer(t, natstest.CoreOnly)
	pub := NewCorePublisher(natstest.Connect(t, s.ClientURL()))
	cat := defaultCatalog(t)
	tests := []struct {
		name string
		cfg  Config
		pub  Publisher
		want string
	}{
		{"no catalog", Config{Rate: 1}, pub, "no catalog"},
		{"zero rate", Config{Catalog: cat}, pub, "rate 0 must be above 0 and at most 1000000 events/s"},
		{"rate too high", Config{Catalog: cat, Rate: 2e6}, pub, "rate 2e+06 must be above 0 and at most 1000000 events/s"},
		{"negative duration", Config{Catalog: cat, Rate: 1, Duration: -time.Second}, pub, "duration -1s must not be negative"},
		{"bad scenario", Config{Catalog: cat, Rate: 1, Scenario: "storm"}, pub, `unknown scenario "storm" (want one of baseline, billable-failure-spike, high-risk-device-surge, unknown-codes, malformed)`},
		{"bad prefix", Config{Catalog: cat, Rate: 1, SubjectPrefix: "a.*"}, pub, `subject prefix "a.*" is not a NATS subject of literal tokens`},
		{"no publisher", Config{Catalog: cat, Rate: 1}, nil, "no publisher"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(context.Background(), tc.cfg, tc.pub)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("got %v, want %s", err, tc.want)
			}
		})
	}
}

func TestRunHighRate(t *testing.T) {
	s := natstest.RunServer(t, natstest.CoreOnly)
	cat := defaultCatalog(t)
	c := newCounter(cat)
	subscribe(t, natstest.Connect(t, s.ClientURL()), DefaultSubjectPrefix, c)
	rate := 20000.0
	if raceEnabled {
		rate = 4000 // the race detector slows everything down about tenfold
	}
	start := time.Now()
	rep, err := Run(context.Background(), Config{Catalog: cat, Rate: rate, Duration: 1500 * time.Millisecond, Seed: 2}, NewCorePublisher(natstest.Connect(t, s.ClientURL())))
	if err != nil {
		t.Fatal(err)
	}
	wall := time.Since(start)
	if want := int64(rate * 1.5); rep.Sent != want {
		t.Fatalf("sent %d of %d (errors %d: %s)", rep.Sent, want, rep.Errors, rep.LastError)
	}
	if got := float64(rep.Sent) / wall.Seconds(); got < 0.8*rate || got > 1.2*rate {
		t.Errorf("%d events in %s: %.0f/s, want %.0f/s ± 20 %%", rep.Sent, wall, got, rate)
	}
	natstest.WaitFor(t, 20*time.Second, "every message", func() bool { return c.count() >= rep.Sent })
	c.compare(t, rep)
}
