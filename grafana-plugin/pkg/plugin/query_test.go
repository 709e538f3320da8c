package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/faceid-observability/faceid-exporter/grafana-plugin/pkg/exporterapi"
	"github.com/faceid-observability/faceid-exporter/grafana-plugin/pkg/internal/fixture"
)

var allTime = backend.TimeRange{}

func TestCatalogQuery(t *testing.T) {
	srv := fixture.New(fixture.Options{})
	defer srv.Close()
	d := newDS(t, backend.DataSourceInstanceSettings{URL: srv.URL})

	for _, tc := range []struct {
		name  string
		model map[string]any
		rows  []string // channel/code/billable
	}{
		{name: "channel app_sdk", model: map[string]any{"channel": "app_sdk"},
			rows: []string{"app_sdk/0/true", "app_sdk/66660004/true", "app_sdk/66660010/true"}},
		{name: "family willingness", model: map[string]any{"family": "willingness"},
			rows: []string{"willingness/66666006/true", "willingness/0/unknown"}},
		{name: "billable unknown", model: map[string]any{"billable": "unknown"},
			rows: []string{"willingness/0/unknown"}},
		{name: "billable false on eid", model: map[string]any{"billable": "false", "channel": "eid"},
			rows: []string{"eid/2007/false"}},
		{name: "search code", model: map[string]any{"search": "6666001"},
			rows: []string{"app_sdk/66660010/true", "standalone_h5/66660010/true", "pc_h5/66660010/true"}},
		{name: "category and family", model: map[string]any{"category": "nfc_server", "family": "nfc_server"},
			rows: []string{"nfc_server/0/true"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.model["queryType"] = "catalog"
			r := query(t, d, tc.model, allTime)
			if r.Error != nil {
				t.Fatal(r.Error)
			}
			f := r.Frames[0]
			var got []string
			ch, code, bill := column(t, f, "channel"), column(t, f, "code"), column(t, f, "billable")
			for i := range ch {
				got = append(got, ch[i]+"/"+code[i]+"/"+bill[i])
			}
			if strings.Join(got, " ") != strings.Join(tc.rows, " ") {
				t.Fatalf("rows = %v\nwant   %v", got, tc.rows)
			}
			var names []string
			for _, fl := range f.Fields {
				names = append(names, fl.Name)
			}
			if strings.Join(names, ",") != "family,channel,code,meaning,category,billable,billing" {
				t.Errorf("fields = %v", names)
			}
		})
	}
	t.Run("all rows: one per channel and code of its family", func(t *testing.T) {
		r := query(t, d, map[string]any{"queryType": "catalog"}, allTime)
		// wechat 4 codes x 3 channels, sdk 3 x 3, willingness 2, nfc_server 1, nfc_terminal 1
		if n, _ := r.Frames[0].RowLen(); n != 12+9+2+1+1 {
			t.Fatalf("rows = %d", n)
		}
	})
	t.Run("search by meaning", func(t *testing.T) {
		r := query(t, d, map[string]any{"queryType": "catalog", "search": "成功", "family": "wechat"}, allTime)
		if got := column(t, r.Frames[0], "code"); strings.Join(got, ",") != "0,0,0" {
			t.Fatalf("codes = %v", got)
		}
	})
	t.Run("unknown channel", func(t *testing.T) {
		r := query(t, d, map[string]any{"queryType": "catalog", "channel": "fax"}, allTime)
		if r.Error == nil || !strings.Contains(r.Error.Error(), `channel "fax" is not in the exporter's catalog (channels: wechat_h5,`) {
			t.Fatalf("error = %v", r.Error)
		}
	})
	t.Run("catalog is cached", func(t *testing.T) {
		before := srv.Requests("/api/v1/catalog")
		query(t, d, map[string]any{"queryType": "catalog"}, allTime)
		query(t, d, map[string]any{"queryType": "catalog"}, allTime)
		if n := srv.Requests("/api/v1/catalog") - before; n != 0 {
			t.Errorf("%d catalog requests within the TTL", n)
		}
		d.mu.Lock()
		d.catalogTime = d.catalogTime.Add(-2 * catalogTTL)
		d.mu.Unlock()
		query(t, d, map[string]any{"queryType": "catalog"}, allTime)
		if n := srv.Requests("/api/v1/catalog") - before; n != 1 {
			t.Errorf("%d catalog requests after the TTL, want 1", n)
		}
	})
}

func TestEventsQuery(t *testing.T) {
	srv := fixture.New(fixture.Options{})
	defer srv.Close()
	d := newDS(t, backend.DataSourceInstanceSettings{URL: srv.URL})

	t.Run("billable failures newest first with nullable levels", func(t *testing.T) {
		r := query(t, d, map[string]any{"queryType": "events", "kind": "billable_failure"}, allTime)
		if r.Error != nil {
			t.Fatal(r.Error)
		}
		f := r.Frames[0]
		if f.Name != "events_billable_failure" || f.Meta.PreferredVisualization != data.VisTypeTable {
			t.Errorf("frame %q meta %+v", f.Name, f.Meta)
		}
		if f.Fields[0].Name != "time" || f.Fields[0].Type() != data.FieldTypeTime {
			t.Errorf("first field %s %s, want time", f.Fields[0].Name, f.Fields[0].Type())
		}
		if got := column(t, f, "id"); strings.Join(got, ",") != "evt-bf-3,evt-bf-2,evt-bf-1" {
			t.Errorf("ids = %v", got)
		}
		if got := column(t, f, "time"); got[0] != "2026-11-26T02:15:31.500Z" {
			t.Errorf("times = %v", got)
		}
		if got := column(t, f, "device_level"); strings.Join(got, ",") != "1,3,null" {
			t.Errorf("device_level = %v", got)
		}
		if got := column(t, f, "device_tags"); strings.Join(got, "|") != "|202|" {
			t.Errorf("device_tags = %v", got)
		}
	})
	t.Run("unknown code keeps the raw code", func(t *testing.T) {
		r := query(t, d, map[string]any{"queryType": "events", "kind": "unknown_code"}, allTime)
		f := r.Frames[0]
		if column(t, f, "raw_code")[0] != "99999999" || column(t, f, "known")[0] != "false" || column(t, f, "code")[0] != "unknown" {
			t.Fatalf("unknown code row: %v %v", column(t, f, "raw_code"), column(t, f, "known"))
		}
	})
	t.Run("high risk sorted by event time", func(t *testing.T) {
		r := query(t, d, map[string]any{"queryType": "events", "kind": "high_risk", "channel": "app_sdk"}, allTime)
		if got := column(t, r.Frames[0], "id"); strings.Join(got, ",") != "evt-hr-1" {
			t.Fatalf("ids = %v", got)
		}
	})
	t.Run("time range", func(t *testing.T) {
		tr := backend.TimeRange{From: time.Date(2026, 11, 26, 2, 15, 0, 0, time.UTC), To: time.Date(2026, 11, 26, 2, 16, 0, 0, time.UTC)}
		r := query(t, d, map[string]any{"queryType": "events", "kind": "billable_failure"}, tr)
		if got := column(t, r.Frames[0], "id"); strings.Join(got, ",") != "evt-bf-3,evt-bf-2" {
			t.Errorf("in range = %v", got)
		}
		r = query(t, d, map[string]any{"queryType": "events", "kind": "billable_failure", "ignoreTimeRange": true}, tr)
		if n, _ := r.Frames[0].RowLen(); n != 3 {
			t.Errorf("ignoreTimeRange kept %d rows", n)
		}
	})
	t.Run("limit goes to the exporter", func(t *testing.T) {
		r := query(t, d, map[string]any{"queryType": "events", "kind": "billable_failure", "limit": 2}, allTime)
		if n, _ := r.Frames[0].RowLen(); n != 2 {
			t.Errorf("rows = %d", n)
		}
		r = query(t, d, map[string]any{"queryType": "events", "kind": "billable_failure", "limit": 5000}, allTime)
		if r.Error == nil || r.Status != backend.StatusBadRequest || !strings.Contains(r.Error.Error(), "want an integer from 1 to 1000") {
			t.Errorf("over the ring size: %v %v", r.Status, r.Error)
		}
	})
}

func TestSummaryQuery(t *testing.T) {
	srv := fixture.New(fixture.Options{})
	defer srv.Close()
	d := newDS(t, backend.DataSourceInstanceSettings{URL: srv.URL})
	now := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	d.now = func() time.Time { return now }

	rowsOf := func(t *testing.T, f *data.Frame, dims ...string) string {
		t.Helper()
		cols := make([][]string, len(dims))
		for i, dim := range dims {
			cols[i] = column(t, f, dim)
		}
		var out []string
		for r := range cols[0] {
			var parts []string
			for i := range dims {
				parts = append(parts, cols[i][r])
			}
			out = append(out, strings.Join(parts, "/"))
		}
		return strings.Join(out, " ")
	}

	t.Run("full table is numeric long", func(t *testing.T) {
		r := query(t, d, map[string]any{"queryType": "summary"}, allTime)
		if r.Error != nil {
			t.Fatal(r.Error)
		}
		f := r.Frames[0]
		if n, _ := f.RowLen(); n != 54 {
			t.Errorf("rows = %d, want 54 (9 channels x 2 outcomes x 3 billable)", n)
		}
		if f.Meta.Type != data.FrameTypeNumericLong || f.Meta.Custom.(map[string]any)["since"] != "2026-11-26T01:00:00Z" {
			t.Errorf("meta = %+v", f.Meta)
		}
		numeric := 0
		for _, fl := range f.Fields {
			if fl.Type().Numeric() {
				numeric++
			}
		}
		if numeric != 1 {
			t.Errorf("%d numeric columns; alerting needs exactly one", numeric)
		}
	})
	t.Run("billable failures per channel", func(t *testing.T) {
		r := query(t, d, map[string]any{"queryType": "summary", "outcome": "failure", "billable": "true", "groupBy": []string{"channel"}}, allTime)
		got := rowsOf(t, r.Frames[0], "channel", "count")
		want := "wechat_h5/20 wechat_miniprogram/0 eid/0 app_sdk/60 standalone_h5/0 pc_h5/0 willingness/5 nfc_server/0 nfc_terminal/0"
		if got != want {
			t.Fatalf("rows = %s\nwant   %s", got, want)
		}
	})
	t.Run("ratio", func(t *testing.T) {
		r := query(t, d, map[string]any{"queryType": "summary", "outcome": "failure", "billable": "true", "groupBy": []string{"channel"}, "value": "ratio", "channel": "app_sdk"}, allTime)
		if got := rowsOf(t, r.Frames[0], "channel", "ratio"); got != "app_sdk/0.0625" { // 60 billed failures of 960 billed
			t.Fatalf("rows = %s", got)
		}
		r = query(t, d, map[string]any{"queryType": "summary", "groupBy": []string{"channel"}, "value": "ratio", "outcome": "failure", "channel": "wechat_h5"}, allTime)
		if got := rowsOf(t, r.Frames[0], "channel", "ratio"); got != "wechat_h5/0.09090909090909091" { // 50 failures of 550
			t.Fatalf("failure share: %s", got)
		}
		r = query(t, d, map[string]any{"queryType": "summary", "groupBy": []string{"channel"}, "value": "ratio", "channel": "eid"}, allTime)
		if got := rowsOf(t, r.Frames[0], "channel", "ratio"); got != "eid/null" {
			t.Fatalf("no verifications: %s, want null", got)
		}
	})
	t.Run("filters drop contradicting groups", func(t *testing.T) {
		r := query(t, d, map[string]any{"queryType": "summary", "outcome": "failure", "channel": "app_sdk"}, allTime)
		if got := rowsOf(t, r.Frames[0], "channel", "outcome", "billable", "count"); got != "app_sdk/failure/false/40 app_sdk/failure/true/60 app_sdk/failure/unknown/0" {
			t.Fatalf("rows = %s", got)
		}
	})
	t.Run("timeseries wide with labels", func(t *testing.T) {
		r := query(t, d, map[string]any{"queryType": "summary", "format": "timeseries", "groupBy": []string{"channel", "outcome"}, "billable": "true", "outcome": "failure"}, allTime)
		f := r.Frames[0]
		if f.Meta.Type != data.FrameTypeTimeSeriesWide || len(f.Fields) != 10 || f.Fields[0].Type() != data.FieldTypeTime {
			t.Fatalf("frame: type %s, %d fields", f.Meta.Type, len(f.Fields))
		}
		if ts := column(t, f, "time"); ts[0] != "2026-11-26T03:00:00.000Z" {
			t.Errorf("time = %v", ts)
		}
		var sdk *data.Field
		for _, fl := range f.Fields[1:] {
			if fl.Labels["channel"] == "app_sdk" {
				sdk = fl
			}
			if fl.Labels["outcome"] != "failure" || fl.Name != "count" {
				t.Errorf("field %s labels %v", fl.Name, fl.Labels)
			}
		}
		if v, _ := sdk.ConcreteAt(0); v != 60.0 {
			t.Errorf("app_sdk = %v", v)
		}
	})
	for _, tc := range []struct {
		name  string
		model map[string]any
		err   string
	}{
		{name: "bad format", model: map[string]any{"format": "heatmap"}, err: `format "heatmap" is not one of table, timeseries`},
		{name: "bad value", model: map[string]any{"value": "sum"}, err: `value "sum" is not one of count, ratio`},
		{name: "bad group", model: map[string]any{"groupBy": []string{"code"}}, err: `groupBy "code" is not one of channel, outcome, billable`},
		{name: "twice", model: map[string]any{"groupBy": []string{"channel", "channel"}}, err: `groupBy names "channel" twice`},
		{name: "bad outcome", model: map[string]any{"outcome": "ok"}, err: `outcome "ok" is not one of success, failure`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.model["queryType"] = "summary"
			r := query(t, d, tc.model, allTime)
			if r.Error == nil || r.Error.Error() != tc.err || r.Status != backend.StatusBadRequest {
				t.Fatalf("error = %v (%v), want %s", r.Error, r.Status, tc.err)
			}
		})
	}
}

func TestLiveQuery(t *testing.T) {
	srv := fixture.New(fixture.Options{})
	defer srv.Close()
	d := newDS(t, backend.DataSourceInstanceSettings{URL: srv.URL})
	for _, tc := range []struct {
		model   map[string]any
		channel string
	}{
		{model: map[string]any{"kind": "all"}, channel: "ds/" + testUID + "/events/all"},
		{model: map[string]any{}, channel: "ds/" + testUID + "/events/billable_failure"},
		{model: map[string]any{"kind": "high_risk", "channel": "app_sdk"}, channel: "ds/" + testUID + "/events/high_risk/app_sdk"},
		{model: map[string]any{"kind": "all", "channel": "app_sdk,wechat_h5"}, channel: "ds/" + testUID + "/events/all/app_sdk.wechat_h5"},
		{model: map[string]any{"kind": "*", "channel": "*"}, channel: "ds/" + testUID + "/events/all"},
	} {
		t.Run(tc.channel, func(t *testing.T) {
			tc.model["queryType"] = "live"
			r := query(t, d, tc.model, allTime)
			if r.Error != nil {
				t.Fatal(r.Error)
			}
			f := r.Frames[0]
			if f.Meta == nil || f.Meta.Channel != tc.channel {
				t.Fatalf("meta = %+v", f.Meta)
			}
			if len(f.Fields) != len(EventsFrame("", nil).Fields) || f.Fields[0].Name != "time" {
				t.Errorf("live frame schema differs from the stream's")
			}
		})
	}
	r := query(t, d, map[string]any{"queryType": "live", "channel": "../x"}, allTime)
	if r.Error == nil || r.Error.Error() != `channel "../x" is not a channel name` {
		t.Fatalf("error = %v", r.Error)
	}
}

// One bad query yields an error for its refId only.
func TestQueryErrorsArePerRefID(t *testing.T) {
	srv := fixture.New(fixture.Options{})
	defer srv.Close()
	d := newDS(t, backend.DataSourceInstanceSettings{URL: srv.URL})
	mk := func(ref, qt string, model string) backend.DataQuery {
		return backend.DataQuery{RefID: ref, QueryType: qt, JSON: json.RawMessage(model)}
	}
	resp, err := d.QueryData(context.Background(), &backend.QueryDataRequest{
		PluginContext: backend.PluginContext{DataSourceInstanceSettings: &backend.DataSourceInstanceSettings{UID: testUID}},
		Queries: []backend.DataQuery{
			mk("catalog", "catalog", `{}`),
			mk("badkind", "events", `{"kind":"everything"}`),
			mk("events", "events", `{"kind":"high_risk"}`),
			mk("notype", "", `{}`),
			mk("badtype", "metrics", `{}`),
			mk("badjson", "summary", `{"groupBy":"channel"}`),
			mk("summary", "", `{"queryType":"summary"}`),
			mk("limit", "events", `{"limit":-1}`),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	wantErr := map[string]string{
		"badkind": `event kind "everything" is not one of all, billable_failure, high_risk, unknown_code`,
		"notype":  `query type is empty: choose one of catalog, events, summary, live, annotations, ledger, forecast`,
		"badtype": `query type "metrics" is not one of catalog, events, summary, live, annotations, ledger, forecast`,
		"badjson": `query JSON: json: cannot unmarshal string into Go struct field Query.groupBy of type []string`,
		"limit":   `limit -1 is not between 0 and 10000`,
	}
	for ref, r := range resp.Responses {
		if want, bad := wantErr[ref]; bad {
			if r.Error == nil || r.Error.Error() != want || r.Status != backend.StatusBadRequest {
				t.Errorf("%s: error %v (%v), want %s", ref, r.Error, r.Status, want)
			}
			if r.ErrorSource != backend.ErrorSourceDownstream {
				t.Errorf("%s: error source %q, want downstream (the user's mistake)", ref, r.ErrorSource)
			}
			continue
		}
		if r.Error != nil || len(r.Frames) != 1 {
			t.Errorf("%s: %v, %d frames", ref, r.Error, len(r.Frames))
		}
	}
	if len(resp.Responses) != 8 {
		t.Errorf("%d responses", len(resp.Responses))
	}
}

func TestExporterDownIsPerQuery(t *testing.T) {
	srv := fixture.New(fixture.Options{})
	url := srv.URL
	srv.Close()
	d := newDS(t, backend.DataSourceInstanceSettings{URL: url})
	r := query(t, d, map[string]any{"queryType": "summary"}, allTime)
	if r.Error == nil || r.Status != backend.StatusBadGateway || !strings.Contains(r.Error.Error(), "connection refused") {
		t.Fatalf("response %v %v", r.Status, r.Error)
	}
}

// FuzzParseQuery: any query JSON either fails with a query error or yields a
// query whose type and enumerations are valid.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		`{"queryType":"events","kind":"high_risk","limit":5}`,
		`{"queryType":"summary","groupBy":["channel"],"value":"ratio","outcome":"failure","billable":"true","format":"timeseries"}`,
		`{"queryType":"catalog","billable":"unknown","search":"成功"}`,
		`{"queryType":"live","kind":"all","channel":"app_sdk"}`,
		`{"queryType":"annotations","kind":"high_risk,unknown_code","channel":["app_sdk","*"],"code":"2006"}`,
		`{"queryType":"ledger","format":"timeseries","channel":"app_sdk,eid"}`,
		`{"queryType":"events","kind":"all","billable":"true,$x"}`,
		`{"queryType":"summary","groupBy":"channel"}`,
		`null`, `[]`, `{"limit":1e99}`,
	} {
		f.Add(s, "")
	}
	f.Fuzz(func(t *testing.T, js, queryType string) {
		m, err := ParseQuery(backend.DataQuery{RefID: "A", QueryType: queryType, JSON: []byte(js)})
		if err != nil {
			var qe *queryError
			if !errors.As(err, &qe) {
				t.Fatalf("error %v is not a query error", err)
			}
			return
		}
		switch m.QueryType {
		case QueryCatalog:
		case QueryEvents, QueryAnnotations:
			if len(m.Kind) == 0 || m.Limit < 0 || m.Limit > maxEventLimit {
				t.Fatalf("accepted %+v", m)
			}
			for _, k := range m.Kind {
				if !exporterapi.ValidEventKind(k) {
					t.Fatalf("accepted kind %q in %+v", k, m)
				}
			}
		case QueryLedger:
			if m.Format != FormatTable && m.Format != FormatTimeSeries {
				t.Fatalf("accepted %+v", m)
			}
		case QueryLive:
			if len(m.Kind) != 1 || !exporterapi.ValidStreamKind(m.Kind[0]) {
				t.Fatalf("accepted %+v", m)
			}
			if _, _, err := ParseStreamPath(StreamPath(m.Kind[0], m.Channel)); err != nil {
				t.Fatalf("accepted a live query whose stream path is refused: %v", err)
			}
		case QuerySummary:
			if len(m.GroupBy) == 0 || len(m.GroupBy) > 3 || (m.Format != FormatTable && m.Format != FormatTimeSeries) {
				t.Fatalf("accepted %+v", m)
			}
		default:
			t.Fatalf("accepted query type %q", m.QueryType)
		}
	})
}

// TestListFilters runs the filters with several values, as a multi-value or
// All variable leaves them after the frontend's interpolation.
func TestListFilters(t *testing.T) {
	srv := fixture.New(fixture.Options{})
	defer srv.Close()
	d := newDS(t, backend.DataSourceInstanceSettings{URL: srv.URL})
	for _, tc := range []struct {
		name   string
		model  map[string]any
		column string
		want   string
	}{
		{name: "catalog channels", model: map[string]any{"queryType": "catalog", "channel": "eid,willingness", "billable": "false,unknown"},
			column: "code", want: "2007,0"},
		{name: "catalog channels as an array", model: map[string]any{"queryType": "catalog", "channel": []string{"eid", "willingness"}, "billable": "false,unknown"},
			column: "code", want: "2007,0"},
		{name: "catalog codes", model: map[string]any{"queryType": "catalog", "code": "2006,66666006"},
			column: "channel", want: "wechat_h5,wechat_miniprogram,eid,willingness"},
		{name: "catalog families and categories", model: map[string]any{"queryType": "catalog", "family": "nfc_server,nfc_terminal", "category": "nfc_terminal"},
			column: "channel", want: "nfc_terminal"},
		{name: "catalog custom all value", model: map[string]any{"queryType": "catalog", "channel": "*", "family": "willingness"},
			column: "code", want: "66666006,0"},
		{name: "events of two kinds, each event once", model: map[string]any{"queryType": "events", "kind": "billable_failure,high_risk"},
			column: "id", want: "evt-bf-3,evt-bf-2,evt-hr-1,evt-bf-1"},
		{name: "events of all kinds", model: map[string]any{"queryType": "events", "kind": "all"},
			column: "id", want: "evt-bf-3,evt-bf-2,evt-hr-1,evt-uc-1,evt-bf-1"},
		{name: "events by channel list", model: map[string]any{"queryType": "events", "kind": "all", "channel": "app_sdk,pc_h5"},
			column: "id", want: "evt-bf-3,evt-hr-1,evt-uc-1"},
		{name: "events by code, unknown codes by their raw code", model: map[string]any{"queryType": "events", "kind": "*", "code": "99999999,2006"},
			column: "id", want: "evt-bf-2,evt-uc-1"},
		{name: "summary channel list", model: map[string]any{"queryType": "summary", "outcome": "failure", "billable": "true", "groupBy": []string{"channel"}, "channel": "app_sdk,wechat_h5"},
			column: "count", want: "20,60"},
		{name: "summary billable list", model: map[string]any{"queryType": "summary", "outcome": "failure", "billable": "true,false", "groupBy": []string{"channel"}, "channel": "app_sdk"},
			column: "count", want: "100"},
		{name: "summary outcome list keeps both", model: map[string]any{"queryType": "summary", "outcome": "success,failure", "billable": "true", "groupBy": []string{"channel"}, "channel": "app_sdk"},
			column: "count", want: "960"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := query(t, d, tc.model, allTime)
			if r.Error != nil {
				t.Fatal(r.Error)
			}
			if got := strings.Join(column(t, r.Frames[0], tc.column), ","); got != tc.want {
				t.Fatalf("%s = %s\nwant %s", tc.column, got, tc.want)
			}
		})
	}
	t.Run("unknown channel in a list", func(t *testing.T) {
		r := query(t, d, map[string]any{"queryType": "catalog", "channel": "eid,fax"}, allTime)
		if r.Error == nil || !strings.HasPrefix(r.Error.Error(), `channel "fax" is not in the exporter's catalog`) || r.ErrorSource != backend.ErrorSourceDownstream {
			t.Fatalf("%v (%s)", r.Error, r.ErrorSource)
		}
	})
	t.Run("events frame named after its one kind", func(t *testing.T) {
		for kind, name := range map[string]string{"high_risk": "events_high_risk", "high_risk,unknown_code": "events"} {
			r := query(t, d, map[string]any{"queryType": "events", "kind": kind}, allTime)
			if r.Frames[0].Name != name {
				t.Errorf("kind %s: frame %q, want %q", kind, r.Frames[0].Name, name)
			}
		}
	})
}

// TestSettingsErrorsAreDownstream: a query on a datasource whose settings
// are unusable fails with the settings' message, as the user's error.
func TestSettingsErrorsAreDownstream(t *testing.T) {
	d := newDS(t, backend.DataSourceInstanceSettings{URL: "http://e:1", JSONData: []byte(`{"authType":"oauth"}`)})
	for _, qt := range QueryTypes() {
		t.Run(qt, func(t *testing.T) {
			r := query(t, d, map[string]any{"queryType": qt}, backend.TimeRange{From: time.Now().Add(-time.Hour), To: time.Now()})
			if r.Error == nil || r.Error.Error() != `datasource settings: auth type "oauth" is not none, basic or bearer` ||
				r.Status != backend.StatusBadRequest || r.ErrorSource != backend.ErrorSourceDownstream {
				t.Fatalf("%v %v %q", r.Error, r.Status, r.ErrorSource)
			}
		})
	}
	err := d.RunStream(context.Background(), &backend.RunStreamRequest{Path: "events/all"}, nil)
	if !backend.IsDownstreamError(err) {
		t.Errorf("RunStream: %v is not a downstream error", err)
	}
}
