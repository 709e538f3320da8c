package simulate

import (
	"bytes"
	"context"
	"strings"
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

// TestRunCoreReportMatchesDelivery runs every scenario through core NATS and
// checks that a subscriber receives exactly the messages the report counts,
// and that classifying them again gives the report's rows. The report's
// truth comes from the same classifier, so this proves delivery and the
// tally, not the classification: TestServeCountsHandWrittenEvents in
// cmd/exporter checks counts written down from Tencent's table.
func TestRunCoreReportMatchesDelivery(t *testing.T) {
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

// TestRunJetStreamReportMatchesStream publishes through JetStream and checks
// that the stream holds exactly the messages the report counts (read back and
// classified again, so delivery and tally, not the classifier).
func TestRunJetStreamReportMatchesStream(t *testing.T) {
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
