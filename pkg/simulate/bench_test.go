package simulate

import (
	"context"
	"testing"
	"time"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
)

// BenchmarkRunCore measures how fast Run publishes the baseline through core
// NATS to an in-process server with nobody subscribed: b.N events at the
// highest rate Run accepts, so the publisher, not the pacer, sets the pace.
// It reports events/s; the tests check the schedule and the counts, which do
// not depend on the machine.
func BenchmarkRunCore(b *testing.B) {
	s := natstest.RunServer(b, natstest.CoreOnly)
	cat := defaultCatalog(b)
	pub := NewCorePublisher(natstest.Connect(b, s.ClientURL()))
	duration := time.Duration(float64(b.N) / MaxRate * float64(time.Second))
	if duration < time.Millisecond {
		duration = time.Millisecond
	}
	b.ResetTimer()
	rep, err := Run(context.Background(), Config{Catalog: cat, Rate: MaxRate, Duration: duration, Seed: 2}, pub)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if rep.Errors != 0 {
		b.Fatalf("%d errors: %s", rep.Errors, rep.LastError)
	}
	b.ReportMetric(float64(rep.Sent)/rep.ElapsedSeconds, "events/s")
}
