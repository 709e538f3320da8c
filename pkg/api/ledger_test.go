package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/faceid-observability/faceid-exporter/pkg/api"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
)

// ledgerFake is a reader that records what it was asked.
type ledgerFake struct {
	calls [][2]ledger.Day
	rows  []ledger.Row
	err   error
}

func (f *ledgerFake) read(_ context.Context, from, to ledger.Day) ([]ledger.Row, error) {
	f.calls = append(f.calls, [2]ledger.Day{from, to})
	return append([]ledger.Row(nil), f.rows...), f.err
}

// ledgerServer serves the exporter's whole handler with src as its ledger.
func ledgerServer(t *testing.T, src api.LedgerSource) *httptest.Server {
	t.Helper()
	h, err := api.NewHandler(api.Options{Gatherer: prometheus.NewRegistry(), Ledger: src, Ready: func() (bool, string) { return true, "" }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func getFull(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func mustDay(t *testing.T, s string) ledger.Day {
	t.Helper()
	d, err := ledger.ParseDay(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

var apiLedgerRows = []ledger.Row{ // unsorted: the handler sorts
	{Day: "2026-11-25", Channel: "wechat_h5", Code: "0", Billable: "true", RuleID: "1", Count: 980},
	{Day: "2026-11-24", Channel: "app_sdk", Code: "0", Billable: "true", Count: 1523},
}

func TestLedgerServes(t *testing.T) {
	fake := &ledgerFake{rows: apiLedgerRows}
	srv := ledgerServer(t, api.LedgerSource{Stream: "FACEID", Group: "faceid-exporter", Read: fake.read})
	sorted := append([]ledger.Row(nil), apiLedgerRows...)
	ledger.SortRows(sorted)
	from, to := mustDay(t, "2026-11-24"), mustDay(t, "2026-11-25")
	var wantJSON, wantCSV bytes.Buffer
	if err := ledger.WriteJSON(&wantJSON, ledger.Meta{Stream: "FACEID", Group: "faceid-exporter", From: from, To: to}, sorted); err != nil {
		t.Fatal(err)
	}
	if err := ledger.WriteCSV(&wantCSV, sorted); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, query, contentType, body string
	}{
		{"json_by_default", "from=2026-11-24&to=2026-11-25", "application/json", wantJSON.String()},
		{"json", "from=2026-11-24&to=2026-11-25&format=json", "application/json", wantJSON.String()},
		{"csv", "from=2026-11-24&to=2026-11-25&format=csv", "text/csv; charset=utf-8", wantCSV.String()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake.calls = nil
			resp, body := getFull(t, srv.URL+"/api/v1/ledger?"+tc.query)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if got := resp.Header.Get("Content-Type"); got != tc.contentType {
				t.Errorf("Content-Type %q, want %q", got, tc.contentType)
			}
			if body != tc.body {
				t.Errorf("body:\n%s\nwant:\n%s", body, tc.body)
			}
			if len(fake.calls) != 1 || fake.calls[0] != [2]ledger.Day{from, to} {
				t.Errorf("reader calls %v, want one for %s..%s", fake.calls, from, to)
			}
		})
	}
	t.Run("csv_is_an_attachment", func(t *testing.T) {
		resp, _ := getFull(t, srv.URL+"/api/v1/ledger?from=2026-11-24&to=2026-11-25&format=csv")
		if got, want := resp.Header.Get("Content-Disposition"), `attachment; filename="ledger-2026-11-24-2026-11-25.csv"`; got != want {
			t.Errorf("Content-Disposition %q, want %q", got, want)
		}
	})
	t.Run("csv_reads_back", func(t *testing.T) {
		_, body := getFull(t, srv.URL+"/api/v1/ledger?from=2026-11-24&to=2026-11-25&format=csv")
		rows, err := ledger.ReadCSV(strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != len(sorted) || rows[0] != sorted[0] || rows[1] != sorted[1] {
			t.Errorf("read back %+v, want %+v", rows, sorted)
		}
	})
	t.Run("empty_rows_are_a_list", func(t *testing.T) {
		empty := ledgerServer(t, api.LedgerSource{Stream: "FACEID", Group: "g", Read: (&ledgerFake{}).read})
		_, body := getFull(t, empty.URL+"/api/v1/ledger?from=2026-11-24&to=2026-11-24")
		var doc map[string]json.RawMessage
		if err := json.Unmarshal([]byte(body), &doc); err != nil {
			t.Fatal(err)
		}
		if string(doc["rows"]) != "[]" {
			t.Errorf("rows %s, want []", doc["rows"])
		}
	})
	t.Run("longest_range", func(t *testing.T) {
		fake.calls = nil
		resp, body := getFull(t, srv.URL+"/api/v1/ledger?from=2025-10-22&to=2026-11-25")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		if n := int(fake.calls[0][1]-fake.calls[0][0]) + 1; n != api.MaxLedgerDays {
			t.Errorf("%d days asked for, want %d", n, api.MaxLedgerDays)
		}
	})
}

func TestLedgerRefuses(t *testing.T) {
	fake := &ledgerFake{rows: apiLedgerRows}
	srv := ledgerServer(t, api.LedgerSource{Stream: "FACEID", Group: "faceid-exporter", Read: fake.read})
	tests := []struct {
		name, query string
		status      int
		msg         string
	}{
		{"no_from", "to=2026-11-25", 400, "from is required: a Beijing day, YYYY-MM-DD"},
		{"no_to", "from=2026-11-25", 400, "to is required: a Beijing day, YYYY-MM-DD"},
		{"empty_from", "from=&to=2026-11-25", 400, "from is required: a Beijing day, YYYY-MM-DD"},
		{"from_not_a_day", "from=2026-11-31&to=2026-12-01", 400, `from: day "2026-11-31" is not YYYY-MM-DD: parsing time "2026-11-31": day out of range`},
		{"to_with_time", "from=2026-11-24&to=2026-11-25T00:00:00Z", 400, `to: day "2026-11-25T00:00:00Z" is not YYYY-MM-DD: parsing time "2026-11-25T00:00:00Z": extra text: "T00:00:00Z"`},
		{"to_before_from", "from=2026-11-25&to=2026-11-24", 400, "to 2026-11-24 is before from 2026-11-25"},
		{"range_too_long", "from=2025-10-21&to=2026-11-25", 400, "from 2025-10-21 to 2026-11-25 is 401 days: ask for at most 400 at a time"},
		{"bad_format", "from=2026-11-24&to=2026-11-25&format=table", 400, `format "table": want json or csv`},
		{"repeated", "from=2026-11-24&from=2026-11-23&to=2026-11-25", 400, `parameter "from" is given 2 times`},
		{"unknown_parameter", "from=2026-11-24&to=2026-11-25&group=other", 400, `unknown parameter "group": want from, to and format`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake.calls = nil
			resp, body := getFull(t, srv.URL+"/api/v1/ledger?"+tc.query)
			checkAPIError(t, resp, body, tc.status, tc.msg)
			if len(fake.calls) != 0 {
				t.Errorf("the reader was called: %v", fake.calls)
			}
		})
	}
	t.Run("core_nats_mode", func(t *testing.T) {
		core := ledgerServer(t, api.LedgerSource{})
		resp, body := getFull(t, core.URL+"/api/v1/ledger?from=2026-11-24&to=2026-11-25")
		checkAPIError(t, resp, body, http.StatusNotImplemented, "the ledger needs --jetstream.stream")
	})
	t.Run("read_fails", func(t *testing.T) {
		failing := ledgerServer(t, api.LedgerSource{Stream: "FACEID", Group: "g", Read: (&ledgerFake{err: errors.New("nats: timeout")}).read})
		resp, body := getFull(t, failing.URL+"/api/v1/ledger?from=2026-11-24&to=2026-11-25")
		checkAPIError(t, resp, body, http.StatusInternalServerError, "read the ledger: nats: timeout")
	})
	t.Run("no_books_yet", func(t *testing.T) {
		none := &ledgerFake{err: fmt.Errorf("%w for stream FACEID and group g in bucket faceid-checkpoints", ledger.ErrNoBooks)}
		early := ledgerServer(t, api.LedgerSource{Stream: "FACEID", Group: "g", Read: none.read})
		resp, body := getFull(t, early.URL+"/api/v1/ledger?from=2026-11-24&to=2026-11-25")
		checkAPIError(t, resp, body, http.StatusServiceUnavailable, "no books committed yet: no checkpoint for stream FACEID and group g in bucket faceid-checkpoints")
	})
	t.Run("rows_invalid", func(t *testing.T) {
		bad := &ledgerFake{rows: []ledger.Row{{Day: "2026-11-24", Channel: "", Code: "0", Billable: "true", Count: 1}}}
		broken := ledgerServer(t, api.LedgerSource{Stream: "FACEID", Group: "g", Read: bad.read})
		resp, body := getFull(t, broken.URL+"/api/v1/ledger?from=2026-11-24&to=2026-11-25&format=csv")
		checkAPIError(t, resp, body, http.StatusInternalServerError, "write ledger csv: row 1: channel is empty")
	})
}

func checkAPIError(t *testing.T, resp *http.Response, body string, status int, msg string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status %d, want %d: %s", resp.StatusCode, status, body)
	}
	if got := resp.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type %q", got)
	}
	var e struct{ Status, Error string }
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("error body is not JSON: %v: %s", err, body)
	}
	if e.Status != "error" || e.Error != msg {
		t.Errorf("error %q (status %q), want %q", e.Error, e.Status, msg)
	}
}
