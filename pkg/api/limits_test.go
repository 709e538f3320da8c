package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
	"github.com/faceid-observability/faceid-exporter/pkg/api"
	"github.com/faceid-observability/faceid-exporter/pkg/metrics"
)

// blocker holds requests inside the handler until released, and says how
// many are inside.
type blocker struct {
	mu      sync.Mutex
	inside  int
	release chan struct{}
}

func newBlocker() *blocker { return &blocker{release: make(chan struct{})} }

func (b *blocker) hold() {
	b.mu.Lock()
	b.inside++
	b.mu.Unlock()
	<-b.release
}

func (b *blocker) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.inside
}

// blockingGatherer is a Gatherer whose Gather waits on a blocker.
type blockingGatherer struct{ b *blocker }

func (g blockingGatherer) Gather() ([]*dto.MetricFamily, error) { g.b.hold(); return nil, nil }

type limitRig struct {
	srv              *httptest.Server
	reg              *prometheus.Registry
	scrape, apiBlock *blocker
}

func newLimitRig(t *testing.T, o api.Options) *limitRig {
	t.Helper()
	r := &limitRig{reg: prometheus.NewRegistry(), scrape: newBlocker(), apiBlock: newBlocker()}
	o.Events = api.NewEvents(api.Sizes{BillableFailure: 3, HighRisk: 3, UnknownCode: 3})
	o.Gatherer = blockingGatherer{r.scrape}
	o.CatalogJSON = []byte(`{}`)
	o.Summary = func() []metrics.SummaryRow { r.apiBlock.hold(); return nil }
	o.Ready = func() (bool, string) { return true, "" }
	o.Registerer = r.reg
	h, err := api.NewHandler(o)
	if err != nil {
		t.Fatal(err)
	}
	r.srv = httptest.NewServer(h)
	t.Cleanup(func() {
		r.srv.CloseClientConnections()
		r.srv.Close()
	})
	return r
}

// fetch GETs url and returns the status code and the body.
func fetch(t *testing.T, url string) (int, string) {
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
	return resp.StatusCode, string(b)
}

// getAsync starts a GET and returns a channel with its status code.
func getAsync(t *testing.T, url string) <-chan int {
	codes := make(chan int, 1)
	go func() {
		resp, err := http.Get(url)
		if err != nil {
			codes <- -1
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes <- resp.StatusCode
	}()
	return codes
}

// openStream connects a live-stream client and waits for its first line.
func openStream(t *testing.T, ctx context.Context, url string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/api/v1/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("stream: %d", resp.StatusCode)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != ": connected\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	return resp
}

func TestStreamClientsBounded(t *testing.T) {
	r := newLimitRig(t, api.Options{MaxStreamClients: 2, KeepAlive: time.Hour})
	ctx1, close1 := context.WithCancel(context.Background())
	defer close1()
	ctx2, close2 := context.WithCancel(context.Background())
	defer close2()
	first := openStream(t, ctx1, r.srv.URL)
	defer first.Body.Close()
	second := openStream(t, ctx2, r.srv.URL)
	defer second.Body.Close()

	code, body := fetch(t, r.srv.URL+"/api/v1/stream")
	if code != http.StatusTooManyRequests {
		t.Fatalf("third client: %d %s, want 429", code, body)
	}
	var e struct{ Status, Error string }
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("429 body is not the API's error JSON: %v\n%s", err, body)
	}
	if want := "too many live-stream clients: 2 are connected, the most --web.max-stream-clients allows; try again later"; e.Status != "error" || e.Error != want {
		t.Errorf("429 body %+v, want error %q", e, want)
	}
	if code, _ := fetch(t, r.srv.URL+"/api/v1/stream?kind=bogus"); code != http.StatusBadRequest {
		t.Errorf("a bad request while full: %d, want 400", code)
	}
	if v := counterValue(t, r.reg, "faceid_exporter_http_stream_rejected_total"); v != 1 {
		t.Errorf("faceid_exporter_http_stream_rejected_total = %v, want 1", v)
	}

	// A client leaving frees its slot.
	close1()
	natstest.WaitFor(t, 5*time.Second, "the slot of the closed client", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.srv.URL+"/api/v1/stream", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return resp.StatusCode == 200
	})
}

func TestRequestsInFlightBounded(t *testing.T) {
	r := newLimitRig(t, api.Options{MaxRequests: 2})
	// Two API requests held inside the handler fill the API's limit.
	held := []<-chan int{getAsync(t, r.srv.URL+"/api/v1/summary"), getAsync(t, r.srv.URL+"/api/v1/summary")}
	natstest.WaitFor(t, 5*time.Second, "two API requests in flight", func() bool { return r.apiBlock.count() == 2 })
	code, body := fetch(t, r.srv.URL+"/api/v1/catalog")
	if want := `{"error":"limit of concurrent API requests reached (2, --web.max-requests), try again later","status":"error"}` + "\n"; code != http.StatusServiceUnavailable || body != want {
		t.Errorf("third API request: %d %q, want 503 %q", code, body, want)
	}
	// Probes, the landing page and /metrics are not held up by the API.
	for _, path := range []string{"/-/healthy", "/-/ready", "/"} {
		if code, _ := fetch(t, r.srv.URL+path); code != 200 {
			t.Errorf("%s while the API is full: %d", path, code)
		}
	}
	scrape := getAsync(t, r.srv.URL+"/metrics")
	natstest.WaitFor(t, 5*time.Second, "a scrape in flight", func() bool { return r.scrape.count() == 1 })

	// /metrics has its own limit, promhttp's.
	held = append(held, scrape, getAsync(t, r.srv.URL+"/metrics"))
	natstest.WaitFor(t, 5*time.Second, "two scrapes in flight", func() bool { return r.scrape.count() == 2 })
	if code, body := fetch(t, r.srv.URL+"/metrics"); code != http.StatusServiceUnavailable {
		t.Errorf("third scrape: %d %q, want 503", code, body)
	}

	close(r.apiBlock.release)
	close(r.scrape.release)
	for i, c := range held {
		if code := <-c; code != 200 {
			t.Errorf("held request %d: %d", i, code)
		}
	}
	if code, _ := fetch(t, r.srv.URL+"/api/v1/catalog"); code != 200 {
		t.Errorf("after the held requests ended: %d", code)
	}
}

func TestLimitsOff(t *testing.T) {
	r := newLimitRig(t, api.Options{MaxRequests: -1, MaxStreamClients: -1, KeepAlive: time.Hour})
	var held []<-chan int
	for range 50 { // more than DefaultMaxRequests
		held = append(held, getAsync(t, r.srv.URL+"/api/v1/summary"))
	}
	natstest.WaitFor(t, 10*time.Second, "50 API requests in flight", func() bool { return r.apiBlock.count() == 50 })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range api.DefaultMaxStreamClients + 1 {
		resp := openStream(t, ctx, r.srv.URL)
		defer resp.Body.Close()
	}
	close(r.apiBlock.release)
	close(r.scrape.release)
	for _, c := range held {
		if code := <-c; code != 200 {
			t.Errorf("held request: %d", code)
		}
	}
}

// counterValue returns the value of the unlabelled counter name in g.
func counterValue(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.Metric) == 1 {
			return mf.Metric[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no counter %s", name)
	return 0
}
