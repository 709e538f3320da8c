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
	QueryCatalog = "catalog"
	QueryEvents  = "events"
	QuerySummary = "summary"
	QueryLive    = "live"
)

// QueryTypes lists the query types in editor order.
func QueryTypes() []string { return []string{QueryCatalog, QueryEvents, QuerySummary, QueryLive} }

// Summary formats and values.
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

// Query is the model the query editor writes; each query type reads its own
// fields and ignores the others.
type Query struct {
	QueryType string `json:"queryType"`

	// catalog, events, summary, live: filters ("" = all)
	Channel  string `json:"channel"`
	Family   string `json:"family"`
	Category string `json:"category"`
	Billable string `json:"billable"`
	Outcome  string `json:"outcome"`
	// catalog: substring of the code or its meaning
	Search string `json:"search"`

	// events, live: which events
	Kind string `json:"kind"`
	// events: how many (0 = the exporter's default, 100 or its ring size)
	Limit int `json:"limit"`
	// events: keep events outside the dashboard's time range
	IgnoreTimeRange bool `json:"ignoreTimeRange"`

	// summary: table (numeric long) or timeseries (wide, one point at query time)
	Format string `json:"format"`
	// summary: dimensions kept (default all three)
	GroupBy []string `json:"groupBy"`
	// summary: count, or ratio = the outcome's share of the group's verifications
	// that pass the channel and billable filters
	Value string `json:"value"`
}

// queryError is an error in the query itself (the user's to fix).
type queryError struct{ msg string }

func (e *queryError) Error() string { return e.msg }

func badQuery(format string, args ...any) error {
	return &queryError{msg: fmt.Sprintf(format, args...)}
}

// ParseQuery decodes and checks one query; the query type comes from the
// DataQuery when set there, else from the JSON.
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
	switch m.QueryType {
	case QueryCatalog:
		if err := oneOf("billable", m.Billable, "", "true", "false", "unknown"); err != nil {
			return m, err
		}
	case QueryEvents, QueryLive:
		if m.Kind == "" {
			m.Kind = exporterapi.KindBillableFailure
		}
		ok := exporterapi.ValidEventKind(m.Kind)
		if m.QueryType == QueryLive {
			ok = exporterapi.ValidStreamKind(m.Kind)
		}
		if !ok {
			return m, badQuery("event kind %q is not one of %s", m.Kind, strings.Join(kindsFor(m.QueryType), ", "))
		}
		if m.Limit < 0 || m.Limit > maxEventLimit {
			return m, badQuery("limit %d is not between 0 and %d", m.Limit, maxEventLimit)
		}
		if m.QueryType == QueryLive && m.Channel != "" && !channelPathPart.MatchString(m.Channel) {
			return m, badQuery("channel %q is not a channel name", m.Channel)
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
		if err := oneOf("outcome", m.Outcome, "", "success", "failure"); err != nil {
			return m, err
		}
		if err := oneOf("billable", m.Billable, "", "true", "false", "unknown"); err != nil {
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

func kindsFor(queryType string) []string {
	if queryType == QueryLive {
		return exporterapi.StreamKinds()
	}
	return exporterapi.EventKinds()
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
		return backend.ErrDataResponseWithSource(backend.StatusBadRequest, backend.ErrorSourceDownstream, err.Error())
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
	}
	if err != nil {
		return errorResponse(err)
	}
	return backend.DataResponse{Frames: frames}
}

// errorResponse maps an error to a response status and source.
func errorResponse(err error) backend.DataResponse {
	var qe *queryError
	var se *settingsError
	var ae *exporterapi.APIError
	switch {
	case errors.As(err, &qe), errors.As(err, &se):
		return backend.ErrDataResponseWithSource(backend.StatusBadRequest, backend.ErrorSourcePlugin, err.Error())
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
