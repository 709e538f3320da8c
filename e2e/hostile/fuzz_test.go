package hostile_test

import (
	"os"
	"testing"
	"time"

	"github.com/faceid-observability/faceid-exporter/internal/hostile"
	"github.com/faceid-observability/faceid-exporter/internal/refmodel"
	"github.com/faceid-observability/faceid-exporter/pkg/books"
	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/stream"
)

// fuzzStamp is the message time of every fuzzed message.
var fuzzStamp = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// FuzzModelAgrees: for any one message, the reference model and the
// production path (classify, then books) count the same series with the same
// values. Its property fails on any disagreement about a rejection reason, a
// code, a billable value, a level, a tag or a problem. Seeds: the hostile
// generator's messages. The model runs without the future_ts rule, as the
// classifier does with its default options.
//
//	go test ./e2e/hostile -run '^$' -fuzz FuzzModelAgrees -fuzztime 1m
func FuzzModelAgrees(f *testing.F) {
	catYAML, err := os.ReadFile("../../pkg/classify/catalog.yaml")
	if err != nil {
		f.Fatal(err)
	}
	seedModel, err := refmodel.New(refmodel.Config{CatalogYAML: catYAML})
	if err != nil {
		f.Fatal(err)
	}
	for _, m := range hostile.Generate(hostile.WithCatalog(hostile.Options{Seed: 1, N: 300, Now: fuzzStamp, DedupeCapacity: 100}, seedModel)) {
		if len(m.Data) < 4096 {
			f.Add(m.Data)
		}
	}
	cat, err := classify.Default()
	if err != nil {
		f.Fatal(err)
	}
	layout := books.NewLayout(cat, books.LayoutOptions{AppIDs: appIDs, RuleIDs: ruleIDs})
	cls := classify.New(cat, classify.Options{})
	mdl, err := refmodel.New(refmodel.Config{CatalogYAML: catYAML, FutureTolerance: -1, AppIDs: appIDs, RuleIDs: ruleIDs})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		mdl.Reset()
		const subject = "faceid.results.app_sdk"
		mdl.Apply(refmodel.Msg{Seq: 1, Subject: subject, Data: data, Stamp: fuzzStamp})
		want := mdl.Expect().Counters

		b := books.New(layout, books.RulesOptions{DedupeWindow: 10 * time.Minute, DedupeCapacity: 100})
		var r classify.Result
		if err := cls.Classify(data, stream.FallbackChannel(subject), fuzzStamp, &r); err != nil {
			rej, ok := err.(*classify.RejectError)
			if !ok {
				t.Fatalf("not a rejection: %v", err)
			}
			b.Reject(rej.Reason)
			b.DeadLettered(rej.Reason)
		} else {
			b.Apply(&r)
		}
		got := booksCounters(b)
		if d := refmodel.Diff(refmodel.Expected{Counters: want}, refmodel.Expected{Counters: got}); d != "" {
			t.Fatalf("message %q: the model (want) and production (got) differ:\n%s", data, d)
		}
	})
}

// booksCounters returns the nonzero counters of production books in the
// model's key form.
func booksCounters(b *books.Books) map[string]uint64 {
	out := map[string]uint64{}
	l := b.Layout()
	for _, f := range l.Families() {
		for s := f.Base; s < f.Base+f.N; s++ {
			if v := b.Value(s); v != 0 {
				var pairs []string
				for i, val := range l.Values(s) {
					pairs = append(pairs, f.Labels[i], val)
				}
				out[refmodel.CounterKey(f.Name, pairs...)] += v
			}
		}
	}
	return out
}
