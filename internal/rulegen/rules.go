package rulegen

import (
	"fmt"
	"strings"

	"github.com/faceid-observability/faceid-exporter/pkg/classify"
)

// Thresholds of the alerts. Rates are per second; ratios are fractions.
const (
	// SurgeFactor is how far above its one-hour baseline a rate must be to be
	// a spike or a surge.
	SurgeFactor = 3
	// MinSurgeRate is the volume below which no spike or surge pages:
	// 0.05/s is 15 events in 5 minutes.
	MinSurgeRate = 0.05
	// BillableFailureRatio is the share of billed calls that are failures above
	// which FaceIDBillableFailureRatioHigh fires.
	BillableFailureRatio = 0.10
	// MinBilledRate guards the ratio alerts: 0.1/s is 30 calls in 5 minutes.
	MinBilledRate = 0.1
	// SuccessRateDrop is the absolute drop of the success ratio against its
	// one-hour baseline that pages.
	SuccessRateDrop = 0.15
	// UpstreamErrorRatio is the share of a channel's verifications with an
	// upstream error code above which FaceIDUpstreamErrors fires.
	UpstreamErrorRatio = 0.05
	// UnknownCodeRate is the rate of unknown codes (3 in 5 minutes) above which
	// FaceIDUnknownCodes fires.
	UnknownCodeRate = 0.01
	// BacklogMessages is the partition lag above which a growing lag is a
	// ticket (FaceIDExporterBacklogGrowing).
	BacklogMessages = 1000
	// CheckpointStaleSeconds is how old an owned partition's last successful
	// checkpoint may be (6× the default --jetstream.takeover-timeout, 60× the
	// default --jetstream.checkpoint-interval) before FaceIDCheckpointStale
	// counts; the exporter's timers do not scale with the rule windows.
	CheckpointStaleSeconds = 60
	// PartitionOwnerlessSeconds is the checkpoint age, as the freshest replica
	// sees it, beyond which a partition has no live owner
	// (FaceIDPartitionWithoutOwner); keep --jetstream.takeover-timeout well below.
	PartitionOwnerlessSeconds = 60
	// LostInputHold is how long FaceIDInputLost fires after input was lost;
	// LostInputLookback how far back before that it looks for the previous
	// value (an outage longer than that hides a loss found at restart).
	LostInputHold     = "1h"
	LostInputLookback = "7d"
	// BillingUTCOffsetSeconds is the offset of the billing month's time zone:
	// Tencent Cloud bills by calendar month in China Standard Time (UTC+8).
	BillingUTCOffsetSeconds = 8 * 3600
)

func ruleFiles() []File {
	cat := mustCatalog()
	return []File{
		{Name: "verification.rules.yml", Groups: []Group{verificationRecords(cat), verificationAlerts()}},
		{Name: "risk.rules.yml", Groups: []Group{riskRecords(cat), riskAlerts(cat)}},
		{Name: "cost.rules.yml", Groups: []Group{costRecords(), costMonthRecords(), costAlerts()}},
		{Name: "exporter.rules.yml", Groups: []Group{exporterRecords(), exporterAlerts()}},
		{Name: "reconcile.rules.yml", Groups: []Group{reconcileAlerts()}},
	}
}

// queryFirst renders an alert-template snippet printing the first value of a
// query built with printf from format and the alert's job and channel labels.
func queryFirst(format, fn string) string {
	return fmt.Sprintf("{{ with printf `%s` $labels.job $labels.channel | query }}{{ . | first | value | %s }}{{ else }}n/a{{ end }}", format, fn)
}

// queryList renders an alert-template snippet listing "label (value/s)" for
// each series of a query built with printf from format and the alert's job and
// channel labels, sorted by label.
func queryList(format, label string) string {
	return fmt.Sprintf("{{ range $i, $s := printf `%s` $labels.job $labels.channel | query | sortByLabel %q }}{{ if $i }}, {{ end }}{{ $s.Labels.%s }} ({{ $s.Value | printf \"%%.3g\" }}/s){{ else }}none{{ end }}", format, label, label)
}

// drivingCodes lists the top failure codes of the alert's channel matching extra.
func drivingCodes(extra string) string {
	return queryList(`topk(3, sum by (code) (faceid:verifications_by_code:rate5m{job=%q,channel=%q,outcome="failure"`+extra+`}) > 0)`, "code")
}

func levelRegex(r classify.LevelRule) string {
	var parts []string
	for l := r.HighFrom; l <= r.Max; l++ {
		parts = append(parts, fmt.Sprint(l))
	}
	return strings.Join(parts, "|")
}

// channelFamilyInfo returns an expression with one series per channel, value 1,
// labelled with the channel and its catalog family.
func channelFamilyInfo(cat *classify.Catalog) string {
	var parts []string
	for _, ch := range cat.Channels {
		parts = append(parts, fmt.Sprintf(`label_replace(label_replace(vector(1), "channel", "%s", "", ""), "family", "%s", "", "")`, ch.Name, ch.Family.Name))
	}
	return strings.Join(parts, "\nor\n")
}

func verificationRecords(cat *classify.Catalog) Group {
	return Group{Name: "faceid-verification.rules", Rules: []Rule{
		{Record: "faceid:channel_family:info", Help: "1 per channel {channel, family}, from the catalog; joins codes to their meaning in faceid_code_info.",
			Expr: channelFamilyInfo(cat)},
		{Record: "faceid:verifications_by_code:rate5m", Help: "Verifications per second {job, instance, channel, code, outcome, billable}.",
			Expr: `sum by (job, instance, channel, code, outcome, billable) (rate(faceid_verifications_total{$job}[$(5m)]))`},
		{Record: "faceid:verifications:rate5m", Help: "Verifications per second {job, instance, channel, outcome, billable}.",
			Expr: `sum without (code) (faceid:verifications_by_code:rate5m)`},
		{Record: "faceid:channel_verifications:rate5m", Help: "Verifications per second {job, channel}.",
			Expr: `sum by (job, channel) (faceid:verifications:rate5m)`},
		{Record: "faceid:success:ratio_rate5m", Help: "Share of verifications that succeeded {job, channel}.",
			Expr: `
(
  sum by (job, channel) (faceid:verifications:rate5m{outcome="success"})
  or
  0 * faceid:channel_verifications:rate5m
)
/
(faceid:channel_verifications:rate5m > 0)`},
		{Record: "faceid:billed:rate5m", Help: "Billed verifications per second (billable=\"true\", success or failure) {job, channel}; 0 on channels with traffic and none billed.",
			Expr: `
sum by (job, channel) (faceid:verifications:rate5m{billable="true"})
or
0 * faceid:channel_verifications:rate5m`},
		{Record: "faceid:billable_failures:rate5m", Help: "Billable failures per second (billed and not a success, whatever the catalog bills) {job, channel}; 0 on channels with traffic and none.",
			Expr: `
sum by (job, channel) (faceid:verifications:rate5m{outcome="failure",billable="true"})
or
0 * faceid:channel_verifications:rate5m`},
		{Record: "faceid:billable_failure:ratio_rate5m", Help: "Billable failures as a share of billed verifications {job, channel}.",
			Expr: `faceid:billable_failures:rate5m / (faceid:billed:rate5m > 0)`},
		{Record: "faceid:upstream_errors:rate5m", Help: "Verifications per second ending in an upstream (Tencent system, engine or network) error code {job, channel}; see docs/alerts.md for the codes.",
			Expr: `
sum by (job, channel) (
    ` + upstreamSelector(cat, "faceid:verifications_by_code:rate5m") + `
)
or
0 * faceid:channel_verifications:rate5m`},
		{Record: "faceid:upstream_error:ratio_rate5m", Help: "Upstream errors as a share of all verifications {job, channel}.",
			Expr: `faceid:upstream_errors:rate5m / (faceid:channel_verifications:rate5m > 0)`},
		{Record: "faceid:unknown_codes:rate5m", Help: "Events per second with a code the catalog does not know {job, channel}.",
			Expr: `sum by (job, channel) (rate(faceid_exporter_unknown_codes_total{$job}[$(5m)]))`},
		{Record: "faceid:billable_failure:ratio_rate5m_avg1h", Help: "Baseline: the average billable-failure share of billed verifications over the hour before the last 5 minutes {job, channel}.",
			Expr: `avg_over_time(faceid:billable_failure:ratio_rate5m[$(1h)] offset $(5m))`},
		{Record: "faceid:success:ratio_rate5m_avg1h", Help: "Baseline: the average success ratio over the hour before the last 5 minutes {job, channel}.",
			Expr: `avg_over_time(faceid:success:ratio_rate5m[$(1h)] offset $(5m))`},
	}}
}

func verificationAlerts() Group {
	return Group{Name: "faceid-verification.alerts", Rules: []Rule{
		{
			Alert: "FaceIDBillableFailureSpike", Severity: SeverityPage, For: "5m",
			Help: fmt.Sprintf("Billable failures of a channel above %g/s and their share of billed calls more than %d× its one-hour baseline, for 5 minutes.", MinSurgeRate, SurgeFactor),
			Expr: fmt.Sprintf(`
faceid:billable_failures:rate5m > %g
and on (job, channel)
faceid:billable_failure:ratio_rate5m > %d * faceid:billable_failure:ratio_rate5m_avg1h`, MinSurgeRate, SurgeFactor),
			Summary: "Billable FaceID failures on {{ $labels.channel }} are spiking.",
			Description: `Channel {{ $labels.channel }} has {{ $value | printf "%.3g" }} billable failures/s (billed by Tencent but not a success)
				over the last $(5m): ` + queryFirst(`faceid:billable_failure:ratio_rate5m{job=%q,channel=%q}`, "humanizePercentage") + ` of its billed calls,
				more than ` + fmt.Sprint(SurgeFactor) + `× the ` + queryFirst(`faceid:billable_failure:ratio_rate5m_avg1h{job=%q,channel=%q}`, "humanizePercentage") + ` of the previous hour.
				Driving codes: ` + drivingCodes(`,billable="true"`) + `. Each of these calls is paid for.`,
		},
		{
			Alert: "FaceIDBillableFailureRatioHigh", Severity: SeverityTicket, For: "15m",
			Help: fmt.Sprintf("Billable failures above %g%% of a channel's billed verifications (with at least %g billed/s) for 15 minutes.", BillableFailureRatio*100, MinBilledRate),
			Expr: fmt.Sprintf(`
faceid:billable_failure:ratio_rate5m > %g
and on (job, channel)
faceid:billed:rate5m > %g`, BillableFailureRatio, MinBilledRate),
			Summary: "A high share of billed FaceID calls on {{ $labels.channel }} fail.",
			Description: `{{ $value | humanizePercentage }} of the billed verifications on channel {{ $labels.channel }} are failures
				(threshold ` + fmt.Sprintf("%g%%", BillableFailureRatio*100) + `). Driving codes: ` + drivingCodes(`,billable="true"`) + `.`,
		},
		{
			Alert: "FaceIDSuccessRateDrop", Severity: SeverityPage, For: "5m",
			Help: fmt.Sprintf("A channel's success ratio more than %g points below its one-hour baseline (with at least %g verifications/s) for 5 minutes.", SuccessRateDrop*100, MinBilledRate),
			Expr: fmt.Sprintf(`
faceid:success:ratio_rate5m < faceid:success:ratio_rate5m_avg1h - %g
and on (job, channel)
faceid:channel_verifications:rate5m > %g`, SuccessRateDrop, MinBilledRate),
			Summary: "FaceID success rate on {{ $labels.channel }} dropped.",
			Description: `Only {{ $value | humanizePercentage }} of the verifications on channel {{ $labels.channel }} succeed, against
				` + queryFirst(`faceid:success:ratio_rate5m_avg1h{job=%q,channel=%q}`, "humanizePercentage") + ` in the previous hour.
				Top failure codes: ` + drivingCodes(``) + `.`,
		},
		{
			Alert: "FaceIDUpstreamErrors", Severity: SeverityPage, For: "10m",
			Help: fmt.Sprintf("Upstream (Tencent system, engine, data source or network) error codes above %g%% of a channel's verifications and %g/s for 10 minutes.", UpstreamErrorRatio*100, MinSurgeRate),
			Expr: fmt.Sprintf(`
faceid:upstream_error:ratio_rate5m > %g
and on (job, channel)
faceid:upstream_errors:rate5m > %g`, UpstreamErrorRatio, MinSurgeRate),
			Summary: "Tencent FaceID upstream errors on {{ $labels.channel }}.",
			Description: `{{ $value | humanizePercentage }} of the verifications on channel {{ $labels.channel }} end in an upstream
				error code (system, liveness or comparison engine, authority data source, network). Top failure codes: ` + drivingCodes(``) + `.
				Escalate to Tencent Cloud if it persists.`,
		},
		{
			Alert: "FaceIDUnknownCodes", Severity: SeverityTicket, For: "15m",
			Help:    fmt.Sprintf("Codes the catalog does not know arriving above %g/s on a channel for 15 minutes.", UnknownCodeRate),
			Expr:    fmt.Sprintf(`faceid:unknown_codes:rate5m > %g`, UnknownCodeRate),
			Summary: "FaceID codes unknown to the catalog on {{ $labels.channel }}.",
			Description: `Channel {{ $labels.channel }} receives {{ $value | printf "%.3g" }} events/s with a return code the exporter's
				catalog does not know; they are counted with code="unknown" and billable="unknown", so billing and failure
				alerts miss them. The catalog is out of date: see GET /api/v1/events?kind=unknown_code.`,
		},
	}}
}

func riskRecords(cat *classify.Catalog) Group {
	channelRate := `sum by (job, channel) (faceid:risk_events:rate5m)`
	return Group{Name: "faceid-risk.rules", Rules: []Rule{
		{Record: "faceid:risk_events:rate5m", Help: "Events per second by risk (high|low|unknown) {job, channel, risk}.",
			Expr: `sum by (job, channel, risk) (rate(faceid_risk_events_total{$job}[$(5m)]))`},
		{Record: "faceid:high_risk_events:rate5m", Help: fmt.Sprintf("High-risk events per second (device level %d–%d or identity level %d–%d) {job, channel}; 0 on channels with traffic and none.",
			cat.DeviceLevel.HighFrom, cat.DeviceLevel.Max, cat.RiskLevel.HighFrom, cat.RiskLevel.Max),
			Expr: `
sum by (job, channel) (faceid:risk_events:rate5m{risk="high"})
or
0 * ` + channelRate},
		{Record: "faceid:high_risk:ratio_rate5m", Help: "High-risk events as a share of all events {job, channel}.",
			Expr: `faceid:high_risk_events:rate5m / (` + channelRate + ` > 0)`},
		{Record: "faceid:device_level_events:rate5m", Help: "Events per second by device risk level {job, instance, channel, level}.",
			Expr: `sum by (job, instance, channel, level) (rate(faceid_device_level_events_total{$job}[$(5m)]))`},
		{Record: "faceid:identity_level_events:rate5m", Help: "Events per second by identity risk level {job, instance, channel, level}.",
			Expr: `sum by (job, instance, channel, level) (rate(faceid_identity_level_events_total{$job}[$(5m)]))`},
		{Record: "faceid:device_tags:rate5m", Help: "Device tags per second {job, instance, channel, name, platform}.",
			Expr: `sum by (job, instance, channel, name, platform) (rate(faceid_device_tags_total{$job}[$(5m)]))`},
		{Record: "faceid:identity_tags:rate5m", Help: "Identity tags per second {job, instance, channel, tag, type}.",
			Expr: `sum by (job, instance, channel, tag, type) (rate(faceid_identity_tags_total{$job}[$(5m)]))`},
		{Record: "faceid:device_attack_tags:rate5m", Help: "Attack device tags (" + strings.Join(attackTagNames, ", ") + ") per second {job, channel, name}; 0 for each name on channels with traffic.",
			Expr: `
sum by (job, channel, name) (faceid:device_tags:rate5m{name=~"` + strings.Join(attackTagNames, "|") + `"})
or ` + attackTagFill(channelRate)},
		{Record: "faceid:device_attack_tags:ratio_rate5m", Help: "Attack device tags per event of the channel {job, channel, name}.",
			Expr: `faceid:device_attack_tags:rate5m / on (job, channel) group_left () (` + channelRate + ` > 0)`},
		{Record: "faceid:high_risk:ratio_rate5m_avg1h", Help: "Baseline: the average high-risk share over the hour before the last 5 minutes {job, channel}.",
			Expr: `avg_over_time(faceid:high_risk:ratio_rate5m[$(1h)] offset $(5m))`},
		{Record: "faceid:device_attack_tags:ratio_rate5m_avg1h", Help: "Baseline: the average of faceid:device_attack_tags:ratio_rate5m over the hour before the last 5 minutes {job, channel, name}.",
			Expr: `avg_over_time(faceid:device_attack_tags:ratio_rate5m[$(1h)] offset $(5m))`},
	}}
}

func riskAlerts(cat *classify.Catalog) Group {
	return Group{Name: "faceid-risk.alerts", Rules: []Rule{
		{
			Alert: "FaceIDHighRiskDeviceSurge", Severity: SeverityPage, For: "5m",
			Help: fmt.Sprintf("High-risk events (device level %d–%d or identity level %d) of a channel above %g/s and their share of events more than %d× its one-hour baseline, for 5 minutes.",
				cat.DeviceLevel.HighFrom, cat.DeviceLevel.Max, cat.RiskLevel.HighFrom, MinSurgeRate, SurgeFactor),
			Expr: fmt.Sprintf(`
faceid:high_risk_events:rate5m > %g
and on (job, channel)
faceid:high_risk:ratio_rate5m > %d * faceid:high_risk:ratio_rate5m_avg1h`, MinSurgeRate, SurgeFactor),
			Summary: "High-risk devices surging on FaceID channel {{ $labels.channel }}.",
			Description: `Channel {{ $labels.channel }} sees {{ $value | printf "%.3g" }} high-risk events/s over the last $(5m): ` +
				queryFirst(`faceid:high_risk:ratio_rate5m{job=%q,channel=%q}`, "humanizePercentage") + ` of its events, more than ` +
				fmt.Sprint(SurgeFactor) + `× the ` + queryFirst(`faceid:high_risk:ratio_rate5m_avg1h{job=%q,channel=%q}`, "humanizePercentage") + ` of the previous hour.
				Device levels: ` + queryList(`sum by (level) (faceid:device_level_events:rate5m{job=%q,channel=%q,level=~"`+levelRegex(cat.DeviceLevel)+`"}) > 0`, "level") + `;
				identity levels: ` + queryList(`sum by (level) (faceid:identity_level_events:rate5m{job=%q,channel=%q,level=~"`+levelRegex(cat.RiskLevel)+`"}) > 0`, "level") + `.
				Tencent intercepts these verifications; a surge is usually an attack.`,
		},
		{
			Alert: "FaceIDDeviceAttackTagSurge", Severity: SeverityTicket, For: "10m",
			Help: fmt.Sprintf("An attack device tag (%s) of a channel above %g/s and its share of events more than %d× its one-hour baseline, for 10 minutes.", strings.Join(attackTagNames, ", "), MinSurgeRate, SurgeFactor),
			Expr: fmt.Sprintf(`
faceid:device_attack_tags:rate5m > %g
and on (job, channel, name)
faceid:device_attack_tags:ratio_rate5m > %d * faceid:device_attack_tags:ratio_rate5m_avg1h`, MinSurgeRate, SurgeFactor),
			Summary: "Device attack tag {{ $labels.name }} surging on FaceID channel {{ $labels.channel }}.",
			Description: `Channel {{ $labels.channel }} sees {{ $value | printf "%.3g" }} devices/s tagged {{ $labels.name }} over the last $(5m),
				more than ` + fmt.Sprint(SurgeFactor) + `× their usual share of the channel's events. By platform: ` +
				"{{ range $i, $s := printf `sum by (platform) (faceid:device_tags:rate5m{job=%q,channel=%q,name=%q}) > 0` $labels.job $labels.channel $labels.name | query | sortByLabel \"platform\" }}{{ if $i }}, {{ end }}{{ $s.Labels.platform }} ({{ $s.Value | printf \"%.3g\" }}/s){{ else }}none{{ end }}.",
		},
	}}
}

// billingMonthStart is the Unix time of the start of the current billing
// month, evaluated at the rule's evaluation time.
var billingMonthStart = fmt.Sprintf(`
vector(time())
- (day_of_month(vector(time() + %[1]d)) - 1) * 86400
- hour(vector(time() + %[1]d)) * 3600
- minute(vector(time() + %[1]d)) * 60
- vector(time()) %% 60`, BillingUTCOffsetSeconds)

// monthToDate sums the exporter's month-to-date gauge metric (exact, from the
// books of the partitions each replica owns) by labels: one value per
// partition (max: while a takeover is under way two replicas may briefly
// expose the same partition, and the new owner's value is the larger), kept
// over a gap of up to five minutes (last_over_time: a killed owner's series
// goes stale until the next owner exposes the partition).
func monthToDate(metric, labels string) string {
	return `
sum by (` + labels + `) (
  max by (` + labels + `, partition) (
    last_over_time(` + metric + `{$job}[$(5m)])
  )
)`
}

func costRecords() Group {
	return Group{Name: "faceid-cost.rules", Rules: []Rule{
		{Record: "faceid:pricing_unit_price:max", Help: "Configured price per billed verification {job, channel, currency}.",
			Expr: `max by (job, channel, currency) (faceid_pricing_unit_price{$job})`},
		{Record: "faceid:pricing:monthly_budget", Help: "Configured monthly budget {job, currency}.",
			Expr: `max by (job, currency) (faceid_pricing_monthly_budget{$job})`},
		{Record: "faceid:cost_by_channel:rate5m", Help: "Spend per second {job, channel, currency}: billed verifications × unit price. Channels without a price are left out.",
			Expr: `faceid:billed:rate5m * on (job, channel) group_left (currency) faceid:pricing_unit_price:max`},
		{Record: "faceid:cost:rate5m", Help: "Spend per second {job, currency}.",
			Expr: `sum by (job, currency) (faceid:cost_by_channel:rate5m)`},
		{Record: "faceid:billing_month:start_timestamp_seconds", Help: "Unix time the current billing month started (calendar month, UTC+8).",
			Expr: billingMonthStart},
		{Record: "faceid:billing_month:seconds_remaining", Help: "Seconds until the current billing month ends.",
			Expr: fmt.Sprintf(`days_in_month(vector(time() + %d)) * 86400 - (vector(time()) - faceid:billing_month:start_timestamp_seconds)`, BillingUTCOffsetSeconds)},
	}}
}

func costMonthRecords() Group {
	return Group{Name: "faceid-cost-month.rules", Rules: []Rule{
		{Record: "faceid:billed:month_to_date", Help: "Billed verifications this billing month {job, channel}: exact, the sum over partitions of faceid_billed_month_to_date (the exporter's books), not an increase().",
			Expr: monthToDate("faceid_billed_month_to_date", "job, channel")},
		{Record: "faceid:cost_by_channel:month_to_date", Help: "Spend this billing month {job, channel, currency}: exact, the sum over partitions of faceid_cost_month_to_date (billed × unit price).",
			Expr: monthToDate("faceid_cost_month_to_date", "job, channel, currency")},
		{Record: "faceid:cost:month_to_date", Help: "Spend this billing month {job, currency}.",
			Expr: `sum by (job, currency) (faceid:cost_by_channel:month_to_date)`},
		{Record: "faceid:forecast_cost:month_end", Help: "The ledger forecast of this billing month's spend {job, currency, bound}: bound point, low80, high80, low95 or high95 (docs/forecast.md); exposed by partition 0's owner, kept over a takeover's gap. JetStream mode only.",
			Expr: `max by (job, currency, bound) (last_over_time(faceid_forecast_group_cost_month_end{$job}[$(5m)]))`},
		{Record: "faceid:forecast_billed:month_end", Help: "The ledger forecast of this billing month's billed verifications {job, channel, bound}. JetStream mode only.",
			Expr: `max by (job, channel, bound) (last_over_time(faceid_forecast_billed_month_end{$job}[$(5m)]))`},
		{Record: "faceid:forecast_cost:budget_ratio", Help: "The ledger forecast of this billing month's spend as a share of the monthly budget {job, currency, bound}.",
			Expr: `faceid:forecast_cost:month_end / on (job, currency) group_left () (faceid:pricing:monthly_budget > 0)`},
		{Record: "faceid:cost:month_end_forecast", Help: "Rough estimate of the spend at the end of the billing month {job, currency}: predict_linear over the last day of month-to-date spend (no weekly cycle, wrong on the first day of a month), never below what is already spent. For core mode, where there is no ledger forecast; prefer faceid:forecast_cost:month_end.",
			Expr: `
(
  predict_linear(faceid:cost:month_to_date[$(1d)], scalar(faceid:billing_month:seconds_remaining))
  > faceid:cost:month_to_date
)
or
faceid:cost:month_to_date`},
		{Record: "faceid:cost:budget_used:ratio", Help: "Month-to-date spend as a share of the monthly budget {job, currency}.",
			Expr: `faceid:cost:month_to_date / on (job, currency) (faceid:pricing:monthly_budget > 0)`},
		{Record: "faceid:cost:forecast_budget:ratio", Help: "Forecast month-end spend as a share of the monthly budget {job, currency}.",
			Expr: `faceid:cost:month_end_forecast / on (job, currency) (faceid:pricing:monthly_budget > 0)`},
	}}
}

func costAlerts() Group {
	return Group{Name: "faceid-cost.alerts", Rules: []Rule{
		{
			Alert: "FaceIDCostForecastOverBudget", Severity: SeverityTicket, For: "1h",
			Help: "The low end of the ledger forecast's 80 % interval for the month's spend above the monthly budget for an hour (overspend is likely). Without a ledger forecast (core mode): the rough predict_linear estimate above the budget, once there are 12 hours of cost history.",
			Expr: `
(
  faceid:forecast_cost:month_end{bound="low80"} > on (job, currency) group_left () (faceid:pricing:monthly_budget > 0)
)
or
(
  faceid:cost:month_end_forecast > on (job, currency) (faceid:pricing:monthly_budget > 0)
  and on (job, currency)
  faceid:cost:month_to_date offset $(12h)
  unless on (job, currency)
  faceid:forecast_cost:month_end
)`,
			Summary: "FaceID spend is forecast to exceed the monthly budget.",
			Description: `{{ if $labels.bound }}The ledger forecast puts this month's FaceID spend at {{ $value | printf "%.0f" }} {{ $labels.currency }} or more (the low end of its 80 % interval; point forecast ` +
				"{{ with printf `faceid:forecast_cost:month_end{job=%q,currency=%q,bound=\"point\"}` $labels.job $labels.currency | query }}{{ . | first | value | printf \"%.0f\" }}{{ end }}" + `),
				{{ else }}Rough estimate (predict_linear over the last day; no ledger forecast in core mode): at the current pace, FaceID verifications will cost {{ $value | printf "%.0f" }} {{ $labels.currency }} this month,
				{{ end }}over the budget of ` + "{{ with printf `faceid:pricing:monthly_budget{job=%q,currency=%q}` $labels.job $labels.currency | query }}{{ . | first | value | printf \"%.0f\" }}{{ end }}" + ` {{ $labels.currency }};
				spent so far: ` + "{{ with printf `faceid:cost:month_to_date{job=%q,currency=%q}` $labels.job $labels.currency | query }}{{ . | first | value | printf \"%.0f\" }}{{ end }}" + ` {{ $labels.currency }}.
				Channels by month-to-date spend: ` + "{{ range $i, $s := printf `sum by (channel) (faceid:cost_by_channel:month_to_date{job=%q,currency=%q}) > 0` $labels.job $labels.currency | query | sortByLabel \"channel\" }}{{ if $i }}, {{ end }}{{ $s.Labels.channel }} ({{ $s.Value | printf \"%.0f\" }}){{ end }}.",
		},
	}}
}

// owners renders an alert-template snippet listing the instances that expose
// metric for the alert's job and partition, sorted.
func owners(metric string) string {
	return "{{ range $i, $s := printf `" + metric + "{job=%q,partition=%q}` $labels.job $labels.partition | query | sortByLabel \"instance\" }}{{ if $i }}, {{ end }}{{ $s.Labels.instance }}{{ else }}none{{ end }}"
}

// grewWithinHold returns, per job and partition, how much the recorded
// counter record grew since the last value Prometheus held for it an hour ago
// (looking back up to a week, across restarts and takeovers). A partition's
// checkpointed counters start on a new owner at their committed value, so an
// increment found at acquisition (lost input after an outage) is no increase()
// of any series; compared per partition it is. When the record has no earlier
// value but the partition was known an hour ago (the counter was created
// since), all of it counts.
func grewWithinHold(record string) string {
	prior := `last_over_time(` + record + `[$(` + LostInputLookback + `)] offset $(` + LostInputHold + `))`
	return `(
    ` + record + ` - on (job, partition) ` + prior + `
    or
    (
      (` + record + ` unless on (job, partition) ` + prior + `)
      and on (job, partition)
      last_over_time(faceid:partition_checkpoint_age_seconds:min[$(` + LostInputLookback + `)] offset $(` + LostInputHold + `))
    )
  ) > 0`
}

func exporterRecords() Group {
	return Group{Name: "faceid-exporter.rules", Rules: []Rule{
		{Record: "faceid:exporter_events:rate5m", Help: "Events received per second {job, instance}.",
			Expr: `sum by (job, instance) (rate(faceid_exporter_events_received_total{$job}[$(5m)]))`},
		{Record: "faceid:events:rate5m", Help: "Events received per second {job}.",
			Expr: `sum by (job) (faceid:exporter_events:rate5m)`},
		{Record: "faceid:events:peak_rate5m_1d", Help: "Peak of faceid:events:rate5m over the last day {job}.",
			Expr: `max_over_time(faceid:events:rate5m[$(1d)])`},
		{Record: "faceid:events:peak_rate5m_1d:deriv7d", Help: "Trend of the daily peak event rate: change per day, over the last week {job}.",
			Expr: `deriv(faceid:events:peak_rate5m_1d[$(7d)]) * 86400`},
		{Record: "faceid:exporter_consumer:utilisation_rate5m", Help: "Seconds spent decoding, classifying and counting per second {job, instance}: the busy share of the consumer.",
			Expr: `sum by (job, instance) (rate(faceid_exporter_processing_seconds_sum{$job}[$(5m)]))`},
		{Record: "faceid:exporter_consumer:capacity_rate5m", Help: "Events per second the consumer could process at its current mean processing time {job, instance}.",
			Expr: `sum by (job, instance) (rate(faceid_exporter_processing_seconds_count{$job}[$(5m)])) / (faceid:exporter_consumer:utilisation_rate5m > 0)`},
		{Record: "faceid:exporter_consumer:headroom_ratio", Help: "Share of the consumer's capacity still free {job, instance}.",
			Expr: `clamp_min(1 - faceid:exporter_consumer:utilisation_rate5m, 0)`},
		{Record: "faceid:partition_checkpoint_age_seconds:min", Help: "Seconds since each partition's checkpoint last changed, as the replica that saw it change last sees it {job, partition}; grows when the partition has no live owner.",
			Expr: `min by (job, partition) (faceid_exporter_partition_checkpoint_age_seconds{$job})`},
		{Record: "faceid:partition_lag_messages:max", Help: "Messages of each partition not yet processed by its owner {job, partition}, whichever replica owns it.",
			Expr: `max by (job, partition) (faceid_exporter_jetstream_lag_messages{$job})`},
		{Record: "faceid:jetstream_lost_messages:max", Help: "Messages removed from the stream before they were read, since the group began {job, partition} (checkpointed: continues across restarts and takeovers).",
			Expr: `max by (job, partition) (faceid_exporter_jetstream_lost_messages_total{$job})`},
		{Record: "faceid:jetstream_stream_resets:max", Help: "Times the stream was found re-created under the same name, since the group began {job, partition} (checkpointed).",
			Expr: `max by (job, partition) (faceid_exporter_jetstream_stream_resets_total{$job})`},
	}}
}

func exporterAlerts() Group {
	return Group{Name: "faceid-exporter.alerts", Rules: []Rule{
		{
			Alert: "FaceIDExporterDown", Severity: SeverityPage, For: "2m",
			Help:    "Prometheus cannot scrape an exporter instance, or finds none, for 2 minutes. Inhibits the job's other FaceID alerts.",
			Expr:    `up{$job} == 0 or absent(up{$job})`,
			Summary: "FaceID exporter {{ with $labels.instance }}{{ . }}{{ else }}(no target){{ end }} is down.",
			Description: `{{ with $labels.instance }}Prometheus cannot scrape the FaceID exporter {{ . }} (job {{ $labels.job }}).{{ else }}Prometheus
				finds no target matching up{$job}.{{ end }} In core NATS mode the results published meanwhile are not counted; in JetStream
				mode another replica takes over its partitions, or they wait in the stream. Every other FaceID alert of the job is inhibited.`,
		},
		{
			Alert: "FaceIDExporterNATSDisconnected", Severity: SeverityPage, For: "5m",
			Help:    "An exporter instance is not connected to NATS for 5 minutes.",
			Expr:    `faceid_exporter_nats_connected{$job} == 0`,
			Summary: "FaceID exporter {{ $labels.instance }} is disconnected from NATS.",
			Description: `The FaceID exporter {{ $labels.instance }} has not been connected to NATS for $(5m). In core NATS mode the
				results published meanwhile are lost; in JetStream mode they wait in the stream.`,
		},
		{
			Alert: "FaceIDExporterNotConsuming", Severity: SeverityPage, For: "10m",
			Help:    "A partition's owner lags behind the stream (lag above 0) and its checkpoint sequence has not advanced in 5 minutes, for 10 minutes.",
			Expr:    `faceid_exporter_jetstream_lag_messages{$job} > 0 unless on (job, instance, partition) changes(faceid_exporter_checkpoint_sequence{$job}[$(5m)]) > 0`,
			Summary: "FaceID exporter {{ $labels.instance }} is not consuming partition {{ $labels.partition }}.",
			Description: `{{ $value | humanize }} messages of partition {{ $labels.partition }} wait for the FaceID exporter {{ $labels.instance }},
				which owns it, but its checkpoint sequence has not advanced in the last $(5m): its consumer is stuck while it still holds the partition.`,
		},
		{
			Alert: "FaceIDExporterBacklogGrowing", Severity: SeverityTicket, For: "15m",
			Help: fmt.Sprintf("A partition lags more than %d messages behind the stream and the lag keeps growing, for 15 minutes.", BacklogMessages),
			Expr: fmt.Sprintf(`
faceid:partition_lag_messages:max > %d
and
deriv(faceid:partition_lag_messages:max[$(15m)]) > 0`, BacklogMessages),
			Summary: "FaceID exporter falls behind JetStream on partition {{ $labels.partition }}.",
			Description: `Partition {{ $labels.partition }} of job {{ $labels.job }} is {{ $value | humanize }} messages behind the stream and has
				fallen further behind for $(15m) (owner: ` + owners("faceid_exporter_jetstream_lag_messages") + `): results arrive faster than
				its owner processes them.`,
		},
		{
			Alert: "FaceIDExporterDeadLetters", Severity: SeverityTicket, For: "10m",
			Help: "An exporter instance dead-letters rejected messages (above 0.01/s), or fails to publish dead letters, for 10 minutes.",
			Expr: `
sum by (job, instance, reason) (rate(faceid_exporter_dead_letters_total{$job}[$(5m)])) > 0.01
or
label_replace(
  sum by (job, instance) (rate(faceid_exporter_dead_letter_errors_total{$job}[$(5m)])) > 0,
  "reason", "publish_failed", "", ""
)`,
			Summary: "FaceID exporter {{ $labels.instance }} dead-letters messages ({{ $labels.reason }}).",
			Description: `The FaceID exporter {{ $labels.instance }} rejects {{ $value | printf "%.3g" }} messages/s for reason {{ $labels.reason }}
				and republishes them to the dead-letter subject (reason publish_failed: the republish itself fails, and those
				messages are lost). A producer is sending results the exporter cannot read.`,
		},
		{
			Alert: "FaceIDExporterReconnectStorm", Severity: SeverityTicket, For: "5m",
			Help:    "An exporter instance reconnects to NATS more than 5 times in 15 minutes, for 5 minutes.",
			Expr:    `sum by (job, instance) (increase(faceid_exporter_nats_reconnects_total{$job}[$(15m)])) > 5`,
			Summary: "FaceID exporter {{ $labels.instance }} keeps reconnecting to NATS.",
			Description: `The FaceID exporter {{ $labels.instance }} reconnected to NATS {{ $value | humanize }} times in $(15m). Check the
				NATS servers, the network and the exporter's credentials.`,
		},
		{
			Alert: "FaceIDExporterSaturated", Severity: SeverityTicket, For: "30m",
			Help:    "An exporter instance's consumer is busy more than 80% of the time for 30 minutes.",
			Expr:    `faceid:exporter_consumer:utilisation_rate5m > 0.8`,
			Summary: "FaceID exporter {{ $labels.instance }} has little consumer headroom left.",
			Description: `The FaceID exporter {{ $labels.instance }} spends {{ $value | humanizePercentage }} of its time processing events; at
				peak it will fall behind. Add replicas (core NATS: they share the queue group; JetStream: they share the partitions, so
				--jetstream.partitions must exceed the partitions one replica can carry) or find what made processing slower.`,
		},
		{
			Alert: "FaceIDCheckpointStale", Severity: SeverityTicket, For: "5m",
			Help:    fmt.Sprintf("An owned partition's last successful checkpoint is more than %d seconds old, for 5 minutes: its owner cannot commit and no replica takes over.", CheckpointStaleSeconds),
			Expr:    fmt.Sprintf(`time() - faceid_exporter_checkpoint_last_success_timestamp_seconds{$job} > %d`, CheckpointStaleSeconds),
			Summary: "FaceID exporter {{ $labels.instance }} cannot checkpoint partition {{ $labels.partition }}.",
			Description: `The FaceID exporter {{ $labels.instance }} owns partition {{ $labels.partition }}, but its last successful checkpoint was
				{{ $value | humanizeDuration }} ago (failed commits: ` +
				"{{ with printf `sum(rate(faceid_exporter_checkpoint_failures_total{job=%q,instance=%q,reason=\"error\"}[$(5m)]))` $labels.job $labels.instance | query }}{{ . | first | value | printf \"%.2g\" }}{{ else }}0{{ end }}" +
				`/s). What it counted since is only in memory: the ledger and GET /api/v1/ledger lag behind, and a restart re-reads it from the stream.`,
		},
		{
			Alert: "FaceIDCheckpointFenced", Severity: SeverityTicket,
			Help: "An exporter instance had a checkpoint commit refused in the last 15 minutes because another replica had taken its partition over (fenced).",
			Expr: `
sum by (job, instance) (increase(faceid_exporter_checkpoint_failures_total{$job,reason="fenced"}[$(15m)])) > 0
or
sum by (job, instance) (
  faceid_exporter_checkpoint_failures_total{$job,reason="fenced"}
  unless
  faceid_exporter_checkpoint_failures_total{$job,reason="fenced"} offset $(15m)
) > 0`,
			Summary: "FaceID exporter {{ $labels.instance }} was fenced off a partition.",
			Description: `{{ $value | printf "%.0f" }} checkpoint commit(s) of the FaceID exporter {{ $labels.instance }} were refused in the last $(15m):
				another replica had taken the partition over while this one was silent for longer than --jetstream.takeover-timeout (paused,
				starved of CPU, stuck in I/O or cut off from NATS). It dropped the partition; nothing was counted twice.`,
		},
		{
			Alert: "FaceIDPartitionWithoutOwner", Severity: SeverityPage, For: "2m", OutlivesExporterDown: true,
			Help:    fmt.Sprintf("No replica has seen a partition's checkpoint change for more than %d seconds, for 2 minutes: the partition has no live owner, or its owner cannot commit.", PartitionOwnerlessSeconds),
			Expr:    fmt.Sprintf(`faceid:partition_checkpoint_age_seconds:min > %d`, PartitionOwnerlessSeconds),
			Summary: "FaceID partition {{ $labels.partition }} has no live owner.",
			Description: `No replica of job {{ $labels.job }} has seen the checkpoint of partition {{ $labels.partition }} change for
				{{ $value | humanizeDuration }}: no replica owns it (none takes it over) or its owner cannot commit. The channels of the
				partition are not counted meanwhile; they wait in the stream. Replicas exposing it as owned: ` + owners("faceid_exporter_checkpoint_sequence") + `.`,
		},
		{
			Alert: "FaceIDInputLost", Severity: SeverityPage, OutlivesExporterDown: true,
			Help: "A partition's input was lost in the last hour: messages removed from the stream before they were read (limits or a purge), or the stream re-created under the same name. The books are incomplete.",
			Expr: `
label_replace(
  ` + grewWithinHold("faceid:jetstream_lost_messages:max") + `,
  "cause", "lost_messages", "", ""
)
or
label_replace(
  ` + grewWithinHold("faceid:jetstream_stream_resets:max") + `,
  "cause", "stream_reset", "", ""
)`,
			Summary: "FaceID input lost on partition {{ $labels.partition }} ({{ $labels.cause }}).",
			Description: `{{ if eq $labels.cause "stream_reset" }}The stream of partition {{ $labels.partition }} (job {{ $labels.job }}) was found
				re-created under the same name ({{ $value | humanize }} time(s) in the last $(` + LostInputHold + `)): what the old stream held past
				the checkpoint was never read.{{ else }}{{ $value | humanize }} messages of partition {{ $labels.partition }} (job {{ $labels.job }})
				were removed from the stream before the exporter read them, in the last $(` + LostInputHold + `) (stream limits or a purge).{{ end }}
				The counters and the ledger miss them: the books are incomplete. Owner: ` + owners("faceid_exporter_checkpoint_sequence") + `.`,
		},
		{
			Alert: "FaceIDInputUnpartitioned", Severity: SeverityTicket, For: "15m",
			Help:    "With more than one partition, the stream holds messages on subjects no partition reads (not the subject prefix and a catalog channel), for 15 minutes: they are not counted.",
			Expr:    `max by (job, instance) (faceid_exporter_jetstream_unpartitioned_messages{$job}) > 0`,
			Summary: "FaceID results on subjects no partition reads.",
			Description: `The stream of job {{ $labels.job }} holds {{ $value | humanize }} messages on subjects of --nats.subject that no partition
				reads (reported by {{ $labels.instance }}, the owner of partition 0): a producer publishes to a subject that is not
				prefix.<catalog channel>. They are not counted, not dead-lettered and not in the ledger.`,
		},
	}}
}

func reconcileAlerts() Group {
	return Group{Name: "faceid-reconcile.alerts", Rules: []Rule{
		{
			Alert: "FaceIDBillMismatch", Severity: SeverityTicket, For: "15m", OutlivesExporterDown: true,
			Help:    "On the last complete Beijing day, a channel family's billable count differs from Tencent's charged count beyond the configured tolerance, or one side has no data (serve --reconcile.interval), for 15 minutes.",
			Expr:    `max by (job, family) (faceid_reconcile_mismatch{$job,day_offset="1"}) == 1`,
			Summary: "FaceID billable count of {{ $labels.family }} differs from Tencent's bill.",
			Description: `On the last complete Beijing day, the exporter counted ` +
				"{{ with printf `max(faceid_reconcile_ours_billable{job=%q,family=%q,day_offset=\"1\"})` $labels.job $labels.family | query }}{{ . | first | value | printf \"%.0f\" }}{{ else }}n/a{{ end }}" +
				` billable verifications of family {{ $labels.family }} and Tencent charged ` +
				"{{ with printf `max(faceid_reconcile_tencent_charged{job=%q,family=%q,day_offset=\"1\"})` $labels.job $labels.family | query }}{{ . | first | value | printf \"%.0f\" }}{{ else }}n/a{{ end }}" +
				`: more apart than the tolerance, or one side has no data for the day. Run exporter reconcile for that day to see the rows and their status.`,
		},
		{
			Alert: "FaceIDCatalogDrift", Severity: SeverityTicket, For: "15m", OutlivesExporterDown: true,
			Help:    "On the last complete Beijing day, Tencent charged a code the catalog calls free, or the reverse, in a channel family (serve --reconcile.interval), for 15 minutes.",
			Expr:    `max by (job, family) (faceid_reconcile_catalog_drift_codes{$job}) > 0`,
			Summary: "FaceID catalog disagrees with Tencent's billing for {{ $labels.family }}.",
			Description: `On the last complete Beijing day, Tencent's charge details for family {{ $labels.family }} disagree with the catalog's
				billable answer on {{ $value | printf "%.0f" }} code(s): Tencent's published table, the catalog or Tencent's billing changed.
				Billable counts, cost and the billable-failure alerts follow the catalog until it is fixed (--catalog.file).`,
		},
	}}
}
