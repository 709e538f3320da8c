package hostile_test

import (
	"bytes"
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

// FuzzModelAgrees: for any short stream (the input split at newlines into at
// most 8 messages, stamped a second apart), the reference model and the
// production path (classify, then books) count the same series with the same
// values. Its property fails on any disagreement about a rejection reason, a
// code, a billable value, a level, a tag, a problem, a duplicate or a reqId
// repeat. Seeds: the hostile generator's messages, in threes. The model runs
// without the future_ts rule, as the classifier does with its default options.
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
	var group [][]byte
	for _, m := range hostile.Generate(hostile.WithCatalog(hostile.Options{Seed: 1, N: 300, Now: fuzzStamp, DedupeCapacity: 100}, seedModel)) {
		if len(m.Data) < 4096 {
			f.Add(m.Data)
			if group = append(group, m.Data); len(group) == 3 {
				f.Add(bytes.Join(group, []byte("\n")))
				group = nil
			}
		}
	}
	cat, err := classify.Default()
	if err != nil {
		f.Fatal(err)
	}
	layout := books.NewLayout(cat, books.LayoutOptions{AppIDs: appIDs, RuleIDs: ruleIDs})
	cls := classify.New(cat, classify.Options{})
	mdl, err := refmodel.New(refmodel.Config{CatalogYAML: catYAML, FutureTolerance: -1, DedupeCapacity: 3, AppIDs: appIDs, RuleIDs: ruleIDs})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		mdl.Reset()
		const subject = "faceid.results.app_sdk"
		msgs := bytes.SplitN(data, []byte("\n"), 8)
		b := books.New(layout, books.RulesOptions{DedupeWindow: 10 * time.Minute, DedupeCapacity: 3})
		var r classify.Result
		for i, msg := range msgs {
			stamp := fuzzStamp.Add(time.Duration(i) * time.Second)
			mdl.Apply(refmodel.Msg{Seq: uint64(i + 1), Subject: subject, Data: msg, Stamp: stamp})
			if err := cls.Classify(msg, stream.FallbackChannel(subject), stamp, &r); err != nil {
				rej, ok := err.(*classify.RejectError)
				if !ok {
					t.Fatalf("not a rejection: %v", err)
				}
				b.Reject(rej.Reason)
				b.DeadLettered(rej.Reason)
			} else {
				b.Apply(&r)
			}
		}
		want := mdl.Expect().Counters
		got := booksCounters(b)
		if d := refmodel.Diff(refmodel.Expected{Counters: want}, refmodel.Expected{Counters: got}); d != "" {
			t.Fatalf("messages %q: the model (want) and production (got) differ:\n%s", msgs, d)
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
