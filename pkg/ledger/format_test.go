package ledger_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/faceid-observability/faceid-exporter/internal/fixtures"
	"github.com/faceid-observability/faceid-exporter/internal/golden"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// sampleRows are books as a reader returns them: sorted, with and without
// rule ids, an unknown code and a code whose billing is unknown.
func sampleRows() []ledger.Row {
	rows := []ledger.Row{
		{Day: "2026-11-24", Channel: "app_sdk", Code: "0", Billable: "true", Count: 1523},
		{Day: "2026-11-24", Channel: "app_sdk", Code: "66660004", Billable: "true", Count: 17},
		{Day: "2026-11-24", Channel: "wechat_h5", Code: "0", Billable: "true", RuleID: "1", Count: 980},
		{Day: "2026-11-24", Channel: "wechat_h5", Code: "2007", Billable: "false", RuleID: "other", Count: 3},
		{Day: "2026-11-25", Channel: "nfc_server", Code: "unknown", Billable: "unknown", Count: 2},
		{Day: "2026-11-25", Channel: "pc_h5", Code: "-5008", Billable: "unknown", Count: 41},
		{Day: "2026-11-25", Channel: "wechat_miniprogram", Code: "0", Billable: "true", RuleID: "1", Count: 12045},
	}
	ledger.SortRows(rows)
	return rows
}

var sampleMeta = ledger.Meta{Stream: "FACEID", Group: "faceid-exporter", From: mustDay("2026-11-24"), To: mustDay("2026-11-25")}

func mustDay(s string) ledger.Day {
	d, err := ledger.ParseDay(s)
	if err != nil {
		panic(err)
	}
	return d
}

func TestWriteGolden(t *testing.T) {
	writers := []struct {
		name, ext string
		write     func(*bytes.Buffer, []ledger.Row) error
	}{
		{"csv", "csv", func(b *bytes.Buffer, rows []ledger.Row) error { return ledger.WriteCSV(b, rows) }},
		{"json", "json", func(b *bytes.Buffer, rows []ledger.Row) error { return ledger.WriteJSON(b, sampleMeta, rows) }},
		{"table", "txt", func(b *bytes.Buffer, rows []ledger.Row) error { return ledger.WriteTable(b, rows) }},
		{"table_no_rule_id", "txt", func(b *bytes.Buffer, rows []ledger.Row) error {
			var plain []ledger.Row
			for _, r := range rows {
				if r.RuleID == "" {
					plain = append(plain, r)
				}
			}
			return ledger.WriteTable(b, plain)
		}},
	}
	for _, w := range writers {
		for _, books := range []struct {
			name string
			rows []ledger.Row
		}{{"sample", sampleRows()}, {"empty", nil}} {
			t.Run(w.name+"/"+books.name, func(t *testing.T) {
				var b bytes.Buffer
				if err := w.write(&b, books.rows); err != nil {
					t.Fatal(err)
				}
				golden.Check(t, filepath.Join("testdata", books.name+"."+w.name+".golden."+w.ext), b.Bytes(), *update, "go test ./pkg/ledger -update")
			})
		}
	}
}

func TestWriteJSONDecodes(t *testing.T) {
	type row struct {
		Day, Channel, Code string
		Billable           *bool  // true, false or null (unknown)
		RuleID             string `json:"rule_id"`
		Count              uint64
	}
	type doc struct {
		Stream, Group, From, To string
		Rows                    []row
	}
	label := func(b *bool) string {
		if b == nil {
			return "unknown"
		}
		return strconv.FormatBool(*b)
	}
	tests := []struct {
		name string
		rows []ledger.Row
	}{{"sample", sampleRows()}, {"nil", nil}, {"empty", []ledger.Row{}}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := ledger.WriteJSON(&b, sampleMeta, tc.rows); err != nil {
				t.Fatal(err)
			}
			var raw map[string]json.RawMessage
			if err := json.Unmarshal(b.Bytes(), &raw); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, b.String())
			}
			if got := string(raw["rows"]); len(tc.rows) == 0 && got != "[]" {
				t.Errorf("rows is %s, want []", got)
			}
			var got doc
			if err := json.Unmarshal(b.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			rows := []ledger.Row{}
			for _, r := range got.Rows {
				rows = append(rows, ledger.Row{Day: r.Day, Channel: r.Channel, Code: r.Code, Billable: label(r.Billable), RuleID: r.RuleID, Count: r.Count})
			}
			want := tc.rows
			if len(tc.rows) == 0 {
				want = []ledger.Row{}
			}
			if got.Stream != "FACEID" || got.Group != "faceid-exporter" || got.From != "2026-11-24" || got.To != "2026-11-25" || !reflect.DeepEqual(rows, want) {
				t.Errorf("decoded %+v (rows %+v), want rows %+v", got, rows, want)
			}
		})
	}
}

func TestWriteCSVRefuses(t *testing.T) {
	ok := ledger.Row{Day: "2026-11-25", Channel: "app_sdk", Code: "0", Billable: "true", Count: 1}
	with := func(f func(*ledger.Row)) []ledger.Row {
		r := ok
		f(&r)
		return []ledger.Row{ok, r}
	}
	tests := []struct {
		name string
		rows []ledger.Row
		want string
	}{
		{"bad_billable", with(func(r *ledger.Row) { r.Billable = "yes" }), `write ledger csv: row 2: billable "yes": want true, false or unknown`},
		{"bad_day", with(func(r *ledger.Row) { r.Day = "25.11.2026" }), `write ledger csv: row 2: day "25.11.2026" is not YYYY-MM-DD: parsing time "25.11.2026" as "2006-01-02": cannot parse "25.11.2026" as "2006"`},
		{"empty_channel", with(func(r *ledger.Row) { r.Channel = "" }), "write ledger csv: row 2: channel is empty"},
		{"newline_in_rule_id", with(func(r *ledger.Row) { r.RuleID = "a\r\nb" }), `write ledger csv: row 2: rule_id "a\r\nb" has a control character`},
		{"same_key", with(func(r *ledger.Row) { r.Count = 7 }), "write ledger csv: row 2 has the key of row 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ledger.WriteCSV(&bytes.Buffer{}, tc.rows)
			if err == nil || err.Error() != tc.want {
				t.Errorf("error %v, want %s", err, tc.want)
			}
		})
	}
}

// invalidCSV maps each fixture under testdata/readcsv/invalid to the exact
// error ReadCSV gives.
var invalidCSV = map[string]string{
	"bare_quote":          `ledger csv: parse error on line 2, column 16: bare " in non-quoted-field`,
	"billable_case":       `ledger csv: line 2: billable "True": want true, false or unknown`,
	"billable_yes":        `ledger csv: line 2: billable "yes": want true, false or unknown`,
	"bom":                 `ledger csv: line 1: the file starts with a byte order mark: save it as UTF-8 without one`,
	"channel_empty":       `ledger csv: line 2: channel is empty`,
	"channel_newline":     `ledger csv: line 2: channel "app\nsdk" has a control character`,
	"channel_space":       `ledger csv: line 2: channel " app_sdk" starts or ends with white space`,
	"channel_utf8":        `ledger csv: line 2: channel "app_\xffsdk" is not valid UTF-8`,
	"code_empty":          `ledger csv: line 2: code is empty`,
	"count_empty":         `ledger csv: line 2: count "": want a whole number from 0 to 18446744073709551615, in decimal without sign or leading zeros`,
	"count_fraction":      `ledger csv: line 2: count "1.0": want a whole number from 0 to 18446744073709551615, in decimal without sign or leading zeros`,
	"count_leading_zero":  `ledger csv: line 2: count "01": want a whole number from 0 to 18446744073709551615, in decimal without sign or leading zeros`,
	"count_negative":      `ledger csv: line 2: count "-1": want a whole number from 0 to 18446744073709551615, in decimal without sign or leading zeros`,
	"count_overflow":      `ledger csv: line 2: count "18446744073709551616": want a whole number from 0 to 18446744073709551615, in decimal without sign or leading zeros`,
	"count_plus":          `ledger csv: line 2: count "+1": want a whole number from 0 to 18446744073709551615, in decimal without sign or leading zeros`,
	"day_empty":           `ledger csv: line 2: day "" is not YYYY-MM-DD: parsing time "" as "2006-01-02": cannot parse "" as "2006"`,
	"day_impossible":      `ledger csv: line 2: day "2026-02-30" is not YYYY-MM-DD: parsing time "2026-02-30": day out of range`,
	"day_slashes":         `ledger csv: line 2: day "2026/11/25" is not YYYY-MM-DD: parsing time "2026/11/25" as "2006-01-02": cannot parse "/11/25" as "-"`,
	"day_unpadded":        `ledger csv: line 2: day "2026-1-25" is not YYYY-MM-DD: parsing time "2026-1-25" as "2006-01-02": cannot parse "1-25" as "01"`,
	"duplicate_key":       `ledger csv: line 4 repeats the day, channel, code, billable and rule_id of line 2`,
	"empty":               `ledger csv: empty input: want the header line day,channel,code,billable,count,rule_id`,
	"fields_too_few":      `ledger csv: line 2: 5 fields, the header has 6`,
	"fields_too_many":     `ledger csv: line 2: 7 fields, the header has 6`,
	"header_case":         `ledger csv: line 1: header "Day,Channel,Code,Billable,Count": want it to start with day,channel,code,billable,count`,
	"header_order":        `ledger csv: line 1: header "day,code,channel,billable,count": want it to start with day,channel,code,billable,count`,
	"header_repeated":     `ledger csv: line 1: header column 7 "rule_id" repeats column 6`,
	"header_repeats_base": `ledger csv: line 1: header column 6 "day" repeats column 1`,
	"header_short":        `ledger csv: line 1: header "day,channel,code,billable": want it to start with day,channel,code,billable,count`,
	"header_unnamed":      `ledger csv: line 1: header column 6 has no name`,
	"rule_id_space":       `ledger csv: line 2: rule_id "r1 " starts or ends with white space`,
	"unterminated_quote":  `ledger csv: parse error on line 2, column 31: extraneous or missing " in quoted-field`,
}

func TestReadCSVInvalid(t *testing.T) {
	fixtures.Each(t, "testdata/readcsv/invalid", ".csv", invalidCSV, func(t *testing.T, path, want string) {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		rows, err := ledger.ReadCSV(f)
		if err == nil {
			t.Fatalf("read %d rows, want error %s", len(rows), want)
		}
		if err.Error() != want {
			t.Errorf("error:\n%s\nwant:\n%s", err, want)
		}
	})
}

func TestReadCSVValid(t *testing.T) {
	tests := []struct {
		name string
		want []ledger.Row
	}{
		{"five_columns", []ledger.Row{{Day: "2026-11-25", Channel: "app_sdk", Code: "0", Billable: "true", Count: 3}}},
		{"extra_columns_crlf", []ledger.Row{
			{Day: "2026-11-25", Channel: "app_sdk", Code: "0", Billable: "true", RuleID: "r1", Count: 3},
			{Day: "2026-11-26", Channel: "wechat_h5", Code: "2007", Billable: "false", Count: 0},
		}},
		{"quoted_no_final_newline", []ledger.Row{{Day: "2026-11-25", Channel: "pc,h5", Code: `a "b"`, Billable: "unknown", RuleID: "r,1", Count: 1<<64 - 1}}},
		{"header_only", []ledger.Row{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata/readcsv/valid", tc.name+".csv"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got, err := ledger.ReadCSV(f)
			if err != nil {
				t.Fatal(err)
			}
			if got == nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("rows %#v, want %#v", got, tc.want)
			}
		})
	}
}

// TestReadCSVGolden reads the CSV WriteCSV wrote for the sample books.
func TestReadCSVGolden(t *testing.T) {
	f, err := os.Open("testdata/sample.csv.golden.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := ledger.ReadCSV(f)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, sampleRows()) {
		t.Errorf("rows %+v, want %+v", got, sampleRows())
	}
}

// TestCSVRoundTrip checks that ReadCSV returns exactly the rows WriteCSV
// wrote, for random valid books whose names need quoting, are not ASCII, or
// are at the limits of a count.
func TestCSVRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 4))
	pieces := []string{"app_sdk", "wechat_h5", "0", "-5008", "a,b", `"q"`, "x y", "身份证", "é", "'", ";", "=1+2", "\\.", "other"}
	name := func(emptyOK bool) string {
		for {
			var b strings.Builder
			for n := rng.IntN(4); n >= 0; n-- {
				b.WriteString(pieces[rng.IntN(len(pieces))])
			}
			s := b.String()
			if s == "" && !emptyOK || strings.TrimSpace(s) != s {
				continue
			}
			return s
		}
	}
	counts := []uint64{0, 1, 9, 10, 1<<64 - 1, 1 << 32}
	for i := range 300 {
		n := rng.IntN(20)
		seen := map[ledger.Key]bool{}
		var rows []ledger.Row
		for len(rows) < n {
			d := ledger.Day(rng.IntN(80000) - 20000)
			r := ledger.Row{
				Day: d.String(), Channel: name(false), Code: name(false),
				Billable: []string{"true", "false", "unknown"}[rng.IntN(3)], RuleID: name(true),
				Count: counts[rng.IntN(len(counts))] + uint64(rng.IntN(2)),
			}
			if r.Count == 0 && rng.IntN(2) == 0 {
				r.Count = rng.Uint64()
			}
			k := ledger.Key{Day: d, Channel: r.Channel, Code: r.Code, Billable: r.Billable, RuleID: r.RuleID}
			if seen[k] {
				continue
			}
			seen[k] = true
			rows = append(rows, r)
		}
		var b bytes.Buffer
		if err := ledger.WriteCSV(&b, rows); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		got, err := ledger.ReadCSV(&b)
		if err != nil {
			t.Fatalf("case %d: %v\n%s", i, err, b.String())
		}
		if len(got) != len(rows) || (len(rows) > 0 && !reflect.DeepEqual(got, rows)) {
			t.Fatalf("case %d: read %+v, wrote %+v", i, got, rows)
		}
	}
}

// FuzzReadCSV feeds ReadCSV arbitrary bytes: it must never panic, and what it
// accepts WriteCSV must write again and ReadCSV read back unchanged.
func FuzzReadCSV(f *testing.F) {
	for _, dir := range []string{"testdata/readcsv/invalid", "testdata/readcsv/valid"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.csv"))
		if err != nil {
			f.Fatal(err)
		}
		for _, name := range files {
			b, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	if b, err := os.ReadFile("testdata/sample.csv.golden.csv"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, err := ledger.ReadCSV(bytes.NewReader(data))
		if err != nil {
			if rows != nil {
				t.Fatalf("error %v with %d rows", err, len(rows))
			}
			if !strings.HasPrefix(err.Error(), "ledger csv: ") {
				t.Fatalf("error %q does not say it is the ledger csv", err)
			}
			return
		}
		if rows == nil {
			t.Fatal("nil rows without an error")
		}
		var b bytes.Buffer
		if err := ledger.WriteCSV(&b, rows); err != nil {
			t.Fatalf("ReadCSV accepted rows WriteCSV refuses: %v", err)
		}
		again, err := ledger.ReadCSV(&b)
		if err != nil {
			t.Fatalf("ReadCSV refuses what WriteCSV wrote: %v\n%s", err, b.String())
		}
		if !reflect.DeepEqual(again, rows) {
			t.Fatalf("round trip changed the rows: %+v, then %+v", rows, again)
		}
	})
}

// TestRowDecodesBothEncodings: a Row decodes from the checkpoint's day-file
// encoding (billable a string) and from the API's (a boolean or null), and
// the day-file encoding it writes is unchanged.
func TestRowDecodesBothEncodings(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"string_true", `{"billable":"true","count":1}`, "true"},
		{"string_unknown", `{"billable":"unknown","count":1}`, "unknown"},
		{"bool_true", `{"billable":true,"count":1}`, "true"},
		{"bool_false", `{"billable":false,"count":1}`, "false"},
		{"null", `{"billable":null,"count":1}`, "unknown"},
		{"absent", `{"count":1}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r ledger.Row
			if err := json.Unmarshal([]byte(tc.in), &r); err != nil {
				t.Fatal(err)
			}
			if r.Billable != tc.want || r.Count != 1 {
				t.Errorf("%s decodes to %+v, want billable %q and count 1", tc.in, r, tc.want)
			}
		})
	}
	var r ledger.Row
	if err := json.Unmarshal([]byte(`{"billable":7}`), &r); err == nil {
		t.Error("billable 7 accepted")
	}
	b, err := json.Marshal(ledger.Row{Day: "2026-11-25", Channel: "app_sdk", Code: "0", Billable: "unknown", Count: 3})
	if err != nil || string(b) != `{"day":"2026-11-25","channel":"app_sdk","code":"0","billable":"unknown","rule_id":"","count":3}` {
		t.Errorf("the day-file encoding changed: %s %v", b, err)
	}
}
