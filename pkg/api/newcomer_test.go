package api_test

import (
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestLandingPageLinksEveryEndpoint reads the routes NewHandler registers
// (from its source, so that a new route cannot be missed) and finds a link
// to each on the landing page.
func TestLandingPageLinksEveryEndpoint(t *testing.T) {
	src, err := os.ReadFile("api.go")
	if err != nil {
		t.Fatal(err)
	}
	routes := regexp.MustCompile(`mux\.Handle(?:Func)?\("GET (/[^"{ ]*)"`).FindAllStringSubmatch(string(src), -1)
	if len(routes) < 7 {
		t.Fatalf("found %d GET routes in api.go, expected at least 7: has the registration changed?", len(routes))
	}
	f := newFixture(t)
	code, page := get(t, f.srv.URL+"/")
	if code != http.StatusOK {
		t.Fatalf("/: %d", code)
	}
	for _, r := range routes {
		path := r[1]
		if path == "/" || strings.HasPrefix(path, "/debug/pprof/") {
			continue // pprof: only with Options.Pprof, whose index the page then links (TestPprof)
		}
		if !strings.Contains(page, `href="`+strings.TrimPrefix(path, "/")) && !strings.Contains(page, `href="`+path) {
			t.Errorf("the landing page does not link %s", path)
		}
	}
	// The telemetry path is registered from a variable.
	if !strings.Contains(page, "metrics") {
		t.Error("the landing page does not link the metrics")
	}
}

// TestBillableIsBooleanOrNull checks billable in every API answer that
// carries one: events and summary rows are true, false or null, never a
// string.
func TestBillableIsBooleanOrNull(t *testing.T) {
	f := newFixture(t)
	f.feed(t, `{"channel":"app_sdk","code":"0"}`, `{"channel":"app_sdk","code":"-5001"}`, `{"channel":"eid","code":"77777"}`)
	seen := map[string]int{}
	check := func(where string, v any) {
		switch v.(type) {
		case bool, nil:
			seen[where]++
		default:
			t.Errorf("%s: billable is %T %v, want a boolean or null", where, v, v)
		}
	}
	for _, kind := range []string{"billable_failure", "unknown_code", "high_risk"} {
		_, body := get(t, f.srv.URL+"/api/v1/events?kind="+kind)
		var resp struct {
			Data struct {
				Events []map[string]any `json:"events"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(body), &resp); err != nil {
			t.Fatal(err)
		}
		for _, e := range resp.Data.Events {
			check("events", e["billable"])
		}
	}
	_, body := get(t, f.srv.URL+"/api/v1/summary")
	var sum struct {
		Data struct {
			Covers, Description string
			Rows                []map[string]any
		}
	}
	if err := json.Unmarshal([]byte(body), &sum); err != nil {
		t.Fatal(err)
	}
	for _, r := range sum.Data.Rows {
		check("summary", r["billable"])
	}
	if seen["events"] < 2 || seen["summary"] < 3 {
		t.Errorf("billable values checked: %v; the fixture should give events and summary rows", seen)
	}
	if sum.Data.Covers == "" || !strings.Contains(sum.Data.Description, "since it started") {
		t.Errorf("the summary does not say what its counts cover: %s", body)
	}
}
