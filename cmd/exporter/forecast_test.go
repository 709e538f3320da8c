package main

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
	"github.com/faceid-observability/faceid-exporter/pkg/forecast"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
)

// forecastShape is the seeded ledger's weekly shape, Sunday first.
var forecastShape = [7]float64{0.5, 1, 1.1, 1.1, 1, 0.9, 0.6}

// forecastLedger returns the seeded ledger of partition p of 2: 120 days to
// 2026-11-24 of app_sdk (partition 0) and wechat_h5 (partition 1), a weekly
// shape and 5 % growth a month, plus failures that are not billed, and
// today's (2026-11-25) count so far.
func forecastLedger(t *testing.T, p int) []ledger.Row {
	t.Helper()
	first, last := day(t, "2026-07-28"), day(t, "2026-11-25")
	ch, base := "app_sdk", 2000.0
	if p == 1 {
		ch, base = "wechat_h5", 700.0
	}
	var rows []ledger.Row
	for d := first; d <= last; d++ {
		n := base * math.Exp(math.Log(1.05)/30*float64(d-first)) * forecastShape[d.Start().Weekday()]
		if d == last {
			n *= 0.4
		}
		rows = append(rows, ledger.Row{Day: d.String(), Channel: ch, Code: "0", Billable: "true", Count: uint64(math.Round(n))},
			ledger.Row{Day: d.String(), Channel: ch, Code: "-1101", Billable: "false", Count: 11})
	}
	return rows
}

// forecastServer runs a JetStream server holding the seeded ledger as real
// checkpoints of group faceid-exporter on stream FACEID.
func forecastServer(t *testing.T) *server.Server {
	t.Helper()
	s := natstest.RunServer(t)
	js, err := jetstream.New(natstest.Connect(t, s.ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.CreateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "faceid-checkpoints"})
	if err != nil {
		t.Fatal(err)
	}
	for p := range 2 {
		commitDays(t, kv, "FACEID", "faceid-exporter", p, 2, forecastLedger(t, p))
	}
	return s
}

// TestForecastReadsCheckpoints runs `exporter forecast` on real checkpoints:
// the month to date is the seeded ledger's billed rows of November summed
// over both partitions, the forecast is above it and inside its intervals,
// and the outputs match their golden files.
func TestForecastReadsCheckpoints(t *testing.T) {
	s := forecastServer(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfg, []byte("pricing:\n  currency: CNY\n  monthly_budget: 200000\n  unit_price:\n    app_sdk: 1.5\n    wechat_h5: 1.0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cal := filepath.Join(dir, "calendar.yml")
	if err := os.WriteFile(cal, []byte("days:\n  - {day: 2026-11-27, factor: 2}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"forecast", "--nats.url=" + s.ClientURL(), "--jetstream.stream=FACEID", "--at=2026-11-25T12:00:00+08:00",
		"--config.file=" + cfg, "--forecast.calendar-file=" + cal, "--days=10"}
	for _, tc := range []struct{ name, format, golden string }{
		{"table", "table", "forecast.golden.txt"},
		{"csv", "csv", "forecast.golden.csv"},
		{"json", "json", "forecast.golden.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, "", append(base, "--format="+tc.format)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			checkGolden(t, filepath.Join("testdata/forecast", tc.golden), stdout)
			if tc.format != "json" {
				return
			}
			var res forecast.Result
			if err := json.Unmarshal([]byte(stdout), &res); err != nil {
				t.Fatal(err)
			}
			mtd := map[string]float64{}
			for p := range 2 {
				for _, r := range forecastLedger(t, p) {
					if strings.HasPrefix(r.Day, "2026-11-") && r.Billable == "true" {
						mtd[r.Channel] += float64(r.Count)
						mtd[""] += float64(r.Count)
					}
				}
			}
			if len(res.Channels) != 2 || res.Currency != "CNY" || res.MonthEnd != "2026-11-30" || res.Today != "2026-11-25" {
				t.Fatalf("result %+v", res)
			}
			for _, s := range append([]forecast.Series{res.Total}, res.Channels...) {
				e := s.BilledMonthEnd
				if s.BilledMonthToDate != mtd[s.Channel] || s.Quality != forecast.QualityOK {
					t.Errorf("%q: month to date %g (%s), want %g (ok)", s.Channel, s.BilledMonthToDate, s.Quality, mtd[s.Channel])
				}
				if !(mtd[s.Channel] < e.Low95 && e.Low95 <= e.Low80 && e.Low80 <= e.Point && e.Point <= e.High80 && e.High80 <= e.High95) {
					t.Errorf("%q: month end %+v", s.Channel, e)
				}
				if s.CostMonthEnd == nil || len(s.Daily) != 10 || s.Daily[2].Day != "2026-11-27" {
					t.Errorf("%q: cost %v, daily %v", s.Channel, s.CostMonthEnd, s.Daily)
				}
			}
			// The promotion day of the calendar file doubles the day.
			d := res.Total.Daily
			if r := d[2].Billed.Point / d[1].Billed.Point; r < 1.7 || r > 2.3 {
				t.Errorf("2026-11-27 (factor 2) is %.2f× 2026-11-26", r)
			}
		})
	}
}

func TestForecastArgs(t *testing.T) {
	s := forecastServer(t)
	url := "--nats.url=" + s.ClientURL()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bad format", []string{url, "--jetstream.stream=FACEID", "--format=xml"}, `--format "xml"`},
		{"bad days", []string{url, "--jetstream.stream=FACEID", "--days=0"}, "--days 0: want 1 to 400"},
		{"bad at", []string{url, "--jetstream.stream=FACEID", "--at=yesterday"}, `--at "yesterday"`},
		{"no stream", []string{url}, "--jetstream.stream' not provided"},
		{"other group", []string{url, "--jetstream.stream=FACEID", "--jetstream.consumer=nobody"}, `no checkpoint of group "nobody"`},
		{"no history", []string{url, "--jetstream.stream=FACEID", "--at=2026-07-28T12:00:00+08:00"}, "no ledger day before today"},
		{"bad calendar", []string{url, "--jetstream.stream=FACEID", "--forecast.calendar-file=/nonexistent.yml"}, "read --forecast.calendar-file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, "", append([]string{"forecast"}, tc.args...)...)
			if code == 0 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q: want an error with %q", code, stderr, tc.want)
			}
		})
	}
}
