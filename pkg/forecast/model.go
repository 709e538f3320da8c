package forecast

import (
	"math"
	"slices"
	"time"
)

// The model's constants (docs/forecast.md explains each).
const (
	// fitWindow is how many complete days before the forecast the weekday
	// factors are estimated from.
	fitWindow = 84
	// trendWeeks is how many weekly means the trend is fitted through.
	trendWeeks = 8
	// damping shrinks the trend a little more each day ahead, so a growth
	// rate is not extrapolated at full strength over a month.
	damping = 0.99
	// MinHistoryDays is the least complete days for any forecast.
	MinHistoryDays = 7
	// FullHistoryDays is the least complete days for weekday factors and a
	// trend of their own: with fewer the forecast is a flat level (and says so).
	FullHistoryDays = 28
	// errOrigins is how many past forecasts, at the same horizon, the
	// interval is measured from; minErrSamples the least it needs, below
	// which it falls back to a wide default.
	errOrigins    = 56
	minErrSamples = 14
	// Fallback log-scale spreads: with too little history (below
	// FullHistoryDays, or too few past forecasts to measure the interval).
	sigmaLimited      = 0.25
	sigmaInsufficient = 0.5
	// Normal quantiles of the two intervals.
	z80 = 1.2815515655446004
	z95 = 1.959963984540054
)

// dayInfo is what the calendar says about one day of a series.
type dayInfo struct {
	kind   Kind
	factor float64 // user factor, 1 when none
	wd     time.Weekday
}

// model is one fit of a daily series: weekday, holiday and make-up factors
// (1 on average over the week), the deseasonalised level on the last complete
// day and the trend (log change per day).
type model struct {
	end      int // first day not in the fit: the fit uses days [0, end)
	wf       [7]float64
	hol, mk  float64
	level    float64
	slope    float64
	complete int // usable regular days in the fit window
}

func usable(y []float64, info []dayInfo, i int) bool {
	return info[i].kind == Regular && !math.IsNaN(y[i])
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// fit fits the model to days [0, end) of y (NaN: no data).
func fit(y []float64, info []dayInfo, end int) model {
	m := model{end: end, hol: math.NaN(), mk: math.NaN()}
	for i := range m.wf {
		m.wf[i] = 1
	}
	lo := max(0, end-fitWindow)
	adj := func(i int) float64 { return y[i] / info[i].factor }
	for i := lo; i < end; i++ {
		if usable(y, info, i) {
			m.complete++
		}
	}
	// Weekday factors: each day's ratio to the mean of the 7 days centred
	// on it (all regular), median per weekday.
	if m.complete >= FullHistoryDays {
		var ratios [7][]float64
		for i := lo + 3; i < end-3; i++ {
			sum, ok := 0.0, true
			for j := i - 3; j <= i+3 && ok; j++ {
				ok = usable(y, info, j)
				if ok {
					sum += adj(j)
				}
			}
			if !ok || sum <= 0 {
				continue
			}
			ratios[info[i].wd] = append(ratios[info[i].wd], adj(i)/(sum/7))
		}
		var wf [7]float64
		mean, ok := 0.0, true
		for d := range wf {
			if len(ratios[d]) < 2 {
				ok = false
				break
			}
			wf[d] = median(ratios[d])
			mean += wf[d] / 7
		}
		if ok && mean > 0 {
			for d := range wf {
				m.wf[d] = wf[d] / mean
			}
		}
	}
	z := func(i int) float64 { return adj(i) / m.wf[info[i].wd] }
	// Trend: through the log weekly means of the deseasonalised regular
	// days, since the last level shift (see trend).
	var weeks []point
	if m.complete >= FullHistoryDays {
		for k := 0; k < trendWeeks; k++ {
			a, b := end-7*(k+1), end-7*k
			if a < 0 {
				break
			}
			sum, n, tsum := 0.0, 0, 0.0
			for i := a; i < b; i++ {
				if usable(y, info, i) {
					sum += z(i)
					tsum += float64(i)
					n++
				}
			}
			if n >= 4 && sum > 0 {
				weeks = append(weeks, point{tsum / float64(n), math.Log(sum / float64(n))})
			}
		}
	}
	m.slope = trend(weeks)
	// Level on day end-1: the mean of the last week's deseasonalised regular
	// days, each carried forward along the trend (two weeks if one has too
	// few regular days).
	for _, span := range []int{7, 14, fitWindow} {
		sum, n := 0.0, 0
		for i := max(0, end-span); i < end; i++ {
			if usable(y, info, i) {
				sum += z(i) * math.Exp(m.slope*float64(end-1-i))
				n++
			}
		}
		if n >= 3 || (span == fitWindow && n > 0) {
			m.level = sum / float64(n)
			break
		}
	}
	// Holiday and make-up workday factors: each such day of the whole
	// history against the deseasonalised level of the regular days within
	// two weeks of it; median. Defaults: a holiday is a Sunday, a make-up
	// workday an average weekday.
	var hol, mk []float64
	for i := 0; i < end; i++ {
		k := info[i].kind
		if (k != Holiday && k != Workday) || math.IsNaN(y[i]) {
			continue
		}
		sum, n := 0.0, 0
		for j := max(0, i-14); j < min(end, i+15); j++ {
			if usable(y, info, j) {
				sum += z(j)
				n++
			}
		}
		if n < 5 || sum <= 0 {
			continue
		}
		r := adj(i) / (sum / float64(n))
		if k == Holiday {
			hol = append(hol, r)
		} else {
			mk = append(mk, r)
		}
	}
	if len(hol) >= 3 {
		m.hol = median(hol)
	} else {
		m.hol = m.wf[time.Sunday]
	}
	if len(mk) >= 2 {
		m.mk = median(mk)
	} else {
		m.mk = (m.wf[1] + m.wf[2] + m.wf[3] + m.wf[4] + m.wf[5]) / 5
	}
	return m
}

// growth returns the damped trend's log growth h days after the last
// complete day.
func (m model) growth(h int) float64 {
	return m.slope * damping * (1 - math.Pow(damping, float64(h))) / (1 - damping)
}

// predict returns the expected volume of day i (i >= m.end).
func (m model) predict(info []dayInfo, i int) float64 {
	f := m.wf[info[i].wd]
	switch info[i].kind {
	case Holiday:
		f = m.hol
	case Workday:
		f = m.mk
	}
	return m.level * math.Exp(m.growth(i-m.end+1)) * f * info[i].factor
}

// spread is the measured log-scale error of the model's past forecasts.
type spread struct {
	sigma float64
	n     int
}

// errorSpreads refits the model at up to errOrigins past days and measures
// how far its forecasts were from what happened: the robust standard
// deviation (robustSigma) of the log ratio, for the sum of the span days from the origin on, and for each
// single day 1..days ahead.
func errorSpreads(y []float64, info []dayInfo, end, span, days int) (sum spread, daily []spread) {
	daily = make([]spread, days)
	sq := make([][]float64, days)
	var sqSum []float64
	maxH := max(span, days)
	lowest := max(FullHistoryDays, end-maxH-errOrigins+1)
	for o := end - 1; o >= lowest; o-- {
		m := fit(y, info, o)
		if m.complete < FullHistoryDays {
			break
		}
		fs, as := 0.0, 0.0
		for h := 1; h <= maxH && o+h-1 < end; h++ {
			i := o + h - 1
			f := m.predict(info, i)
			a := y[i]
			if math.IsNaN(a) || info[i].kind == Ignore {
				a = f
			}
			if h <= span {
				fs += f
				as += a
			}
			if h <= days && info[i].kind != Ignore && !math.IsNaN(y[i]) && daily[h-1].n < errOrigins {
				e := math.Log((a + 1) / (f + 1))
				sq[h-1] = append(sq[h-1], math.Abs(e))
				daily[h-1].n++
			}
		}
		if o+span <= end && sum.n < errOrigins {
			e := math.Log((as + 1) / (fs + 1))
			sqSum = append(sqSum, math.Abs(e))
			sum.n++
		}
	}
	if sum.n > 0 {
		sum.sigma = robustSigma(sqSum)
	}
	for h := range daily {
		if daily[h].n > 0 {
			daily[h].sigma = robustSigma(sq[h])
		}
	}
	return sum, daily
}

// point is a weekly mean: its mean day and log value.
type point struct{ t, v float64 }

// trend returns the log change per day through weekly means (newest first,
// consecutive): the Theil–Sen slope of the weeks since the last level shift
// when there are at least four, else the median week-on-week change, level
// shifts left out. A level shift is a week-on-week change more than 4 robust
// standard deviations (and 8 %) away from the median change.
func trend(weeks []point) float64 {
	if len(weeks) < 3 {
		return 0
	}
	var diffs []float64
	for k := 0; k+1 < len(weeks); k++ {
		diffs = append(diffs, (weeks[k].v-weeks[k+1].v)/(weeks[k].t-weeks[k+1].t))
	}
	med := median(diffs)
	dev := make([]float64, len(diffs))
	for i, d := range diffs {
		dev[i] = math.Abs(d - med)
	}
	limit := max(4*1.4826*median(dev), 0.08/7)
	seg := len(weeks)
	var steady []float64
	for k, d := range diffs {
		if math.Abs(d-med) > limit {
			seg = min(seg, k+1)
			continue
		}
		steady = append(steady, d)
	}
	if seg >= 4 {
		var slopes []float64
		for i := 0; i < seg; i++ {
			for j := i + 1; j < seg; j++ {
				slopes = append(slopes, (weeks[i].v-weeks[j].v)/(weeks[i].t-weeks[j].t))
			}
		}
		return median(slopes)
	}
	if len(steady) == 0 {
		return 0
	}
	return median(steady)
}

// robustSigma is the standard deviation of normal errors with the same
// median absolute size as abs: one odd episode (a level shift) in the
// measured past does not set the width for the weeks after it.
func robustSigma(abs []float64) float64 {
	return 1.4826 * median(abs)
}
