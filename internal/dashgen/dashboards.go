package dashgen

import (
	"fmt"
	"strings"

	"github.com/faceid-observability/faceid-exporter/internal/rulegen"
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
	return []Dashboard{overview(), billing(), risk(cat), exporterHealth(), eventsPlugin(cat)}, nil
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
					Desc:    "Exact: billed verifications of the month × unit price, from the exporter's books (faceid_cost_month_to_date), not an increase() of counters.",
					Targets: []Target{{Expr: `sum by (currency) (faceid:cost:month_to_date)`, Legend: "{{currency}}"}}},
				{Type: "stat", Title: "Forecast at month end", Unit: "short", Width: 6, Height: 5, Instant: true,
					Desc:    "The ledger forecast's point (docs/forecast.md); in core mode, without a ledger, the rough predict_linear estimate over the last day.",
					Targets: []Target{{Expr: `sum by (currency) (faceid:forecast_cost:month_end{bound="point"}) or sum by (currency) (faceid:cost:month_end_forecast)`, Legend: "{{currency}}"}}},
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
					Desc:    "Exact: billable=\"true\" verifications of the Beijing calendar month, from the exporter's books (faceid_billed_month_to_date, summed over partitions); the daily rows are in GET /api/v1/ledger.",
					Targets: []Target{{Expr: `sum(faceid:billed:month_to_date{` + ch + `})`}}},
			}},
			{Title: "Forecast from the ledger (docs/forecast.md)", Panels: []Panel{
				{Type: "timeseries", Title: "Month-end spend forecast, its intervals and the budget", Unit: "short", Width: 16,
					Desc: "The ledger forecast of the month's total spend as it was made over time: the point, the 80 % and 95 % prediction intervals, against the budget and what is spent. FaceIDCostForecastOverBudget fires when the 80 % interval's low end stays above the budget for an hour.",
					Targets: []Target{
						{Expr: `faceid:forecast_cost:month_end{bound="high95"}`, Legend: "95 % high ({{currency}})"},
						{Expr: `faceid:forecast_cost:month_end{bound="high80"}`, Legend: "80 % high ({{currency}})"},
						{Expr: `faceid:forecast_cost:month_end{bound="point"}`, Legend: "forecast ({{currency}})"},
						{Expr: `faceid:forecast_cost:month_end{bound="low80"}`, Legend: "80 % low ({{currency}})"},
						{Expr: `faceid:forecast_cost:month_end{bound="low95"}`, Legend: "95 % low ({{currency}})"},
						{Expr: `faceid:pricing:monthly_budget`, Legend: "budget ({{currency}})"},
						{Expr: `faceid:cost:month_to_date`, Legend: "spent ({{currency}})"},
					}},
				{Type: "gauge", Title: "Forecast vs budget (80 % interval's low end)", Unit: "percentunit", Width: 8, Instant: true, Min: f(0), Max: f(1.5),
					Desc:       "The low end of the 80 % interval as a share of the budget: above 100 % overspend is likely (FaceIDCostForecastOverBudget).",
					Thresholds: []Step{{Color: "green"}, {Color: "orange", Value: f(0.9)}, {Color: "red", Value: f(1)}},
					Targets:    []Target{{Expr: `faceid:forecast_cost:budget_ratio{bound="low80"}`, Legend: "{{currency}}"}}},
				{Type: "table", Title: "Month-end billed verifications forecast by channel", Unit: "short", Width: 12, Instant: true,
					Desc:    "Per channel: the point forecast and the 80 % and 95 % bounds (faceid:forecast_billed:month_end); the channels' intervals do not add up to the total's.",
					Targets: []Target{{Expr: `faceid:forecast_billed:month_end{` + ch + `}`}}},
				{Type: "timeseries", Title: "Billed in the last 24 h by channel (exact)", Unit: "short", Width: 12,
					Desc:    "Each channel's billed verifications of the past 24 hours, from the exact month to date (since the month's start on its first day); the daily forecast per channel is the forecast query of the FaceID plugin (FaceID events dashboard), exporter forecast and GET /api/v1/forecast.",
					Targets: []Target{{Expr: `sum by (channel) (faceid:billed:month_to_date{` + ch + `}) - sum by (channel) (faceid:billed:month_to_date{` + ch + `} offset 1d) > 0 or sum by (channel) (faceid:billed:month_to_date{` + ch + `})`, Legend: "{{channel}}"}}},
			}},
			{Title: "By channel", Panels: []Panel{
				{Type: "bargauge", Title: "Spent this month by channel", Unit: "short", Width: 8, Instant: true,
					Targets: []Target{{Expr: `sort_desc(sum by (channel, currency) (faceid:cost_by_channel:month_to_date{` + ch + `}))`, Legend: "{{channel}} ({{currency}})"}}},
				{Type: "timeseries", Title: "Billed verifications this month by channel", Unit: "short", Width: 8,
					Desc:    "The exact month to date per channel: rises through the month, starts again from 0 on the 1st (Beijing).",
					Targets: []Target{{Expr: `sum by (channel) (faceid:billed:month_to_date{` + ch + `})`, Legend: "{{channel}}"}}},
				{Type: "timeseries", Title: "Spend per hour by channel", Unit: "short", Width: 8, Stack: true,
					Desc:    "The current pace (billed rate × unit price × 3600); the month's total is the exact month to date above.",
					Targets: []Target{{Expr: `faceid:cost_by_channel:rate5m{` + ch + `} * 3600`, Legend: "{{channel}} ({{currency}})"}}},
				{Type: "table", Title: "Unit prices", Unit: "short", Width: 12, Instant: true,
					Desc:    "From the exporter's pricing section; channels without a price cost nothing here.",
					Targets: []Target{{Expr: `faceid:pricing_unit_price:max{` + ch + `}`}}},
				{Type: "timeseries", Title: "Billed vs not billed by channel", Unit: "reqps", Width: 12,
					Targets: []Target{{Expr: `sum by (channel, billable) (faceid:verifications:rate5m{` + chI + `})`, Legend: "{{channel}} billable={{billable}}"}}},
				{Type: "table", Title: "Billed this month by channel and partition", Unit: "short", Width: 12, Instant: true,
					Desc:    "The exporter's month-to-date gauges as each owner exposes them (one partition per owner at a time).",
					Targets: []Target{{Expr: `max by (channel, partition) (faceid_billed_month_to_date{` + ch + `})`}}},
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
		Desc: "The exporter itself: scrape and NATS status, what it receives, rejects and dead-letters, JetStream partitions, lag and checkpoints, latency, capacity and headroom.",
		Rows: []Row{
			{Title: "Status", Panels: []Panel{
				{Type: "stat", Title: "Up", Width: 6, Height: 5, Instant: true,
					Targets: []Target{{Expr: `up{` + rulegen.DefaultJobSelector + `,` + inst + `}`, Legend: "{{instance}}"}}},
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
			{Title: "NATS", Panels: []Panel{
				{Type: "timeseries", Title: "Reconnects and disconnects", Unit: "short", Width: 12,
					Targets: []Target{
						{Expr: `sum by (instance) (increase(faceid_exporter_nats_reconnects_total{` + inst + `}[$__rate_interval]))`, Legend: "reconnects {{instance}}"},
						{Expr: `sum by (instance) (increase(faceid_exporter_nats_disconnects_total{` + inst + `}[$__rate_interval]))`, Legend: "disconnects {{instance}}"},
					}},
				{Type: "timeseries", Title: "Dropped (core NATS slow consumer)", Unit: "reqps", Width: 12,
					Desc:    "Core NATS only: messages the client dropped because the exporter fell behind. JetStream mode never drops: it lags (below).",
					Targets: []Target{{Expr: rateOf("faceid_exporter_nats_dropped_messages_total", "instance"), Legend: "{{instance}}"}}},
			}},
			{Title: "JetStream: partitions and checkpoints", Panels: []Panel{
				{Type: "stat", Title: "Partitions owned / configured", Width: 6, Height: 5, Instant: true,
					Desc: "Every partition has one owner at a time; standbys own none. Owned below configured for long: FaceIDPartitionWithoutOwner.",
					Targets: []Target{
						{Expr: `sum(faceid_exporter_partitions_owned)`, Legend: "owned"},
						{Expr: `max(faceid_exporter_partitions)`, Legend: "configured"},
					}},
				{Type: "stat", Title: "Oldest partition checkpoint", Unit: "s", Width: 6, Height: 5, Instant: true,
					Desc:       "The oldest of the partitions' checkpoint ages, as the freshest replica sees each (faceid:partition_checkpoint_age_seconds:min); above 60 s for 2 minutes pages FaceIDPartitionWithoutOwner.",
					Thresholds: []Step{{Color: "green"}, {Color: "orange", Value: f(10)}, {Color: "red", Value: f(60)}},
					Targets:    []Target{{Expr: `max(faceid:partition_checkpoint_age_seconds:min)`}}},
				{Type: "stat", Title: "Lost input (since the group began)", Unit: "short", Width: 6, Height: 5, Instant: true,
					Desc:       "Messages removed from the stream before they were read (the most of any partition: with several partitions one message may count in each) and stream re-creations; checkpointed, they never reset. Any increase pages FaceIDInputLost.",
					Thresholds: []Step{{Color: "green"}, {Color: "red", Value: f(1)}},
					Targets: []Target{
						{Expr: `max(faceid:jetstream_lost_messages:max)`, Legend: "lost messages"},
						{Expr: `max(faceid:jetstream_stream_resets:max)`, Legend: "stream resets"},
					}},
				{Type: "stat", Title: "Checkpoint failures (last hour)", Unit: "short", Width: 6, Height: 5, Instant: true,
					Desc:       "fenced: a commit refused because another replica had taken the partition over (FaceIDCheckpointFenced); error: the KV write failed (FaceIDCheckpointStale if it lasts).",
					Thresholds: []Step{{Color: "green"}, {Color: "orange", Value: f(1)}},
					Targets:    []Target{{Expr: `sum by (reason) (increase(faceid_exporter_checkpoint_failures_total{` + inst + `}[1h]))`, Legend: "{{reason}}"}}},
				{Type: "timeseries", Title: "Partitions owned by instance", Unit: "short", Width: 12, Stack: true,
					Desc:    "A takeover moves a partition from one instance to another; the sum stays at the configured count.",
					Targets: []Target{{Expr: `faceid_exporter_partitions_owned{` + inst + `}`, Legend: "{{instance}}"}}},
				{Type: "timeseries", Title: "Lag by partition", Unit: "short", Width: 12,
					Desc:    "Messages of each partition not yet processed by its owner (faceid_exporter_jetstream_lag_messages); a lag that keeps growing: FaceIDExporterBacklogGrowing.",
					Targets: []Target{{Expr: `faceid_exporter_jetstream_lag_messages{` + inst + `}`, Legend: "p{{partition}} {{instance}}"}}},
				{Type: "timeseries", Title: "Checkpoint age by partition", Unit: "s", Width: 12,
					Desc: "Seconds since each partition's checkpoint changed: as the freshest replica sees it, and since the owner's last successful commit.",
					Targets: []Target{
						{Expr: `faceid:partition_checkpoint_age_seconds:min`, Legend: "p{{partition}} (freshest view)"},
						{Expr: `time() - faceid_exporter_checkpoint_last_success_timestamp_seconds{` + inst + `}`, Legend: "p{{partition}} last success {{instance}}"},
					}},
				{Type: "timeseries", Title: "Committed messages", Unit: "reqps", Width: 12,
					Desc:    "Stream messages per second past each partition's committed sequence (faceid_exporter_checkpoint_sequence, across owners).",
					Targets: []Target{{Expr: `deriv(max by (partition) (faceid_exporter_checkpoint_sequence{` + inst + `})[5m:])`, Legend: "p{{partition}}"}}},
				{Type: "timeseries", Title: "Checkpoint duration", Unit: "s", Width: 8,
					Desc: "One commit: the record and its blobs written to the KV bucket (a compare-and-set on the record).",
					Targets: []Target{
						{Expr: `histogram_quantile(0.5, sum by (le) (rate(faceid_exporter_checkpoint_duration_seconds_bucket{` + inst + `}[$__rate_interval])))`, Legend: "p50"},
						{Expr: `histogram_quantile(0.99, sum by (le) (rate(faceid_exporter_checkpoint_duration_seconds_bucket{` + inst + `}[$__rate_interval])))`, Legend: "p99"},
					}},
				{Type: "timeseries", Title: "Checkpoint size", Unit: "bytes", Width: 8,
					Desc:    "Bytes the last commit of each partition wrote (record and new blobs); keep the record under the KV value limit (docs/service.md, sizing).",
					Targets: []Target{{Expr: `faceid_exporter_checkpoint_size_bytes{` + inst + `}`, Legend: "p{{partition}} {{instance}}"}}},
				{Type: "timeseries", Title: "Checkpoint failures", Unit: "reqps", Width: 8,
					Targets: []Target{{Expr: rateOf("faceid_exporter_checkpoint_failures_total", "instance, reason"), Legend: "{{reason}} {{instance}}"}}},
				{Type: "timeseries", Title: "Takeovers", Unit: "short", Width: 8,
					Desc:    "Partitions this instance took over from a silent owner, per interval.",
					Targets: []Target{{Expr: `sum by (instance) (increase(faceid_exporter_takeovers_total{` + inst + `}[$__rate_interval]))`, Legend: "{{instance}}"}}},
				{Type: "timeseries", Title: "Replay at acquisition", Unit: "short", Width: 8,
					Desc:    "Messages after the checkpoint when the owner acquired the partition: re-read (and counted once) after a crash or takeover.",
					Targets: []Target{{Expr: `faceid_exporter_replay_messages{` + inst + `}`, Legend: "p{{partition}} {{instance}}"}}},
				{Type: "timeseries", Title: "Lost and unread input", Unit: "short", Width: 8,
					Desc: "Lost messages and stream resets per partition since the group began (checkpointed, across owners); messages in the stream on subjects no partition reads (not counted: FaceIDInputUnpartitioned; measured with more than one partition, 0 with one).",
					Targets: []Target{
						{Expr: `faceid:jetstream_lost_messages:max`, Legend: "lost p{{partition}}"},
						{Expr: `faceid:jetstream_stream_resets:max`, Legend: "stream resets p{{partition}}"},
						{Expr: `max(faceid_exporter_jetstream_unpartitioned_messages{` + inst + `}) or vector(0)`, Legend: "on no partition's subjects"},
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

// pluginTable is a table of the plugin's event rows: filterable, newest first,
// the billable column narrow and hidden the columns named.
func pluginTable(title, desc string, width, height int, hidden []string, target map[string]any) Panel {
	return Panel{Type: "table", Title: title, Desc: desc, Width: width, Height: height,
		Hidden: hidden, Narrow: []string{"billable"}, SortDesc: "time", Targets: []Target{{Plugin: target}}}
}

// eventsPlugin is the dashboard of the FaceID verification datasource
// (grafana-plugin/): the events behind the metrics.
func eventsPlugin(cat *classify.Catalog) Dashboard {
	var channels []string
	for _, c := range cat.Channels {
		channels = append(channels, c.Name)
	}
	chv := "$channel"
	billedShare := []Step{{Color: "green"}, {Color: "orange", Value: f(0.05)}, {Color: "red", Value: f(0.1)}}
	eventHidden := []string{"received", "raw_code", "known", "family"}
	return Dashboard{
		File: "faceid-events-plugin.json", UID: "faceid-events-plugin", Title: "FaceID events (plugin)", Tags: []string{"faceid", "plugin"},
		Plugin: true, Channels: channels,
		Desc: "The verifications behind the FaceID metrics, from the FaceID verification datasource plugin: billed failures, high-risk and unknown-code events, a live stream and the return-code catalog.",
		Rows: []Row{
			{Title: "Billed failures", Panels: []Panel{
				{Type: "bargauge", Title: "Billed failures by channel (since exporter start)", Unit: "short", Width: 12, Min: f(0), Horizontal: true,
					Desc:        "Verifications that failed and were billed (billable=true, outcome=failure), counted by the exporter. Summary query of the FaceID plugin.",
					DisplayName: "${__field.labels.channel}",
					Thresholds:  []Step{{Color: "green"}, {Color: "orange", Value: f(1)}, {Color: "red", Value: f(100)}},
					Targets: []Target{{Plugin: map[string]any{"queryType": "summary", "format": "timeseries", "value": "count",
						"groupBy": []any{"channel"}, "channel": chv, "outcome": "failure", "billable": "true"}}}},
				{Type: "bargauge", Title: "Billed failure share by channel (since exporter start)", Unit: "percentunit", Width: 12, Min: f(0), Horizontal: true,
					Desc:        "Share of billed verifications that failed, per channel. The Grafana-managed alert example (deploy/grafana/provisioning/alerting/faceid-plugin-rules.yaml) fires above 10 % with at least 100 billed verifications.",
					DisplayName: "${__field.labels.channel}", Thresholds: billedShare,
					Targets: []Target{{Plugin: map[string]any{"queryType": "summary", "format": "timeseries", "value": "ratio",
						"groupBy": []any{"channel"}, "channel": chv, "outcome": "failure", "billable": "true"}}}},
				pluginTable("Recent billable failures", "The newest billed failures the exporter keeps (ring buffer), newest first, within the dashboard's time range. Filter columns with the funnel in their headers.",
					24, 10, eventHidden, map[string]any{"queryType": "events", "kind": "billable_failure", "channel": chv, "limit": 200}),
			}},
			{Title: "Risk and unknown codes", Panels: []Panel{
				pluginTable("High-risk events", fmt.Sprintf("Events with a high device level (deviceInfoLevel >= %d) or identity risk level (riskInfoLevel %d), newest first. Tags are the catalog's device and identity tags.",
					cat.DeviceLevel.HighFrom, cat.RiskLevel.HighFrom),
					24, 10, eventHidden, map[string]any{"queryType": "events", "kind": "high_risk", "channel": chv, "limit": 200}),
				pluginTable("Live classified events", "Every classified event as it arrives (Grafana Live, through the plugin's stream). The panel keeps the newest rows; it stays empty while no traffic arrives.",
					16, 10, []string{"received", "raw_code", "family", "id"}, map[string]any{"queryType": "live", "kind": "all", "channel": chv}),
				pluginTable("Unknown return codes", "Events whose code is not in the catalog of their channel's family: raw_code is the code as received. Add it with a --catalog.file override once Tencent documents it.",
					8, 10, []string{"received", "known", "code", "meaning", "category", "device_tags", "identity_tags", "device_level", "risk_level", "platform", "id", "family"},
					map[string]any{"queryType": "events", "kind": "unknown_code", "channel": chv, "limit": 100}),
			}},
			{Title: "Forecast from the ledger", Panels: []Panel{
				{Type: "timeseries", Title: "Daily billed verifications: forecast by channel", Unit: "short", Width: 16, Height: 9,
					Desc:    "Today and the next 35 Beijing days, per channel and for all channels (\"all\"): point forecast and 80 % and 95 % bounds (forecast query of the plugin; docs/forecast.md). The history is the ledger query's; widen the time range into the future to see the days ahead.",
					Targets: []Target{{Plugin: map[string]any{"queryType": "forecast", "forecastOf": "daily", "measure": "billed", "format": "timeseries", "channel": chv}}}},
				{Type: "table", Title: "Month-end forecast by channel", Width: 8, Height: 9,
					Desc:    "Billed verifications of the whole Beijing month: month to date, point and bounds, the forecast's quality and history.",
					Targets: []Target{{Plugin: map[string]any{"queryType": "forecast", "forecastOf": "month_end", "measure": "billed", "channel": chv}}}},
			}},
			{Title: "Catalog", Panels: []Panel{
				{Type: "table", Title: "Return-code catalog", Width: 24, Height: 12, Narrow: []string{"billable"},
					Desc:    "The exporter's catalog, one row per channel and code: meaning, category, whether it is billed and where that answer comes from (billing: seed, no_column, not_in_seed, override).",
					Targets: []Target{{Plugin: map[string]any{"queryType": "catalog", "channel": chv}}}},
			}},
		},
	}
}
