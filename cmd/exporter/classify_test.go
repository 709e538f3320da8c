package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faceid-observability/faceid-exporter/internal/golden"
)

var update = flag.Bool("update", false, "rewrite golden files and docs/codes.md")

// fixedNow is the time of receipt used by tests, for events without ts.
var fixedNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// runCLI runs the exporter command line with stdin and a fixed clock.
func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = runMain(args, env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, now: func() time.Time { return fixedNow }})
	return code, out.String(), errb.String()
}

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	golden.Check(t, path, []byte(got), *update, "go test ./cmd/exporter -update")
}

func TestClassifyGolden(t *testing.T) {
	code, out, errOut := runCLI(t, "", "classify", "testdata/classify/input.jsonl")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	checkGolden(t, "testdata/classify/output.golden.jsonl", out)
	checkGolden(t, "testdata/classify/summary.golden.txt", errOut)

	in, err := os.ReadFile("testdata/classify/input.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	inLines := strings.Split(strings.TrimSuffix(string(in), "\n"), "\n")
	outLines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(inLines) != len(outLines) {
		t.Fatalf("%d input lines, %d output lines: want exactly one per input line", len(inLines), len(outLines))
	}
	for i, l := range outLines {
		var v struct {
			Line  int    `json:"line"`
			Error string `json:"error"`
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("output line %d is not JSON: %v", i+1, err)
		}
		if v.Line != i+1 {
			t.Errorf("output line %d says line %d", i+1, v.Line)
		}
	}
	if strings.Contains(out, "张三") || strings.Contains(out, "110101199003071234") {
		t.Error("personal data from unknown fields leaked into the output")
	}
}

func TestClassifyKeepsGoing(t *testing.T) {
	huge := `{"channel":"app_sdk","code":"0","pad":"` + strings.Repeat("x", 70<<10) + `"}`
	input := strings.Join([]string{
		`{"channel":"app_sdk","code":"0"}`,
		huge,
		`{"channel":"app_sdk","code":"66660004"}`,
		`{broken`,
		`{"channel":"pc_h5","code":0}`,
	}, "\n") // no final newline: the last line still counts
	code, out, errOut := runCLI(t, input, "classify")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("got %d output lines, want 5:\n%s", len(lines), out)
	}
	if !strings.HasPrefix(lines[1], `{"line":2,"error":"oversize: `) {
		t.Errorf("line 2: %s", lines[1])
	}
	if !strings.HasPrefix(lines[3], `{"line":4,"error":"invalid_json: `) {
		t.Errorf("line 4: %s", lines[3])
	}
	for _, i := range []int{0, 2, 4} {
		if !strings.Contains(lines[i], `"known":true`) {
			t.Errorf("line %d not classified: %s", i+1, lines[i])
		}
	}
	if !strings.Contains(errOut, "classified 3 lines, rejected 2 (invalid_json 1, oversize 1)") {
		t.Errorf("summary: %s", errOut)
	}
}

func TestClassifyAcrossFiles(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.jsonl")
	b := filepath.Join(dir, "b.jsonl")
	os.WriteFile(a, []byte(`{"id":"x","channel":"nfc_server","code":0,"req_id":"R","ts":"2026-11-26T10:00:00Z"}`+"\n"), 0o644)
	os.WriteFile(b, []byte(`{"id":"x","channel":"nfc_server","code":0,"req_id":"R","ts":"2026-11-26T10:00:00Z"}`+"\n"+
		`{"id":"y","channel":"nfc_server","code":0,"req_id":"R","ts":"2026-11-26T10:01:00Z"}`+"\n"), 0o644)
	code, out, errOut := runCLI(t, "", "classify", a, b)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], `"line":2`) || !strings.Contains(lines[1], `"duplicate":true`) ||
		!strings.Contains(lines[2], `"billing_rule":"req_id_repeat"`) || !strings.Contains(lines[0], `"billable":true`) {
		t.Fatalf("rules must hold across files:\n%s", out)
	}
	if code, _, errOut := runCLI(t, "", "classify", filepath.Join(dir, "missing.jsonl")); code != 1 || !strings.Contains(errOut, "missing.jsonl") {
		t.Errorf("a missing file: exit %d, %s", code, errOut)
	}
}

// TestCodesDoc fails when docs/codes.md is not what `exporter catalog` prints.
func TestCodesDoc(t *testing.T) {
	code, out, errOut := runCLI(t, "", "catalog", "--format", "markdown")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	checkGolden(t, "../../docs/codes.md", out)
}

func TestCatalogFormats(t *testing.T) {
	t.Run("json", func(t *testing.T) {
		code, out, errOut := runCLI(t, "", "catalog", "--format", "json")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		var v struct {
			Codes []struct {
				Family, Code   string
				Billable       *bool
				BillableBefore *bool `json:"billable_before"`
			}
			Families []struct{ Channels []string }
		}
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatal(err)
		}
		if len(v.Codes) != 130 || len(v.Families) != 5 {
			t.Fatalf("%d codes, %d families", len(v.Codes), len(v.Families))
		}
		for _, c := range v.Codes {
			if c.Family == "wechat" && c.Code == "2007" && (c.BillableBefore == nil || !*c.BillableBefore || c.Billable == nil || *c.Billable) {
				t.Errorf("2007 billing in JSON: %+v", c)
			}
			if c.Family == "willingness" && c.Code == "0" && c.Billable != nil {
				t.Errorf("willingness success billing must be null (unknown), got %v", *c.Billable)
			}
		}
	})
	t.Run("csv", func(t *testing.T) {
		code, out, _ := runCLI(t, "", "catalog", "--format", "csv")
		rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		if code != 0 || err != nil {
			t.Fatalf("exit %d, %v", code, err)
		}
		if len(rows) != 131 || rows[0][0] != "family" {
			t.Fatalf("%d rows", len(rows))
		}
	})
	t.Run("bad_format", func(t *testing.T) {
		if code, _, errOut := runCLI(t, "", "catalog", "--format", "xml"); code != 2 || !strings.Contains(errOut, "xml") {
			t.Errorf("exit %d: %s", code, errOut)
		}
	})
	t.Run("overrides", func(t *testing.T) {
		dir := t.TempDir()
		good := filepath.Join(dir, "good.yaml")
		os.WriteFile(good, []byte("version: 1\ncodes:\n  - {family: sdk, code: 66660099, category: paas, billable: false, meaning: 自定义}\n"), 0o644)
		code, out, errOut := runCLI(t, "", "--catalog.file", good, "catalog", "--format", "csv")
		if code != 0 || !strings.Contains(out, "sdk,66660099,paas,false,override") {
			t.Fatalf("exit %d: %s %s", code, errOut, out)
		}
		bad := filepath.Join(dir, "bad.yaml")
		os.WriteFile(bad, []byte("version: 1\ncodes:\n  - {family: sdk, code: 1, category: paas, billable: maybe, meaning: x}\n"), 0o644)
		code, _, errOut = runCLI(t, "", "--catalog.file", bad, "classify")
		if code != 1 || !strings.Contains(errOut, bad+`:3: field "billable": must be true, false or unknown, got "maybe"`) {
			t.Fatalf("exit %d: %s", code, errOut)
		}
	})
}
