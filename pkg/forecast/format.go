package forecast

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// AllChannels names the total in the CSV and table outputs.
const AllChannels = "(all)"

// CSVHeader is the header line WriteCSV writes.
const CSVHeader = "channel,measure,period,kind,quality,point,low80,high80,low95,high95"

// csvRows returns the result as CSV records: per series (the total first),
// the month end of billed (and cost), then each day of billed (and cost).
func csvRows(r *Result) [][]string {
	var out [][]string
	num := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
	add := func(ch, measure, period, kind string, q Quality, e Estimate) {
		out = append(out, []string{ch, measure, period, kind, string(q), num(e.Point), num(e.Low80), num(e.High80), num(e.Low95), num(e.High95)})
	}
	for _, s := range append([]Series{r.Total}, r.Channels...) {
		ch := s.Channel
		if ch == "" {
			ch = AllChannels
		}
		add(ch, "billed", "month_end", "", s.Quality, s.BilledMonthEnd)
		if s.CostMonthEnd != nil {
			add(ch, "cost", "month_end", "", s.Quality, *s.CostMonthEnd)
		}
		for _, d := range s.Daily {
			add(ch, "billed", d.Day, d.Kind, s.Quality, d.Billed)
			if d.Cost != nil {
				add(ch, "cost", d.Day, d.Kind, s.Quality, *d.Cost)
			}
		}
	}
	return out
}

// WriteCSV writes the result under CSVHeader: the month end, then each day,
// of billed verifications (and cost where priced), for the total (channel
// "(all)") and each channel.
func WriteCSV(w io.Writer, r *Result) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(strings.Split(CSVHeader, ",")); err != nil {
		return fmt.Errorf("write forecast csv: %w", err)
	}
	if err := cw.WriteAll(csvRows(r)); err != nil {
		return fmt.Errorf("write forecast csv: %w", err)
	}
	return nil
}

// WriteJSON writes the result as one JSON object.
func WriteJSON(w io.Writer, r *Result) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("write forecast json: %w", err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write forecast json: %w", err)
	}
	return nil
}

// WriteTable writes the month-end forecast of the total and of each
// channel, then the daily forecast of the total, as aligned text.
func WriteTable(w io.Writer, r *Result) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "Forecast at %s for the month ending %s (Beijing days; intervals 80 %% and 95 %%)\n\n", r.Now.In(beijing()).Format("2006-01-02 15:04 MST"), r.MonthEnd)
	cur := r.Currency
	lines := [][]string{{"CHANNEL", "QUALITY", "HISTORY", "BILLED_MTD", "BILLED_MONTH_END", "80%", "95%", "COST_MONTH_END " + cur, "80%", "95%"}}
	rng := func(a, b float64) string { return fmt.Sprintf("%.0f–%.0f", a, b) }
	var notes []string
	for _, s := range append([]Series{r.Total}, r.Channels...) {
		ch := s.Channel
		if ch == "" {
			ch = AllChannels
		}
		e := s.BilledMonthEnd
		l := []string{ch, string(s.Quality), fmt.Sprintf("%dd", s.HistoryDays), fmt.Sprintf("%.0f", s.BilledMonthToDate),
			fmt.Sprintf("%.0f", e.Point), rng(e.Low80, e.High80), rng(e.Low95, e.High95), "", "", ""}
		if c := s.CostMonthEnd; c != nil {
			l[7], l[8], l[9] = fmt.Sprintf("%.2f", c.Point), rng(c.Low80, c.High80), rng(c.Low95, c.High95)
		}
		lines = append(lines, l)
		if s.Note != "" {
			notes = append(notes, ch+": "+s.Note)
		}
	}
	writeAligned(bw, lines)
	for _, n := range notes {
		fmt.Fprintf(bw, "note: %s\n", n)
	}
	fmt.Fprintf(bw, "\nDaily billed verifications, all channels:\n")
	lines = [][]string{{"DAY", "KIND", "BILLED", "80%", "95%"}}
	for _, d := range r.Total.Daily {
		e := d.Billed
		lines = append(lines, []string{d.Day, d.Kind, fmt.Sprintf("%.0f", e.Point), rng(e.Low80, e.High80), rng(e.Low95, e.High95)})
	}
	writeAligned(bw, lines)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write forecast table: %w", err)
	}
	return nil
}

func writeAligned(bw *bufio.Writer, lines [][]string) {
	widths := make([]int, len(lines[0]))
	for _, l := range lines {
		for i, c := range l {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	for _, l := range lines {
		var b strings.Builder
		for i, c := range l {
			b.WriteString(c)
			if i < len(l)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)+2))
			}
		}
		bw.WriteString(strings.TrimRight(b.String(), " "))
		bw.WriteByte('\n')
	}
}
