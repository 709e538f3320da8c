// Package reconcile compares the exact books (pkg/ledger) with Tencent's
// per-attempt charge details (pkg/tencentbill) per Beijing day and rule id,
// and Tencent's charging of each return code with the catalog's.
package reconcile

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
	"github.com/faceid-observability/faceid-exporter/pkg/tencentbill"
)

// DefaultFamily is the catalog family GetWeChatBillDetails covers (WeChat
// H5, mini program and E证通).
const DefaultFamily = "wechat"

// MaxDays bounds the days of one reconciliation.
const MaxDays = ledger.DefaultRetentionDays + 1

// Statuses of a row.
const (
	StatusMatch    = "match"
	StatusMismatch = "mismatch"
	StatusPending  = "pending" // Tencent's details of the day are not complete yet
	StatusMissing  = "missing" // one side has no data for the day
)

// OtherRuleID is the rule id of rule ids the allowlist does not name.
const OtherRuleID = "other"

// Options say what to compare.
type Options struct {
	Catalog *classify.Catalog
	// Family is the catalog family compared (default DefaultFamily); its
	// channels are the catalog's.
	Family   string
	From, To ledger.Day
	// Now decides which days are complete at Tencent (06:00 Beijing the next day).
	Now time.Time
	// Tolerance is the largest difference, as a fraction of Tencent's
	// charged count, that still matches (0: exact).
	Tolerance float64
	// RuleIDs is the business.rule_id allowlist the books were kept with; nil
	// when not known: the rule ids the ledger holds are taken instead.
	RuleIDs []string
}

func (o *Options) check() (*classify.Family, error) {
	if o.Catalog == nil {
		return nil, fmt.Errorf("reconcile: no catalog")
	}
	if o.Family == "" {
		o.Family = DefaultFamily
	}
	fam, ok := o.Catalog.Family(o.Family)
	if !ok {
		return nil, fmt.Errorf("reconcile: the catalog has no family %q", o.Family)
	}
	if o.To < o.From {
		return nil, fmt.Errorf("reconcile: to %s is before from %s", o.To, o.From)
	}
	if n := int(o.To-o.From) + 1; n > MaxDays {
		return nil, fmt.Errorf("reconcile: %d days from %s to %s, more than %d", n, o.From, o.To, MaxDays)
	}
	if o.Tolerance < 0 || o.Tolerance > 1 || math.IsNaN(o.Tolerance) {
		return nil, fmt.Errorf("reconcile: tolerance %v is not a fraction from 0 to 1", o.Tolerance)
	}
	return fam, nil
}

// Bills holds Tencent's pages by requested date, for the dates with bill data.
type Bills map[ledger.Day][]tencentbill.Page

// Run reads the ledger and, for every day of the range complete at Tencent,
// the bill source, and compares them. The date before the range is read as
// well (when Tencent still serves it): a BizToken begun before midnight can
// have attempts after it, and an attempt counts on the day of its ReqTime.
func Run(ctx context.Context, o Options, l Ledger, src tencentbill.Source) (*Report, error) {
	if _, err := o.check(); err != nil {
		return nil, err
	}
	rows, err := l.Rows(ctx, o.From, o.To)
	if err != nil {
		return nil, err
	}
	bills, err := fetch(ctx, src, billDates(o.From, o.To, o.Now), nil)
	if err != nil {
		return nil, err
	}
	return Compare(o, rows, bills)
}

// billDates returns the requested dates a comparison of from..to reads at
// now: from−1 when Tencent still serves it, and the complete days of the range.
func billDates(from, to ledger.Day, now time.Time) []ledger.Day {
	var days []ledger.Day
	if ledger.DayOf(now)-(from-1) <= tencentbill.MaxDaysBack {
		days = append(days, from-1)
	}
	for d := from; d <= to; d++ {
		if tencentbill.Complete(d, now) {
			days = append(days, d)
		}
	}
	return days
}

// fetch reads the dates from src, taking those in cache as they are.
func fetch(ctx context.Context, src tencentbill.Source, days []ledger.Day, cache Bills) (Bills, error) {
	bills := Bills{}
	for _, d := range days {
		if pages, ok := cache[d]; ok {
			bills[d] = pages
			continue
		}
		pages, ok, err := src.Day(ctx, d)
		if err != nil {
			return nil, err
		}
		if ok {
			bills[d] = pages
		}
	}
	return bills, nil
}

// Report is the result of a comparison.
type Report struct {
	Family    string    `json:"family"`
	From      string    `json:"from"`
	To        string    `json:"to"`
	Now       time.Time `json:"now"`
	Tolerance float64   `json:"tolerance"`
	// OK is true when every complete day's total matches.
	OK    bool    `json:"ok"`
	Rows  []Row   `json:"rows"`
	Drift []Drift `json:"drift"`
}

// Row compares one day, or one rule id of one day.
type Row struct {
	Day string `json:"day"`
	// RuleID is "" on the day's total row.
	RuleID         string `json:"rule_id"`
	OursBillable   uint64 `json:"ours_billable"`
	TencentCharged uint64 `json:"tencent_charged"`
	Difference     int64  `json:"difference"` // ours − Tencent
	// DifferencePct is Difference as a percentage of TencentCharged, to two
	// decimals; nil
	// when Tencent charged nothing and we counted something.
	DifferencePct *float64 `json:"difference_pct"`
	Status        string   `json:"status"`
	// OursUnknown counts our events whose code the catalog does not know
	// (billable unknown): not in OursBillable.
	OursUnknown uint64 `json:"ours_billable_unknown"`
	// TencentAttempts counts every 1:1 attempt Tencent reports, charged or not.
	TencentAttempts uint64 `json:"tencent_attempts"`
	// TencentTokens counts the BizTokens with at least one charged attempt.
	TencentTokens uint64 `json:"tencent_charged_tokens"`
	Note          string `json:"note"`
}

// Drift is one (code, catalog answer, Tencent answer) disagreement.
type Drift struct {
	Code string `json:"code"`
	// Catalog is the catalog's billable answer for the code at the
	// attempts' times: true, false, or unknown (the code is not in the catalog).
	Catalog string `json:"catalog_billable"`
	// Tencent is IsNeedCharge.
	Tencent  bool     `json:"tencent_charged"`
	Count    uint64   `json:"count"`
	Days     []string `json:"days"`
	Examples []string `json:"examples"` // the earliest attempt times, at most MaxExamples
	Meaning  string   `json:"meaning"`  // the catalog's, "" when unknown
}

// MaxExamples is how many attempt times a Drift shows.
const MaxExamples = 3

// DriftCodes returns how many distinct codes disagree.
func (r *Report) DriftCodes() int {
	seen := map[string]bool{}
	for _, d := range r.Drift {
		seen[d.Code] = true
	}
	return len(seen)
}

// Counts returns the day total rows by status.
func (r *Report) Counts() map[string]int {
	c := map[string]int{}
	for _, row := range r.Rows {
		if row.RuleID == "" {
			c[row.Status]++
		}
	}
	return c
}

type dayCounts struct {
	ours, unknown    uint64
	hasOurs, hasBill bool
	charged          uint64
	attempts         uint64
	tokens           map[string]bool
	rules            map[string]*ruleCounts
}

type ruleCounts struct {
	ours, charged, attempts uint64
	tokens                  map[string]bool
}

func (d *dayCounts) rule(id string) *ruleCounts {
	r := d.rules[id]
	if r == nil {
		r = &ruleCounts{tokens: map[string]bool{}}
		d.rules[id] = r
	}
	return r
}

// Compare compares ledger rows with Tencent's bills.
func Compare(o Options, rows []ledger.Row, bills Bills) (*Report, error) {
	fam, err := o.check()
	if err != nil {
		return nil, err
	}
	channels := map[string]bool{}
	for _, ch := range fam.Channels {
		channels[ch] = true
	}
	days := make([]dayCounts, int(o.To-o.From)+1)
	for i := range days {
		days[i] = dayCounts{tokens: map[string]bool{}, rules: map[string]*ruleCounts{}}
	}
	at := func(d ledger.Day) *dayCounts {
		if d < o.From || d > o.To {
			return nil
		}
		return &days[d-o.From]
	}

	// Our side.
	named := map[string]bool{}
	for _, id := range o.RuleIDs {
		named[id] = true
	}
	perRule := o.RuleIDs != nil
	for _, r := range rows {
		if !channels[r.Channel] {
			continue
		}
		d, err := ledger.ParseDay(r.Day)
		if err != nil {
			return nil, fmt.Errorf("ledger row: %w", err)
		}
		dc := at(d)
		if dc == nil {
			continue
		}
		dc.hasOurs = true
		if r.RuleID != "" {
			perRule = true
			if r.RuleID != OtherRuleID && o.RuleIDs == nil {
				named[r.RuleID] = true
			}
		}
		switch r.Billable {
		case "true":
			dc.ours += r.Count
			if r.RuleID != "" {
				dc.rule(r.RuleID).ours += r.Count
			}
		case "unknown":
			dc.unknown += r.Count
		}
	}

	// Tencent's side, and the drift.
	drift := map[driftKey]*Drift{}
	for req, pages := range bills {
		if dc := at(req); dc != nil {
			dc.hasBill = true
		}
		for _, p := range pages {
			for _, b := range p.Bills {
				rule := b.RuleID
				if !named[rule] {
					rule = OtherRuleID
				}
				for _, det := range b.Details {
					dc := at(det.Day())
					if dc == nil {
						continue
					}
					rc := dc.rule(rule)
					dc.attempts++
					rc.attempts++
					if det.IsNeedCharge {
						dc.charged++
						rc.charged++
						dc.tokens[b.BizToken] = true
						rc.tokens[b.BizToken] = true
					}
					checkDrift(o.Catalog, o.Family, det, drift)
				}
			}
		}
	}

	rep := &Report{Family: o.Family, From: o.From.String(), To: o.To.String(), Now: o.Now.In(ledger.Beijing), Tolerance: o.Tolerance, OK: true, Rows: []Row{}, Drift: []Drift{}}
	ruleIDs := make([]string, 0, len(named))
	for id := range named {
		ruleIDs = append(ruleIDs, id)
	}
	slices.Sort(ruleIDs)
	ruleIDs = append(ruleIDs, OtherRuleID)
	for i := range days {
		d := o.From + ledger.Day(i)
		dc := &days[i]
		total := Row{Day: d.String(), OursBillable: dc.ours, TencentCharged: dc.charged, OursUnknown: dc.unknown,
			TencentAttempts: dc.attempts, TencentTokens: uint64(len(dc.tokens))}
		dayStatus, note := "", ""
		switch {
		case !tencentbill.Complete(d, o.Now):
			dayStatus = StatusPending
			note = "Tencent's details are complete at " + tencentbill.CompletesAt(d).Format("2006-01-02 15:04 -07:00")
		case !dc.hasBill:
			dayStatus, note = StatusMissing, "no bill data from Tencent for the day"
		case !dc.hasOurs && dc.charged > 0:
			dayStatus, note = StatusMissing, "the ledger has no rows for the day"
		}
		total.fill(dayStatus, o.Tolerance)
		if total.Status == StatusMismatch && total.TencentTokens < total.TencentCharged && total.OursBillable == total.TencentTokens {
			note = fmt.Sprintf("ours equals Tencent's %d charged BizTokens: Tencent bills every 1:1 attempt, retries included, and the producer publishes one event per BizToken", total.TencentTokens)
		}
		if dc.unknown > 0 {
			n := "1 event with a code the catalog does not know is"
			if dc.unknown != 1 {
				n = fmt.Sprintf("%d events with codes the catalog does not know are", dc.unknown)
			}
			note = joinNote(note, n+" not counted as billable")
		}
		total.Note = note
		if total.Status == StatusMismatch || total.Status == StatusMissing {
			rep.OK = false
		}
		rep.Rows = append(rep.Rows, total)
		if !perRule {
			continue
		}
		for _, id := range ruleIDs {
			rc := dc.rules[id]
			if rc == nil || (rc.ours == 0 && rc.charged == 0) {
				continue
			}
			row := Row{Day: d.String(), RuleID: id, OursBillable: rc.ours, TencentCharged: rc.charged,
				TencentAttempts: rc.attempts, TencentTokens: uint64(len(rc.tokens))}
			row.fill(dayStatus, o.Tolerance)
			rep.Rows = append(rep.Rows, row)
		}
	}
	for _, d := range drift {
		rep.Drift = append(rep.Drift, *d)
	}
	slices.SortFunc(rep.Drift, func(a, b Drift) int {
		return cmp.Or(compareCodes(a.Code, b.Code), cmp.Compare(a.Catalog, b.Catalog), compareBool(a.Tencent, b.Tencent))
	})
	return rep, nil
}

// fill sets the difference and, unless status is given, the status.
func (r *Row) fill(status string, tolerance float64) {
	r.Difference = int64(r.OursBillable) - int64(r.TencentCharged)
	switch {
	case r.TencentCharged > 0:
		p := math.Round(float64(r.Difference)*10000/float64(r.TencentCharged)) / 100
		r.DifferencePct = &p
	case r.OursBillable == 0:
		p := 0.0
		r.DifferencePct = &p
	}
	if status != "" {
		r.Status = status
		return
	}
	r.Status = StatusMatch
	if Exceeds(r.OursBillable, r.TencentCharged, tolerance) {
		r.Status = StatusMismatch
	}
}

// Exceeds reports whether |ours − tencent| is more than tolerance × tencent.
func Exceeds(ours, tencent uint64, tolerance float64) bool {
	diff := ours - tencent
	if tencent > ours {
		diff = tencent - ours
	}
	return float64(diff) > tolerance*float64(tencent)
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

type driftKey struct {
	code, catalog string
	tencent       bool
}

func checkDrift(cat *classify.Catalog, family string, det tencentbill.ChargeDetail, drift map[driftKey]*Drift) {
	catalog, meaning := classify.BillableUnknown, ""
	if c, ok := cat.Lookup(family, det.ErrorCode); ok {
		catalog, meaning = c.BillableAt(det.ReqTime()), c.Meaning
	}
	if (catalog == classify.BillableTrue) == det.IsNeedCharge && catalog != classify.BillableUnknown {
		return
	}
	k := driftKey{code: det.ErrorCode, catalog: catalog.String(), tencent: det.IsNeedCharge}
	d := drift[k]
	if d == nil {
		d = &Drift{Code: det.ErrorCode, Catalog: k.catalog, Tencent: det.IsNeedCharge, Meaning: meaning, Days: []string{}, Examples: []string{}}
		drift[k] = d
	}
	d.Count++
	day := det.Day().String()
	if i, found := slices.BinarySearch(d.Days, day); !found {
		d.Days = slices.Insert(d.Days, i, day)
	}
	ex := det.ReqTime().Format(ExampleLayout)
	if i, found := slices.BinarySearch(d.Examples, ex); !found && i < MaxExamples {
		d.Examples = slices.Insert(d.Examples, i, ex)
		if len(d.Examples) > MaxExamples {
			d.Examples = d.Examples[:MaxExamples]
		}
	}
}

// ExampleLayout formats the attempt times of a Drift (Beijing time, which
// sorts as text).
const ExampleLayout = "2006-01-02T15:04:05.000-07:00"

func compareCodes(a, b string) int {
	x, errA := strconv.ParseInt(a, 10, 64)
	y, errB := strconv.ParseInt(b, 10, 64)
	if errA == nil && errB == nil {
		return cmp.Compare(x, y)
	}
	return cmp.Compare(a, b)
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}
