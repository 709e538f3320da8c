package api_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/faceid-observability/faceid-exporter/pkg/api"
	"github.com/faceid-observability/faceid-exporter/pkg/books"
	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/metrics"
)

type fixture struct {
	srv    *httptest.Server
	events *api.Events
	m      *metrics.Metrics
	b      *books.Books
	c      *classify.Classifier
	ready  bool
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	cat, err := classify.Default()
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{events: api.NewEvents(api.Sizes{BillableFailure: 3, HighRisk: 5, UnknownCode: 5})}
	reg := prometheus.NewRegistry()
	f.m = metrics.New(reg, cat, metrics.Options{})
	f.c = classify.New(cat, classify.Options{})
	l := books.NewLayout(cat, books.LayoutOptions{})
	f.b = books.New(l, books.RulesOptions{})
	bc := metrics.NewBooks(reg, metrics.Source{Layout: l, Owned: func() []metrics.Partition { return []metrics.Partition{{ID: 0, Books: f.b}} }}, nil)
	var catJSON bytes.Buffer
	if err := cat.WriteJSON(&catJSON); err != nil {
		t.Fatal(err)
	}
	h, err := api.NewHandler(api.Options{
		Events: f.events, Gatherer: reg, CatalogJSON: bytes.TrimSpace(catJSON.Bytes()),
		Summary: bc.Summary, Since: time.Unix(1700000000, 0),
		Ready:     func() (bool, string) { return f.ready, "not connected to nats" },
		KeepAlive: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) feed(t *testing.T, msgs ...string) {
	t.Helper()
	var r classify.Result
	for _, msg := range msgs {
		if err := f.c.Classify([]byte(msg), nil, time.Now(), &r); err != nil {
			t.Fatal(err)
		}
		f.b.Apply(&r)
		f.events.Observe(&r, time.Now().UnixNano())
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type eventsResponse struct {
	Status string `json:"status"`
	Error  string `json:"error"`
	Data   struct {
		Kind   string           `json:"kind"`
		Events []map[string]any `json:"events"`
	} `json:"data"`
}

func TestEvents(t *testing.T) {
	f := newFixture(t)
	secret := `"app_id":"app-secret","req_id":"req-secret","name":"张三","id_card":"110101199003070000"`
	var msgs []string
	for i := 0; i < 5; i++ { // more than the ring of 3
		msgs = append(msgs, fmt.Sprintf(`{"id":"bf%d","ts":"2026-11-26T10:15:3%d.123+08:00","channel":"app_sdk","code":"66660004",%s}`, i, i, secret))
	}
	msgs = append(msgs,
		`{"id":"hr1","channel":"wechat_h5","code":"0","risk":{"device_level":4,"risk_level":1,"device_tags":["202"],"risk_tags":["02"],"platform":"android"}}`,
		`{"id":"uk1","channel":"eid","code":"77777"}`,
		`{"id":"ok1","channel":"eid","code":"0"}`,
	)
	f.feed(t, msgs...)

	tests := []struct {
		name, query string
		code        int
		ids         []string
		errPart     string
	}{
		{"billable_failure_newest_first_bounded", "kind=billable_failure", 200, []string{"bf4", "bf3", "bf2"}, ""},
		{"limit", "kind=billable_failure&limit=1", 200, []string{"bf4"}, ""},
		{"high_risk", "kind=high_risk", 200, []string{"hr1"}, ""},
		{"unknown_code", "kind=unknown_code", 200, []string{"uk1"}, ""},
		{"bad_kind", "kind=everything", 400, nil, "kind"},
		{"no_kind", "", 400, nil, "kind"},
		{"limit_zero", "kind=high_risk&limit=0", 400, nil, "limit"},
		{"limit_over_ring", "kind=high_risk&limit=6", 400, nil, "limit"},
		{"limit_not_number", "kind=high_risk&limit=x", 400, nil, "limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, f.srv.URL+"/api/v1/events?"+tc.query)
			if code != tc.code {
				t.Fatalf("status %d, want %d: %s", code, tc.code, body)
			}
			var resp eventsResponse
			if err := json.Unmarshal([]byte(body), &resp); err != nil {
				t.Fatal(err)
			}
			if tc.code != 200 {
				if resp.Status != "error" || !strings.Contains(resp.Error, tc.errPart) {
					t.Errorf("error response %s", body)
				}
				return
			}
			var ids []string
			for _, e := range resp.Data.Events {
				ids = append(ids, e["id"].(string))
			}
			if fmt.Sprint(ids) != fmt.Sprint(tc.ids) {
				t.Errorf("ids %v, want %v", ids, tc.ids)
			}
			for _, leak := range []string{"secret", "张三", "110101", "app_id", "req_id"} {
				if strings.Contains(body, leak) {
					t.Errorf("response leaks %q: %s", leak, body)
				}
			}
		})
	}
	// The shape of one event, per the contract.
	_, body := get(t, f.srv.URL+"/api/v1/events?kind=high_risk")
	var resp eventsResponse
	_ = json.Unmarshal([]byte(body), &resp)
	ev := resp.Data.Events[0]
	risk := ev["risk"].(map[string]any)
	if ev["channel"] != "wechat_h5" || ev["family"] != "wechat" || ev["code"] != "0" || ev["known"] != true || ev["outcome"] != "success" ||
		risk["level"] != "high" || risk["device_level"] != 4.0 || risk["risk_level"] != 1.0 || risk["platform"] != "android" ||
		fmt.Sprint(risk["device_tags"]) != "[202]" || fmt.Sprint(risk["identity_tags"]) != "[02]" {
		t.Errorf("event %s", body)
	}
	_, body = get(t, f.srv.URL+"/api/v1/events?kind=unknown_code")
	_ = json.Unmarshal([]byte(body), &resp)
	ev = resp.Data.Events[0]
	if ev["code"] != "unknown" || ev["raw_code"] != "77777" || ev["known"] != false || ev["meaning"] != "" || ev["billable"] != nil {
		t.Errorf("unknown-code event %s", body)
	}
	if risk := ev["risk"].(map[string]any); risk["device_level"] != nil || risk["level"] != "unknown" {
		t.Errorf("absent levels not null: %s", body)
	}
}

func TestHealthReadyLandingCatalogSummary(t *testing.T) {
	f := newFixture(t)
	if code, _ := get(t, f.srv.URL+"/-/healthy"); code != 200 {
		t.Errorf("healthy: %d", code)
	}
	if code, body := get(t, f.srv.URL+"/-/ready"); code != 503 || !strings.Contains(body, "not connected") {
		t.Errorf("ready while disconnected: %d %s", code, body)
	}
	f.ready = true
	if code, _ := get(t, f.srv.URL+"/-/ready"); code != 200 {
		t.Errorf("ready: %d", code)
	}
	code, body := get(t, f.srv.URL+"/")
	for _, link := range []string{"metrics", "api/v1/events?kind=billable_failure", "api/v1/catalog", "api/v1/stream", "-/healthy", "-/ready"} {
		if !strings.Contains(body, link) {
			t.Errorf("landing page (%d) has no link to %s", code, link)
		}
	}
	if code, _ := get(t, f.srv.URL+"/nope"); code != 404 {
		t.Errorf("/nope: %d", code)
	}
	code, body = get(t, f.srv.URL+"/api/v1/catalog")
	var cat struct {
		Status string         `json:"status"`
		Data   map[string]any `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &cat); err != nil || code != 200 || cat.Status != "success" || len(cat.Data) == 0 {
		t.Errorf("catalog: %d %v %.200s", code, err, body)
	}
	f.feed(t, `{"channel":"app_sdk","code":"0"}`, `{"channel":"app_sdk","code":"0"}`)
	_, body = get(t, f.srv.URL+"/api/v1/summary")
	var sum struct {
		Data struct {
			Since  string `json:"since"`
			Covers string `json:"covers"`
			Rows   []struct {
				Channel, Outcome string
				Billable         *bool // true, false or null
				Count            uint64
			} `json:"rows"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &sum); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range sum.Data.Rows {
		if r.Channel == "app_sdk" && r.Outcome == "success" && r.Billable != nil && *r.Billable {
			found = r.Count == 2
		}
	}
	if !found || sum.Data.Since != "2023-11-14T22:13:20Z" || sum.Data.Covers != "process" || len(sum.Data.Rows) != 54 {
		t.Errorf("summary: %s", body)
	}
	if code, _ := get(t, f.srv.URL+"/metrics"); code != 200 {
		t.Errorf("metrics: %d", code)
	}
}

func TestStream(t *testing.T) {
	f := newFixture(t)
	resp, err := http.Get(f.srv.URL + "/api/v1/stream?kind=high_risk")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	if l := <-lines; l != ": connected" {
		t.Fatalf("first line %q", l)
	}
	f.feed(t, `{"id":"low","channel":"app_sdk","code":"0"}`, `{"id":"high","channel":"app_sdk","code":"0","risk":{"device_level":4}}`)
	var data []string
	keepalive := false
	deadline := time.After(5 * time.Second)
	for len(data) < 1 || !keepalive {
		select {
		case l := <-lines:
			if strings.HasPrefix(l, "data: ") {
				data = append(data, l)
			}
			keepalive = keepalive || l == ": keepalive"
		case <-deadline:
			t.Fatalf("got %v, keepalive %v", data, keepalive)
		}
	}
	if len(data) != 1 || !strings.Contains(data[0], `"id":"high"`) {
		t.Errorf("stream data %v, want only the high-risk event", data)
	}
	if code, _ := get(t, f.srv.URL+"/api/v1/stream?kind=bogus"); code != 400 {
		t.Errorf("bad kind: %d", code)
	}
}

func TestParseKind(t *testing.T) {
	for _, tc := range []struct {
		s   string
		all bool
		ok  bool
	}{{"billable_failure", false, true}, {"all", false, false}, {"all", true, true}, {"", true, false}} {
		if _, ok := api.ParseKind(tc.s, tc.all); ok != tc.ok {
			t.Errorf("ParseKind(%q, %v) ok = %v", tc.s, tc.all, ok)
		}
	}
}

// TestPprof: /debug/pprof/ answers only with Options.Pprof (--web.enable-pprof),
// and the landing page links it only then.
func TestPprof(t *testing.T) {
	for _, tc := range []struct {
		name string
		on   bool
	}{{"off", false}, {"on", true}} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := api.NewHandler(api.Options{
				Events: api.NewEvents(api.Sizes{}), Gatherer: prometheus.NewRegistry(), CatalogJSON: []byte("{}"),
				Summary: func() []metrics.SummaryRow { return nil },
				Ready:   func() (bool, string) { return true, "" },
				Pprof:   tc.on,
			})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			wantCode := map[bool]int{false: 404, true: 200}[tc.on]
			code, body := get(t, srv.URL+"/debug/pprof/")
			if code != wantCode || tc.on != strings.Contains(body, "goroutine") {
				t.Errorf("/debug/pprof/: %d (want %d) %.200s", code, wantCode, body)
			}
			code, body = get(t, srv.URL+"/debug/pprof/profile?seconds=1")
			if code != wantCode || tc.on != strings.HasPrefix(body, "\x1f\x8b") {
				t.Errorf("/debug/pprof/profile: %d (want %d), gzip body %v", code, wantCode, strings.HasPrefix(body, "\x1f\x8b"))
			}
			if _, body := get(t, srv.URL+"/"); tc.on != strings.Contains(body, "debug/pprof") {
				t.Errorf("landing page links /debug/pprof: %v, want %v", strings.Contains(body, "debug/pprof"), tc.on)
			}
		})
	}
}
