package stream_test

import (
	"log/slog"
	"os"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/metrics"
)

const subject = "faceid.results.>"

func catalog(t testing.TB) *classify.Catalog {
	t.Helper()
	cat, err := classify.Default()
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// jsPublish returns an asynchronous publisher and a wait for its acks.
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

// rig holds the metrics a connection reports to.
type rig struct{ m *metrics.Metrics }

func newRig(t testing.TB, cat *classify.Catalog, _ any) *rig {
	return &rig{m: metrics.New(prometheus.NewRegistry(), cat, metrics.Options{})}
}
