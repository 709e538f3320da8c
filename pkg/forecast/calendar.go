package forecast

import (
	"fmt"
	"slices"
	"strings"

	"github.com/6tail/lunar-go/HolidayUtil"

	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
)

// Kind is what the calendar says about a Beijing day.
type Kind uint8

const (
	// Regular is an ordinary day of its weekday.
	Regular Kind = iota
	// Holiday is a public holiday, or any day a user's calendar marks as one:
	// volume drops as on a weekend or further.
	Holiday
	// Workday is a weekend day worked in exchange for a holiday (调休), or
	// one a user's calendar marks: volume as on a weekday.
	Workday
	// Ignore marks a day of the past to leave out of the fit (an outage, a
	// one-off promotion); in the future it is a regular day.
	Ignore
)

var kindNames = [...]string{Regular: "regular", Holiday: "holiday", Workday: "workday", Ignore: "ignore"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// ParseKind parses a kind name: regular, holiday, workday or ignore.
func ParseKind(s string) (Kind, error) {
	for k, n := range kindNames {
		if n == s {
			return Kind(k), nil
		}
	}
	return 0, fmt.Errorf("day kind %q: want one of %s", s, strings.Join(kindNames[:], ", "))
}

// Override is a user's entry for one day: it replaces what the public
// calendar says. Factor, when not 0, multiplies the day's expected volume
// (2 for a promotion that doubles it, 0.5 for a planned half-day outage): the
// fit divides past days by it and forecasts multiply future days by it. An
// Ignore day has no factor: it is left out of the fit.
type Override struct {
	Day    ledger.Day
	Kind   Kind
	Factor float64
}

// Calendar tells the kind of each Beijing day: China's public holidays and
// make-up workdays as the State Council publishes them (the data of
// github.com/6tail/lunar-go, from 2001 to its last published year), then the
// user's overrides.
type Calendar struct {
	public    bool
	overrides map[ledger.Day]Override
	lastYear  int
}

// NewCalendar returns a calendar: China's public calendar when public is
// true, with the overrides on top (a later override of the same day wins).
// An override with a negative factor, or a factor on an Ignore day, is an
// error.
func NewCalendar(public bool, overrides []Override) (*Calendar, error) {
	c := &Calendar{public: public, overrides: map[ledger.Day]Override{}}
	for _, o := range overrides {
		if o.Factor < 0 || (o.Factor != 0 && o.Kind == Ignore) {
			return nil, fmt.Errorf("calendar override %s: factor %g: want a positive factor, on a day that is not ignored", o.Day, o.Factor)
		}
		if o.Kind > Ignore {
			return nil, fmt.Errorf("calendar override %s: %s is no day kind", o.Day, o.Kind)
		}
		c.overrides[o.Day] = o
	}
	if public {
		for y := 2001; HolidayUtil.GetHolidaysByYear(y).Len() > 0; y++ {
			c.lastYear = y
		}
	}
	return c, nil
}

// ChinaCalendar returns China's public calendar without overrides.
func ChinaCalendar() *Calendar {
	c, _ := NewCalendar(true, nil)
	return c
}

// LastPublishedYear returns the last year the public calendar data covers
// (0 without the public calendar): later holidays are unknown to it.
func (c *Calendar) LastPublishedYear() int { return c.lastYear }

// Day returns the kind of d and its volume factor (1 unless overridden).
func (c *Calendar) Day(d ledger.Day) (Kind, float64) {
	if o, ok := c.overrides[d]; ok {
		f := o.Factor
		if f == 0 || o.Kind == Ignore {
			f = 1
		}
		return o.Kind, f
	}
	if c.public {
		if h := HolidayUtil.GetHoliday(d.String()); h != nil && h.GetDay() == d.String() {
			if h.IsWork() {
				return Workday, 1
			}
			return Holiday, 1
		}
	}
	return Regular, 1
}

// Overrides returns the overrides, by day.
func (c *Calendar) Overrides() []Override {
	out := make([]Override, 0, len(c.overrides))
	for _, o := range c.overrides {
		out = append(out, o)
	}
	slices.SortFunc(out, func(a, b Override) int { return int(a.Day) - int(b.Day) })
	return out
}
