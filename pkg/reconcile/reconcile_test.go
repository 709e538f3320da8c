package reconcile

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
	"github.com/faceid-observability/faceid-exporter/pkg/tencentbill"
)

// scenarioNow is the clock of the scenario: 2024-03-06 is not complete at Tencent.
var scenarioNow = time.Date(2024, 3, 7, 5, 0, 0, 0, ledger.Beijing)

func day(t *testing.T, s string) ledger.Day {
	t.Helper()
	d, err := ledger.ParseDay(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func catalog(t *testing.T) *classify.Catalog {
	t.Helper()
	cat, err := classify.Default()
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

func scenario(t *testing.T, mod func(*Options)) *Report {
	t.Helper()
	bills, err := tencentbill.OpenDir("testdata/scenario/bills")
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Catalog: catalog(t), From: day(t, "2024-03-01"), To: day(t, "2024-03-06"), Now: scenarioNow, RuleIDs: []string{"1", "2"}}
	if mod != nil {
		mod(&o)
	}
	rep, err := Run(context.Background(), o, LedgerFile{Path: "testdata/scenario/ledger.csv"}, bills)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// compact renders a row as day/rule: ours tencent difference status.
func compact(rows []Row) []string {
	var out []string
	for _, r := range rows {
		rule := r.RuleID
		if rule == "" {
			rule = "*"
		}
		out = append(out, fmt.Sprintf("%s/%s: %d %d %+d %s", r.Day, rule, r.OursBillable, r.TencentCharged, r.Difference, r.Status))
	}
	return out
}

// TestScenario: the report finds exactly the scenario's differences
// (testdata/scenario/README.md) and nothing else.
func TestScenario(t *testing.T) {
	rep := scenario(t, nil)
	want := []string{
		"2024-03-01/*: 3 3 +0 match",
		"2024-03-01/1: 2 2 +0 match",
		"2024-03-01/2: 1 1 +0 match",
		"2024-03-02/*: 4 7 -3 mismatch",
		"2024-03-02/1: 3 6 -3 mismatch",
		"2024-03-02/2: 1 1 +0 match",
		"2024-03-03/*: 2 0 +2 missing",
		"2024-03-03/1: 2 0 +2 missing",
		"2024-03-04/*: 0 2 -2 missing",
		"2024-03-04/1: 0 1 -1 missing",
		"2024-03-04/2: 0 1 -1 missing",
		"2024-03-05/*: 3 3 +0 match",
		"2024-03-05/1: 1 2 -1 mismatch",
		"2024-03-05/2: 1 0 +1 mismatch",
		"2024-03-05/other: 1 1 +0 match",
		"2024-03-06/*: 5 0 +5 pending",
		"2024-03-06/1: 5 0 +5 pending",
	}
	if got := compact(rep.Rows); !reflect.DeepEqual(got, want) {
		t.Errorf("rows\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if rep.OK {
		t.Error("report OK with a mismatch and missing days")
	}
	byDay := map[string]Row{}
	for _, r := range rep.Rows {
		if r.RuleID == "" {
			byDay[r.Day] = r
		}
	}
	notes := map[string]string{
		"2024-03-01": "",
		"2024-03-02": "ours equals Tencent's 4 charged BizTokens: Tencent bills every 1:1 attempt, retries included, and the producer publishes one event per BizToken",
		"2024-03-03": "no bill data from Tencent for the day",
		"2024-03-04": "the ledger has no rows for the day",
		"2024-03-05": "1 event with a code the catalog does not know is not counted as billable",
		"2024-03-06": "Tencent's details are complete at 2024-03-07 06:00 +08:00",
	}
	for d, n := range notes {
		if byDay[d].Note != n {
			t.Errorf("%s note %q, want %q", d, byDay[d].Note, n)
		}
	}
	if r := byDay["2024-03-01"]; r.TencentAttempts != 6 || r.TencentTokens != 3 {
		t.Errorf("2024-03-01: %d attempts, %d charged tokens; want 6, 3", r.TencentAttempts, r.TencentTokens)
	}
	if r := byDay["2024-03-02"]; r.DifferencePct == nil || fmt.Sprintf("%.2f", *r.DifferencePct) != "-42.86" {
		t.Errorf("2024-03-02 difference %% %v, want -42.86", r.DifferencePct)
	}
	if r := byDay["2024-03-03"]; r.DifferencePct != nil {
		t.Errorf("2024-03-03: difference %% %v with nothing charged, want none", *r.DifferencePct)
	}

	// Drift: exactly the three disagreeing codes of 2024-03-05.
	var drift []string
	for _, d := range rep.Drift {
		drift = append(drift, fmt.Sprintf("%s catalog=%s tencent=%v n=%d days=%v ex=%v", d.Code, d.Catalog, d.Tencent, d.Count, d.Days, d.Examples))
	}
	wantDrift := []string{
		"2006 catalog=true tencent=false n=1 days=[2024-03-05] ex=[2024-03-05T12:00:00.000+08:00]",
		"2007 catalog=false tencent=true n=1 days=[2024-03-05] ex=[2024-03-05T11:00:00.000+08:00]",
		"9999 catalog=unknown tencent=false n=1 days=[2024-03-05] ex=[2024-03-05T13:00:00.000+08:00]",
	}
	if !reflect.DeepEqual(drift, wantDrift) {
		t.Errorf("drift\n%s\nwant\n%s", strings.Join(drift, "\n"), strings.Join(wantDrift, "\n"))
	}
	if rep.DriftCodes() != 3 {
		t.Errorf("%d drift codes, want 3", rep.DriftCodes())
	}
}

// TestScenarioWithoutAllowlist: the rule ids come from the ledger; Tencent's
// rule 9 is "other" all the same.
func TestScenarioWithoutAllowlist(t *testing.T) {
	withList := compact(scenario(t, nil).Rows)
	without := compact(scenario(t, func(o *Options) { o.RuleIDs = nil }).Rows)
	if !reflect.DeepEqual(withList, without) {
		t.Errorf("rows without the allowlist\n%s\nwant\n%s", strings.Join(without, "\n"), strings.Join(withList, "\n"))
	}
}

// TestScenarioOnlyCompleteDays: at 2024-03-07 06:00 the 6th is complete (and
// its partial file is read).
func TestScenarioOnlyCompleteDays(t *testing.T) {
	rep := scenario(t, func(o *Options) {
		o.Now = time.Date(2024, 3, 7, 6, 0, 0, 0, ledger.Beijing)
		o.From = day(t, "2024-03-06")
	})
	want := []string{"2024-03-06/*: 5 1 +4 mismatch", "2024-03-06/1: 5 1 +4 mismatch"}
	if got := compact(rep.Rows); !reflect.DeepEqual(got, want) {
		t.Errorf("rows %q, want %q", got, want)
	}
}

func TestTolerance(t *testing.T) {
	tests := []struct {
		name          string
		ours, tencent uint64
		tolerance     float64
		want          bool
	}{
		{"exact_equal", 5, 5, 0, false},
		{"exact_one_off", 5, 4, 0, true},
		{"within", 101, 100, 0.01, false},
		{"beyond", 102, 100, 0.01, true},
		{"below_within", 99, 100, 0.01, false},
		{"nothing_charged", 1, 0, 0.5, true},
		{"both_zero", 0, 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Exceeds(tc.ours, tc.tencent, tc.tolerance); got != tc.want {
				t.Errorf("Exceeds(%d, %d, %v) = %v", tc.ours, tc.tencent, tc.tolerance, got)
			}
		})
	}
}

func detailAt(t time.Time, code string, charged bool) tencentbill.ChargeDetail {
	return tencentbill.ChargeDetail{ReqTimeMs: t.UnixMilli(), IsNeedCharge: charged, ErrorCode: code}
}

// TestDayBoundary: a charge at 23:59:59.999+08:00 and one at
// 00:00:00.000+08:00 the next day land on different days, whatever date
// they were requested under.
func TestDayBoundary(t *testing.T) {
	late := time.Date(2024, 3, 1, 23, 59, 59, 999_000_000, ledger.Beijing)
	early := time.Date(2024, 3, 2, 0, 0, 0, 0, ledger.Beijing)
	bills := Bills{day(t, "2024-03-01"): {{Bills: []tencentbill.Bill{{BizToken: "T", RuleID: "1", Details: []tencentbill.ChargeDetail{
		detailAt(late, "0", true), detailAt(early, "0", true)}}}}}, day(t, "2024-03-02"): {{}}}
	rows := []ledger.Row{
		{Day: "2024-03-01", Channel: "wechat_h5", Code: "0", Billable: "true", Count: 1},
		{Day: "2024-03-02", Channel: "wechat_h5", Code: "0", Billable: "true", Count: 1},
	}
	rep, err := Compare(Options{Catalog: catalog(t), From: day(t, "2024-03-01"), To: day(t, "2024-03-02"), Now: scenarioNow}, rows, bills)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"2024-03-01/*: 1 1 +0 match", "2024-03-02/*: 1 1 +0 match"}
	if got := compact(rep.Rows); !reflect.DeepEqual(got, want) {
		t.Errorf("rows %q, want %q", got, want)
	}
}

// TestDatedBillingChange: 2007 was billed before 2021-07-19 00:00 Beijing
// and is free from then on; a charge on the 18th agrees with the catalog, a
// charge at midnight of the 19th drifts.
func TestDatedBillingChange(t *testing.T) {
	before := time.Date(2021, 7, 18, 23, 59, 59, 999_000_000, ledger.Beijing)
	from := time.Date(2021, 7, 19, 0, 0, 0, 0, ledger.Beijing)
	bills := Bills{
		day(t, "2021-07-18"): {{Bills: []tencentbill.Bill{{BizToken: "A", Details: []tencentbill.ChargeDetail{detailAt(before, "2007", true), detailAt(before, "2009", false)}}}}},
		day(t, "2021-07-19"): {{Bills: []tencentbill.Bill{{BizToken: "B", Details: []tencentbill.ChargeDetail{detailAt(from, "2007", true), detailAt(from, "2009", false)}}}}},
	}
	rep, err := Compare(Options{Catalog: catalog(t), From: day(t, "2021-07-18"), To: day(t, "2021-07-19"), Now: scenarioNow}, nil, bills)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range rep.Drift {
		got = append(got, fmt.Sprintf("%s catalog=%s tencent=%v %v", d.Code, d.Catalog, d.Tencent, d.Examples))
	}
	want := []string{
		"2007 catalog=false tencent=true [2021-07-19T00:00:00.000+08:00]",
		"2009 catalog=true tencent=false [2021-07-18T23:59:59.999+08:00]",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("drift\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestCatalogOverride: an override that makes 2007 billable again removes
// its drift.
func TestCatalogOverride(t *testing.T) {
	cat, err := catalog(t).WithOverrides("override.yaml", []byte(`version: 1
codes:
  - {family: wechat, code: "2007", category: compare, billable: true, meaning: 库中无此用户照片}
`))
	if err != nil {
		t.Fatal(err)
	}
	rep := scenario(t, func(o *Options) { o.Catalog = cat })
	for _, d := range rep.Drift {
		if d.Code == "2007" {
			t.Errorf("2007 drifts with an override that bills it: %+v", d)
		}
	}
	if rep.DriftCodes() != 2 {
		t.Errorf("%d drift codes, want 2", rep.DriftCodes())
	}
}

func TestOptionsInvalid(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Options)
		want string
	}{
		{"no_catalog", func(o *Options) { o.Catalog = nil }, "reconcile: no catalog"},
		{"unknown_family", func(o *Options) { o.Family = "nfc" }, `reconcile: the catalog has no family "nfc"`},
		{"reversed", func(o *Options) { o.From, o.To = o.To, o.From }, "reconcile: to 2024-03-01 is before from 2024-03-06"},
		{"too_long", func(o *Options) { o.From = o.To - MaxDays }, "reconcile: 402 days from 2023-01-30 to 2024-03-06, more than 401"},
		{"negative_tolerance", func(o *Options) { o.Tolerance = -0.1 }, "reconcile: tolerance -0.1 is not a fraction from 0 to 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{Catalog: catalog(t), From: day(t, "2024-03-01"), To: day(t, "2024-03-06"), Now: scenarioNow}
			tc.mod(&o)
			_, err := Compare(o, nil, nil)
			if err == nil || err.Error() != tc.want {
				t.Errorf("error %v, want %s", err, tc.want)
			}
		})
	}
}

// TestPreviousDateCounts: reconciling 2024-03-02 alone reads the 1st's file
// too, whose attempt at 00:00:00.000 of the 2nd counts on the 2nd.
func TestPreviousDateCounts(t *testing.T) {
	rep := scenario(t, func(o *Options) { o.From, o.To = day(t, "2024-03-02"), day(t, "2024-03-02") })
	want := []string{"2024-03-02/*: 4 7 -3 mismatch", "2024-03-02/1: 3 6 -3 mismatch", "2024-03-02/2: 1 1 +0 match"}
	if got := compact(rep.Rows); !reflect.DeepEqual(got, want) {
		t.Errorf("rows %q, want %q", got, want)
	}
}
