package dashgen

import (
	"fmt"
	"strings"

	"github.com/faceid-observability/faceid-exporter/pkg/classify"
)

const (
	ch   = `channel=~"$channel"`
	inst = `instance=~"$instance"`
	chI  = ch + "," + inst
)

func f(v float64) *float64 { return &v }

// withMeaning joins a vector with labels channel and code to the catalog's
// meaning and category of each code (through the channel's family).
func withMeaning(expr string) string {
	return `(
  (` + expr + `)
  * on (channel) group_left (family) faceid:channel_family:info
)
* on (family, code) group_left (meaning, category) max by (family, code, meaning, category) (faceid_code_info)`
}

func levelRegex(r classify.LevelRule) string {
	var parts []string
	for l := r.HighFrom; l <= r.Max; l++ {
		parts = append(parts, fmt.Sprint(l))
	}
	return strings.Join(parts, "|")
}

// Dashboards returns every generated dashboard.
func Dashboards() ([]Dashboard, error) {
	cat, err := classify.Default()
	if err != nil {
		return nil, fmt.Errorf("load catalog: %w", err)
	}
	return []Dashboard{overview(), billing(), risk(cat), exporterHealth()}, nil
}

func overview() Dashboard {
	return Dashboard{
		File: "faceid-overview.json", UID: "faceid-overview", Title: "FaceID / Overview", Tags: []string{"faceid"},
		Desc: "Is verification healthy, what is failing and why: volume, success rate, billed vs not and the top failure codes per channel.",
		Rows: []Row{
			{Title: "Now", Panels: []Panel{
				{Type: "stat", Title: "Verifications", Unit: "reqps", Width: 6, Height: 5, Instant: true,
					Desc:    "Verification results per second over the selected channels.",
					Targets: []Target{{Expr: `sum(faceid:verifications:rate5m{` + chI + `})`}}},
				{Type: "stat", Title: "Success rate", Unit: "percentunit", Width: 6, Height: 5, Instant: true,
					Desc:    "Share of verifications with a success code.",
					Targets: []Target{{Expr: `sum(faceid:verifications:rate5m{` + chI + `,outcome="success"}) / sum(faceid:verifications:rate5m{` + chI + `})`}}},
				{Type: "stat", Title: "Billed", Unit: "reqps", Width: 6, Height: 5, Instant: true,
					Desc:    "Verifications Tencent bills (billable=\"true\"), per second.",
					Targets: []Target{{Expr: `sum(faceid:verifications:rate5m{` + chI + `,billable="true"})`}}},
				{Type: "stat", Title: "Billable failures", Unit: "reqps", Width: 6, Height: 5, Instant: true,
					Desc:    "Billed verifications that did not succeed, per second.",
					Targets: []Target{{Expr: `sum(faceid:verifications:rate5m{` + chI + `,outcome="failure",billable="true"})`}}},
			}},
			{Title: "Volume and success", Panels: []Panel{
				{Type: "timeseries", Title: "Verifications by channel", Unit: "reqps", Width: 12, Stack: true,
					Targets: []Target{{Expr: `sum by (channel) (faceid:verifications:rate5m{` + chI + `})`, Legend: "{{channel}}"}}},
				{Type: "timeseries", Title: "Success rate by channel", Unit: "percentunit", Width: 12, Min: f(0), Max: f(1),
					Desc:    "faceid:success:ratio_rate5m; dashed is the one-hour baseline FaceIDSuccessRateDrop compares against.",
					Targets: []Target{{Expr: `faceid:success:ratio_rate5m{` + ch + `}`, Legend: "{{channel}}"}, {Expr: `faceid:success:ratio_rate5m_avg1h{` + ch + `}`, Legend: "{{channel}} baseline"}}},
				{Type: "timeseries", Title: "Billed vs not billed", Unit: "reqps", Width: 12, Stack: true,
					Desc:    "billable: true (billed), false (not billed), unknown (the catalog cannot say: unknown codes, willingness successes).",
					Targets: []Target{{Expr: `sum by (billable) (faceid:verifications:rate5m{` + chI + `})`, Legend: "billable={{billable}}"}}},
				{Type: "timeseries", Title: "Outcome by channel", Unit: "reqps", Width: 12,
					Targets: []Target{{Expr: `sum by (channel, outcome) (faceid:verifications:rate5m{` + chI + `})`, Legend: "{{channel}} {{outcome}}"}}},
			}},
			{Title: "Failures", Panels: []Panel{
				{Type: "table", Title: "Top failure codes", Unit: "reqps", Width: 24, Height: 10, Instant: true,
					Desc:    "The 15 most frequent failure codes with the catalog's meaning and category (codes unknown to the catalog are on the Exporter health dashboard).",
					Targets: []Target{{Expr: withMeaning(`topk(15, sum by (channel, code, billable) (faceid:verifications_by_code:rate5m{` + chI + `,outcome="failure"}) > 0)`)}}},
				{Type: "timeseries", Title: "Failure codes over time (top 10)", Unit: "reqps", Width: 12,
					Targets: []Target{{Expr: `topk(10, sum by (channel, code) (faceid:verifications_by_code:rate5m{` + chI + `,outcome="failure"}))`, Legend: "{{channel}} {{code}}"}}},
				{Type: "timeseries", Title: "Upstream error share", Unit: "percentunit", Width: 12,
					Desc:    "Share of verifications ending in a Tencent system, engine, data-source or network code (FaceIDUpstreamErrors; codes in docs/alerts.md).",
					Targets: []Target{{Expr: `faceid:upstream_error:ratio_rate5m{` + ch + `}`, Legend: "{{channel}}"}}},
				{Type: "timeseries", Title: "Unknown codes", Unit: "reqps", Width: 12,
					Desc:    "Codes the catalog does not know (FaceIDUnknownCodes): add them with --catalog.file.",
					Targets: []Target{{Expr: `faceid:unknown_codes:rate5m{` + ch + `}`, Legend: "{{channel}}"}}},
				{Type: "timeseries", Title: "High-risk share", Unit: "percentunit", Width: 12,
					Desc:    "See the Risk dashboard.",
					Targets: []Target{{Expr: `faceid:high_risk:ratio_rate5m{` + ch + `}`, Legend: "{{channel}}"}}},
			}},
		},
	}
}

func billing() Dashboard {
	return Dashboard{
		File: "faceid-billing-cost.json", UID: "faceid-billing-cost", Title: "FaceID / Billing & cost", Tags: []string{"faceid"},
		Desc: "What verification costs: month-to-date spend, the month-end forecast against the budget, and the share of billed calls that fail.",
		Rows: []Row{
			{Title: "This billing month (calendar month, UTC+8)", Panels: []Panel{
				{Type: "stat", Title: "Spent this month", Unit: "short", Width: 6, Height: 5, Instant: true,
					Targets: []Target{{Expr: `sum by (currency) (faceid:cost:month_to_date)`, Legend: "{{currency}}"}}},
				{Type: "stat", Title: "Forecast at month end", Unit: "short", Width: 6, Height: 5, Instant: true,
					Desc:    "predict_linear over the last day of month-to-date spend (docs/runbooks/FaceIDCostForecastOverBudget.md).",
					Targets: []Target{{Expr: `sum by (currency) (faceid:cost:month_end_forecast)`, Legend: "{{currency}}"}}},
				{Type: "gauge", Title: "Budget used", Unit: "percentunit", Width: 6, Height: 5, Instant: true, Min: f(0), Max: f(1),
					Targets: []Target{{Expr: `faceid:cost:budget_used:ratio`, Legend: "{{currency}}"}}},
				{Type: "gauge", Title: "Forecast vs budget", Unit: "percentunit", Width: 6, Height: 5, Instant: true, Min: f(0), Max: f(1.5),
					Targets: []Target{{Expr: `faceid:cost:forecast_budget:ratio`, Legend: "{{currency}}"}}},
				{Type: "timeseries", Title: "Spend, forecast and budget", Unit: "short", Width: 16,
					Targets: []Target{
						{Expr: `faceid:cost:month_to_date`, Legend: "spent ({{currency}})"},
						{Expr: `faceid:cost:month_end_forecast`, Legend: "forecast ({{currency}})"},
						{Expr: `faceid:pricing:monthly_budget`, Legend: "budget ({{currency}})"},
					}},
				{Type: "stat", Title: "Billed verifications this month", Unit: "short", Width: 8, Instant: true,
					Targets: []Target{{Expr: `sum(faceid:billed:month_to_date{` + ch + `})`}}},
			}},
			{Title: "By channel", Panels: []Panel{
				{Type: "bargauge", Title: "Spent this month by channel", Unit: "short", Width: 8, Instant: true,
					Targets: []Target{{Expr: `sort_desc(sum by (channel, currency) (faceid:cost_by_channel:month_to_date{` + ch + `}))`, Legend: "{{channel}} ({{currency}})"}}},
				{Type: "timeseries", Title: "Spend per hour by channel", Unit: "short", Width: 8, Stack: true,
					Targets: []Target{{Expr: `faceid:cost_by_channel:rate5m{` + ch + `} * 3600`, Legend: "{{channel}} ({{currency}})"}}},
				{Type: "table", Title: "Unit prices", Unit: "short", Width: 8, Instant: true,
					Desc:    "From the exporter's pricing section; channels without a price cost nothing here.",
					Targets: []Target{{Expr: `faceid:pricing_unit_price:max{` + ch + `}`}}},
				{Type: "timeseries", Title: "Billed vs not billed by channel", Unit: "reqps", Width: 12,
					Targets: []Target{{Expr: `sum by (channel, billable) (faceid:verifications:rate5m{` + chI + `})`, Legend: "{{channel}} billable={{billable}}"}}},
				{Type: "timeseries", Title: "Billable-failure share of billed calls", Unit: "percentunit", Width: 12,
					Desc: "faceid:billable_failure:ratio_rate5m (FaceIDBillableFailureRatioHigh fires above 10 %).",
					Targets: []Target{
						{Expr: `faceid:billable_failure:ratio_rate5m{` + ch + `}`, Legend: "{{channel}}"},
						{Expr: `faceid:billable_failure:ratio_rate5m_avg1h{` + ch + `}`, Legend: "{{channel}} baseline"},
					}},
				{Type: "timeseries", Title: "Billable failures", Unit: "reqps", Width: 12,
					Desc:    "FaceIDBillableFailureSpike fires when their share of billed calls is 3× its one-hour baseline (and at least 0.05/s).",
					Targets: []Target{{Expr: `faceid:billable_failures:rate5m{` + ch + `}`, Legend: "{{channel}}"}}},
				{Type: "table", Title: "Billable failures by code", Unit: "reqps", Width: 12, Instant: true,
					Targets: []Target{{Expr: withMeaning(`sum by (channel, code) (faceid:verifications_by_code:rate5m{` + chI + `,outcome="failure",billable="true"}) > 0`)}}},
			}},
		},
	}
}

func risk(cat *classify.Catalog) Dashboard {
	return Dashboard{
		File: "faceid-risk.json", UID: "faceid-risk", Title: "FaceID / Risk", Tags: []string{"faceid"},
		Desc: "Are we under attack: device and identity risk levels, device tags by platform, identity tag types.",
		Rows: []Row{
			{Title: "High risk", Panels: []Panel{
				{Type: "timeseries", Title: "High-risk events", Unit: "reqps", Width: 12,
					Desc: fmt.Sprintf("Device level %d–%d or identity level %d (Tencent intercepts these).",
						cat.DeviceLevel.HighFrom, cat.DeviceLevel.Max, cat.RiskLevel.HighFrom),
					Targets: []Target{{Expr: `faceid:high_risk_events:rate5m{` + ch + `}`, Legend: "{{channel}}"}}},
				{Type: "timeseries", Title: "High-risk share vs baseline", Unit: "percentunit", Width: 12,
					Desc: "FaceIDHighRiskDeviceSurge fires when the share is 3× its one-hour baseline (and at least 0.05/s).",
					Targets: []Target{
						{Expr: `faceid:high_risk:ratio_rate5m{` + ch + `}`, Legend: "{{channel}}"},
						{Expr: `faceid:high_risk:ratio_rate5m_avg1h{` + ch + `}`, Legend: "{{channel}} baseline"},
					}},
				{Type: "timeseries", Title: "Device risk levels", Unit: "reqps", Width: 12, Stack: true,
					Desc:    "deviceInfoLevel: 0–2 low, 3–4 high (intercepted); absent when the result carries none.",
					Targets: []Target{{Expr: `sum by (level) (faceid:device_level_events:rate5m{` + chI + `})`, Legend: "level {{level}}"}}},
				{Type: "timeseries", Title: "Identity risk levels", Unit: "reqps", Width: 12, Stack: true,
					Desc:    "riskInfoLevel: 0–4 lower risk, 5 high (intercepted).",
					Targets: []Target{{Expr: `sum by (level) (faceid:identity_level_events:rate5m{` + chI + `})`, Legend: "level {{level}}"}}},
				{Type: "timeseries", Title: "High device levels by channel", Unit: "reqps", Width: 24,
					Targets: []Target{{Expr: `sum by (channel, level) (faceid:device_level_events:rate5m{` + chI + `,level=~"` + levelRegex(cat.DeviceLevel) + `"})`, Legend: "{{channel}} level {{level}}"}}},
			}},
			{Title: "Tags", Panels: []Panel{
				{Type: "timeseries", Title: "Attack device tags per event vs baseline", Unit: "percentunit", Width: 12,
					Desc: "emulator, injection, hook, camera_hijack per event of the channel (FaceIDDeviceAttackTagSurge fires at 3× the baseline and at least 0.05/s).",
					Targets: []Target{
						{Expr: `faceid:device_attack_tags:ratio_rate5m{` + ch + `}`, Legend: "{{channel}} {{name}}"},
						{Expr: `faceid:device_attack_tags:ratio_rate5m_avg1h{` + ch + `}`, Legend: "{{channel}} {{name}} baseline"},
					}},
				{Type: "timeseries", Title: "Device tags by platform", Unit: "reqps", Width: 12, Stack: true,
					Targets: []Target{{Expr: `sum by (name, platform) (faceid:device_tags:rate5m{` + chI + `})`, Legend: "{{name}} ({{platform}})"}}},
				{Type: "table", Title: "Device tags by platform (now)", Unit: "reqps", Width: 12, Instant: true,
					Targets: []Target{{Expr: `sort_desc(sum by (name, platform) (faceid:device_tags:rate5m{` + chI + `}))`}}},
				{Type: "timeseries", Title: "Identity tags by type", Unit: "reqps", Width: 12, Stack: true,
					Desc:    "riskInfoTag types from the catalog: attack or business.",
					Targets: []Target{{Expr: `sum by (type) (faceid:identity_tags:rate5m{` + chI + `})`, Legend: "{{type}}"}}},
				{Type: "table", Title: "Top identity tags", Unit: "reqps", Width: 24, Instant: true,
					Targets: []Target{{Expr: `topk(10, sum by (tag, type) (faceid:identity_tags:rate5m{` + chI + `}))`}}},
			}},
		},
	}
}

func rateOf(metric, by string) string {
	return fmt.Sprintf(`sum by (%s) (rate(%s{%s}[$__rate_interval]))`, by, metric, inst)
}

func exporterHealth() Dashboard {
	return Dashboard{
		File: "faceid-exporter-health.json", UID: "faceid-exporter-health", Title: "FaceID / Exporter health", Tags: []string{"faceid"},
		Desc: "The exporter itself: scrape and NATS status, what it receives, rejects and dead-letters, JetStream backlog, latency, capacity and headroom.",
		Rows: []Row{
			{Title: "Status", Panels: []Panel{
				{Type: "stat", Title: "Up", Width: 6, Height: 5, Instant: true,
					Targets: []Target{{Expr: `up{job="faceid-exporter",` + inst + `}`, Legend: "{{instance}}"}}},
				{Type: "stat", Title: "NATS connected", Width: 6, Height: 5, Instant: true,
					Targets: []Target{{Expr: `faceid_exporter_nats_connected{` + inst + `}`, Legend: "{{instance}}"}}},
				{Type: "stat", Title: "Seconds since last event", Unit: "s", Width: 6, Height: 5, Instant: true,
					Targets: []Target{{Expr: `time() - faceid_exporter_last_event_timestamp_seconds{` + inst + `}`, Legend: "{{instance}}"}}},
				{Type: "table", Title: "Build", Width: 6, Height: 5, Instant: true,
					Targets: []Target{{Expr: `faceid_exporter_build_info{` + inst + `}`}}},
			}},
			{Title: "Traffic", Panels: []Panel{
				{Type: "timeseries", Title: "Events received", Unit: "reqps", Width: 12,
					Targets: []Target{{Expr: rateOf("faceid_exporter_events_received_total", "instance, transport"), Legend: "{{instance}} {{transport}}"}}},
				{Type: "timeseries", Title: "Rejected by reason", Unit: "reqps", Width: 12,
					Targets: []Target{{Expr: rateOf("faceid_exporter_events_rejected_total", "reason"), Legend: "{{reason}}"}}},
				{Type: "timeseries", Title: "Dead letters", Unit: "reqps", Width: 12,
					Desc: "Republished to the dead-letter subject, and republish failures (lost).",
					Targets: []Target{
						{Expr: rateOf("faceid_exporter_dead_letters_total", "reason"), Legend: "{{reason}}"},
						{Expr: rateOf("faceid_exporter_dead_letter_errors_total", "instance"), Legend: "publish failed {{instance}}"},
					}},
				{Type: "timeseries", Title: "Duplicates, problems and unknown codes", Unit: "reqps", Width: 12,
					Targets: []Target{
						{Expr: rateOf("faceid_exporter_duplicates_total", "instance"), Legend: "duplicates {{instance}}"},
						{Expr: rateOf("faceid_exporter_event_problems_total", "problem"), Legend: "problem {{problem}}"},
						{Expr: `sum by (channel) (rate(faceid_exporter_unknown_codes_total{` + chI + `}[$__rate_interval]))`, Legend: "unknown code {{channel}}"},
					}},
			}},
			{Title: "NATS and JetStream", Panels: []Panel{
				{Type: "timeseries", Title: "JetStream pending", Unit: "short", Width: 12,
					Targets: []Target{
						{Expr: `faceid_exporter_jetstream_pending_messages{` + inst + `}`, Legend: "pending {{instance}}"},
						{Expr: `faceid_exporter_jetstream_ack_pending_messages{` + inst + `}`, Legend: "ack pending {{instance}}"},
					}},
				{Type: "timeseries", Title: "Reconnects and disconnects", Unit: "short", Width: 12,
					Targets: []Target{
						{Expr: `sum by (instance) (increase(faceid_exporter_nats_reconnects_total{` + inst + `}[$__rate_interval]))`, Legend: "reconnects {{instance}}"},
						{Expr: `sum by (instance) (increase(faceid_exporter_nats_disconnects_total{` + inst + `}[$__rate_interval]))`, Legend: "disconnects {{instance}}"},
					}},
			}},
			{Title: "Latency, capacity and headroom", Panels: []Panel{
				{Type: "timeseries", Title: "Processing time", Unit: "s", Width: 12,
					Desc: "Decode, classify and count, per message.",
					Targets: []Target{
						{Expr: `histogram_quantile(0.5, sum by (le) (rate(faceid_exporter_processing_seconds_bucket{` + inst + `}[$__rate_interval])))`, Legend: "p50"},
						{Expr: `histogram_quantile(0.99, sum by (le) (rate(faceid_exporter_processing_seconds_bucket{` + inst + `}[$__rate_interval])))`, Legend: "p99"},
					}},
				{Type: "timeseries", Title: "Event delay", Unit: "s", Width: 12,
					Desc: "Receipt time minus the event's ts.",
					Targets: []Target{
						{Expr: `histogram_quantile(0.5, sum by (le) (rate(faceid_exporter_event_delay_seconds_bucket{` + inst + `}[$__rate_interval])))`, Legend: "p50"},
						{Expr: `histogram_quantile(0.99, sum by (le) (rate(faceid_exporter_event_delay_seconds_bucket{` + inst + `}[$__rate_interval])))`, Legend: "p99"},
					}},
				{Type: "timeseries", Title: "Event rate, daily peak and capacity", Unit: "reqps", Width: 12,
					Desc: "Capacity: events/s one instance could process at its current mean processing time.",
					Targets: []Target{
						{Expr: `faceid:events:rate5m`, Legend: "events ({{job}})"},
						{Expr: `faceid:events:peak_rate5m_1d`, Legend: "1-day peak ({{job}})"},
						{Expr: `faceid:exporter_consumer:capacity_rate5m{` + inst + `}`, Legend: "capacity {{instance}}"},
					}},
				{Type: "stat", Title: "Peak trend (per day, over a week)", Unit: "reqps", Width: 6, Instant: true,
					Targets: []Target{{Expr: `faceid:events:peak_rate5m_1d:deriv7d`, Legend: "{{job}}"}}},
				{Type: "gauge", Title: "Consumer headroom", Unit: "percentunit", Width: 6, Instant: true, Min: f(0), Max: f(1),
					Desc:    "1 - busy share (FaceIDExporterSaturated fires when busy above 80 %).",
					Targets: []Target{{Expr: `faceid:exporter_consumer:headroom_ratio{` + inst + `}`, Legend: "{{instance}}"}}},
				{Type: "timeseries", Title: "Dedupe and reqId evictions", Unit: "reqps", Width: 12,
					Targets: []Target{
						{Expr: rateOf("faceid_exporter_dedupe_evictions_total", "instance"), Legend: "dedupe {{instance}}"},
						{Expr: rateOf("faceid_exporter_reqid_evictions_total", "instance"), Legend: "reqId {{instance}}"},
					}},
			}},
		},
	}
}
