package service_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/faceid-observability/faceid-exporter/pkg/api"
	"github.com/faceid-observability/faceid-exporter/pkg/books"
	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/metrics"
	"github.com/faceid-observability/faceid-exporter/pkg/service"
	"github.com/faceid-observability/faceid-exporter/pkg/simulate"
)

// benchMessages returns n baseline events from the simulator (about 300
// bytes each), every one with its own id.
func benchMessages(b *testing.B, cat *classify.Catalog, n int) ([][]byte, []string) {
	gen, err := simulate.NewGenerator(cat, simulate.Baseline, 1, simulate.WithRunID("bench"))
	if err != nil {
		b.Fatal(err)
	}
	msgs, subjects := make([][]byte, n), make([]string, n)
	now := time.Now()
	total := 0
	for i := range msgs {
		m, s, _ := gen.Next(nil, now.Add(time.Duration(i)*time.Millisecond))
		msgs[i], subjects[i] = append([]byte(nil), m...), s
		total += len(m)
	}
	b.SetBytes(int64(total / n))
	return msgs, subjects
}

// BenchmarkPipeline compares, in one run and in-process, the work per event of
// the straightforward consumer (encoding/json into a struct, catalog lookup,
// CounterVec.WithLabelValues) and of the exporter's pipeline (zero-copy
// decode, classify with dedupe, pre-resolved counters, ring buffers), and the
// pipeline without duplicate detection, to show what the dedupe store costs.
// Run with -cpu 1 for the one-core figure; target ≥ 2 M events/s.
func BenchmarkPipeline(b *testing.B) {
	cat, err := classify.Default()
	if err != nil {
		b.Fatal(err)
	}
	const pool = 1 << 12
	b.Run("encoding_json_withlabelvalues", func(b *testing.B) {
		msgs, _ := benchMessages(b, cat, pool)
		vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "faceid_verifications_total", Help: "x"}, []string{"channel", "code", "outcome", "billable"})
		type event struct {
			ID      string          `json:"id"`
			TS      json.RawMessage `json:"ts"`
			Channel string          `json:"channel"`
			Code    json.RawMessage `json:"code"`
			ReqID   string          `json:"req_id"`
			Risk    struct {
				DeviceLevel any      `json:"device_level"`
				RiskLevel   any      `json:"risk_level"`
				DeviceTags  []any    `json:"device_tags"`
				RiskTags    []any    `json:"risk_tags"`
				Platform    string   `json:"platform"`
				_           struct{} `json:"-"`
			} `json:"risk"`
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			var ev event
			if err := json.Unmarshal(msgs[i&(pool-1)], &ev); err != nil {
				continue
			}
			ch, ok := cat.Channel(ev.Channel)
			if !ok {
				continue
			}
			var code string
			if err := json.Unmarshal(ev.Code, &code); err != nil {
				code = string(ev.Code)
			}
			outcome, billable, label := "failure", "unknown", "unknown"
			if c, ok := cat.Lookup(ch.Family.Name, code); ok {
				label, billable = c.Code, c.Billable.String()
			}
			if code == "0" {
				outcome = "success"
			}
			vec.WithLabelValues(ev.Channel, label, outcome, billable).Inc()
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
	for _, v := range []struct {
		name   string
		dedupe bool
	}{{"pipeline", true}, {"pipeline_without_dedupe", false}} {
		b.Run(v.name, func(b *testing.B) {
			msgs, subjects := benchMessages(b, cat, pool)
			reg := prometheus.NewRegistry()
			m := metrics.New(reg, cat, metrics.Options{})
			clock := service.NewCoarseClock(time.Millisecond)
			defer clock.Stop()
			ro := books.RulesOptions{}
			if v.dedupe {
				ro = books.RulesOptions{DedupeWindow: 10 * time.Minute, DedupeCapacity: 100000}
			}
			l := books.NewLayout(cat, books.LayoutOptions{})
			bk := books.New(l, ro)
			metrics.NewBooks(reg, metrics.Source{Layout: l, Owned: func() []metrics.Partition { return []metrics.Partition{{ID: 0, Books: bk}} }}, nil)
			p := service.NewPipeline(bk, service.NewHooks(m, api.NewEvents(api.Sizes{BillableFailure: 1000, HighRisk: 1000, UnknownCode: 200}), false, nil), m, clock.Now)
			idAt := make([]int, pool)
			for i, m := range msgs {
				idAt[i] = bytes.Index(m, []byte(`"bench-`)) + len(`"bench-`)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// A new id every time, as in a real stream: no event is a duplicate.
				msg := msgs[i&(pool-1)]
				v := uint64(i)
				for j := idAt[i&(pool-1)] + 11; j >= idAt[i&(pool-1)]; j-- {
					msg[j] = "0123456789abcdef"[v&15]
					v >>= 4
				}
				_ = p.Process(msg, subjects[i&(pool-1)])
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.StopTimer()
			mfs, _ := reg.Gather()
			for _, mf := range mfs {
				if mf.GetName() == "faceid_exporter_duplicates_total" && mf.Metric[0].GetCounter().GetValue() > 0 {
					b.Fatalf("%v events taken for duplicates: the benchmark skipped counting them", mf.Metric[0].GetCounter().GetValue())
				}
			}
		})
	}
}
