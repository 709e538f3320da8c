package service_test

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
	"github.com/faceid-observability/faceid-exporter/pkg/config"
	"github.com/faceid-observability/faceid-exporter/pkg/forecast"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
	"github.com/faceid-observability/faceid-exporter/pkg/metrics"
	"github.com/faceid-observability/faceid-exporter/pkg/service"
	"github.com/faceid-observability/faceid-exporter/pkg/stream"
)

// publishHistory publishes billable successes with event times over the
// last days (weekdays 30 a day, weekends 15; app_sdk and wechat_h5) and
// returns how many of them fall in the current Beijing month, per channel.
func publishHistory(t *testing.T, js jetstream.JetStream, now time.Time, days int) map[string]float64 {
	t.Helper()
	today := ledger.DayOf(now)
	monthStart := ledger.DayOf(time.Date(now.In(ledger.Beijing).Year(), now.In(ledger.Beijing).Month(), 1, 0, 0, 0, 0, ledger.Beijing))
	mtd := map[string]float64{}
	id := 0
	for d := today - ledger.Day(days); d < today; d++ {
		n := 30
		if wd := d.Start().Weekday(); wd == time.Saturday || wd == time.Sunday {
			n = 15
		}
		for _, ch := range []string{"app_sdk", "wechat_h5"} {
			for i := range n {
				id++
				ts := d.Start().Add(8*time.Hour + time.Duration(i)*time.Minute).Format(time.RFC3339)
				body := fmt.Sprintf(`{"id":"h%d","ts":%q,"channel":%q,"code":"0"}`, id, ts, ch)
				if _, err := js.PublishAsync("faceid.results."+ch, []byte(body)); err != nil {
					t.Fatal(err)
				}
				if id%1000 == 0 { // stay under the client's limit of outstanding acknowledgements
					waitPublished(t, js)
				}
				if d >= monthStart {
					mtd[ch]++
				}
			}
		}
	}
	waitPublished(t, js)
	return mtd
}

func waitPublished(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatal("history not published within 30s")
	}
}

// TestForecastGaugesOncePerGroup runs two replicas of a JetStream group with
// two partitions on a ledger seeded through the stream: exactly one replica
// (partition 0's owner) exposes the forecast gauges, every replica serves
// GET /api/v1/forecast, and both agree with the seeded ledger's month to date.
func TestForecastGaugesOncePerGroup(t *testing.T) {
	s := natstest.RunServer(t)
	cfg := service.Config{NATS: stream.ConnOptions{URLs: s.ClientURL()}, JetStream: jsConfig(),
		Forecast: service.Forecast{Interval: time.Second}}
	cfg.JetStream.Partitions = 2
	file := config.Default(catalog(t))
	file.Pricing = &config.Pricing{Currency: "CNY", UnitPrice: map[string]float64{"app_sdk": 1.5, "wechat_h5": 1}}
	cfg.File = file
	var reps []service.Started
	var stops []func() (time.Duration, error)
	for i := range 2 {
		c := cfg
		c.JetStream.Instance = fmt.Sprint("replica-", i)
		st, stop := started(t, c)
		reps, stops = append(reps, st), append(stops, stop)
	}
	js, err := jetstream.New(natstest.Connect(t, s.ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, 20*time.Second, "the stream", func() bool {
		_, err := js.Stream(t.Context(), "FACEID")
		return err == nil
	})
	now := time.Now()
	mtd := publishHistory(t, js, now, 100)
	want := mtd["app_sdk"] + mtd["wechat_h5"]

	get := func(st service.Started) (int, string) {
		resp, err := http.Get("http://" + st.HTTP[0].String() + "/api/v1/forecast?days=7")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	var res forecast.Result
	natstest.WaitFor(t, 60*time.Second, "the seeded ledger committed and forecast", func() bool {
		code, body := get(reps[0])
		if code != http.StatusOK || json.Unmarshal([]byte(body), &res) != nil {
			return false
		}
		return res.Total.HistoryDays == 100 && res.Total.BilledMonthToDate == want
	})
	if res.Total.Quality != forecast.QualityOK || len(res.Channels) != 2 || res.Total.CostMonthEnd == nil || len(res.Total.Daily) != 7 {
		t.Fatalf("forecast %+v", res.Total)
	}
	if code, body := get(reps[1]); code != http.StatusOK || !strings.Contains(body, `"billed_month_to_date":`+fmt.Sprint(want)) {
		t.Errorf("the other replica: %d %.200s", code, body)
	}
	// The gauges: one replica exposes them, once, with every bound.
	var exposing []int
	natstest.WaitFor(t, 30*time.Second, "the forecast gauges, fresh, on one replica", func() bool {
		exposing = exposing[:0]
		ok := true
		for i, st := range reps {
			g := scrape(t, st, "faceid_forecast_group_billed_month_end")
			if len(g) == 0 {
				continue
			}
			exposing = append(exposing, i)
			ok = ok && len(g) == len(metrics.ForecastBounds) && g["bound=low95"] >= want && g["bound=low95"] <= g["bound=point"] && g["bound=point"] <= g["bound=high95"]
			c := scrape(t, st, "faceid_forecast_billed_month_end")
			ok = ok && len(c) == 2*len(metrics.ForecastBounds) && c["bound=low95,channel=app_sdk"] >= mtd["app_sdk"]
			cost := scrape(t, st, "faceid_forecast_group_cost_month_end")
			ok = ok && len(cost) == len(metrics.ForecastBounds) && cost["bound=point,currency=CNY"] > 0
			ok = ok && math.Abs(g["bound=point"]-res.Total.BilledMonthEnd.Point) <= 1e-6*g["bound=point"]
		}
		return ok && len(exposing) == 1
	})
	owned := scrape(t, reps[exposing[0]], "faceid_exporter_checkpoint_sequence")
	if _, ok := owned["partition=0"]; !ok {
		t.Errorf("replica %d exposes the forecast without owning partition 0 (owns %v)", exposing[0], owned)
	}
	// The leader stops: the other replica takes partition 0 over and exposes
	// the forecast from then on.
	if _, err := stops[exposing[0]](); err != nil {
		t.Fatal(err)
	}
	other := reps[1-exposing[0]]
	natstest.WaitFor(t, 30*time.Second, "the forecast gauges on the replica that took partition 0 over", func() bool {
		g := scrape(t, other, "faceid_forecast_group_billed_month_end")
		return len(g) == len(metrics.ForecastBounds) && g["bound=low95"] >= want
	})
}
