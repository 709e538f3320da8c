package forecast

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
)

func TestCalendar(t *testing.T) {
	cal := ChinaCalendar()
	for _, tc := range []struct {
		day  string
		want Kind
	}{
		{"2026-02-17", Holiday}, // Spring Festival
		{"2026-02-14", Workday}, // a Saturday worked for it
		{"2025-10-01", Holiday}, // National Day
		{"2025-10-11", Workday},
		{"2026-12-07", Regular},
		{"2026-12-06", Regular}, // a Sunday is regular: weekdays are the model's
	} {
		t.Run(tc.day, func(t *testing.T) {
			if k, f := cal.Day(day(t, tc.day)); k != tc.want || f != 1 {
				t.Errorf("%s: %s ×%g, want %s ×1", tc.day, k, f, tc.want)
			}
		})
	}
	if y := cal.LastPublishedYear(); y < 2026 {
		t.Errorf("public holidays known until %d, want at least 2026", y)
	}
	own, err := NewCalendar(true, []Override{
		{Day: day(t, "2026-02-17"), Kind: Regular},
		{Day: day(t, "2026-11-11"), Kind: Regular, Factor: 2},
		{Day: day(t, "2026-03-03"), Kind: Ignore},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		day  string
		kind Kind
		f    float64
	}{{"2026-02-17", Regular, 1}, {"2026-11-11", Regular, 2}, {"2026-03-03", Ignore, 1}, {"2026-02-16", Holiday, 1}} {
		if k, f := own.Day(day(t, tc.day)); k != tc.kind || f != tc.f {
			t.Errorf("override %s: %s ×%g, want %s ×%g", tc.day, k, f, tc.kind, tc.f)
		}
	}
	none, err := NewCalendar(false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := none.Day(day(t, "2026-02-17")); k != Regular || none.LastPublishedYear() != 0 {
		t.Errorf("a calendar without public holidays says %s for the Spring Festival", k)
	}
	for name, o := range map[string]Override{
		"negative factor":        {Day: day(t, "2026-01-01"), Kind: Regular, Factor: -1},
		"factor on ignored day":  {Day: day(t, "2026-01-01"), Kind: Ignore, Factor: 2},
		"kind out of the closed": {Day: day(t, "2026-01-01"), Kind: 9},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := NewCalendar(true, []Override{o}); err == nil {
				t.Errorf("NewCalendar accepted %+v", o)
			}
		})
	}
	for _, s := range []string{"regular", "holiday", "workday", "ignore"} {
		if k, err := ParseKind(s); err != nil || k.String() != s {
			t.Errorf("ParseKind(%q) = %s, %v", s, k, err)
		}
	}
	if _, err := ParseKind("promotion"); err == nil {
		t.Error("ParseKind accepted promotion")
	}
}

// rowsOf returns ledger rows of billed counts per day from first on, plus
// an unbilled row each day (which must not count).
func rowsOf(channel string, first ledger.Day, counts []uint64) []ledger.Row {
	var rows []ledger.Row
	for i, n := range counts {
		d := (first + ledger.Day(i)).String()
		rows = append(rows, ledger.Row{Day: d, Channel: channel, Code: "0", Billable: "true", Count: n},
			ledger.Row{Day: d, Channel: channel, Code: "-1101", Billable: "false", Count: 7})
	}
	return rows
}

func near(got, want, rel float64) bool { return math.Abs(got-want) <= rel*math.Abs(want) }

// TestFromRowsExact: on a noiseless history of a known weekly shape and
// growth, without holidays, the forecast is the ground truth computed here
// independently, to within the damping of the trend.
func TestFromRowsExact(t *testing.T) {
	cal, err := NewCalendar(false, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := day(t, "2026-01-05")
	today := day(t, "2026-05-10")
	growth := math.Log(1.06) / 30 // 6 % a month
	shape := [7]float64{0.5, 1, 1.1, 1.1, 1, 0.9, 0.6}
	truth := func(d ledger.Day) float64 {
		return 1000 * math.Exp(growth*float64(d-first)) * shape[d.Start().Weekday()]
	}
	var counts []uint64
	for d := first; d < today; d++ {
		counts = append(counts, uint64(math.Round(truth(d))))
	}
	now := today.Start().Add(10 * time.Hour)
	so := 300.0 // today so far
	rows := append(rowsOf("app_sdk", first, counts), ledger.Row{Day: today.String(), Channel: "app_sdk", Code: "0", Billable: "true", Count: uint64(so)})
	res, err := FromRows(rows, Options{Now: now, Calendar: cal, Currency: "CNY", UnitPrice: map[string]float64{"app_sdk": 0.5}})
	if err != nil {
		t.Fatal(err)
	}
	s := res.Channels[0]
	if s.Quality != QualityOK || s.Channel != "app_sdk" || res.MonthEnd != "2026-05-31" || len(s.Daily) != DefaultDays {
		t.Fatalf("series %+v", s)
	}
	mtd, rest := so, truth(today)-so
	for d := day(t, "2026-05-01"); d < today; d++ {
		mtd += math.Round(truth(d))
	}
	for d := today + 1; d <= day(t, "2026-05-31"); d++ {
		rest += truth(d)
	}
	if s.BilledMonthToDate != mtd {
		t.Errorf("month to date %g, want %g", s.BilledMonthToDate, mtd)
	}
	if !near(s.BilledMonthEnd.Point, mtd+rest, 0.005) {
		t.Errorf("month end %.0f, want %.0f", s.BilledMonthEnd.Point, mtd+rest)
	}
	e := s.BilledMonthEnd
	if !(e.Low95 <= e.Low80 && e.Low80 <= e.Point && e.Point <= e.High80 && e.High80 <= e.High95) || e.Low95 < mtd {
		t.Errorf("intervals out of order or below what is spent: %+v", e)
	}
	if *s.CostMonthToDate != mtd*0.5 || !near(s.CostMonthEnd.Point, (mtd+rest)*0.5, 1e-9+0.005) {
		t.Errorf("cost %g / %+v, want half the count", *s.CostMonthToDate, *s.CostMonthEnd)
	}
	for h, d := range s.Daily {
		dd := today + ledger.Day(h)
		want := truth(dd)
		if d.Day != dd.String() || !near(d.Billed.Point, want, 0.02+0.0005*float64(h)) {
			t.Errorf("day %d (%s): %.0f, want %s %.0f", h, d.Day, d.Billed.Point, dd, want)
		}
	}
	if res.Total.BilledMonthEnd.Point != s.BilledMonthEnd.Point || res.Total.CostMonthEnd == nil {
		t.Errorf("one channel's total %+v differs from the channel %+v", res.Total.BilledMonthEnd, s.BilledMonthEnd)
	}
}

// TestFromRowsPartialDay: today's total is the larger of its forecast and
// the count so far; the count so far is never extrapolated.
func TestFromRowsPartialDay(t *testing.T) {
	cal, _ := NewCalendar(false, nil)
	first := day(t, "2026-01-01")
	today := day(t, "2026-04-15")
	var counts []uint64
	for d := first; d < today; d++ {
		counts = append(counts, 1000)
	}
	for _, tc := range []struct {
		name   string
		hour   int
		soFar  uint64
		wantTd float64
	}{
		{"early morning", 1, 10, 1000},
		{"afternoon", 15, 700, 1000},
		{"a busy day", 12, 1500, 1500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows := append(rowsOf("x", first, counts), ledger.Row{Day: today.String(), Channel: "x", Code: "0", Billable: "true", Count: tc.soFar})
			res, err := FromRows(rows, Options{Now: today.Start().Add(time.Duration(tc.hour) * time.Hour), Calendar: cal, Days: 3})
			if err != nil {
				t.Fatal(err)
			}
			s := res.Total
			if !near(s.Daily[0].Billed.Point, tc.wantTd, 0.001) {
				t.Errorf("today %.1f, want %.0f", s.Daily[0].Billed.Point, tc.wantTd)
			}
			want := 14*1000 + tc.wantTd + 15*1000
			if !near(s.BilledMonthEnd.Point, want, 0.001) {
				t.Errorf("month end %.1f, want %.0f", s.BilledMonthEnd.Point, want)
			}
			if len(s.Daily) != 3 || s.Daily[0].Billed.Low95 < float64(tc.soFar) {
				t.Errorf("daily %+v", s.Daily)
			}
		})
	}
}

// TestFromRowsHistory: with too little history the forecast says so and
// its interval is wider.
func TestFromRowsHistory(t *testing.T) {
	today := day(t, "2026-06-20")
	now := today.Start().Add(time.Hour)
	widths := map[Quality]float64{}
	for _, tc := range []struct {
		days int
		want Quality
	}{{3, QualityInsufficient}, {20, QualityLimited}, {120, QualityOK}} {
		t.Run(fmt.Sprint(tc.days, " days"), func(t *testing.T) {
			counts := make([]uint64, tc.days)
			for i := range counts {
				counts[i] = uint64(900 + 200*(i%2))
			}
			res, err := FromRows(rowsOf("x", today-ledger.Day(tc.days), counts), Options{Now: now})
			if err != nil {
				t.Fatal(err)
			}
			s := res.Total
			if s.Quality != tc.want || s.HistoryDays != tc.days {
				t.Errorf("quality %s from %d days, want %s from %d", s.Quality, s.HistoryDays, tc.want, tc.days)
			}
			if (tc.want == QualityOK) != (s.Note == "") {
				t.Errorf("note %q for quality %s", s.Note, s.Quality)
			}
			e := s.BilledMonthEnd
			widths[tc.want] = (e.High95 - e.Low95) / (e.Point - s.BilledMonthToDate)
		})
	}
	if !(widths[QualityInsufficient] > widths[QualityLimited] && widths[QualityLimited] > widths[QualityOK]) {
		t.Errorf("relative 95 %% widths %v: want wider with less history", widths)
	}
	if _, err := FromRows(rowsOf("x", today, []uint64{5}), Options{Now: now}); !errors.Is(err, ErrNoHistory) {
		t.Errorf("only today: %v, want ErrNoHistory", err)
	}
	if _, err := FromRows(nil, Options{Now: now, Days: MaxDays + 1}); err == nil {
		t.Error("too many days accepted")
	}
}

func TestParseCalendar(t *testing.T) {
	cal, err := ParseCalendar("cal.yml", []byte("public_holidays: true\ndays:\n  - day: 2026-11-11\n    factor: 2\n  - day: 2026-03-03\n    kind: ignore\n  - {day: 2026-12-31, kind: holiday}\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		day  string
		kind Kind
		f    float64
	}{{"2026-11-11", Regular, 2}, {"2026-03-03", Ignore, 1}, {"2026-12-31", Holiday, 1}, {"2026-10-01", Holiday, 1}} {
		if k, f := cal.Day(day(t, tc.day)); k != tc.kind || f != tc.f {
			t.Errorf("%s: %s ×%g, want %s ×%g", tc.day, k, f, tc.kind, tc.f)
		}
	}
	if cal, err := ParseCalendar("empty.yml", nil); err != nil || cal.LastPublishedYear() == 0 {
		t.Errorf("empty file: %v, %v", cal, err)
	}
	for name, tc := range map[string]struct{ in, want string }{
		"unknown field":    {"holidays: []\n", `bad.yml:1: field "holidays": unknown field in calendar`},
		"bad day":          {"days:\n  - day: 2026-13-01\n", `bad.yml:2: field "day"`},
		"day twice":        {"days:\n  - day: 2026-01-05\n  - day: 2026-01-05\n", "also on line 2"},
		"bad kind":         {"days:\n  - {day: 2026-01-05, kind: promo}\n", `field "kind": day kind "promo"`},
		"zero factor":      {"days:\n  - {day: 2026-01-05, factor: 0}\n", `field "factor": "0": want a number above 0`},
		"factor on ignore": {"days:\n  - {day: 2026-01-05, kind: ignore, factor: 2}\n", "an ignored day has no factor"},
		"public not bool":  {"public_holidays: yes please\n", "want true or false"},
		"days not list":    {"days: 2026-01-05\n", "must be a list"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseCalendar("bad.yml", []byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
