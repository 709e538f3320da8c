package reconcile

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
	"github.com/faceid-observability/faceid-exporter/internal/promtest"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
	"github.com/faceid-observability/faceid-exporter/pkg/tencentbill"
)

type countingSource struct {
	src   tencentbill.Source
	calls map[string]int
}

func (c *countingSource) Day(ctx context.Context, d ledger.Day) ([]tencentbill.Page, bool, error) {
	c.calls[d.String()]++
	return c.src.Day(ctx, d)
}

func gather(t *testing.T, reg *prometheus.Registry) map[string]map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]float64{}
	for _, mf := range mfs {
		out[mf.GetName()] = promtest.Series(mf)
	}
	return out
}

func TestLastCompleteDay(t *testing.T) {
	tests := []struct {
		now  time.Time
		want string
	}{
		{time.Date(2024, 3, 3, 5, 59, 59, 999_999_999, ledger.Beijing), "2024-03-01"},
		{time.Date(2024, 3, 3, 6, 0, 0, 0, ledger.Beijing), "2024-03-02"},
		{time.Date(2024, 3, 2, 22, 0, 0, 0, time.UTC), "2024-03-02"}, // 06:00 Beijing on the 3rd
	}
	for _, tc := range tests {
		t.Run(tc.now.Format(time.RFC3339Nano), func(t *testing.T) {
			if got := LastCompleteDay(tc.now).String(); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestRunner(t *testing.T) {
	dir, err := tencentbill.OpenDir("testdata/scenario/bills")
	if err != nil {
		t.Fatal(err)
	}
	const (
		ours     = "faceid_reconcile_ours_billable"
		tencent  = "faceid_reconcile_tencent_charged"
		mismatch = "faceid_reconcile_mismatch"
		drift    = "faceid_reconcile_catalog_drift_codes"
		success  = "faceid_reconcile_last_success_timestamp_seconds"
		errs     = "faceid_reconcile_errors_total"
		dayKey   = "day_offset=1,family=wechat"
	)
	tests := []struct {
		name      string
		now       time.Time
		tolerance float64
		want      map[string]float64 // by metric, the family series
	}{
		{"match_before_six", time.Date(2024, 3, 3, 5, 59, 0, 0, ledger.Beijing), 0,
			map[string]float64{ours: 3, tencent: 3, mismatch: 0, drift: 0}},
		{"per_token_mismatch", time.Date(2024, 3, 3, 6, 0, 0, 0, ledger.Beijing), 0,
			map[string]float64{ours: 4, tencent: 7, mismatch: 1, drift: 0}},
		{"within_tolerance", time.Date(2024, 3, 3, 6, 0, 0, 0, ledger.Beijing), 0.5,
			map[string]float64{ours: 4, tencent: 7, mismatch: 0, drift: 0}},
		{"no_bill_data", time.Date(2024, 3, 4, 12, 0, 0, 0, ledger.Beijing), 0,
			map[string]float64{ours: 2, tencent: 0, mismatch: 1, drift: 0}},
		{"drift", time.Date(2024, 3, 6, 7, 0, 0, 0, ledger.Beijing), 0,
			map[string]float64{ours: 3, tencent: 3, mismatch: 0, drift: 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			src := &countingSource{src: dir, calls: map[string]int{}}
			r, err := NewRunner(RunnerConfig{Interval: time.Hour, Ledger: LedgerFile{Path: "testdata/scenario/ledger.csv"}, Bills: src,
				Catalog: catalog(t), Tolerance: tc.tolerance, RuleIDs: []string{"1", "2"}, Now: func() time.Time { return tc.now }}, reg)
			if err != nil {
				t.Fatal(err)
			}
			got := gather(t, reg)
			if _, ok := got[mismatch]; ok {
				t.Error("faceid_reconcile_mismatch exported before the first reconciliation")
			}
			for i := 0; i < 2; i++ {
				if _, err := r.RunOnce(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			got = gather(t, reg)
			for name, v := range tc.want {
				key := dayKey
				if name == drift {
					key = "family=wechat"
				}
				if s := got[name]; !reflect.DeepEqual(s, map[string]float64{key: v}) {
					t.Errorf("%s = %v, want {%s: %v}", name, s, key, v)
				}
			}
			if got[success][""] != float64(tc.now.Unix()) {
				t.Errorf("%s = %v, want %d", success, got[success][""], tc.now.Unix())
			}
			if got[errs][""] != 0 {
				t.Errorf("%s = %v", errs, got[errs][""])
			}
			for d, n := range src.calls {
				_, has, _ := dir.Day(context.Background(), day(t, d))
				if has && n != 1 {
					t.Errorf("%s fetched %d times: a complete day with bill data is fetched once", d, n)
				}
			}
			if last := LastCompleteDay(tc.now); src.calls[(last-1).String()] == 0 || src.calls[last.String()] == 0 {
				t.Errorf("fetched %v: want the last complete day and the day before", src.calls)
			}
		})
	}
}

type failingSource struct{}

func (failingSource) Day(context.Context, ledger.Day) ([]tencentbill.Page, bool, error) {
	return nil, false, errors.New("tencent down")
}

func TestRunnerErrors(t *testing.T) {
	reg := prometheus.NewRegistry()
	now := time.Date(2024, 3, 3, 6, 0, 0, 0, ledger.Beijing)
	r, err := NewRunner(RunnerConfig{Interval: time.Hour, Ledger: LedgerFile{Path: "testdata/scenario/ledger.csv"}, Bills: failingSource{},
		Catalog: catalog(t), Now: func() time.Time { return now }}, reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.RunOnce(context.Background()); err == nil || err.Error() != "tencent down" {
		t.Fatalf("error %v", err)
	}
	got := gather(t, reg)
	if got["faceid_reconcile_errors_total"][""] != 1 {
		t.Errorf("errors_total %v, want 1", got["faceid_reconcile_errors_total"])
	}
	for _, name := range []string{"faceid_reconcile_mismatch", "faceid_reconcile_ours_billable", "faceid_reconcile_last_success_timestamp_seconds"} {
		if s, ok := got[name]; ok && name != "faceid_reconcile_last_success_timestamp_seconds" {
			t.Errorf("%s exported after a failed first run: %v", name, s)
		} else if ok && s[""] != 0 {
			t.Errorf("%s = %v after a failure", name, s)
		}
	}

	// Registering twice on one registry fails, naming the reason.
	if _, err := NewRunner(RunnerConfig{Interval: time.Hour, Ledger: LedgerFile{}, Bills: failingSource{}, Catalog: catalog(t)}, reg); err == nil {
		t.Error("a second runner registered its metrics on the same registry")
	}
	for _, tc := range []struct {
		name string
		cfg  RunnerConfig
		want string
	}{
		{"no_interval", RunnerConfig{Ledger: LedgerFile{}, Bills: failingSource{}, Catalog: catalog(t)}, "reconcile: the interval must be positive"},
		{"no_source", RunnerConfig{Interval: time.Hour, Ledger: LedgerFile{}, Catalog: catalog(t)}, "reconcile: a ledger and a bill source are both needed"},
		{"bad_tolerance", RunnerConfig{Interval: time.Hour, Ledger: LedgerFile{}, Bills: failingSource{}, Catalog: catalog(t), Tolerance: 2}, "reconcile: tolerance 2 is not a fraction from 0 to 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewRunner(tc.cfg, prometheus.NewRegistry()); err == nil || err.Error() != tc.want {
				t.Errorf("error %v, want %s", err, tc.want)
			}
		})
	}
}

// TestRunnerRunStops: Run reconciles at once and returns when ctx ends.
func TestRunnerRunStops(t *testing.T) {
	reg := prometheus.NewRegistry()
	dir, err := tencentbill.OpenDir("testdata/scenario/bills")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2024, 3, 2, 6, 0, 0, 0, ledger.Beijing)
	r, err := NewRunner(RunnerConfig{Interval: time.Hour, Ledger: LedgerFile{Path: "testdata/scenario/ledger.csv"}, Bills: dir,
		Catalog: catalog(t), Now: func() time.Time { return now }}, reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	natstest.WaitFor(t, 10*time.Second, "the first reconciliation", func() bool {
		return gather(t, reg)["faceid_reconcile_last_success_timestamp_seconds"][""] != 0
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of cancel")
	}
}
