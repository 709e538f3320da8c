// Package e2e runs the shipped monitoring end to end: the exporter (built from
// this repository, embedded NATS with JetStream) scraped by a real Prometheus
// that evaluates the rules of internal/rulegen rendered with short windows,
// alerting through a real Alertmanager configured from
// deploy/alertmanager/alertmanager.yml to a webhook of the test, with traffic
// from `exporter simulate`. It then runs every dashboard query against that
// Prometheus.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/faceid-observability/faceid-exporter/dashboards"
	"github.com/faceid-observability/faceid-exporter/internal/rulegen"
	"github.com/faceid-observability/faceid-exporter/pkg/forecast"
)

// scale divides every window, offset and `for` of the production rules:
// 5m rates become 15s, the 1h baselines 3m, `for: 5m` 15s.
const scale = 20

const repoRoot = ".."

func lookTool(t *testing.T, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	t.Fatalf("none of %v found in PATH (install the Debian packages prometheus and prometheus-alertmanager)", names)
	return ""
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// eventually polls cond every 500ms until it returns true or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, detail := cond()
		if ok {
			return
		}
		last = detail
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s (last: %s)", timeout, what, last)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

type process struct {
	name string
	cmd  *exec.Cmd
	log  string
}

func start(t *testing.T, dir, name string, bin string, args ...string) *process {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logPath}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		f.Close()
		if t.Failed() {
			data, _ := os.ReadFile(logPath)
			if len(data) > 4000 {
				data = data[len(data)-4000:]
			}
			t.Logf("--- %s log (tail) ---\n%s", name, data)
		}
	})
	return p
}

func httpOK(u string) (bool, string) {
	resp, err := http.Get(u)
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	return resp.StatusCode == http.StatusOK, resp.Status
}

// notification is one webhook call from Alertmanager.
type notification struct {
	Path   string
	Status string `json:"status"`
	Alerts []struct {
		Status string            `json:"status"`
		Labels map[string]string `json:"labels"`
	} `json:"alerts"`
}

type webhook struct {
	mu   sync.Mutex
	got  []notification
	srv  *httptest.Server
	errs []string
}

func newWebhook(t *testing.T) *webhook {
	w := &webhook{}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var n notification
		w.mu.Lock()
		defer w.mu.Unlock()
		if err := json.Unmarshal(body, &n); err != nil {
			w.errs = append(w.errs, err.Error())
		}
		n.Path = r.URL.Path
		w.got = append(w.got, n)
	}))
	t.Cleanup(w.srv.Close)
	return w
}

// firing returns the alert names delivered firing to path.
func (w *webhook) firing(path string) map[string]bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]bool{}
	for _, n := range w.got {
		if n.Path != path {
			continue
		}
		for _, a := range n.Alerts {
			if a.Status == "firing" {
				out[a.Labels["alertname"]] = true
			}
		}
	}
	return out
}

// alertmanagerConfig returns deploy/alertmanager/alertmanager.yml with every
// webhook URL pointed at the test's receiver (same path) and the grouping
// waits shortened; routes, grouping and inhibitions are unchanged.
func alertmanagerConfig(t *testing.T, webhookURL string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "deploy/alertmanager/alertmanager.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	receivers := 0
	for _, r := range cfg["receivers"].([]any) {
		for _, wc := range r.(map[string]any)["webhook_configs"].([]any) {
			m := wc.(map[string]any)
			u, err := url.Parse(m["url"].(string))
			if err != nil {
				t.Fatal(err)
			}
			m["url"] = webhookURL + u.Path
			receivers++
		}
	}
	if receivers == 0 {
		t.Fatal("alertmanager.yml has no webhook receiver to point at the test")
	}
	var shorten func(route map[string]any)
	shorten = func(route map[string]any) {
		route["group_wait"], route["group_interval"] = "1s", "1s"
		if subs, ok := route["routes"].([]any); ok {
			for _, s := range subs {
				shorten(s.(map[string]any))
			}
		}
	}
	shorten(cfg["route"].(map[string]any))
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// prometheusConfig returns deploy/prometheus/prometheus.yml with 1s scrape and
// evaluation intervals, the fast rule files, and the test's targets.
func prometheusConfig(t *testing.T, rulesGlob, exporterAddr, amAddr string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "deploy/prometheus/prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["global"] = map[string]any{"scrape_interval": "1s", "evaluation_interval": "1s"}
	cfg["rule_files"] = []any{rulesGlob}
	cfg["alerting"] = map[string]any{"alertmanagers": []any{map[string]any{"static_configs": []any{map[string]any{"targets": []any{amAddr}}}}}}
	scrapes := cfg["scrape_configs"].([]any)
	job := scrapes[0].(map[string]any)
	if job["job_name"] != "faceid-exporter" {
		t.Fatalf("first scrape job is %v, want faceid-exporter", job["job_name"])
	}
	job["static_configs"] = []any{map[string]any{"targets": []any{exporterAddr}}}
	cfg["scrape_configs"] = []any{job}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type promClient struct{ base string }

type promResult struct {
	Status string `json:"status"`
	Error  string `json:"error"`
	Data   struct {
		ResultType string            `json:"resultType"`
		Result     json.RawMessage   `json:"result"`
		Alerts     []promAlertResult `json:"alerts"`
	} `json:"data"`
}

type promAlertResult struct {
	Labels map[string]string `json:"labels"`
	State  string            `json:"state"`
}

func (p promClient) get(path string, q url.Values) (promResult, error) {
	var r promResult
	resp, err := http.Get(p.base + path + "?" + q.Encode())
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &r); err != nil {
		return r, fmt.Errorf("%s: %s: %w", resp.Status, body, err)
	}
	if r.Status != "success" {
		return r, fmt.Errorf("%s: %s", resp.Status, r.Error)
	}
	return r, nil
}

// samples returns how many series or values an instant query returns.
func (p promClient) samples(expr string) (int, error) {
	r, err := p.get("/api/v1/query", url.Values{"query": {expr}})
	if err != nil {
		return 0, err
	}
	switch r.Data.ResultType {
	case "vector", "matrix":
		var v []json.RawMessage
		if err := json.Unmarshal(r.Data.Result, &v); err != nil {
			return 0, err
		}
		return len(v), nil
	case "scalar":
		return 1, nil
	}
	return 0, fmt.Errorf("result type %q", r.Data.ResultType)
}

func (p promClient) firingPages() ([]string, error) {
	r, err := p.get("/api/v1/alerts", nil)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range r.Data.Alerts {
		if a.State == "firing" && a.Labels["severity"] == rulegen.SeverityPage {
			out = append(out, a.Labels["alertname"]+"{"+a.Labels["channel"]+a.Labels["instance"]+"}")
		}
	}
	return out, nil
}

func simulate(ctx context.Context, t *testing.T, exporter, natsURL, scenario string, d time.Duration, dir string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(ctx, exporter, "simulate", "--nats.url", natsURL, "--jetstream.stream", "FACEID",
		"--scenario", scenario, "--rate", "300", "--duration", d.String(), "--seed", "42",
		"--report.file", filepath.Join(dir, "report-"+scenario+".json"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("simulate %s: %v", scenario, err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}

func TestEndToEnd(t *testing.T) {
	promBin := lookTool(t, "prometheus")
	amBin := lookTool(t, "prometheus-alertmanager", "alertmanager")
	goBin := lookTool(t, "go")
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The exporter, built from this checkout.
	exporter := filepath.Join(dir, "exporter")
	build := exec.Command(goBin, "build", "-o", exporter, "./cmd/exporter")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/exporter: %v\n%s", err, out)
	}
	cfgPath := filepath.Join(dir, "exporter.yml")
	if err := os.WriteFile(cfgPath, []byte(`pricing:
  currency: CNY
  monthly_budget: 1000
  unit_price: {wechat_h5: 1.0, wechat_miniprogram: 1.0, eid: 1.0, app_sdk: 1.5, standalone_h5: 1.5, pc_h5: 1.5, willingness: 2.0, nfc_server: 0.5}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	exporterAddr, natsAddr := freePort(t), freePort(t)
	start(t, dir, "exporter", exporter, "serve",
		"--web.listen-address", exporterAddr, "--nats.embedded.listen", natsAddr,
		"--nats.embedded.store-dir", filepath.Join(dir, "nats"), "--jetstream.stream", "FACEID",
		"--config.file", cfgPath, "--log.level", "warn", "--forecast.interval", "2s")
	eventually(t, 30*time.Second, "exporter ready", func() (bool, string) { return httpOK("http://" + exporterAddr + "/-/ready") })

	// A ledger history to forecast from, seeded through the stream before
	// Prometheus scrapes (so it is no burst in any rate); the budget above is
	// small, so the ledger forecast is over it.
	seededMTD := seedHistory(t, "nats://"+natsAddr, time.Now())
	eventually(t, 60*time.Second, "the seeded ledger forecast", func() (bool, string) {
		r, body, err := getForecast(exporterAddr)
		if err != nil {
			return false, fmt.Sprint(err, " ", body)
		}
		return r.Total.Quality == forecast.QualityOK && r.Total.HistoryDays >= historyDays, fmt.Sprintf("%s, %d days", r.Total.Quality, r.Total.HistoryDays)
	})

	// Alertmanager with the shipped routing, delivering to the test's webhook.
	hook := newWebhook(t)
	amAddr := freePort(t)
	amCfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(amCfg, alertmanagerConfig(t, hook.srv.URL), 0o644); err != nil {
		t.Fatal(err)
	}
	start(t, dir, "alertmanager", amBin, "--config.file="+amCfg, "--storage.path="+filepath.Join(dir, "am"),
		"--web.listen-address="+amAddr, "--cluster.listen-address=")
	eventually(t, 30*time.Second, "alertmanager ready", func() (bool, string) { return httpOK("http://" + amAddr + "/-/ready") })

	// Prometheus with the shipped config and the rules rendered with short windows.
	rules, err := rulegen.Render(rulegen.Fast(scale))
	if err != nil {
		t.Fatal(err)
	}
	rulesDir := filepath.Join(dir, "rules")
	if err := os.MkdirAll(rulesDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range rules {
		if err := os.WriteFile(filepath.Join(rulesDir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	promAddr := freePort(t)
	promCfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(promCfg, prometheusConfig(t, filepath.Join(rulesDir, "*.yml"), exporterAddr, amAddr), 0o644); err != nil {
		t.Fatal(err)
	}
	start(t, dir, "prometheus", promBin, "--config.file="+promCfg, "--storage.tsdb.path="+filepath.Join(dir, "prom"),
		"--web.listen-address="+promAddr)
	prom := promClient{"http://" + promAddr}
	eventually(t, 30*time.Second, "prometheus scraping the exporter", func() (bool, string) {
		n, err := prom.samples(`up{job="faceid-exporter"} == 1`)
		return err == nil && n == 1, fmt.Sprint(n, err)
	})
	eventually(t, 30*time.Second, "prometheus evaluating the fast rules", func() (bool, string) {
		n, err := prom.samples(`faceid:billing_month:start_timestamp_seconds`)
		return err == nil && n == 1, fmt.Sprint(n, err)
	})

	natsURL := "nats://" + natsAddr

	t.Run("baseline delivers no page", func(t *testing.T) {
		sim := simulate(ctx, t, exporter, natsURL, "baseline", 45*time.Second, dir)
		if err := sim.Wait(); err != nil {
			t.Fatalf("simulate baseline: %v", err)
		}
		pages, err := prom.firingPages()
		if err != nil {
			t.Fatal(err)
		}
		if len(pages) > 0 {
			t.Errorf("page alerts firing on baseline traffic: %v", pages)
		}
		if got := hook.firing("/faceid/page"); len(got) > 0 {
			t.Errorf("pages delivered on baseline traffic: %v", got)
		}
		n, err := prom.samples(`faceid:billable_failure:ratio_rate5m_avg1h > 0`)
		if err != nil || n == 0 {
			t.Fatalf("no billable-failure baseline after the baseline run: %d %v", n, err)
		}
	})
	if t.Failed() {
		return
	}

	t.Run("billable-failure-spike pages FaceIDBillableFailureSpike", func(t *testing.T) {
		sctx, stop := context.WithCancel(ctx)
		defer stop()
		simulate(sctx, t, exporter, natsURL, "billable-failure-spike", 90*time.Second, dir)
		eventually(t, 90*time.Second, "FaceIDBillableFailureSpike delivered to the page receiver", func() (bool, string) {
			got := hook.firing("/faceid/page")
			return got["FaceIDBillableFailureSpike"], fmt.Sprint(got)
		})
	})
	if t.Failed() {
		return
	}

	t.Run("high-risk-device-surge pages FaceIDHighRiskDeviceSurge", func(t *testing.T) {
		sctx, stop := context.WithCancel(ctx)
		defer stop()
		simulate(sctx, t, exporter, natsURL, "high-risk-device-surge", 90*time.Second, dir)
		eventually(t, 90*time.Second, "FaceIDHighRiskDeviceSurge delivered to the page receiver", func() (bool, string) {
			got := hook.firing("/faceid/page")
			return got["FaceIDHighRiskDeviceSurge"], fmt.Sprint(got)
		})
	})

	t.Run("forecast: CLI, API, gauges and FaceIDCostForecastOverBudget", func(t *testing.T) {
		checkForecast(t, "exporter forecast", forecastCLI(ctx, t, exporter, natsURL, cfgPath), seededMTD)
		r, body, err := getForecast(exporterAddr)
		if err != nil {
			t.Fatalf("GET /api/v1/forecast: %v %s", err, body)
		}
		checkForecast(t, "GET /api/v1/forecast", r, seededMTD)
		// One replica exposes the gauges, once: five bounds of the group's spend.
		eventually(t, 30*time.Second, "the forecast gauges in Prometheus", func() (bool, string) {
			n, err := prom.samples(`faceid_forecast_group_cost_month_end{job="faceid-exporter",currency="CNY"}`)
			m, err2 := prom.samples(`faceid:forecast_cost:month_end{bound="low80"} > 1000`)
			return err == nil && err2 == nil && n == 5 && m == 1, fmt.Sprint(n, m, err, err2)
		})
		// for: 1h / scale; the ledger branch carries bound="low80".
		eventually(t, 5*time.Minute, "FaceIDCostForecastOverBudget on the ledger forecast delivered to the ticket receiver", func() (bool, string) {
			ar, err := prom.get("/api/v1/alerts", nil)
			if err != nil {
				return false, err.Error()
			}
			ledgerBranch := false
			for _, a := range ar.Data.Alerts {
				if a.Labels["alertname"] == "FaceIDCostForecastOverBudget" && a.State == "firing" && a.Labels["bound"] == "low80" {
					ledgerBranch = true
				}
			}
			got := hook.firing("/faceid/ticket")
			return ledgerBranch && got["FaceIDCostForecastOverBudget"], fmt.Sprint(ledgerBranch, got)
		})
	})

	t.Run("every dashboard query returns data", func(t *testing.T) {
		// Keep baseline traffic flowing so rates over the short windows are current.
		sctx, stop := context.WithCancel(ctx)
		defer stop()
		simulate(sctx, t, exporter, natsURL, "baseline", 60*time.Second, dir)
		time.Sleep(5 * time.Second) // a few scrapes and evaluations of the new traffic
		qs, err := dashboards.PromQLQueries(filepath.Join(repoRoot, "dashboards"))
		if err != nil {
			t.Fatal(err)
		}
		if len(qs) == 0 {
			t.Fatal("no dashboard queries")
		}
		for _, q := range qs {
			expr := dashboards.Substitute(q.Expr, "30s")
			n, err := prom.samples(expr)
			if err != nil {
				t.Errorf("%s / %s / %s: %v\n%s", q.Dashboard, q.Panel, q.RefID, err, expr)
				continue
			}
			if n == 0 {
				t.Errorf("%s / %s / %s returns no data\n%s", q.Dashboard, q.Panel, q.RefID, expr)
			}
		}
		t.Logf("%d dashboard queries checked", len(qs))
	})
}
