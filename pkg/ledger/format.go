package ledger

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// CSVHeader is the header line WriteCSV writes. ReadCSV requires its first
// five columns and accepts more after them.
const CSVHeader = "day,channel,code,billable,count,rule_id"

// csvColumns are the columns every ledger CSV starts with.
var csvColumns = []string{"day", "channel", "code", "billable", "count"}

// Meta names the books a JSON document holds.
type Meta struct {
	Stream, Group string
	From, To      Day
}

// WriteCSV writes rows as CSV under CSVHeader, in the order given. A row
// ReadCSV would refuse is an error, and nothing after it is written.
func WriteCSV(w io.Writer, rows []Row) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(strings.Split(CSVHeader, ",")); err != nil {
		return fmt.Errorf("write ledger csv: %w", err)
	}
	seen := make(map[Key]int, len(rows))
	rec := make([]string, 6)
	for i, r := range rows {
		k, err := checkRow(r)
		if err != nil {
			return fmt.Errorf("write ledger csv: row %d: %w", i+1, err)
		}
		if j, dup := seen[k]; dup {
			return fmt.Errorf("write ledger csv: row %d has the key of row %d", i+1, j)
		}
		seen[k] = i + 1
		rec[0], rec[1], rec[2], rec[3], rec[4], rec[5] = r.Day, r.Channel, r.Code, r.Billable, strconv.FormatUint(r.Count, 10), r.RuleID
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("write ledger csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write ledger csv: %w", err)
	}
	return nil
}

// ReadCSV reads a ledger CSV: a header starting with
// day,channel,code,billable,count (further named columns may follow; a
// rule_id column fills Row.RuleID, the others are ignored), then one row per
// line with as many fields as the header. Every value must be one WriteCSV
// writes: a YYYY-MM-DD day, non-empty channel and code, billable true, false
// or unknown, a decimal count, no key twice. Errors name the line.
func ReadCSV(r io.Reader) ([]Row, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // checked below, with a clearer message
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("ledger csv: empty input: want the header line %s", CSVHeader)
	}
	if err != nil {
		return nil, fmt.Errorf("ledger csv: %w", err)
	}
	ruleID, err := checkHeader(header)
	if err != nil {
		return nil, fmt.Errorf("ledger csv: line 1: %w", err)
	}
	width := len(header)
	rows := []Row{}
	seen := map[Key]int{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return nil, fmt.Errorf("ledger csv: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != width {
			return nil, fmt.Errorf("ledger csv: line %d: %d fields, the header has %d", line, len(rec), width)
		}
		row := Row{Day: rec[0], Channel: rec[1], Code: rec[2], Billable: rec[3]}
		if ruleID >= 0 {
			row.RuleID = rec[ruleID]
		}
		k, err := checkRow(row)
		if err != nil {
			return nil, fmt.Errorf("ledger csv: line %d: %w", line, err)
		}
		if row.Count, err = parseCount(rec[4]); err != nil {
			return nil, fmt.Errorf("ledger csv: line %d: %w", line, err)
		}
		if prev, dup := seen[k]; dup {
			return nil, fmt.Errorf("ledger csv: line %d repeats the day, channel, code, billable and rule_id of line %d", line, prev)
		}
		seen[k] = line
		rows = append(rows, row)
	}
}

// checkHeader checks a header line and returns the index of its rule_id
// column, or -1.
func checkHeader(h []string) (int, error) {
	if len(h) > 0 && strings.HasPrefix(h[0], "\ufeff") {
		return -1, errors.New("the file starts with a byte order mark: save it as UTF-8 without one")
	}
	if len(h) < len(csvColumns) || !slices.Equal(h[:len(csvColumns)], csvColumns) {
		return -1, fmt.Errorf("header %q: want it to start with %s", strings.Join(h, ","), strings.Join(csvColumns, ","))
	}
	ruleID := -1
	for i := len(csvColumns); i < len(h); i++ {
		name := h[i]
		if name == "" {
			return -1, fmt.Errorf("header column %d has no name", i+1)
		}
		if j := slices.Index(h[:i], name); j >= 0 {
			return -1, fmt.Errorf("header column %d %q repeats column %d", i+1, name, j+1)
		}
		if name == "rule_id" {
			ruleID = i
		}
	}
	return ruleID, nil
}

// parseCount parses a count as WriteCSV writes it: decimal digits, no sign,
// no leading zero.
func parseCount(s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != s {
		return 0, fmt.Errorf("count %q: want a whole number from 0 to %d, in decimal without sign or leading zeros", s, uint64(1<<64-1))
	}
	return n, nil
}

// checkRow checks the fields of r and returns its key.
func checkRow(r Row) (Key, error) {
	d, err := ParseDay(r.Day)
	if err != nil {
		return Key{}, err
	}
	if d.String() != r.Day {
		return Key{}, fmt.Errorf("day %q is not YYYY-MM-DD", r.Day)
	}
	if err := checkName("channel", r.Channel, false); err != nil {
		return Key{}, err
	}
	if err := checkName("code", r.Code, false); err != nil {
		return Key{}, err
	}
	switch r.Billable {
	case "true", "false", "unknown":
	default:
		return Key{}, fmt.Errorf("billable %q: want true, false or unknown", r.Billable)
	}
	if err := checkName("rule_id", r.RuleID, true); err != nil {
		return Key{}, err
	}
	return Key{Day: d, Channel: r.Channel, Code: r.Code, Billable: r.Billable, RuleID: r.RuleID}, nil
}

// checkName checks an identifier field: valid UTF-8, no control characters,
// no surrounding white space, empty only when allowed.
func checkName(field, s string, emptyOK bool) error {
	if s == "" {
		if emptyOK {
			return nil
		}
		return fmt.Errorf("%s is empty", field)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s %q is not valid UTF-8", field, s)
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return fmt.Errorf("%s %q has a control character", field, s)
	}
	if strings.TrimSpace(s) != s {
		return fmt.Errorf("%s %q starts or ends with white space", field, s)
	}
	return nil
}

// WriteJSON writes the books as one JSON object,
// {"stream":..,"group":..,"from":..,"to":..,"rows":[..]}, one row per line;
// rows is [] when there are none. A row's billable is true, false or null
// (unknown), as everywhere in the API.
func WriteJSON(w io.Writer, meta Meta, rows []Row) error {
	head, err := json.Marshal(struct {
		Stream string `json:"stream"`
		Group  string `json:"group"`
		From   string `json:"from"`
		To     string `json:"to"`
	}{meta.Stream, meta.Group, meta.From.String(), meta.To.String()})
	if err != nil {
		return fmt.Errorf("write ledger json: %w", err)
	}
	bw := bufio.NewWriter(w)
	bw.Write(head[:len(head)-1]) // without the closing brace
	bw.WriteString(`,"rows":[`)
	for i, r := range rows {
		b, err := json.Marshal(jsonRow{Day: r.Day, Channel: r.Channel, Code: r.Code, Billable: billableJSON(r.Billable), RuleID: r.RuleID, Count: r.Count})
		if err != nil {
			return fmt.Errorf("write ledger json: %w", err)
		}
		if i > 0 {
			bw.WriteByte(',')
		}
		bw.WriteByte('\n')
		bw.Write(b)
	}
	if len(rows) > 0 {
		bw.WriteByte('\n')
	}
	bw.WriteString("]}\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write ledger json: %w", err)
	}
	return nil
}

// WriteTable writes rows as aligned text columns under a header line (the
// RULE_ID column only when a row has a rule id), counts aligned right, and a
// last line with the total count.
func WriteTable(w io.Writer, rows []Row) error {
	withRule := slices.ContainsFunc(rows, func(r Row) bool { return r.RuleID != "" })
	lines := make([][]string, 0, len(rows)+2)
	header := []string{"DAY", "CHANNEL", "CODE", "BILLABLE"}
	if withRule {
		header = append(header, "RULE_ID")
	}
	lines = append(lines, append(header, "COUNT"))
	var total uint64
	for _, r := range rows {
		l := []string{r.Day, r.Channel, r.Code, r.Billable}
		if withRule {
			l = append(l, r.RuleID)
		}
		lines = append(lines, append(l, strconv.FormatUint(r.Count, 10)))
		total += r.Count
	}
	last := make([]string, len(header)+1)
	last[0], last[len(header)] = "total", strconv.FormatUint(total, 10)
	lines = append(lines, last)

	widths := make([]int, len(header)+1)
	for _, l := range lines {
		for i, cell := range l {
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
		}
	}
	bw := bufio.NewWriter(w)
	for _, l := range lines {
		var b strings.Builder
		for i, cell := range l {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell))
			if i == len(l)-1 { // the count, aligned right
				b.WriteString(pad)
				b.WriteString(cell)
				break
			}
			b.WriteString(cell)
			b.WriteString(pad)
			b.WriteString("  ")
		}
		bw.WriteString(b.String())
		bw.WriteByte('\n')
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write ledger table: %w", err)
	}
	return nil
}

// jsonRow is a Row as WriteJSON writes it: billable is a boolean or null.
// (The checkpoint's day files keep Row's own encoding.)
type jsonRow struct {
	Day      string `json:"day"`
	Channel  string `json:"channel"`
	Code     string `json:"code"`
	Billable *bool  `json:"billable"`
	RuleID   string `json:"rule_id"`
	Count    uint64 `json:"count"`
}

// billableJSON maps a billable label value to true, false or nil (unknown).
func billableJSON(label string) *bool {
	switch label {
	case "true", "false":
		b := label == "true"
		return &b
	default:
		return nil
	}
}
