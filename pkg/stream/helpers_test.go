package stream_test

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/faceid-observability/faceid-exporter/internal/promtest"
	"github.com/faceid-observability/faceid-exporter/pkg/books"
	"github.com/faceid-observability/faceid-exporter/pkg/checkpoint"
	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/metrics"
	"github.com/faceid-observability/faceid-exporter/pkg/service"
	"github.com/faceid-observability/faceid-exporter/pkg/stream"
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

// rig is a core pipeline counting into one partition's books, with its own
// registry.
type rig struct {
	reg  *prometheus.Registry
	m    *metrics.Metrics
	b    *books.Books
	pipe *service.Pipeline
}

// newRig returns a rig; dedupe false turns duplicate detection off.
func newRig(t testing.TB, cat *classify.Catalog, dedupe any) *rig {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, cat, metrics.Options{})
	l := books.NewLayout(cat, books.LayoutOptions{})
	ro := books.RulesOptions{DedupeWindow: 10 * time.Minute, DedupeCapacity: 100000}
	if dedupe == false {
		ro = books.RulesOptions{}
	}
	b := books.New(l, ro)
	metrics.NewBooks(reg, metrics.Source{Layout: l, Owned: func() []metrics.Partition { return []metrics.Partition{{ID: 0, Books: b}} }}, nil)
	return &rig{reg: reg, m: m, b: b, pipe: service.NewPipeline(b, service.NewHooks(m, nil, false, testLogger(t)), m, nil)}
}

// deadLetterObserver counts dead letters into the rig's books, as serve does.
func (r *rig) deadLetterObserver() stream.Observer { return service.CoreObserver(r.m, r.b) }

// family gathers one metric family as label-string → value.
func family(t testing.TB, g prometheus.Gatherer, name string) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return promtest.Series(mf)
		}
	}
	return map[string]float64{}
}

func sum(m map[string]float64) float64 {
	s := 0.0
	for _, v := range m {
		s += v
	}
	return s
}

// recordCounters reads the counters a record names: its snapshot's with
// its deltas applied (a JSON object, stable key → value).
func recordCounters(ctx context.Context, st *checkpoint.Store, rec *checkpoint.Record) ([]byte, error) {
	snap, err := st.Get(ctx, rec.Counters)
	if err != nil {
		return nil, err
	}
	deltas, _, err := st.Deltas(ctx, rec)
	if err != nil {
		return nil, err
	}
	cs := make([][]byte, len(deltas))
	for i, d := range deltas {
		cs[i] = d.Counters
	}
	return books.MergeCounters(snap, cs...)
}
