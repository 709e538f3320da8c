package dashboards

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/faceid-observability/faceid-exporter/internal/dashgen"
	"github.com/faceid-observability/faceid-exporter/internal/promtest"
	"github.com/faceid-observability/faceid-exporter/pkg/books"
	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/forecast"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
	"github.com/faceid-observability/faceid-exporter/pkg/metrics"
)

const metricsDoc = "../docs/metrics.md"

// documented returns the metrics of docs/metrics.md.
func documented(t *testing.T) map[string]Metric {
	t.Helper()
	docs, err := DocumentedMetrics(metricsDoc)
	if err != nil {
		t.Fatal(err)
	}
	return docs
}

// exactCounters returns the checkpointed counters that count events and must
// be summed over partitions. The lost-input counters are read per partition on
// purpose (FaceIDInputLost), across instances.
func exactCounters(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for name, m := range documented(t) {
		if m.Kept == "checkpointed" && m.Type == "counter" &&
			name != "faceid_exporter_jetstream_lost_messages_total" && name != "faceid_exporter_jetstream_stream_resets_total" {
			out[name] = true
		}
	}
	if len(out) < 14 {
		t.Fatalf("docs/metrics.md marks %d counters as checkpointed, want at least the 14 event counters", len(out))
	}
	return out
}

// knownMetrics returns every metric name documented in docs/metrics.md (with
// a histogram's series), every recording rule of alerts/, and the metrics
// Prometheus itself writes.
func knownMetrics(t *testing.T) map[string]bool {
	t.Helper()
	known := map[string]bool{"up": true, "ALERTS": true, "ALERTS_FOR_STATE": true}
	for name, m := range documented(t) {
		known[name] = true
		if m.Type == "histogram" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				known[name+s] = true
			}
		}
	}
	_, records := promtest.RuleNames(t, "../alerts")
	for _, r := range records {
		known[r] = true
	}
	return known
}

// TestMetricsDocumented checks every metric pkg/metrics registers (every
// optional metric on) is documented in docs/metrics.md with its type, and
// that docs/metrics.md documents no metric nobody registers.
func TestMetricsDocumented(t *testing.T) {
	cat, err := classify.Default()
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	pricing := &metrics.Pricing{Currency: "CNY", MonthlyBudget: 1, HasBudget: true, UnitPrice: map[string]float64{"app_sdk": 1}}
	metrics.New(reg, cat, metrics.Options{Pricing: pricing})
	l := books.NewLayout(cat, books.LayoutOptions{AppIDs: []string{"a"}, RuleIDs: []string{"r"}})
	b := books.New(l, books.RulesOptions{})
	var r classify.Result
	if err := classify.New(cat, classify.Options{}).Classify([]byte(`{"channel":"app_sdk","code":"0","app_id":"a"}`), nil, time.Now(), &r); err != nil {
		t.Fatal(err)
	}
	b.Apply(&r) // the business series exist once counted
	metrics.NewBooks(reg, metrics.Source{Layout: l, Partitions: 1,
		Owned:         func() []metrics.Partition { return []metrics.Partition{{ID: 0, Books: b, Checkpointed: true}} },
		Ages:          func(time.Time) []time.Duration { return []time.Duration{0} },
		Unpartitioned: func() (uint64, bool) { return 0, true },
	}, pricing)
	fc, err := forecast.FromRows([]ledger.Row{{Day: "2026-11-01", Channel: "app_sdk", Code: "0", Billable: "true", Count: 5}},
		forecast.Options{Now: time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC), Currency: "CNY", UnitPrice: pricing.UnitPrice})
	if err != nil {
		t.Fatal(err)
	}
	metrics.NewForecast(reg, func() *metrics.ForecastSnapshot { return &metrics.ForecastSnapshot{Result: fc} }, func() bool { return true })
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	docs := documented(t)
	// Registered outside pkg/metrics: the version collector (serve) and the
	// reconciliation's gauges (pkg/reconcile, serve --reconcile.interval).
	elsewhere := regexp.MustCompile(`^(faceid_exporter_build_info|faceid_reconcile_.+)$`)
	registered := map[string]bool{}
	for _, mf := range mfs {
		registered[mf.GetName()] = true
	}
	for name := range docs {
		if !registered[name] && !elsewhere.MatchString(name) {
			t.Errorf("docs/metrics.md documents %s, which pkg/metrics does not register", name)
		}
	}
	for _, mf := range mfs {
		m, ok := docs[mf.GetName()]
		if !ok {
			t.Errorf("%s is not documented in docs/metrics.md", mf.GetName())
			continue
		}
		want := strings.ToLower(mf.GetType().String())
		if m.Type != want {
			t.Errorf("%s: docs/metrics.md says %s, the registry %s", mf.GetName(), m.Type, want)
		}
	}
}

func TestDocumentedMetrics(t *testing.T) {
	docs := documented(t)
	for _, name := range []string{"faceid_verifications_total", "faceid_exporter_jetstream_lag_messages", "faceid_billed_month_to_date", "faceid_reconcile_mismatch"} {
		if _, ok := docs[name]; !ok {
			t.Errorf("%s not found in docs/metrics.md", name)
		}
	}
	for _, name := range []string{"faceid_exporter_jetstream_pending_messages", "faceid_exporter_dedupe_store_errors_total"} {
		if _, ok := docs[name]; ok {
			t.Errorf("removed metric %s is documented as a metric (its row belongs in the Removed table)", name)
		}
	}
	if m := docs["faceid_verifications_total"]; m.Kept != "checkpointed" || m.Type != "counter" {
		t.Errorf("faceid_verifications_total: %+v", m)
	}
	bad := filepath.Join(t.TempDir(), "metrics.md")
	for _, tc := range []struct{ name, doc, want string }{
		{"no tables", "# Metrics\n", "no metric tables"},
		{"bad kept", "| Metric | Type | Labels | Kept | Meaning |\n|---|---|---|---|---|\n| `faceid_x` | counter | | forever | x |\n", `kept "forever"`},
		{"twice", "| Metric | Type | Labels | Kept | Meaning |\n|---|---|---|---|---|\n| `faceid_x` | counter | | process | x |\n| `faceid_x` | counter | | process | x |\n", "documented twice"},
		{"not a name", "| Metric | Type | Labels | Kept | Meaning |\n|---|---|---|---|---|\n| x | counter | | process | x |\n", "is not a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(bad, []byte(tc.doc), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := DocumentedMetrics(bad); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestPartitionKept(t *testing.T) {
	metrics := map[string]bool{"x_total": true}
	for _, tc := range []struct {
		expr string
		kept bool
	}{
		{`sum by (channel) (rate(x_total[5m]))`, false},
		{`sum without (instance, pod, partition) (x_total)`, false},
		{`sum by (channel) (max by (channel, partition) (x_total))`, false},
		{`rate(x_total[5m])`, true},
		{`sum by (channel, partition) (rate(x_total[5m]))`, true},
		{`sum without (instance) (x_total)`, true},
		{`topk(3, x_total)`, true},
		{`sum(y_total)`, false},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			got, err := PartitionKept(tc.expr, metrics)
			if err != nil {
				t.Fatal(err)
			}
			if (len(got) > 0) != tc.kept {
				t.Errorf("PartitionKept(%s) = %v, want kept %v", tc.expr, got, tc.kept)
			}
		})
	}
}

// TestPartitionsSummed checks every dashboard query sums the partition label
// of the exact event counters away.
func TestPartitionsSummed(t *testing.T) {
	exact := exactCounters(t)
	qs, err := PromQLQueries(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		kept, err := PartitionKept(Substitute(q.Expr, "5m"), exact)
		if err != nil {
			t.Errorf("%s / %s: %v", q.Dashboard, q.Panel, err)
			continue
		}
		for _, k := range kept {
			t.Errorf("%s / %s / %s: %s is not summed over partitions", q.Dashboard, q.Panel, q.RefID, k)
		}
	}
}

type dashboard struct {
	path string
	raw  map[string]any
}

func loadDashboards(t *testing.T) []dashboard {
	t.Helper()
	files, err := filepath.Glob("*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("want at least the 5 generated dashboards, found %v", files)
	}
	var out []dashboard
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var raw map[string]any
		if err := json.Unmarshal(data, &raw); err != nil {
			t.Fatalf("%s: not JSON: %v", f, err)
		}
		out = append(out, dashboard{f, raw})
	}
	return out
}

func metricNames(t *testing.T, expr string) []string {
	t.Helper()
	e, err := parser.ParseExpr(expr)
	if err != nil {
		t.Errorf("does not parse: %v\n%s", err, expr)
		return nil
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
		if name == "" {
			t.Errorf("selector %s names no metric", vs)
		}
		names = append(names, name)
		return nil
	})
	return names
}

func TestDashboards(t *testing.T) {
	known := knownMetrics(t)
	uids := map[string]string{}
	for _, d := range loadDashboards(t) {
		t.Run(d.path, func(t *testing.T) {
			for _, k := range []string{"uid", "title", "schemaVersion", "panels", "templating", "time"} {
				if _, ok := d.raw[k]; !ok {
					t.Errorf("no %q field", k)
				}
			}
			uid, _ := d.raw["uid"].(string)
			if uid == "" || len(uid) > 40 {
				t.Errorf("uid %q: want 1–40 characters", uid)
			}
			if other, ok := uids[uid]; ok {
				t.Errorf("uid %q also used by %s", uid, other)
			}
			uids[uid] = d.path
			if _, ok := d.raw["schemaVersion"].(float64); !ok {
				t.Errorf("schemaVersion is not a number")
			}
			if _, ok := d.raw["id"]; ok && d.raw["id"] != nil {
				t.Errorf("provisioned dashboards must not carry an id (got %v)", d.raw["id"])
			}
			panels := flattenPanels(d.raw["panels"])
			if len(panels) == 0 {
				t.Fatal("no panels")
			}
			ids := map[float64]bool{}
			promTargets := 0
			for _, p := range panels {
				title, _ := p["title"].(string)
				id, _ := p["id"].(float64)
				if ids[id] {
					t.Errorf("panel id %v used twice", id)
				}
				ids[id] = true
				if typ, _ := p["type"].(string); typ == "" {
					t.Errorf("panel %q has no type", title)
				}
				gp, _ := p["gridPos"].(map[string]any)
				w, _ := gp["w"].(float64)
				x, _ := gp["x"].(float64)
				h, _ := gp["h"].(float64)
				if w <= 0 || h <= 0 || x+w > 24 {
					t.Errorf("panel %q: bad gridPos %v", title, gp)
				}
				if p["type"] == "row" {
					continue
				}
				targets, _ := p["targets"].([]any)
				switch p["type"] {
				case "text", "news", "dashlist", "alertlist":
				default:
					if len(targets) == 0 {
						t.Errorf("panel %q has no targets", title)
					}
				}
				for _, tv := range targets {
					tg, _ := tv.(map[string]any)
					if ref, _ := tg["refId"].(string); ref == "" {
						t.Errorf("panel %q: a target without refId", title)
					}
					typ := dsType(tg["datasource"])
					if typ == "" {
						typ = dsType(p["datasource"])
					}
					if typ == dashgen.PluginDatasourceType {
						continue
					}
					if typ != "prometheus" {
						t.Errorf("panel %q: datasource type %q, want prometheus or %s", title, typ, dashgen.PluginDatasourceType)
						continue
					}
					promTargets++
					expr, _ := tg["expr"].(string)
					if strings.TrimSpace(expr) == "" {
						t.Errorf("panel %q: empty expr", title)
						continue
					}
					for _, n := range metricNames(t, Substitute(expr, "5m")) {
						if !known[n] {
							t.Errorf("panel %q names %s, which is neither an exporter metric nor a recording rule of alerts/", title, n)
						}
					}
				}
			}
			if promTargets > 0 {
				checkVariables(t, d.raw, known)
			}
		})
	}
}

// checkVariables requires the datasource, channel and instance variables and
// checks the metrics their queries name.
func checkVariables(t *testing.T, raw map[string]any, known map[string]bool) {
	t.Helper()
	tmpl, _ := raw["templating"].(map[string]any)
	list, _ := tmpl["list"].([]any)
	vars := map[string]map[string]any{}
	for _, v := range list {
		vm, _ := v.(map[string]any)
		name, _ := vm["name"].(string)
		vars[name] = vm
	}
	if v := vars["datasource"]; v == nil || v["type"] != "datasource" || v["query"] != "prometheus" {
		t.Errorf("no datasource variable of type datasource for prometheus: %v", v)
	}
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_]+)\)$`)
	for _, name := range []string{"channel", "instance"} {
		v := vars[name]
		if v == nil {
			t.Errorf("no %s variable", name)
			continue
		}
		def, _ := v["definition"].(string)
		m := labelValues.FindStringSubmatch(def)
		if m == nil || m[2] != name {
			t.Errorf("variable %s: definition %q is not label_values(<selector>, %s)", name, def, name)
			continue
		}
		for _, n := range metricNames(t, m[1]) {
			if !known[n] {
				t.Errorf("variable %s names unknown metric %s", name, n)
			}
		}
		if v["includeAll"] != true || v["allValue"] != ".*" {
			t.Errorf("variable %s: want includeAll with allValue .*", name)
		}
	}
}

// TestQueriesParseInPrometheus runs every dashboard query through the
// parser of the Prometheus that ships (promtool check rules), which may be
// older than the Go parser above.
func TestQueriesParseInPrometheus(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found in PATH (install the Debian package prometheus): %v", err)
	}
	qs, err := PromQLQueries(".")
	if err != nil {
		t.Fatal(err)
	}
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for i, q := range qs {
		rules = append(rules, rule{Record: fmt.Sprintf("dashboard:query_%d:check", i), Expr: Substitute(q.Expr, "5m")})
	}
	doc := map[string]any{"groups": []any{map[string]any{"name": "dashboards", "rules": rules}}}
	data, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dashboards.rules.yml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules on the dashboards' queries: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), fmt.Sprintf("SUCCESS: %d rules found", len(rules))) {
		t.Fatalf("promtool did not check all %d queries:\n%s", len(rules), out)
	}
}

func TestSubstitute(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`rate(x{channel=~"$channel",instance=~"$instance"}[$__rate_interval])`, `rate(x{channel=~".*",instance=~".*"}[1m])`},
		{`increase(x[$__range])`, `increase(x[1m])`},
		{`x{job=~"${job}"}`, `x{job=~".*"}`},
	} {
		if got := Substitute(tc.in, "1m"); got != tc.want {
			t.Errorf("Substitute(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	// Every generated dashboard is covered.
	ds, err := dashgen.Dashboards()
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, d := range ds {
		files = append(files, d.File)
	}
	sort.Strings(files)
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("generated dashboard %s missing: %v", f, err)
		}
	}
}
