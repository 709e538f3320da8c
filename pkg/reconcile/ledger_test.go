package reconcile

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/faceid-observability/faceid-exporter/internal/fixtures"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
)

func TestLedgerFileRange(t *testing.T) {
	rows, err := LedgerFile{Path: "testdata/scenario/ledger.csv"}.Rows(context.Background(), day(t, "2024-03-02"), day(t, "2024-03-03"))
	if err != nil {
		t.Fatal(err)
	}
	want := []ledger.Row{
		{Day: "2024-03-02", Channel: "eid", Code: "0", Billable: "true", RuleID: "2", Count: 1},
		{Day: "2024-03-02", Channel: "wechat_h5", Code: "0", Billable: "true", RuleID: "1", Count: 3},
		{Day: "2024-03-03", Channel: "wechat_h5", Code: "0", Billable: "true", RuleID: "1", Count: 2},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("rows\n%+v\nwant\n%+v", rows, want)
	}
}

func TestLedgerCSVInvalid(t *testing.T) {
	tests := map[string]string{
		"empty":             ": empty: want the header day,channel,code,billable,count,rule_id",
		"bad_header":        ":1: header day,channel,code,billable,rule_id,count, want day,channel,code,billable,count,rule_id",
		"wrong_field_count": ": record on line 2: wrong number of fields",
		"bad_day":           `:2: day: "2024-3-1" is not a YYYY-MM-DD day`,
		"empty_channel":     ":2: channel: empty",
		"empty_code":        ":2: code: empty",
		"bad_billable":      `:2: billable: "yes" is not true, false or unknown`,
		"count_zero":        `:2: count: "0" is not a positive integer`,
		"count_not_integer": `:2: count: "1.5" is not a positive integer`,
		"duplicate_row":     ":3: row: repeats line 2 (same day, channel, code, billable and rule_id)",
		"bare_quote":        `: parse error on line 2, column 32: bare " in non-quoted-field`,
	}
	fixtures.Each(t, filepath.Join("testdata", "ledger", "invalid"), ".csv", tests, func(t *testing.T, name, want string) {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		_, err = ReadLedgerCSV(name, f)
		if err == nil || err.Error() != name+want {
			t.Errorf("error\n%v\nwant\n%s", err, name+want)
		}
	})
}
