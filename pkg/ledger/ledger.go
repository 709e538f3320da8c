// Package ledger holds the exact books: verification counts per Beijing
// calendar day, channel, return code, billability and rule id, as committed
// with the stream position in each partition's checkpoint.
package ledger

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Beijing is the zone Tencent bills by (Asia/Shanghai, UTC+08:00; China has
// kept no daylight saving time since 1991, so a fixed zone is exact and needs
// no tzdata).
var Beijing = time.FixedZone("Asia/Shanghai", 8*3600)

// DayLayout is the format of a day: YYYY-MM-DD.
const DayLayout = "2006-01-02"

// DefaultRetentionDays is how many days before the newest accepted day the
// books keep by default (serve's --ledger.retention-days).
const DefaultRetentionDays = 400

// MaxRetentionDays bounds the retention a configuration may ask for.
const MaxRetentionDays = 3660

// Day is a Beijing calendar day as days since 1970-01-01 (Beijing).
type Day int32

// DayOf returns the Beijing day of t.
func DayOf(t time.Time) Day {
	return DayOfUnixNano(t.UnixNano())
}

// DayOfUnixNano returns the Beijing day of a Unix time in nanoseconds.
func DayOfUnixNano(ns int64) Day {
	const nsPerDay = int64(24 * time.Hour)
	s := ns + int64(8*time.Hour)
	d := s / nsPerDay
	if s%nsPerDay < 0 {
		d--
	}
	return Day(d)
}

// Start returns the instant the day begins (00:00:00 Beijing).
func (d Day) Start() time.Time {
	return time.Unix(int64(d)*86400-8*3600, 0).In(Beijing)
}

// String returns the day as YYYY-MM-DD.
func (d Day) String() string { return d.Start().Format(DayLayout) }

// ParseDay parses YYYY-MM-DD as a Beijing day.
func ParseDay(s string) (Day, error) {
	t, err := time.ParseInLocation(DayLayout, s, Beijing)
	if err != nil {
		return 0, fmt.Errorf("day %q is not YYYY-MM-DD: %w", s, err)
	}
	return DayOf(t), nil
}

// ParseRange parses an inclusive from/to pair of days.
func ParseRange(from, to string) (Day, Day, error) {
	f, err := ParseDay(from)
	if err != nil {
		return 0, 0, fmt.Errorf("from: %w", err)
	}
	t, err := ParseDay(to)
	if err != nil {
		return 0, 0, fmt.Errorf("to: %w", err)
	}
	if t < f {
		return 0, 0, fmt.Errorf("to %s is before from %s", to, from)
	}
	return f, t, nil
}

// Row is one line of the books.
type Row struct {
	Day      string `json:"day"`      // YYYY-MM-DD, Beijing
	Channel  string `json:"channel"`  // catalog channel
	Code     string `json:"code"`     // catalog code, or "unknown"
	Billable string `json:"billable"` // "true", "false" or "unknown"
	// RuleID is the event's rule_id when the config's business.rule_id
	// allowlist names it, "other" when it does not, "" when the event has
	// none or no allowlist is configured.
	RuleID string `json:"rule_id"`
	Count  uint64 `json:"count"`
}

// UnmarshalJSON reads a row in either encoding: the checkpoint's day files
// (billable "true", "false" or "unknown") and the API's and WriteJSON's
// (billable true, false or null), so that a client of /api/v1/ledger can
// decode into Row.
func (r *Row) UnmarshalJSON(b []byte) error {
	type plain Row
	var aux struct {
		plain
		Billable json.RawMessage `json:"billable"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	*r = Row(aux.plain)
	switch v := strings.TrimSpace(string(aux.Billable)); v {
	case "":
		r.Billable = ""
	case "null":
		r.Billable = "unknown"
	case "true", "false":
		r.Billable = v
	default:
		var s string
		if err := json.Unmarshal(aux.Billable, &s); err != nil {
			return fmt.Errorf("ledger row: billable %s: want true, false, null or a string", v)
		}
		r.Billable = s
	}
	return nil
}

// Key is a row without its count.
type Key struct {
	Day                             Day
	Channel, Code, Billable, RuleID string
}

// Books maps keys to counts.
type Books map[Key]uint64

// Add adds n to k.
func (b Books) Add(k Key, n uint64) { b[k] += n }

// Merge adds every count of o.
func (b Books) Merge(o Books) {
	for k, n := range o {
		b[k] += n
	}
}

// Rows returns the rows of days from..to (inclusive), sorted by day,
// channel, code, billable and rule id.
func (b Books) Rows(from, to Day) []Row {
	var rows []Row
	for k, n := range b {
		if k.Day < from || k.Day > to || n == 0 {
			continue
		}
		rows = append(rows, Row{Day: k.Day.String(), Channel: k.Channel, Code: k.Code, Billable: k.Billable, RuleID: k.RuleID, Count: n})
	}
	SortRows(rows)
	return rows
}

// SortRows sorts rows by day, channel, code, billable and rule id.
func SortRows(rows []Row) {
	slices.SortFunc(rows, func(a, b Row) int {
		return cmp.Or(cmp.Compare(a.Day, b.Day), cmp.Compare(a.Channel, b.Channel), cmp.Compare(a.Code, b.Code),
			cmp.Compare(a.Billable, b.Billable), cmp.Compare(a.RuleID, b.RuleID))
	})
}
