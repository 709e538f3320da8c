package api_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/faceid-observability/faceid-exporter/pkg/api"
	"github.com/faceid-observability/faceid-exporter/pkg/forecast"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
)

func forecastServer(t *testing.T, src api.ForecastSource) *httptest.Server {
	t.Helper()
	h, err := api.NewHandler(api.Options{Gatherer: prometheus.NewRegistry(), Forecast: src, Ready: func() (bool, string) { return true, "" }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// TestForecastEndpoint: the endpoint reads the ledger's retention window up
// to today, forecasts at the source's time and refuses bad parameters.
func TestForecastEndpoint(t *testing.T) {
	now := time.Date(2026, 11, 25, 4, 0, 0, 0, time.UTC) // 12:00 Beijing
	today := ledger.DayOf(now)
	fake := &ledgerFake{}
	for d := today - 60; d <= today; d++ {
		fake.rows = append(fake.rows, ledger.Row{Day: d.String(), Channel: "app_sdk", Code: "0", Billable: "true", Count: 1000})
	}
	srv := forecastServer(t, api.ForecastSource{Read: fake.read, Options: func() forecast.Options {
		return forecast.Options{Now: now, Currency: "CNY", UnitPrice: map[string]float64{"app_sdk": 2}}
	}})
	resp, body := getFull(t, srv.URL+"/api/v1/forecast?days=3")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if len(fake.calls) != 1 || fake.calls[0] != [2]ledger.Day{today - forecast.HistoryDays + 1, today} {
		t.Errorf("read %v, want the %d days to %s", fake.calls, forecast.HistoryDays, today)
	}
	var res forecast.Result
	if err := json.Unmarshal([]byte(body), &res); err != nil {
		t.Fatal(err)
	}
	if res.Today != "2026-11-25" || len(res.Total.Daily) != 3 || res.Total.CostMonthEnd == nil || res.Total.BilledMonthToDate != 25*1000 {
		t.Errorf("forecast %+v", res.Total)
	}
	resp, body = getFull(t, srv.URL+"/api/v1/forecast?format=csv")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, forecast.CSVHeader+"\n") || strings.Count(body, "\n") != 1+2*(1+forecast.DefaultDays)*2 {
		t.Errorf("csv %d: %d lines", resp.StatusCode, strings.Count(body, "\n"))
	}
	for _, tc := range []struct {
		name, query string
		want        int
		msg         string
	}{
		{"days zero", "days=0", 400, `days \"0\"`},
		{"days too many", "days=401", 400, "from 1 to 400"},
		{"bad format", "format=xml", 400, `format \"xml\"`},
		{"unknown parameter", "channel=x", 400, `unknown parameter \"channel\"`},
		{"repeated", "days=1&days=2", 400, "given 2 times"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := getFull(t, srv.URL+"/api/v1/forecast?"+tc.query)
			if resp.StatusCode != tc.want || !strings.Contains(body, tc.msg) {
				t.Errorf("%d %s, want %d with %q", resp.StatusCode, body, tc.want, tc.msg)
			}
		})
	}
	t.Run("no ledger", func(t *testing.T) {
		resp, body := getFull(t, forecastServer(t, api.ForecastSource{}).URL+"/api/v1/forecast")
		if resp.StatusCode != http.StatusNotImplemented || !strings.Contains(body, "--jetstream.stream") {
			t.Errorf("%d %s", resp.StatusCode, body)
		}
	})
	for name, tc := range map[string]struct {
		fake *ledgerFake
		want int
	}{
		"no books":   {&ledgerFake{err: ledger.ErrNoBooks}, http.StatusServiceUnavailable},
		"no history": {&ledgerFake{rows: []ledger.Row{{Day: today.String(), Channel: "x", Code: "0", Billable: "true", Count: 1}}}, http.StatusServiceUnavailable},
		"read fails": {&ledgerFake{err: errors.New("kv down")}, http.StatusInternalServerError},
	} {
		t.Run(name, func(t *testing.T) {
			srv := forecastServer(t, api.ForecastSource{Read: tc.fake.read, Options: func() forecast.Options { return forecast.Options{Now: now} }})
			if resp, body := getFull(t, srv.URL+"/api/v1/forecast"); resp.StatusCode != tc.want {
				t.Errorf("%d %s, want %d", resp.StatusCode, body, tc.want)
			}
		})
	}
}
