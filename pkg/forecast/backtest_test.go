package forecast

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
)

var longBacktest = flag.Bool("backtest.long", false, "run the long backtest (12 seeds × 7 months, a forecast every hour) instead of the short one (4 seeds × 4 months, every 4 hours) instead of the short one")

// The generated world: known ground truth the model is judged against.
var (
	// genShape is the weekday shape (Sunday first): weekends at ~55 % of weekdays.
	genShape = [7]float64{0.52, 1.0, 1.05, 1.05, 1.0, 0.95, 0.58}
	// genHoliday and genMakeUp are the volume of a public holiday and of a
	// make-up workday against an average weekday.
	genHoliday, genMakeUp = 0.45, 0.9
	// genShares split the volume over three channels.
	genChannels = []string{"app_sdk", "wechat_h5", "wechat_mini"}
	genShares   = []float64{0.6, 0.3, 0.1}
)

// genHourShape is a daytime cycle: little at night, a peak mid-afternoon.
func genHourShape() [24]float64 {
	var p [24]float64
	sum := 0.0
	for h := range p {
		v := 0.04
		if h >= 7 && h <= 23 {
			v += math.Sin(math.Pi * float64(h-7) / 16)
		}
		p[h] = v
		sum += v
	}
	for h := range p {
		p[h] /= sum
	}
	return p
}

// world is a generated history: billed verifications per hour per channel
// from first on, and what generated them.
type world struct {
	first     ledger.Day
	hourly    [][]float64 // [channel][hour index from first's 00:00]
	base      float64
	growth    float64 // per month
	shiftDay  ledger.Day
	shift     float64
	holidays  bool
	dispersal float64
}

func (w world) String() string {
	return fmt.Sprintf("base %.0f/day, growth %.1f%%/month, level shift %+.0f%% on %s, day noise %.0f%%, holidays %v",
		w.base, 100*w.growth, 100*w.shift, w.shiftDay, 100*w.dispersal, w.holidays)
}

// poisson draws a Poisson variate (a normal approximation above 50).
func poisson(r *rand.Rand, lambda float64) float64 {
	if lambda <= 0 {
		return 0
	}
	if lambda > 50 {
		return math.Max(0, math.Round(lambda+math.Sqrt(lambda)*r.NormFloat64()))
	}
	l, k, p := math.Exp(-lambda), 0.0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// generate draws a world from first to last (inclusive) with a level shift
// between shiftFrom and shiftTo; holidays false makes public holidays and
// make-up workdays ordinary days (the same draws otherwise).
func generate(seed uint64, first, last, shiftFrom, shiftTo ledger.Day, cal *Calendar, holidays bool) world {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	w := world{first: first, holidays: holidays}
	w.base = 2000 * math.Exp(r.Float64()*math.Log(50)) // 2,000 to 100,000 a weekday
	w.growth = 0.05 + 0.07*r.Float64()
	w.shiftDay = shiftFrom + ledger.Day(r.IntN(int(shiftTo-shiftFrom)+1))
	w.shift = (0.15 + 0.15*r.Float64())
	if r.IntN(2) == 0 {
		w.shift = -w.shift
	}
	w.dispersal = 0.03
	hours := genHourShape()
	n := int(last-first) + 1
	w.hourly = make([][]float64, len(genChannels))
	for c := range w.hourly {
		w.hourly[c] = make([]float64, n*24)
	}
	slope := math.Log(1+w.growth) / 30
	for i := range n {
		d := first + ledger.Day(i)
		k, _ := cal.Day(d)
		f := genShape[d.Start().Weekday()]
		if holidays && k == Holiday {
			f = genHoliday
		}
		if holidays && k == Workday {
			f = genMakeUp
		}
		level := w.base * math.Exp(slope*float64(i))
		if d >= w.shiftDay {
			level *= 1 + w.shift
		}
		// Each day draws its noise from its own stream, so two worlds of one
		// seed differ only where their ground truth does.
		dr := rand.New(rand.NewPCG(seed, uint64(i)))
		for c, share := range genShares {
			day := level * f * share * math.Exp(w.dispersal*dr.NormFloat64())
			for h, p := range hours {
				w.hourly[c][i*24+h] = poisson(dr, day*p)
			}
		}
	}
	return w
}

// total returns the world's billed verifications per hour, all channels.
func (w world) total() []float64 {
	out := make([]float64, len(w.hourly[0]))
	for _, ch := range w.hourly {
		for i, v := range ch {
			out[i] += v
		}
	}
	return out
}

func daily(hourly []float64) []float64 {
	out := make([]float64, len(hourly)/24)
	for i, v := range hourly {
		out[i/24] += v
	}
	return out
}

// predictLinearRule is today's rule, faceid:cost:month_end_forecast, as
// Prometheus evaluates it at hour t (index into hourly, t's sample included):
// predict_linear(faceid:cost:month_to_date[1d], seconds_remaining) over the
// hourly samples of the month-to-date series in (t-1d, t], kept only when
// above the month-to-date value (`> mtd or mtd`). mtd[s] is the
// month-to-date value at hour s; the window spans the month reset on the
// first day of a month, as the rule's does.
func predictLinearRule(mtd []float64, t int, secondsRemaining float64) float64 {
	// Ordinary least squares through (x, v), x in seconds relative to t;
	// the value at t+secondsRemaining (promql funcs.go: linearRegression with
	// the intercept at the evaluation time).
	var n, sx, sy, sxy, sxx float64
	for s := max(0, t-23); s <= t; s++ {
		x := float64(s-t) * 3600
		n++
		sx += x
		sy += mtd[s]
		sxy += x * mtd[s]
		sxx += x * x
	}
	cov := sxy - sx*sy/n
	varx := sxx - sx*sx/n
	slope := 0.0
	if varx != 0 {
		slope = cov / varx
	}
	intercept := sy/n - slope*sx/n
	if p := intercept + slope*secondsRemaining; p > mtd[t] {
		return p
	}
	return mtd[t]
}

// outcome is one forecast of a month-end total against what happened.
type outcome struct {
	dom                 int // day of month
	ape, apeRule        float64
	in80, in95          bool
	low80, high80, mine float64
}

// backtestMonth forecasts the month of mStart at every hour of every day
// from the world's history, with the model and with the rule.
func backtestMonth(w world, info []dayInfo, mStart ledger.Day, hoursStep int) []outcome {
	hourly := w.total()
	days := daily(hourly)
	_, mEnd := monthOf(mStart)
	ms, me := int(mStart-w.first), int(mEnd-w.first)
	actual := 0.0
	for i := ms; i <= me; i++ {
		actual += days[i]
	}
	// Month-to-date at each hour sample (the value at hour index s counts
	// the hours before s of s's month; at a month's 00:00 it is 0).
	mtd := make([]float64, len(hourly)+1)
	run := 0.0
	for s := 0; s < len(hourly); s++ {
		d := w.first + ledger.Day(s/24)
		if s%24 == 0 && d.Start().Day() == 1 {
			run = 0
		}
		mtd[s] = run
		run += hourly[s]
	}
	var out []outcome
	for end := ms; end <= me; end++ {
		p := plan{first: w.first, info: info, end: end, monthStart: ms, monthEnd: me, days: 1}
		e := p.prepare(days[:end], 0)
		soFar := 0.0
		for i := ms; i < end; i++ {
			soFar += days[i]
		}
		today := 0.0
		for h := 0; h < 24; h++ {
			if h%hoursStep == 0 {
				rest := e.remaining(today)
				est := interval(soFar+today, rest, e.monthSig)
				t := end*24 + h
				remaining := float64((me+1-end)*86400 - h*3600)
				rule := predictLinearRule(mtd, t, remaining)
				out = append(out, outcome{
					dom: end - ms + 1, ape: math.Abs(est.Point-actual) / actual, apeRule: math.Abs(rule-actual) / actual,
					in80: actual >= est.Low80 && actual <= est.High80, in95: actual >= est.Low95 && actual <= est.High95,
					low80: est.Low80, high80: est.High80, mine: est.Point,
				})
			}
			today += hourly[end*24+h]
		}
	}
	return out
}

func infoFor(cal *Calendar, first ledger.Day, n int) []dayInfo {
	info := make([]dayInfo, n)
	for i := range info {
		d := first + ledger.Day(i)
		k, f := cal.Day(d)
		info[i] = dayInfo{kind: k, factor: f, wd: d.Start().Weekday()}
	}
	return info
}

func p95(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[int(math.Ceil(0.95*float64(len(s))))-1]
}

func mean(v []float64) float64 {
	sum := 0.0
	for _, x := range v {
		sum += x
	}
	return sum / float64(len(v))
}

func share(b []bool) float64 {
	n := 0
	for _, x := range b {
		if x {
			n++
		}
	}
	return float64(n) / float64(len(b))
}

func day(t *testing.T, s string) ledger.Day {
	t.Helper()
	d, err := ledger.ParseDay(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestBacktest judges the model on generated histories with known ground
// truth (weekly shape, growth, China's holidays and make-up workdays, a level
// shift, day-to-day and Poisson noise) against today's predict_linear rule:
// month-end forecasts at every hour of every day of several months.
// The short version runs by default; -backtest.long runs the full one.
func TestBacktest(t *testing.T) {
	cal := ChinaCalendar()
	first := day(t, "2025-03-01")
	months := []string{"2025-09-01", "2025-10-01", "2025-11-01", "2025-12-01"}
	seeds := []uint64{1, 2, 3, 4}
	step := 4
	if *longBacktest {
		months = []string{"2025-09-01", "2025-10-01", "2025-11-01", "2025-12-01", "2026-01-01", "2026-02-01", "2026-03-01"}
		seeds = []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
		step = 1
	}
	lastMonthStart := day(t, months[len(months)-1])
	_, last := monthOf(lastMonthStart)
	info := infoFor(cal, first, int(last-first)+1+40)
	// run forecasts every month for every seed; the level shift falls in the
	// 8 weeks before the first month (the model must recover from it: the
	// trend window spans it), or, inside, anywhere in the months forecast
	// (news no model has: reported, not judged; docs/forecast.md).
	run := func(inside bool) []outcome {
		var all []outcome
		for _, seed := range seeds {
			m0 := day(t, months[0])
			from, to := m0-56, m0-7
			if inside {
				from, to = m0, last-10
			}
			w := generate(seed, first, last, from, to, cal, true)
			t.Logf("seed %d: %s", seed, w)
			for _, m := range months {
				os := backtestMonth(w, info, day(t, m), step)
				var a, b []float64
				for _, o := range os {
					a, b = append(a, o.ape), append(b, o.apeRule)
				}
				t.Logf("seed %d, month of %s: model MAPE %.2f %% (day 1: %.2f %%), predict_linear %.1f %%", seed, m, 100*mean(a), 100*os[0].ape, 100*mean(b))
				all = append(all, os...)
			}
		}
		return all
	}
	if *longBacktest {
		var ape, apeRule []float64
		var in80, in95 []bool
		for _, o := range run(true) {
			ape, apeRule, in80, in95 = append(ape, o.ape), append(apeRule, o.apeRule), append(in80, o.in80), append(in95, o.in95)
		}
		t.Logf("level shift inside the months forecast (not judged): model MAPE %.2f %% (p95 %.2f %%), predict_linear %.1f %% (p95 %.1f %%); the 80 %% interval covers %.1f %%, the 95 %% interval %.1f %%",
			100*mean(ape), 100*p95(ape), 100*mean(apeRule), 100*p95(apeRule), 100*share(in80), 100*share(in95))
	}
	all := run(false)
	var ape, apeRule []float64
	var in80, in95 []bool
	byDom := map[int][]outcome{}
	for _, o := range all {
		ape = append(ape, o.ape)
		apeRule = append(apeRule, o.apeRule)
		in80 = append(in80, o.in80)
		in95 = append(in95, o.in95)
		byDom[o.dom] = append(byDom[o.dom], o)
	}
	var tb strings.Builder
	fmt.Fprintf(&tb, "\n| day of month | forecasts | model MAPE | model p95 APE | predict_linear MAPE | predict_linear p95 APE | 80 %% covers | 95 %% covers |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for dom := 1; dom <= 31; dom++ {
		os := byDom[dom]
		if len(os) == 0 {
			continue
		}
		var a, b []float64
		var c80, c95 []bool
		for _, o := range os {
			a, b, c80, c95 = append(a, o.ape), append(b, o.apeRule), append(c80, o.in80), append(c95, o.in95)
		}
		fmt.Fprintf(&tb, "| %d | %d | %.2f %% | %.2f %% | %.1f %% | %.1f %% | %.0f %% | %.0f %% |\n", dom, len(os),
			100*mean(a), 100*p95(a), 100*mean(b), 100*p95(b), 100*share(c80), 100*share(c95))
	}
	fmt.Fprintf(&tb, "| **all** | %d | **%.2f %%** | %.2f %% | **%.1f %%** | %.1f %% | **%.1f %%** | **%.1f %%** |\n", len(all),
		100*mean(ape), 100*p95(ape), 100*mean(apeRule), 100*p95(apeRule), 100*share(in80), 100*share(in95))
	t.Log(tb.String())

	if m := mean(ape); m > 0.05 {
		t.Errorf("month-end MAPE %.2f %%, want at most 5 %%", 100*m)
	}
	if m, r := mean(ape), mean(apeRule); m > r/3 {
		t.Errorf("month-end MAPE %.2f %% is more than a third of predict_linear's %.2f %%", 100*m, 100*r)
	}
	var day1 []float64
	for _, o := range byDom[1] {
		day1 = append(day1, o.ape)
	}
	if m := mean(day1); m > 0.05 {
		t.Errorf("month-end MAPE on the first day of the month %.2f %%, want at most 5 %%", 100*m)
	}
	if c := share(in80); c < 0.70 || c > 0.90 {
		t.Errorf("the 80 %% interval covers %.1f %% of outcomes, want 70 %% to 90 %%", 100*c)
	}
	if c := share(in95); c < 0.90 {
		t.Errorf("the 95 %% interval covers %.1f %% of outcomes, want at least 90 %%", 100*c)
	}
}

// TestBacktestHolidayWeek: the National Day week in the history moves the
// next month's forecast by less than the 80 % interval's half width. Two
// worlds from the same draws, one with the holiday week's drop and one
// without, forecast November at every day.
func TestBacktestHolidayWeek(t *testing.T) {
	cal := ChinaCalendar()
	first := day(t, "2025-03-01")
	nov := day(t, "2025-11-01")
	_, last := monthOf(nov)
	info := infoFor(cal, first, int(last-first)+41)
	for _, seed := range []uint64{7, 8, 9} {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			// The level shift is placed after November: only the holiday differs.
			with := generate(seed, first, last, last+1, last+1, cal, true)
			without := generate(seed, first, last, last+1, last+1, cal, false)
			a := backtestMonth(with, info, nov, 24)
			b := backtestMonth(without, info, nov, 24)
			worst := 0.0
			for i := range a {
				half := (a[i].high80 - a[i].low80) / 2
				d := math.Abs(a[i].mine - b[i].mine)
				worst = max(worst, d/half)
				if d > half {
					t.Errorf("seed %d, November %d: the holiday week moves the month-end forecast by %.0f (%.0f vs %.0f), more than the 80 %% interval's half width %.0f",
						seed, a[i].dom, d, a[i].mine, b[i].mine, half)
				}
			}
			// For contrast (logged): the same model without the holiday calendar.
			blind, _ := NewCalendar(false, nil)
			c := backtestMonth(with, infoFor(blind, first, len(info)), nov, 24)
			worstBlind := 0.0
			for i := range c {
				worstBlind = max(worstBlind, math.Abs(c[i].mine-b[i].mine)/((a[i].high80-a[i].low80)/2))
			}
			t.Logf("seed %d: without the holiday calendar the holiday week would move it by up to %.2f of the 80 %% half width", seed, worstBlind)
			var in95 []bool
			var ape []float64
			for _, o := range a {
				in95, ape = append(in95, o.in95), append(ape, o.ape)
			}
			if c := share(in95); c < 0.9 {
				t.Errorf("seed %d: after the holiday week the 95 %% interval covers %.0f %% of November's forecasts, want at least 90 %%", seed, 100*c)
			}
			if m := mean(ape); m > 0.05 {
				t.Errorf("seed %d: after the holiday week November's MAPE is %.2f %%, want at most 5 %%", seed, 100*m)
			}
			t.Logf("seed %d: %s; largest move by the holiday week: %.2f of the 80 %% half width; November MAPE %.2f %%, 95 %% interval covers %.0f %%",
				seed, with, worst, 100*mean(ape), 100*share(in95))
		})
	}
}
