package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
	"github.com/faceid-observability/faceid-exporter/pkg/tencentbill"
)

// DayOffsetLastComplete is the day_offset label of the last Beijing day
// complete at Tencent.
const DayOffsetLastComplete = "1"

// LastCompleteDay returns the newest Beijing day whose details are complete
// at Tencent at now (06:00 Beijing the next day).
func LastCompleteDay(now time.Time) ledger.Day {
	return ledger.DayOf(now.Add(-tencentbill.CompleteAfter)) - 1
}

// RunnerConfig configures the periodic reconciliation of serve.
type RunnerConfig struct {
	// Interval between reconciliations of the last complete day (> 0).
	Interval time.Duration
	Ledger   Ledger
	Bills    tencentbill.Source
	Catalog  *classify.Catalog
	Family   string // default DefaultFamily
	// Tolerance is the fraction of Tencent's charged count a difference may
	// reach before faceid_reconcile_mismatch is 1 (0: exact).
	Tolerance float64
	RuleIDs   []string         // the business.rule_id allowlist, nil when none
	Now       func() time.Time // default time.Now
	Logger    *slog.Logger
}

// Runner reconciles the last complete day periodically and exports the
// result as metrics.
type Runner struct {
	cfg RunnerConfig

	ours, tencent, mismatch *prometheus.GaugeVec
	drift                   *prometheus.GaugeVec
	lastSuccess             prometheus.Gauge
	errors                  prometheus.Counter

	mu    sync.Mutex
	cache Bills // complete dates fetched with bill data: they do not change at Tencent
}

// NewRunner returns a Runner whose metrics are registered on reg.
func NewRunner(cfg RunnerConfig, reg prometheus.Registerer) (*Runner, error) {
	if cfg.Interval <= 0 {
		return nil, errors.New("reconcile: the interval must be positive")
	}
	if cfg.Ledger == nil || cfg.Bills == nil {
		return nil, errors.New("reconcile: a ledger and a bill source are both needed")
	}
	if cfg.Family == "" {
		cfg.Family = DefaultFamily
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	// Options are checked once here, with a one-day range.
	o := Options{Catalog: cfg.Catalog, Family: cfg.Family, Tolerance: cfg.Tolerance}
	if _, err := o.check(); err != nil {
		return nil, err
	}
	dayLabels := []string{"family", "day_offset"}
	r := &Runner{
		cfg: cfg,
		ours: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "faceid_reconcile_ours_billable",
			Help: "Billable verifications of the family in the exact books for the Beijing day (day_offset 1: the last day complete at Tencent)."}, dayLabels),
		tencent: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "faceid_reconcile_tencent_charged",
			Help: "1:1 attempts Tencent charged (IsNeedCharge) for the family on the Beijing day, from GetWeChatBillDetails."}, dayLabels),
		mismatch: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "faceid_reconcile_mismatch",
			Help: "1 when the books and Tencent's bill differ beyond --reconcile.tolerance for the day, or one side has no data for it; else 0."}, dayLabels),
		drift: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "faceid_reconcile_catalog_drift_codes",
			Help: "Return codes Tencent charged otherwise than the catalog says on the last complete day (see exporter reconcile)."}, []string{"family"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "faceid_reconcile_last_success_timestamp_seconds",
			Help: "When the last reconciliation succeeded, Unix seconds."}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "faceid_reconcile_errors_total",
			Help: "Reconciliations that failed (ledger or Tencent unreachable, bad bill data)."}),
	}
	for _, c := range []prometheus.Collector{r.ours, r.tencent, r.mismatch, r.drift, r.lastSuccess, r.errors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register reconcile metrics: %w", err)
		}
	}
	return r, nil
}

// Run reconciles at once, then every Interval, until ctx ends.
func (r *Runner) Run(ctx context.Context) error {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		_, _ = r.RunOnce(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// RunOnce reconciles the last complete day and updates the metrics; a
// failure counts in faceid_reconcile_errors_total and leaves them as they were.
func (r *Runner) RunOnce(ctx context.Context) (*Report, error) {
	now := r.cfg.Now()
	d := LastCompleteDay(now)
	rep, err := r.reconcile(ctx, d, now)
	if err != nil {
		if ctx.Err() == nil {
			r.errors.Inc()
			r.cfg.Logger.Warn("reconciliation failed", "day", d.String(), "err", err)
		}
		return nil, err
	}
	total := rep.Rows[0] // the day's total row comes first
	labels := prometheus.Labels{"family": r.cfg.Family, "day_offset": DayOffsetLastComplete}
	r.ours.With(labels).Set(float64(total.OursBillable))
	r.tencent.With(labels).Set(float64(total.TencentCharged))
	m := 0.0
	if total.Status == StatusMismatch || total.Status == StatusMissing {
		m = 1
	}
	r.mismatch.With(labels).Set(m)
	r.drift.WithLabelValues(r.cfg.Family).Set(float64(rep.DriftCodes()))
	r.lastSuccess.Set(float64(now.UnixNano()) / 1e9)
	r.cfg.Logger.Info("reconciled the last complete day with Tencent's bill", "day", total.Day, "family", r.cfg.Family,
		"ours_billable", total.OursBillable, "tencent_charged", total.TencentCharged, "status", total.Status,
		"catalog_drift_codes", rep.DriftCodes())
	return rep, nil
}

func (r *Runner) reconcile(ctx context.Context, d ledger.Day, now time.Time) (*Report, error) {
	o := Options{Catalog: r.cfg.Catalog, Family: r.cfg.Family, From: d, To: d, Now: now, Tolerance: r.cfg.Tolerance, RuleIDs: r.cfg.RuleIDs}
	rows, err := r.cfg.Ledger.Rows(ctx, d, d)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	cache := Bills{}
	for day, pages := range r.cache {
		cache[day] = pages
	}
	r.mu.Unlock()
	bills, err := fetch(ctx, r.cfg.Bills, billDates(d, d, now), cache)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.cache = bills // the dates of this day only: older ones are dropped
	r.mu.Unlock()
	return Compare(o, rows, bills)
}
