package plugin

import (
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/faceid-observability/faceid-exporter/grafana-plugin/pkg/internal/exportertest"
	"github.com/faceid-observability/faceid-exporter/grafana-plugin/pkg/internal/fixture"
)

// TestForecastQuery runs the forecast query on the recorded answer of a real
// exporter (testdata/forecast.json: 2026-11-25, app_sdk and wechat_h5).
func TestForecastQuery(t *testing.T) {
	srv := fixture.New(fixture.Options{})
	defer srv.Close()
	d := newDS(t, backend.DataSourceInstanceSettings{URL: srv.URL})
	tr := backend.TimeRange{From: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)}

	t.Run("daily, long: the total and each channel per Beijing day", func(t *testing.T) {
		r := query(t, d, map[string]any{"queryType": "forecast", "days": 3}, tr)
		if r.Error != nil {
			t.Fatal(r.Error)
		}
		f := r.Frames[0]
		if f.Meta.Type != data.FrameTypeTimeSeriesLong || f.Fields[0].Type() != data.FieldTypeTime {
			t.Fatalf("frame type %s", f.Meta.Type)
		}
		times, ch, point := column(t, f, "time"), column(t, f, "channel"), column(t, f, "point")
		var rows []string
		for i := range times {
			rows = append(rows, times[i]+" "+ch[i]+" "+point[i])
		}
		if len(rows) != 9 || !strings.HasPrefix(rows[0], "2026-11-24T16:00:00.000Z all 3609.6") || !strings.HasPrefix(rows[1], "2026-11-24T16:00:00.000Z app_sdk 2674.0") ||
			!strings.HasPrefix(rows[3], "2026-11-25T16:00:00.000Z all 3289.0") {
			t.Fatalf("rows:\n%s", strings.Join(rows, "\n"))
		}
		for i := 0; i < f.Rows(); i++ {
			lo95, lo80, p, hi80, hi95 := f.Fields[5].At(i).(float64), f.Fields[3].At(i).(float64), f.Fields[2].At(i).(float64), f.Fields[4].At(i).(float64), f.Fields[6].At(i).(float64)
			if !(lo95 <= lo80 && lo80 <= p && p <= hi80 && hi80 <= hi95) {
				t.Errorf("row %d: bounds out of order", i)
			}
		}
		if c := f.Meta.Custom.(map[string]any); c["today"] != "2026-11-25" || c["currency"] != "CNY" || c["measure"] != "billed" {
			t.Errorf("meta.custom %v", c)
		}
	})
	t.Run("daily cost of one channel, wide", func(t *testing.T) {
		r := query(t, d, map[string]any{"queryType": "forecast", "days": 2, "channel": "app_sdk", "measure": "cost", "format": "timeseries"}, tr)
		if r.Error != nil {
			t.Fatal(r.Error)
		}
		f := r.Frames[0]
		if f.Meta.Type != data.FrameTypeTimeSeriesWide || len(f.Fields) != 6 || f.Rows() != 2 || f.Fields[1].Labels["channel"] != "app_sdk" {
			t.Fatalf("type %s, %d fields, %d rows, labels %v", f.Meta.Type, len(f.Fields), f.Rows(), f.Fields[1].Labels)
		}
		var point *data.Field
		for _, fl := range f.Fields {
			if fl.Name == "point" {
				point = fl
			}
		}
		if point == nil {
			t.Fatalf("no point field in %v", f.Fields)
		}
		if p := point.At(0).(float64); p < 2674.0*1.5-1 || p > 2674.1*1.5+1 { // app_sdk at 1.5 CNY
			t.Errorf("cost %g", p)
		}
	})
	t.Run("month end: one row per series, the total first", func(t *testing.T) {
		r := query(t, d, map[string]any{"queryType": "forecast", "forecastOf": "month_end"}, tr)
		if r.Error != nil {
			t.Fatal(r.Error)
		}
		f := r.Frames[0]
		got := strings.Join(column(t, f, "channel"), ",") + " " + strings.Join(column(t, f, "quality"), ",") + " " + strings.Join(column(t, f, "month_to_date"), ",")
		if got != "all,app_sdk,wechat_h5 ok,ok,ok 69625,51575,18050" {
			t.Fatalf("month end %s", got)
		}
	})
	t.Run("bad queries", func(t *testing.T) {
		for _, m := range []map[string]any{
			{"queryType": "forecast", "days": 401},
			{"queryType": "forecast", "days": -1},
			{"queryType": "forecast", "measure": "revenue"},
			{"queryType": "forecast", "forecastOf": "year_end"},
			{"queryType": "forecast", "format": "csv"},
		} {
			if r := query(t, d, m, tr); r.Error == nil || r.Status != backend.StatusBadRequest {
				t.Errorf("%v: %v %v", m, r.Status, r.Error)
			}
		}
	})
	t.Run("core mode", func(t *testing.T) {
		core := fixture.New(fixture.Options{CoreMode: true})
		defer core.Close()
		r := query(t, newDS(t, backend.DataSourceInstanceSettings{URL: core.URL}), map[string]any{"queryType": "forecast"}, tr)
		if r.Error == nil || !strings.Contains(r.Error.Error(), "--jetstream.stream") {
			t.Fatalf("core mode: %v", r.Error)
		}
	})
}

// TestRealExporterForecast runs the forecast query against the exporter built
// from this repository: on a ledger of today only it relays the exporter's
// "no history" answer, in core mode its 501 (the numbers are checked against
// a seeded ledger by the repository's e2e test and the fixture above).
func TestRealExporterForecast(t *testing.T) {
	exp := exportertest.Start(t, exportertest.Options{JetStreamStream: "FACEID_PLUGIN_FORECAST"})
	d := newDS(t, backend.DataSourceInstanceSettings{URL: exp.URL})
	exp.Simulate(t, "baseline", 300, time.Second, 11)
	tr := backend.TimeRange{From: time.Now().Add(-24 * time.Hour), To: time.Now().Add(35 * 24 * time.Hour)}
	var last error
	waitFor(t, "the exporter's answer on a ledger of today only", func() bool {
		r := query(t, d, map[string]any{"queryType": "forecast"}, tr)
		last = r.Error
		return r.Error != nil && strings.Contains(r.Error.Error(), "no ledger day before today")
	})
	if !strings.Contains(last.Error(), "HTTP 503") {
		t.Errorf("no history: %v, want the exporter's 503", last)
	}
	core := exportertest.Start(t, exportertest.Options{})
	r := query(t, newDS(t, backend.DataSourceInstanceSettings{URL: core.URL}), map[string]any{"queryType": "forecast"}, tr)
	if r.Error == nil || !strings.Contains(r.Error.Error(), "HTTP 501") || r.ErrorSource != backend.ErrorSourceDownstream {
		t.Fatalf("core mode: %v (%s)", r.Error, r.ErrorSource)
	}
}
