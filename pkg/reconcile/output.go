package reconcile

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// CSVHeader is the header of WriteCSV.
var csvHeader = []string{"day", "rule_id", "ours_billable", "tencent_charged", "difference", "status",
	"difference_pct", "ours_billable_unknown", "tencent_attempts", "tencent_charged_tokens", "note"}

// CSVHeader returns the columns WriteCSV writes.
func CSVHeader() []string { return append([]string(nil), csvHeader...) }

func pct(p *float64) string {
	if p == nil {
		return ""
	}
	return strconv.FormatFloat(*p, 'f', 2, 64)
}

func u(n uint64) string { return strconv.FormatUint(n, 10) }

// WriteCSV writes the rows, one per line, under CSVHeader; rule_id is empty
// on a day's total row.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	for _, row := range r.Rows {
		if err := cw.Write([]string{row.Day, row.RuleID, u(row.OursBillable), u(row.TencentCharged),
			strconv.FormatInt(row.Difference, 10), row.Status, pct(row.DifferencePct), u(row.OursUnknown),
			u(row.TencentAttempts), u(row.TencentTokens), row.Note}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteJSON writes the report as one JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes the rows as aligned columns, then the drift and a summary.
func (r *Report) WriteTable(w io.Writer) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "DAY\tRULE_ID\tOURS_BILLABLE\tTENCENT_CHARGED\tDIFFERENCE\tDIFFERENCE_%\tSTATUS\tTENCENT_ATTEMPTS\tTENCENT_TOKENS\tNOTE")
	for _, row := range r.Rows {
		rule, p := row.RuleID, pct(row.DifferencePct)
		if rule == "" {
			rule = "(day)"
		}
		if p == "" {
			p = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%+d\t%s\t%s\t%d\t%d\t%s\n", row.Day, rule, row.OursBillable, row.TencentCharged,
			row.Difference, p, row.Status, row.TencentAttempts, row.TencentTokens, row.Note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if err := r.WriteDrift(w); err != nil {
		return err
	}
	fmt.Fprintln(w)
	_, err := fmt.Fprintln(w, r.Summary())
	return err
}

// WriteDrift writes the catalog drift as aligned text.
func (r *Report) WriteDrift(w io.Writer) error {
	if len(r.Drift) == 0 {
		_, err := fmt.Fprintf(w, "catalog drift (%s family): none\n", r.Family)
		return err
	}
	fmt.Fprintf(w, "catalog drift (%s family): %d codes charged otherwise than the catalog says\n", r.Family, r.DriftCodes())
	tw := newTable(w)
	fmt.Fprintln(tw, "CODE\tCATALOG_BILLABLE\tTENCENT_CHARGED\tCOUNT\tDAYS\tEXAMPLES\tMEANING")
	for _, d := range r.Drift {
		meaning := d.Meaning
		if meaning == "" {
			meaning = "(not in the catalog)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%d\t%s\t%s\t%s\n", d.Code, d.Catalog, d.Tencent, d.Count,
			strings.Join(d.Days, ","), strings.Join(d.Examples, ","), meaning)
	}
	return tw.Flush()
}

// Summary returns one line: how many days match, and what is wrong.
func (r *Report) Summary() string {
	c := r.Counts()
	days := 0
	for _, n := range c {
		days += n
	}
	s := fmt.Sprintf("%d days: %d match, %d mismatch, %d missing, %d pending", days,
		c[StatusMatch], c[StatusMismatch], c[StatusMissing], c[StatusPending])
	if r.Tolerance > 0 {
		s += fmt.Sprintf(" (tolerance %s%%)", strconv.FormatFloat(r.Tolerance*100, 'f', -1, 64))
	}
	if r.OK {
		return s + ": the complete days match"
	}
	return s + ": the books and the bill disagree"
}

// table aligns tab-separated cells and drops the padding at the ends of lines.
type table struct {
	w   io.Writer
	buf bytes.Buffer
	tw  *tabwriter.Writer
}

func newTable(w io.Writer) *table {
	t := &table{w: w}
	t.tw = tabwriter.NewWriter(&t.buf, 0, 0, 2, ' ', 0)
	return t
}

func (t *table) Write(p []byte) (int, error) { return t.tw.Write(p) }

// Flush writes the aligned lines.
func (t *table) Flush() error {
	if err := t.tw.Flush(); err != nil {
		return err
	}
	for _, line := range strings.SplitAfter(t.buf.String(), "\n") {
		if line == "" {
			continue
		}
		if _, err := io.WriteString(t.w, strings.TrimRight(line, " \n")+"\n"); err != nil {
			return err
		}
	}
	t.buf.Reset()
	return nil
}
