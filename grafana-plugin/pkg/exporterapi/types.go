// Package exporterapi is a client for the FaceID exporter's HTTP API
// (/api/v1/events, /api/v1/catalog, /api/v1/summary, /api/v1/ledger,
// /api/v1/stream, /-/ready).
package exporterapi

import (
	"encoding/json"
	"fmt"
	"time"
)

// Event kinds the exporter keeps in its rings and streams.
const (
	KindBillableFailure = "billable_failure"
	KindHighRisk        = "high_risk"
	KindUnknownCode     = "unknown_code"
	// KindAll is accepted by the stream only.
	KindAll = "all"
)

// EventKinds returns the kinds /api/v1/events accepts, in display order.
func EventKinds() []string {
	return []string{KindBillableFailure, KindHighRisk, KindUnknownCode}
}

// StreamKinds returns the kinds /api/v1/stream accepts.
func StreamKinds() []string {
	return []string{KindAll, KindBillableFailure, KindHighRisk, KindUnknownCode}
}

// ValidEventKind reports whether k is a kind /api/v1/events accepts.
func ValidEventKind(k string) bool {
	for _, v := range EventKinds() {
		if v == k {
			return true
		}
	}
	return false
}

// ValidStreamKind reports whether k is a kind /api/v1/stream accepts.
func ValidStreamKind(k string) bool {
	for _, v := range StreamKinds() {
		if v == k {
			return true
		}
	}
	return false
}

// Event is one classified verification as the exporter publishes it. It
// carries no personal data: no names, ID numbers, app_id or req_id.
type Event struct {
	ID       string    `json:"id"`
	TS       time.Time `json:"ts"`
	Received time.Time `json:"received"`
	Channel  string    `json:"channel"`
	Family   string    `json:"family"`
	Code     string    `json:"code"`
	RawCode  string    `json:"raw_code,omitempty"`
	Known    bool      `json:"known"`
	Meaning  string    `json:"meaning"`
	Category string    `json:"category"`
	Outcome  string    `json:"outcome"`
	Billable Billable  `json:"billable"` // true, false or null (unknown) in the exporter's API
	Risk     Risk      `json:"risk"`
}

// Risk is the risk part of an event; levels are nil when the event had none.
type Risk struct {
	Level        string   `json:"level"`
	DeviceLevel  *int     `json:"device_level"`
	RiskLevel    *int     `json:"risk_level"`
	Platform     string   `json:"platform"`
	DeviceTags   []string `json:"device_tags"`
	IdentityTags []string `json:"identity_tags"`
}

// Kinds returns the kinds of event e is: billable_failure (billed and
// failed), high_risk (risk level high), unknown_code (not in the catalog).
func (e Event) Kinds() []string {
	var out []string
	if e.Billable == "true" && e.Outcome == "failure" {
		out = append(out, KindBillableFailure)
	}
	if e.Risk.Level == "high" {
		out = append(out, KindHighRisk)
	}
	if !e.Known {
		out = append(out, KindUnknownCode)
	}
	return out
}

// Events is the data of GET /api/v1/events.
type Events struct {
	Kind   string  `json:"kind"`
	Events []Event `json:"events"`
}

// Summary is the data of GET /api/v1/summary: counts since the exporter started.
type Summary struct {
	Since time.Time    `json:"since"`
	Rows  []SummaryRow `json:"rows"`
}

// SummaryRow counts the verifications of one channel, outcome and billable value.
type SummaryRow struct {
	Channel  string   `json:"channel"`
	Outcome  string   `json:"outcome"`
	Billable Billable `json:"billable"`
	Count    float64  `json:"count"`
}

// Ledger is GET /api/v1/ledger: the committed books of the exporter's
// JetStream group for the Beijing days From..To.
type Ledger struct {
	Stream string      `json:"stream"`
	Group  string      `json:"group"`
	From   string      `json:"from"`
	To     string      `json:"to"`
	Rows   []LedgerRow `json:"rows"`
}

// LedgerRow counts the verifications of one Beijing day, channel, return
// code, billable value and rule id.
type LedgerRow struct {
	Day      string   `json:"day"` // YYYY-MM-DD, Beijing
	Channel  string   `json:"channel"`
	Code     string   `json:"code"`     // catalog code, or "unknown"
	Billable Billable `json:"billable"` // true, false or null (unknown)
	RuleID   string   `json:"rule_id"`
	Count    uint64   `json:"count"`
}

// Catalog is the part of GET /api/v1/catalog the plugin uses: families with
// their channels, and the codes of each family.
type Catalog struct {
	Families []Family `json:"families"`
	Codes    []Code   `json:"codes"`
}

// Family is a group of channels sharing one table of return codes.
type Family struct {
	Name     string   `json:"name"`
	Title    string   `json:"title"`
	Channels []string `json:"channels"`
}

// Code is one return code of one family.
type Code struct {
	Family   string   `json:"family"`
	Code     string   `json:"code"`
	Meaning  string   `json:"meaning"`
	Category string   `json:"category"`
	Billable Billable `json:"billable"`
	Billing  string   `json:"billing_source"`
}

// Billable is "true", "false" or "unknown". It decodes from a JSON string,
// a JSON boolean or null (unknown).
type Billable string

// UnmarshalJSON accepts "true"|"false"|"unknown", true|false and null.
func (b *Billable) UnmarshalJSON(p []byte) error {
	var v any
	if err := json.Unmarshal(p, &v); err != nil {
		return fmt.Errorf("billable: %w", err)
	}
	switch x := v.(type) {
	case nil:
		*b = "unknown"
	case bool:
		*b = Billable(fmt.Sprint(x))
	case string:
		switch x {
		case "true", "false", "unknown":
			*b = Billable(x)
		default:
			return fmt.Errorf("billable: %q is not true, false or unknown", x)
		}
	default:
		return fmt.Errorf("billable: %s is not a string or boolean", p)
	}
	return nil
}

// FamilyOf returns the family of channel ch, or "" when the catalog has no such channel.
func (c *Catalog) FamilyOf(ch string) string {
	for _, f := range c.Families {
		for _, n := range f.Channels {
			if n == ch {
				return f.Name
			}
		}
	}
	return ""
}

// Channels returns every channel, family by family, in catalog order.
func (c *Catalog) Channels() []string {
	var out []string
	for _, f := range c.Families {
		out = append(out, f.Channels...)
	}
	return out
}

// Forecast is GET /api/v1/forecast: the forecast of the exporter's ledger
// (the exporter's docs/forecast.md), per channel and in total.
type Forecast struct {
	Today              string           `json:"today"`
	MonthEnd           string           `json:"month_end"`
	Currency           string           `json:"currency"`
	HolidaysKnownUntil int              `json:"holidays_known_until"`
	Total              ForecastSeries   `json:"total"`
	Channels           []ForecastSeries `json:"channels"`
}

// ForecastSeries is the forecast of one channel, or of the total (Channel "").
type ForecastSeries struct {
	Channel           string        `json:"channel"`
	Quality           string        `json:"quality"` // ok, limited or insufficient
	Note              string        `json:"note"`
	HistoryDays       int           `json:"history_days"`
	BilledMonthToDate float64       `json:"billed_month_to_date"`
	BilledMonthEnd    Estimate      `json:"billed_month_end"`
	CostMonthToDate   *float64      `json:"cost_month_to_date"`
	CostMonthEnd      *Estimate     `json:"cost_month_end"`
	Daily             []ForecastDay `json:"daily"`
}

// ForecastDay is the forecast of one Beijing day.
type ForecastDay struct {
	Day    string    `json:"day"` // YYYY-MM-DD, Beijing
	Kind   string    `json:"kind"`
	Billed Estimate  `json:"billed"`
	Cost   *Estimate `json:"cost"`
}

// Estimate is a point forecast with its 80 % and 95 % prediction intervals.
type Estimate struct {
	Point  float64 `json:"point"`
	Low80  float64 `json:"low80"`
	High80 float64 `json:"high80"`
	Low95  float64 `json:"low95"`
	High95 float64 `json:"high95"`
}
