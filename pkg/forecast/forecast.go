// Package forecast forecasts billed verifications and their cost from the
// exact daily ledger: the rest of the current Beijing month and the volume of
// each of the next days, per channel and in total, each with a point forecast
// and 80 % and 95 % prediction intervals. It is pure: it takes ledger rows
// and a time, and does no I/O.
//
// The model (docs/forecast.md): each day's volume is a level that follows a
// damped trend, times a factor for its weekday, or for a public holiday or a
// make-up workday (调休), times a user factor from the calendar. The weekday
// factors are medians of ratios to centred weekly means over the last 12
// weeks, the trend a Theil–Sen slope through the last 8 weekly means, the
// level the last week's mean; holidays are left out of all three and get
// factors of their own from the holidays of the whole history. The intervals
// are the model's own errors: the model is refitted at each of the last 8
// weeks' days and the spread of its forecasts against what followed, at the
// same horizon, sets the interval's width.
package forecast

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
)

// DefaultDays is how many days ahead the daily forecast goes by default.
const DefaultDays = 35

// MaxDays bounds Options.Days.
const MaxDays = 400

// HistoryDays is how many days up to today the forecast's readers fetch
// from the ledger (the model uses the last 12 weeks, its error measurement
// the 8 weeks before, the holiday factors up to a year).
const HistoryDays = 400

// Quality says how much history a forecast stands on.
type Quality string

const (
	// QualityOK: enough history for the model and for measuring its errors.
	QualityOK Quality = "ok"
	// QualityLimited: fewer than FullHistoryDays complete days, or too few
	// past forecasts to measure the interval; the interval is a wide default.
	QualityLimited Quality = "limited"
	// QualityInsufficient: fewer than MinHistoryDays complete days; a flat
	// level and a very wide interval.
	QualityInsufficient Quality = "insufficient"
)

// Options are the inputs besides the ledger.
type Options struct {
	// Now is the forecast's time; its Beijing day is today, a partial day.
	Now time.Time
	// Days is how many days, today first, the daily forecast covers
	// (0: DefaultDays).
	Days int
	// Calendar gives holidays and overrides (nil: ChinaCalendar()).
	Calendar *Calendar
	// Currency and UnitPrice (by channel) turn counts into cost; channels
	// without a price have no cost.
	Currency  string
	UnitPrice map[string]float64
}

// Estimate is a forecast value with its 80 % and 95 % prediction intervals.
type Estimate struct {
	Point  float64 `json:"point"`
	Low80  float64 `json:"low80"`
	High80 float64 `json:"high80"`
	Low95  float64 `json:"low95"`
	High95 float64 `json:"high95"`
}

func (e Estimate) scale(f float64) Estimate {
	return Estimate{e.Point * f, e.Low80 * f, e.High80 * f, e.Low95 * f, e.High95 * f}
}

// Day is the forecast of one Beijing day.
type Day struct {
	Day    string    `json:"day"`
	Kind   string    `json:"kind"`
	Billed Estimate  `json:"billed"`
	Cost   *Estimate `json:"cost,omitempty"`
}

// Series is the forecast of one channel, or of the total.
type Series struct {
	Channel string  `json:"channel"` // "" for the total
	Quality Quality `json:"quality"`
	Note    string  `json:"note,omitempty"`
	// HistoryDays is how many complete days the forecast stands on.
	HistoryDays       int       `json:"history_days"`
	BilledMonthToDate float64   `json:"billed_month_to_date"`
	BilledMonthEnd    Estimate  `json:"billed_month_end"`
	CostMonthToDate   *float64  `json:"cost_month_to_date,omitempty"`
	CostMonthEnd      *Estimate `json:"cost_month_end,omitempty"`
	Daily             []Day     `json:"daily"`
}

// Result is a forecast of every channel and of the total.
type Result struct {
	Now      time.Time `json:"now"`
	Today    string    `json:"today"`
	MonthEnd string    `json:"month_end"` // last day of the current month
	Currency string    `json:"currency,omitempty"`
	// HolidaysKnownUntil is the last year of published holidays (0: none
	// used); forecasts beyond it treat every day as regular.
	HolidaysKnownUntil int      `json:"holidays_known_until"`
	Total              Series   `json:"total"`
	Channels           []Series `json:"channels"`
}

// ErrNoHistory: the ledger has no day before today.
var ErrNoHistory = errors.New("no ledger day before today to forecast from")

// FromRows forecasts from ledger rows (any days; the billed count of a day is
// the sum of its rows with billable "true"). History starts at the first day
// with any row; a day without rows after it counts 0 (mark outages Ignore in
// the calendar). Rows after today are ignored.
func FromRows(rows []ledger.Row, o Options) (*Result, error) {
	if o.Days == 0 {
		o.Days = DefaultDays
	}
	if o.Days < 1 || o.Days > MaxDays {
		return nil, fmt.Errorf("forecast days %d: want 1 to %d", o.Days, MaxDays)
	}
	if o.Calendar == nil {
		o.Calendar = ChinaCalendar()
	}
	today := ledger.DayOf(o.Now)
	first := today
	billed := map[string]map[ledger.Day]float64{}
	for _, r := range rows {
		d, err := ledger.ParseDay(r.Day)
		if err != nil {
			return nil, fmt.Errorf("forecast: %w", err)
		}
		if d > today {
			continue
		}
		first = min(first, d)
		if billed[r.Channel] == nil {
			billed[r.Channel] = map[ledger.Day]float64{}
		}
		if r.Billable == "true" {
			billed[r.Channel][d] += float64(r.Count)
		}
	}
	if first == today {
		return nil, ErrNoHistory
	}
	mStart, mEnd := monthOf(today)
	horizon := max(int(mEnd-today)+1, o.Days)
	info := make([]dayInfo, int(today-first)+horizon)
	for i := range info {
		d := first + ledger.Day(i)
		k, f := o.Calendar.Day(d)
		info[i] = dayInfo{kind: k, factor: f, wd: d.Start().Weekday()}
	}
	p := plan{first: first, info: info, end: int(today - first), monthStart: int(mStart - first), monthEnd: int(mEnd - first), days: o.Days}
	res := &Result{Now: o.Now, Today: today.String(), MonthEnd: mEnd.String(), Currency: o.Currency,
		HolidaysKnownUntil: o.Calendar.LastPublishedYear()}
	channels := make([]string, 0, len(billed))
	for ch := range billed {
		channels = append(channels, ch)
	}
	slices.Sort(channels)
	total := make([]float64, p.end+1)
	cost := make([]float64, p.end+1)
	priced := false
	for _, ch := range channels {
		y := make([]float64, p.end+1)
		for d, n := range billed[ch] {
			y[d-first] = n
		}
		s := p.forecast(y)
		s.Channel = ch
		price, ok := o.UnitPrice[ch]
		for i, v := range y {
			total[i] += v
			if ok {
				cost[i] += v * price
			}
		}
		if ok {
			priced = true
			addCost(&s, price)
		}
		res.Channels = append(res.Channels, s)
	}
	res.Total = p.forecast(total)
	if priced {
		c := p.forecast(cost)
		res.Total.CostMonthToDate = &c.BilledMonthToDate
		res.Total.CostMonthEnd = &c.BilledMonthEnd
		for i := range res.Total.Daily {
			e := c.Daily[i].Billed
			res.Total.Daily[i].Cost = &e
		}
	}
	return res, nil
}

func addCost(s *Series, price float64) {
	mtd := s.BilledMonthToDate * price
	end := s.BilledMonthEnd.scale(price)
	s.CostMonthToDate, s.CostMonthEnd = &mtd, &end
	for i := range s.Daily {
		e := s.Daily[i].Billed.scale(price)
		s.Daily[i].Cost = &e
	}
}

// monthOf returns the first and last day of the Beijing month of d.
func monthOf(d ledger.Day) (ledger.Day, ledger.Day) {
	t := d.Start()
	start := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, ledger.Beijing)
	return ledger.DayOf(start), ledger.DayOf(start.AddDate(0, 1, 0)) - 1
}

// plan is the calendar and the days a series is forecast over: y[0:end] are
// the complete days, y[end] today so far.
type plan struct {
	first                ledger.Day
	info                 []dayInfo
	end                  int
	monthStart, monthEnd int
	days                 int
}

// forecast forecasts one series, y[0:end] complete days and y[end] today.
func (p plan) forecast(y []float64) Series {
	ys := y[:p.end]
	// Days before the series' first non-zero day are not history of it
	// (a channel that started later); they stay in for the total.
	firstData := 0
	for firstData < p.end && ys[firstData] == 0 {
		firstData++
	}
	hist := slices.Clone(ys)
	for i := 0; i < firstData; i++ {
		hist[i] = math.NaN()
	}
	if firstData == p.end { // nothing ever billed: forecast zero
		hist = ys
		firstData = 0
	}
	e := p.prepare(hist, firstData)
	return e.series(y[p.end])
}

// prepared is a fitted series with its measured error spreads, ready to be
// applied to today's partial count.
type prepared struct {
	p        plan
	y        []float64
	m        model
	quality  Quality
	note     string
	history  int
	monthSig float64
	daySig   []float64
}

// prepare fits days [0, end) of y (NaN before the series' first day) and
// measures the model's past errors.
func (p plan) prepare(y []float64, firstData int) prepared {
	e := prepared{p: p, y: y, m: fit(y, p.info, p.end), history: p.end - firstData}
	if math.IsNaN(e.m.level) {
		e.m.level = 0
	}
	span := p.monthEnd - p.end + 1
	e.daySig = make([]float64, p.days)
	switch {
	case e.history < MinHistoryDays:
		e.quality = QualityInsufficient
		e.note = fmt.Sprintf("only %d complete days of history (fewer than %d): a flat level, a very wide interval", e.history, MinHistoryDays)
		e.monthSig = sigmaInsufficient
		for i := range e.daySig {
			e.daySig[i] = sigmaInsufficient
		}
		return e
	case e.m.complete < FullHistoryDays:
		e.quality = QualityLimited
		e.note = fmt.Sprintf("%d complete regular days of history (fewer than %d): no weekday factors or trend, a wide default interval", e.m.complete, FullHistoryDays)
		e.monthSig = sigmaLimited
		for i := range e.daySig {
			e.daySig[i] = sigmaLimited
		}
		return e
	}
	sum, daily := errorSpreads(y, p.info, p.end, span, p.days)
	e.quality = QualityOK
	e.monthSig = sum.sigma
	if sum.n < minErrSamples {
		e.quality = QualityLimited
		e.note = fmt.Sprintf("too few past forecasts to measure the month-end interval (%d of %d): a wide default interval", sum.n, minErrSamples)
		e.monthSig = max(sigmaLimited, sum.sigma)
	}
	for h, s := range daily {
		e.daySig[h] = s.sigma
		if s.n < minErrSamples {
			e.daySig[h] = max(sigmaLimited, s.sigma)
		}
	}
	return e
}

// interval returns point with its intervals for a log-scale spread sigma,
// plus a known part.
func interval(known, point, sigma float64) Estimate {
	return Estimate{
		Point:  known + point,
		Low80:  known + point*math.Exp(-z80*sigma),
		High80: known + point*math.Exp(z80*sigma),
		Low95:  known + point*math.Exp(-z95*sigma),
		High95: known + point*math.Exp(z95*sigma),
	}
}

// series applies today's count so far: today's total is the larger of its
// forecast and the count so far, never a linear extrapolation of the
// partial day (volume is not spread evenly over a day).
func (e prepared) series(todaySoFar float64) Series {
	p := e.p
	s := Series{Quality: e.quality, Note: e.note, HistoryDays: e.history}
	mtd := todaySoFar
	for i := max(0, p.monthStart); i < p.end; i++ {
		if !math.IsNaN(e.y[i]) {
			mtd += e.y[i]
		}
	}
	rest := e.remaining(todaySoFar)
	s.BilledMonthToDate = mtd
	s.BilledMonthEnd = interval(mtd, rest, e.monthSig)
	for h := 0; h < p.days; h++ {
		i := p.end + h
		f := e.m.predict(p.info, i)
		est := interval(0, f, e.daySig[h])
		if h == 0 {
			est = interval(todaySoFar, max(f-todaySoFar, 0), e.daySig[0])
		}
		d := p.info[i]
		s.Daily = append(s.Daily, Day{Day: (p.first + ledger.Day(i)).String(), Kind: d.kind.String(), Billed: est})
	}
	return s
}

// remaining returns the expected volume from now to the end of the month.
func (e prepared) remaining(todaySoFar float64) float64 {
	p := e.p
	rest := max(e.m.predict(p.info, p.end)-todaySoFar, 0)
	for i := p.end + 1; i <= p.monthEnd; i++ {
		rest += e.m.predict(p.info, i)
	}
	return rest
}

func beijing() *time.Location { return ledger.Beijing }
