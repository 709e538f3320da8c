package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/faceid-observability/faceid-exporter/pkg/forecast"
)

// ForecastBounds are the values of the bound label of the forecast gauges:
// the point forecast and the 80 % and 95 % prediction intervals.
var ForecastBounds = []string{"point", "low80", "high80", "low95", "high95"}

func boundValues(e forecast.Estimate) []float64 {
	return []float64{e.Point, e.Low80, e.High80, e.Low95, e.High95}
}

// ForecastSnapshot is the latest forecast and when it was made.
type ForecastSnapshot struct {
	Result *forecast.Result
	// UnixSeconds is when the forecast was computed.
	UnixSeconds float64
}

// Forecast exposes the latest month-end forecast of the group's ledger as
// gauges, only while Leader says this replica is the one to expose it (the
// owner of partition 0), so that a sum over replicas counts it once.
type Forecast struct {
	latest func() *ForecastSnapshot
	leader func() bool

	billed, cost, groupBilled, groupCost, history, updated *prometheus.Desc
}

// NewForecast registers the forecast gauges on reg: latest returns the
// snapshot to expose (nil: none yet), leader whether this replica exposes it.
func NewForecast(reg prometheus.Registerer, latest func() *ForecastSnapshot, leader func() bool) *Forecast {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	f := &Forecast{latest: latest, leader: leader,
		billed:      d("faceid_forecast_billed_month_end", "Forecast billable verifications of the channel in the whole current Beijing month (month to date plus the rest), from the group's ledger; bound: point, low80, high80, low95, high95 (docs/forecast.md).", "channel", "bound"),
		cost:        d("faceid_forecast_cost_month_end", "faceid_forecast_billed_month_end times the channel's unit price from pricing.", "channel", "currency", "bound"),
		groupBilled: d("faceid_forecast_group_billed_month_end", "Forecast billable verifications of all channels in the current Beijing month: a forecast of the total, whose interval is not the sum of the channels' intervals.", "bound"),
		groupCost:   d("faceid_forecast_group_cost_month_end", "Forecast spend of all priced channels in the current Beijing month (what FaceIDCostForecastOverBudget compares with the budget, at bound=\"low80\").", "currency", "bound"),
		history:     d("faceid_forecast_history_days", "Complete ledger days the channel's forecast stands on; below 28 its interval is a wide default (docs/forecast.md).", "channel"),
		updated:     d("faceid_forecast_last_update_timestamp_seconds", "Unix time the exposed forecast was computed (every --forecast.interval)."),
	}
	reg.MustRegister(f)
	return f
}

// Describe sends nothing: the collector is unchecked, its series follow the
// leadership and the channels of the ledger.
func (f *Forecast) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (f *Forecast) Collect(ch chan<- prometheus.Metric) {
	if !f.leader() {
		return
	}
	s := f.latest()
	if s == nil || s.Result == nil {
		return
	}
	r := s.Result
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for i, v := range boundValues(r.Total.BilledMonthEnd) {
		gauge(f.groupBilled, v, ForecastBounds[i])
	}
	if c := r.Total.CostMonthEnd; c != nil {
		for i, v := range boundValues(*c) {
			gauge(f.groupCost, v, r.Currency, ForecastBounds[i])
		}
	}
	for _, sr := range r.Channels {
		for i, v := range boundValues(sr.BilledMonthEnd) {
			gauge(f.billed, v, sr.Channel, ForecastBounds[i])
		}
		if c := sr.CostMonthEnd; c != nil {
			for i, v := range boundValues(*c) {
				gauge(f.cost, v, sr.Channel, r.Currency, ForecastBounds[i])
			}
		}
		gauge(f.history, float64(sr.HistoryDays), sr.Channel)
	}
	gauge(f.updated, s.UnixSeconds)
}
