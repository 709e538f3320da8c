package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/faceid-observability/faceid-exporter/grafana-plugin/pkg/exporterapi"
)

// Query types.
const (
	QueryCatalog     = "catalog"
	QueryEvents      = "events"
	QuerySummary     = "summary"
	QueryLive        = "live"
	QueryAnnotations = "annotations"
	QueryLedger      = "ledger"
	QueryForecast    = "forecast"
)

// QueryTypes lists the query types in editor order.
func QueryTypes() []string {
	return []string{QueryCatalog, QueryEvents, QuerySummary, QueryLive, QueryAnnotations, QueryLedger, QueryForecast}
}

// Summary and ledger formats, summary values.
const (
	FormatTable      = "table"
	FormatTimeSeries = "timeseries"
	ValueCount       = "count"
	ValueRatio       = "ratio"
)

// summaryDims are the dimensions of /api/v1/summary rows, in order.
var summaryDims = []string{"channel", "outcome", "billable"}

// maxEventLimit is the largest limit the query accepts; the exporter may
// hold fewer events (its ring size) and then answers with an error.
const maxEventLimit = 10000

// Values of the billable and outcome filters.
var (
	billableValues = []string{"true", "false", "unknown"}
	outcomeValues  = []string{"success", "failure"}
)

// Query is the model the query editor writes; each query type reads its own
// fields and ignores the others. Filters hold one value, several (a
// multi-value or All variable) or none (everything).
type Query struct {
	QueryType string `json:"queryType"`

	// catalog, events, summary, live, annotations, ledger: filters
	Channel  Filter `json:"channel"`
	Family   Filter `json:"family"`
	Category Filter `json:"category"`
	Billable Filter `json:"billable"`
	Outcome  Filter `json:"outcome"`
	// catalog, events, annotations: return codes (an unknown code matches its raw code)
	Code Filter `json:"code"`
	// catalog: substring of the code or its meaning
	Search string `json:"search"`

	// events, annotations: kinds of events ("all" = every kind); live: exactly one kind
	// (live follows any number of channels)
	Kind Filter `json:"kind"`
	// events, annotations: how many of each kind (0 = the exporter's default, 100 or its ring size)
	Limit int `json:"limit"`
	// events: keep events outside the dashboard's time range
	IgnoreTimeRange bool `json:"ignoreTimeRange"`

	// summary, ledger: table (numeric or time series long) or timeseries (wide)
	Format string `json:"format"`
	// summary: dimensions kept (default all three)
	GroupBy []string `json:"groupBy"`
	// summary: count, or ratio = the outcome's share of the group's verifications
	// that pass the channel and billable filters
	Value string `json:"value"`

	// forecast: daily (today and the next days, default) or month_end
	ForecastOf string `json:"forecastOf"`
	// forecast: billed (default) or cost
	Measure string `json:"measure"`
	// forecast, daily: how many days, today first (0 = 35)
	Days int `json:"days"`
}

// queryError is an error in the query itself (the user's to fix).
type queryError struct{ msg string }

func (e *queryError) Error() string { return e.msg }

func badQuery(format string, args ...any) error {
	return &queryError{msg: fmt.Sprintf(format, args...)}
}

// ParseQuery decodes and checks one query; the query type comes from the
// DataQuery when set there, else from the JSON. Defaults are filled in: kind
// billable_failure for events and live, every kind for annotations, format
// table, value count and every dimension for summary, format table for ledger.
func ParseQuery(q backend.DataQuery) (Query, error) {
	var m Query
	if len(q.JSON) > 0 {
		if err := json.Unmarshal(q.JSON, &m); err != nil {
			return m, badQuery("query JSON: %v", err)
		}
	}
	if q.QueryType != "" {
		m.QueryType = q.QueryType
	}
	for _, f := range []struct {
		name    string
		filter  Filter
		allowed []string
	}{
		{"channel", m.Channel, nil}, {"family", m.Family, nil}, {"category", m.Category, nil},
		{"code", m.Code, nil}, {"billable", m.Billable, billableValues}, {"outcome", m.Outcome, outcomeValues},
	} {
		if err := f.filter.check(f.name, f.allowed...); err != nil {
			return m, err
		}
	}
	switch m.QueryType {
	case QueryCatalog, QueryLedger:
		if m.QueryType == QueryLedger {
			if m.Format == "" {
				m.Format = FormatTable
			}
			if err := oneOf("format", m.Format, FormatTable, FormatTimeSeries); err != nil {
				return m, err
			}
		}
	case QueryForecast:
		if m.Format == "" {
			m.Format = FormatTable
		}
		if m.ForecastOf == "" {
			m.ForecastOf = ForecastDaily
		}
		if m.Measure == "" {
			m.Measure = MeasureBilled
		}
		if m.Days == 0 {
			m.Days = DefaultForecastDays
		}
		if err := oneOf("format", m.Format, FormatTable, FormatTimeSeries); err != nil {
			return m, err
		}
		if err := oneOf("forecastOf", m.ForecastOf, ForecastDaily, ForecastMonthEnd); err != nil {
			return m, err
		}
		if err := oneOf("measure", m.Measure, MeasureBilled, MeasureCost); err != nil {
			return m, err
		}
		if m.Days < 1 || m.Days > maxForecastDays {
			return m, badQuery("days %d is not between 1 and %d", m.Days, maxForecastDays)
		}
	case QueryEvents, QueryAnnotations:
		kinds, err := eventKinds(m.QueryType, m.Kind)
		if err != nil {
			return m, err
		}
		m.Kind = kinds
		if m.Limit < 0 || m.Limit > maxEventLimit {
			return m, badQuery("limit %d is not between 0 and %d", m.Limit, maxEventLimit)
		}
	case QueryLive:
		switch {
		case m.Kind.IsAny():
			m.Kind = Filter{exporterapi.KindAll}
		case len(m.Kind) == 0:
			m.Kind = Filter{exporterapi.KindBillableFailure}
		}
		m.Channel = m.Channel.Values()
		if len(m.Kind) > 1 {
			return m, badQuery("a live query follows one kind of event, not %s", m.Kind)
		}
		if err := m.Kind.check("event kind"); err != nil {
			return m, err
		}
		if !exporterapi.ValidStreamKind(m.Kind[0]) {
			return m, badQuery("event kind %q is not one of %s", m.Kind[0], strings.Join(exporterapi.StreamKinds(), ", "))
		}
		for _, ch := range m.Channel {
			if !channelPathPart.MatchString(ch) {
				return m, badQuery("channel %q is not a channel name", ch)
			}
		}
	case QuerySummary:
		if m.Format == "" {
			m.Format = FormatTable
		}
		if m.Value == "" {
			m.Value = ValueCount
		}
		if len(m.GroupBy) == 0 {
			m.GroupBy = summaryDims
		}
		if err := oneOf("format", m.Format, FormatTable, FormatTimeSeries); err != nil {
			return m, err
		}
		if err := oneOf("value", m.Value, ValueCount, ValueRatio); err != nil {
			return m, err
		}
		seen := map[string]bool{}
		for _, g := range m.GroupBy {
			if err := oneOf("groupBy", g, summaryDims...); err != nil {
				return m, err
			}
			if seen[g] {
				return m, badQuery("groupBy names %q twice", g)
			}
			seen[g] = true
		}
	case "":
		return m, badQuery("query type is empty: choose one of %s", strings.Join(QueryTypes(), ", "))
	default:
		return m, badQuery("query type %q is not one of %s", m.QueryType, strings.Join(QueryTypes(), ", "))
	}
	return m, nil
}

// eventKinds checks the kinds of an events or annotations query and expands
// "all"; events default to billable failures, annotations to every kind.
func eventKinds(queryType string, kinds Filter) (Filter, error) {
	if kinds.IsAny() {
		return exporterapi.EventKinds(), nil
	}
	if len(kinds) == 0 {
		if queryType == QueryAnnotations {
			return exporterapi.EventKinds(), nil
		}
		return Filter{exporterapi.KindBillableFailure}, nil
	}
	if err := kinds.check("event kind"); err != nil {
		return nil, err
	}
	var out Filter
	for _, k := range kinds {
		if k == exporterapi.KindAll {
			return exporterapi.EventKinds(), nil
		}
		if !exporterapi.ValidEventKind(k) {
			return nil, badQuery("event kind %q is not one of %s", k, strings.Join(exporterapi.StreamKinds(), ", "))
		}
		out = append(out, k)
	}
	return out, nil
}

func oneOf(field, v string, allowed ...string) error {
	if slices.Contains(allowed, v) {
		return nil
	}
	var shown []string
	for _, a := range allowed {
		if a != "" {
			shown = append(shown, a)
		}
	}
	return badQuery("%s %q is not one of %s", field, v, strings.Join(shown, ", "))
}

// QueryData answers every query on its own: one failing query yields an
// error for its refId only.
func (d *Datasource) QueryData(ctx context.Context, req *backend.QueryDataRequest) (*backend.QueryDataResponse, error) {
	resp := backend.NewQueryDataResponse()
	for _, q := range req.Queries {
		resp.Responses[q.RefID] = d.query(ctx, req.PluginContext, q)
	}
	return resp, nil
}

func (d *Datasource) query(ctx context.Context, pc backend.PluginContext, q backend.DataQuery) backend.DataResponse {
	m, err := ParseQuery(q)
	if err != nil {
		return errorResponse(err)
	}
	var frames data.Frames
	switch m.QueryType {
	case QueryCatalog:
		frames, err = d.queryCatalog(ctx, m)
	case QueryEvents:
		frames, err = d.queryEvents(ctx, m, q.TimeRange)
	case QuerySummary:
		frames, err = d.querySummary(ctx, m)
	case QueryLive:
		frames, err = d.queryLive(pc, m)
	case QueryAnnotations:
		frames, err = d.queryAnnotations(ctx, m, q.TimeRange)
	case QueryLedger:
		frames, err = d.queryLedger(ctx, m, q.TimeRange)
	case QueryForecast:
		frames, err = d.queryForecast(ctx, m)
	}
	if err != nil {
		return errorResponse(err)
	}
	return backend.DataResponse{Frames: frames}
}

// errorResponse maps an error to a response status and source. Mistakes in
// the query or the datasource settings are the user's to fix: like the
// exporter's own failures they are downstream errors, not the plugin's.
func errorResponse(err error) backend.DataResponse {
	var qe *queryError
	var se *settingsError
	var ae *exporterapi.APIError
	switch {
	case errors.As(err, &qe), errors.As(err, &se):
		return backend.ErrDataResponseWithSource(backend.StatusBadRequest, backend.ErrorSourceDownstream, err.Error())
	case errors.As(err, &ae):
		status := backend.StatusBadGateway
		switch ae.StatusCode {
		case http.StatusBadRequest:
			status = backend.StatusBadRequest
		case http.StatusUnauthorized:
			status = backend.StatusUnauthorized
		case http.StatusForbidden:
			status = backend.StatusForbidden
		case http.StatusNotFound:
			status = backend.StatusNotFound
		}
		return backend.ErrDataResponseWithSource(status, backend.ErrorSourceDownstream, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return backend.ErrDataResponseWithSource(backend.StatusTimeout, backend.ErrorSourceDownstream, err.Error())
	default:
		return backend.ErrDataResponseWithSource(backend.StatusBadGateway, backend.ErrorSourceDownstream, err.Error())
	}
}
