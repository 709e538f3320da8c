package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/faceid-observability/faceid-exporter/pkg/forecast"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
)

// historyDays is how many days of ledger history the end-to-end test seeds
// before the traffic starts: enough for a forecast of quality ok.
const historyDays = 100

// seedHistory publishes billable successes with event times over the last
// historyDays days (weekdays 40 a day, weekends 20, on app_sdk and
// wechat_h5) into the stream, so that the exporter's ledger holds a
// history to forecast from, and returns how many fall in the current
// Beijing month.
func seedHistory(t *testing.T, natsURL string, now time.Time) float64 {
	t.Helper()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	today := ledger.DayOf(now)
	b := now.In(ledger.Beijing)
	monthStart := ledger.DayOf(time.Date(b.Year(), b.Month(), 1, 0, 0, 0, 0, ledger.Beijing))
	mtd, id := 0.0, 0
	for d := today - historyDays; d < today; d++ {
		n := 40
		if wd := d.Start().Weekday(); wd == time.Saturday || wd == time.Sunday {
			n = 20
		}
		for _, ch := range []string{"app_sdk", "wechat_h5"} {
			for i := range n {
				id++
				ts := d.Start().Add(9*time.Hour + time.Duration(i)*time.Minute).Format(time.RFC3339)
				if _, err := js.PublishAsync("faceid.results."+ch, fmt.Appendf(nil, `{"id":"history-%d","ts":%q,"channel":%q,"code":"0"}`, id, ts, ch)); err != nil {
					t.Fatal(err)
				}
				if d >= monthStart {
					mtd++
				}
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(60 * time.Second):
		t.Fatal("history not published within 60s")
	}
	return mtd
}

// getForecast reads GET /api/v1/forecast.
func getForecast(exporterAddr string) (*forecast.Result, string, error) {
	resp, err := http.Get("http://" + exporterAddr + "/api/v1/forecast")
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, string(body), fmt.Errorf("%s", resp.Status)
	}
	var r forecast.Result
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, string(body), err
	}
	return &r, string(body), nil
}

// checkForecast checks a forecast of the seeded ledger: full quality, the
// history seeded, at least the seeded month to date, cost in CNY and
// intervals in order around a point above what is spent.
func checkForecast(t *testing.T, where string, r *forecast.Result, seededMTD float64) {
	t.Helper()
	s := r.Total
	e := s.BilledMonthEnd
	if s.Quality != forecast.QualityOK || s.HistoryDays < historyDays || s.BilledMonthToDate < seededMTD ||
		r.Currency != "CNY" || s.CostMonthEnd == nil || len(s.Daily) != forecast.DefaultDays ||
		!(s.BilledMonthToDate <= e.Low95 && e.Low95 <= e.Low80 && e.Low80 <= e.Point && e.Point <= e.High80 && e.High80 <= e.High95) {
		t.Errorf("%s: total %+v (currency %q), want quality ok on %d days, month to date at least %g", where, s, r.Currency, historyDays, seededMTD)
	}
}

// forecastCLI runs `exporter forecast` against the exporter's NATS.
func forecastCLI(ctx context.Context, t *testing.T, exporter, natsURL, cfgPath string) *forecast.Result {
	t.Helper()
	out, err := exec.CommandContext(ctx, exporter, "forecast", "--nats.url", natsURL, "--jetstream.stream", "FACEID",
		"--config.file", cfgPath, "--format", "json").Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("exporter forecast: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("exporter forecast: %v", err)
	}
	var r forecast.Result
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("exporter forecast --format json: %v\n%s", err, out)
	}
	return &r
}
