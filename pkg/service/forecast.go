package service

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/faceid-observability/faceid-exporter/pkg/forecast"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
	"github.com/faceid-observability/faceid-exporter/pkg/metrics"
)

// DefaultForecastInterval is how often the owner of partition 0 recomputes
// the forecast behind the forecast gauges (--forecast.interval).
const DefaultForecastInterval = 10 * time.Minute

// Forecast configures the forecast of the group's ledger (JetStream mode).
type Forecast struct {
	// Interval between recomputations of the gauges' forecast; 0: no gauges
	// (GET /api/v1/forecast still answers).
	Interval time.Duration
	// Calendar is China's public calendar with the user's days (nil: the
	// public calendar alone).
	Calendar *forecast.Calendar
}

// forecaster keeps the latest forecast of the group's ledger for the
// gauges: it recomputes it every interval while this replica is the leader
// (owns partition 0), and drops it when it is not.
type forecaster struct {
	read     func(ctx context.Context, from, to ledger.Day) ([]ledger.Row, error)
	options  func() forecast.Options
	interval time.Duration
	leader   func() bool
	log      *slog.Logger
	latest   atomic.Pointer[metrics.ForecastSnapshot]
}

// refresh recomputes the forecast when this replica leads and the exposed
// one is missing or older than the interval.
func (f *forecaster) refresh(ctx context.Context) {
	if !f.leader() {
		f.latest.Store(nil)
		return
	}
	opts := f.options()
	if s := f.latest.Load(); s != nil && float64(opts.Now.UnixNano())/1e9-s.UnixSeconds < f.interval.Seconds() {
		return
	}
	today := ledger.DayOf(opts.Now)
	rows, err := f.read(ctx, today-forecast.HistoryDays+1, today)
	if err != nil {
		if ctx.Err() == nil {
			f.log.Warn("forecast: ledger read failed", "err", err)
		}
		return
	}
	res, err := forecast.FromRows(rows, opts)
	if err != nil {
		f.log.Info("forecast: nothing to expose yet", "err", err)
		return
	}
	f.latest.Store(&metrics.ForecastSnapshot{Result: res, UnixSeconds: float64(opts.Now.UnixNano()) / 1e9})
}

// run refreshes until ctx ends, checking leadership every check.
func (f *forecaster) run(ctx context.Context, check time.Duration) {
	t := time.NewTicker(check)
	defer t.Stop()
	for {
		f.refresh(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
