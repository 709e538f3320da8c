package tencentbill

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	lastPage = `{"Response": {"HasNextPage": false, "NextCursor": 0, "RequestId": "r", "WeChatBillDetails": []}}`
	morePage = `{"Response": {"HasNextPage": true, "NextCursor": 5, "RequestId": "r", "WeChatBillDetails": []}}`
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestDirDay(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"2024-03-01.1.json": morePage, "2024-03-01.2.json": lastPage,
		"2024-03-02.1.json": lastPage,
		"README.txt":        "not a page",
	})
	if err := os.Mkdir(filepath.Join(dir, "old.json"), 0o750); err != nil {
		t.Fatal(err)
	}
	d, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		day   string
		ok    bool
		pages int
	}{{"2024-03-01", true, 2}, {"2024-03-02", true, 1}, {"2024-03-03", false, 0}}
	for _, tc := range tests {
		t.Run(tc.day, func(t *testing.T) {
			pages, ok, err := d.Day(context.Background(), mustDay(t, tc.day))
			if err != nil {
				t.Fatal(err)
			}
			if ok != tc.ok || len(pages) != tc.pages {
				t.Errorf("ok %v, %d pages; want %v, %d", ok, len(pages), tc.ok, tc.pages)
			}
		})
	}
}

func TestDirInvalid(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		openErr string // error of OpenDir, or of Day 2024-03-01
		dayErr  string
	}{
		{"bad_name", map[string]string{"2024-03-01.json": lastPage}, "2024-03-01.json is not named YYYY-MM-DD.N.json (the requested date, the page from 1)", ""},
		{"page_zero", map[string]string{"2024-03-01.0.json": lastPage}, "2024-03-01.0.json is not named YYYY-MM-DD.N.json (the requested date, the page from 1)", ""},
		{"not_a_day", map[string]string{"2024-02-30.1.json": lastPage}, `2024-02-30.1.json: "2024-02-30" is not a calendar day`, ""},
		{"page_gap", map[string]string{"2024-03-01.1.json": morePage, "2024-03-01.3.json": lastPage}, "", "2024-03-01.2.json is missing (2024-03-01.3.json exists)"},
		{"no_first_page", map[string]string{"2024-03-01.2.json": lastPage}, "", "2024-03-01.1.json is missing (2024-03-01.2.json exists)"},
		{"next_page_missing", map[string]string{"2024-03-01.1.json": morePage}, "", "2024-03-01.1.json: Response.HasNextPage: true, but 2024-03-01.2.json is missing"},
		{"page_after_last", map[string]string{"2024-03-01.1.json": lastPage, "2024-03-01.2.json": lastPage}, "", "2024-03-01.1.json: Response.HasNextPage: false, but 2024-03-01.2.json exists"},
		{"bad_body", map[string]string{"2024-03-01.1.json": `{"Response": {}}`}, "", "2024-03-01.1.json: Response.HasNextPage: missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, tc.files)
			d, err := OpenDir(dir)
			if tc.openErr != "" {
				if err == nil || !strings.HasSuffix(err.Error(), tc.openErr) {
					t.Fatalf("OpenDir error %v, want …%s", err, tc.openErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = d.Day(context.Background(), mustDay(t, "2024-03-01"))
			if err == nil || !strings.HasSuffix(err.Error(), tc.dayErr) {
				t.Fatalf("Day error %v, want …%s", err, tc.dayErr)
			}
		})
	}
	if _, err := OpenDir(filepath.Join(t.TempDir(), "none")); err == nil || !strings.HasPrefix(err.Error(), "bill dir: open ") {
		t.Errorf("missing dir: %v", err)
	}
}

func TestReadSecretFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ name, content, want, err string }{
		{"newline", "AKIDabc\n", "AKIDabc", ""},
		{"crlf", "AKIDabc\r\n", "AKIDabc", ""},
		{"empty", "\n", "", "tencent cloud secret id file " + filepath.Join(dir, "empty") + " is empty"},
		{"two_lines", "AKIDabc\nsecond\n", "", "tencent cloud secret id file " + filepath.Join(dir, "two_lines") + " holds more than one line or spaces"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name)
			if err := os.WriteFile(p, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := ReadSecretFile(p, "secret id")
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error %v, want %s", err, tc.err)
				}
				if strings.Contains(err.Error(), "second") {
					t.Error("the error shows the file's content")
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v", got, err)
			}
		})
	}
}
