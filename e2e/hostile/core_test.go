package hostile_test

import (
	"testing"
	"time"

	"github.com/faceid-observability/faceid-exporter/internal/hostile"
	"github.com/faceid-observability/faceid-exporter/internal/natstest"
	"github.com/faceid-observability/faceid-exporter/internal/refmodel"
)

// TestModelCore runs the service on core NATS (no JetStream: one in-memory
// partition, no ledger, the time of receipt standing in for the message's
// timestamp) over a hostile stream and compares its counters with the
// model's, fed each message with the time it was published as its stamp.
// The generator keeps every rule that reads the stamp minutes away from its
// boundary, so the microseconds between publish and receipt decide nothing.
func TestModelCore(t *testing.T) {
	eachSeed(t, func(t *testing.T, seed uint64, classes []hostile.Class) {
		r := drawRun(t, seed, classes, *nFlag)
		r.partitions = 1 // core NATS has one partition
		t.Logf("%s (core NATS)", r)
		waitOutBeijingMidnight()
		mdl := newRunModel(t, r)
		s := natstest.RunServer(t, natstest.CoreOnly)
		cfg := serviceConfig(t, r, s.ClientURL())
		cfg.JetStream.Stream = "" // core NATS
		st := startService(t, cfg)
		nc := natstest.Connect(t, s.ClientURL())
		msgs := generate(r, mdl)
		for i, m := range msgs {
			stamp := time.Now()
			if err := nc.Publish(m.Subject, m.Data); err != nil {
				t.Fatal(err)
			}
			mdl.Apply(refmodel.Msg{Seq: uint64(i + 1), Subject: m.Subject, Data: m.Data, Stamp: stamp})
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		want := refmodel.Expected{Counters: mdl.Expect().Counters}
		var d string
		deadline := time.Now().Add(30 * time.Second)
		for {
			counters, err := refmodel.ParseScrape(scrape(t, st))
			if err != nil {
				t.Fatal(err)
			}
			if d = refmodel.Diff(want, refmodel.Expected{Counters: counters}); d == "" || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if d != "" {
			t.Fatalf("%s (core NATS)\nthe exporter's counters differ from the model's (want = model, got = exporter):\n%s\n%s", r, shorten(t, r, d), classSummary(msgs))
		}
		t.Logf("%s (core NATS): %d messages, %d counter series agree", r, len(msgs), len(want.Counters))
	})
}

// waitOutBeijingMidnight sleeps past a Beijing midnight less than 10 s away,
// so that events without ts land on the day the model gives them.
func waitOutBeijingMidnight() {
	now := time.Now().In(time.FixedZone("", 8*3600))
	next := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, now.Location())
	if d := next.Sub(now); d < 10*time.Second {
		time.Sleep(d + time.Second)
	}
}
