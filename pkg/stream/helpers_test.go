package stream_test

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/faceid-observability/faceid-exporter/internal/promtest"
	"github.com/faceid-observability/faceid-exporter/pkg/api"
	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/dedupe"
	"github.com/faceid-observability/faceid-exporter/pkg/metrics"
	"github.com/faceid-observability/faceid-exporter/pkg/service"
	"github.com/faceid-observability/faceid-exporter/pkg/simulate"
)

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

// rig is one exporter pipeline with its own registry.
type rig struct {
	reg   *prometheus.Registry
	m     *metrics.Metrics
	pipes *service.Pipelines
}

func newRig(t testing.TB, cat *classify.Catalog, store dedupe.Store) *rig {
	return newRigReqIDs(t, cat, store, nil)
}

// newRigReqIDs is newRig with a reqId store (nil: in memory, per classifier).
func newRigReqIDs(t testing.TB, cat *classify.Catalog, store dedupe.Store, reqIDs classify.ReqIDStore) *rig {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, cat, metrics.Options{})
	return &rig{reg: reg, m: m, pipes: service.NewPipelines(service.PipelineConfig{
		Catalog: cat, Metrics: m, Dedupe: store, ReqIDStore: reqIDs, Logger: testLogger(t),
		Events: api.NewEvents(api.Sizes{BillableFailure: 10, HighRisk: 10, UnknownCode: 10}),
	})}
}

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
	var s float64
	for _, v := range m {
		s += v
	}
	return s
}

// truth is the ground truth of what was published.
type truth struct {
	byCode   map[string]float64 // channel,code,billable
	rejected map[string]float64 // reason
	accepted int
}

func newTruth() *truth {
	return &truth{byCode: map[string]float64{}, rejected: map[string]float64{}}
}

func (tr *truth) add(x simulate.Truth) {
	if x.Reject != classify.ReasonNone {
		tr.rejected[x.Reject.String()]++
		return
	}
	tr.accepted++
	tr.byCode[fmt.Sprintf("billable=%s,channel=%s,code=%s", x.Billable, x.Channel.Name, x.CodeLabel())]++
}

// verifications returns faceid_verifications_total summed over outcome
// (outcome follows from the code), keyed like truth.byCode; rows at zero are left out.
func verifications(t testing.TB, gs ...prometheus.Gatherer) map[string]float64 {
	out := map[string]float64{}
	for _, g := range gs {
		for k, v := range family(t, g, "faceid_verifications_total") {
			if v == 0 {
				continue
			}
			var kept []string
			for _, p := range strings.Split(k, ",") {
				if !strings.HasPrefix(p, "outcome=") {
					kept = append(kept, p)
				}
			}
			out[strings.Join(kept, ",")] += v
		}
	}
	return out
}

// compare reports every row where got and want differ. mergeBillable lists
// channel,code pairs whose billable split is not compared, only their total.
func compare(t testing.TB, got, want map[string]float64, mergeBillable ...string) {
	t.Helper()
	merge := func(m map[string]float64) map[string]float64 {
		out := map[string]float64{}
		for k, v := range m {
			for _, mb := range mergeBillable {
				if strings.HasSuffix(k, mb) {
					k = "billable=*," + mb
				}
			}
			out[k] += v
		}
		return out
	}
	got, want = merge(got), merge(want)
	bad := 0
	for k, w := range want {
		if got[k] != w {
			bad++
			if bad <= 10 {
				t.Errorf("%s: got %v, want %v", k, got[k], w)
			}
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			bad++
			if bad <= 10 {
				t.Errorf("%s: got %v, want nothing", k, g)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d rows differ out of %d", bad, len(want))
	}
}
