package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"gopkg.in/yaml.v3"

	"github.com/faceid-observability/faceid-exporter/grafana-plugin/pkg/internal/fixture"
	"github.com/faceid-observability/faceid-exporter/grafana-plugin/pkg/plugin"
)

// Paths from this package's directory.
const (
	pluginJSON    = "../src/plugin.json"
	buildScript   = "../build.sh"
	magefile      = "../Magefile.go"
	datasourceYML = "../../deploy/grafana/provisioning/datasources/faceid-plugin.yaml"
	alertYML      = "../../deploy/grafana/provisioning/alerting/faceid-plugin-rules.yaml"
	dashboardJSON = "../../dashboards/faceid-events-plugin.json"
)

// dashboardVariable is a $name or ${name} reference in a query model.
var dashboardVariable = regexp.MustCompile(`\$\{?[A-Za-z_][A-Za-z0-9_]*\}?`)

// grafanaPluginID is the pattern Grafana's plugin validator applies to ids.
var grafanaPluginID = regexp.MustCompile(`^[0-9a-z]+-([0-9a-z]+-)?(app|panel|datasource)$`)

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type provisionedDatasource struct {
	Name string `yaml:"name"`
	UID  string `yaml:"uid"`
	Type string `yaml:"type"`
	URL  string `yaml:"url"`
}

func provisioned(t *testing.T) provisionedDatasource {
	t.Helper()
	var doc struct {
		APIVersion  int                     `yaml:"apiVersion"`
		Datasources []provisionedDatasource `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(read(t, datasourceYML), &doc); err != nil {
		t.Fatalf("%s: %v", datasourceYML, err)
	}
	if doc.APIVersion != 1 || len(doc.Datasources) != 1 {
		t.Fatalf("%s: apiVersion %d, %d datasources; want 1 and 1", datasourceYML, doc.APIVersion, len(doc.Datasources))
	}
	return doc.Datasources[0]
}

// TestPluginIDAgrees checks that plugin.json, the Go constant, the build
// script, the provisioned datasource, the dashboard and the alert rule name
// the same plugin.
func TestPluginIDAgrees(t *testing.T) {
	var pj struct {
		Type        string `json:"type"`
		ID          string `json:"id"`
		Backend     bool   `json:"backend"`
		Alerting    bool   `json:"alerting"`
		Streaming   bool   `json:"streaming"`
		Annotations bool   `json:"annotations"`
		Executable  string `json:"executable"`
		Info        struct {
			Version string `json:"version"`
			Logos   struct {
				Small string `json:"small"`
			} `json:"logos"`
		} `json:"info"`
	}
	if err := json.Unmarshal(read(t, pluginJSON), &pj); err != nil {
		t.Fatalf("%s: %v", pluginJSON, err)
	}
	if pj.ID != plugin.ID {
		t.Errorf("plugin.json id %q, Go plugin.ID %q", pj.ID, plugin.ID)
	}
	if !grafanaPluginID.MatchString(pj.ID) {
		t.Errorf("id %q does not match Grafana's pattern %s", pj.ID, grafanaPluginID)
	}
	if pj.Type != "datasource" || !pj.Backend || !pj.Alerting || !pj.Streaming {
		t.Errorf("plugin.json: type %q backend %v alerting %v streaming %v; want a backend datasource with alerting and streaming", pj.Type, pj.Backend, pj.Alerting, pj.Streaming)
	}
	if pj.Executable != "gpx_faceid" {
		t.Errorf("executable %q, want gpx_faceid", pj.Executable)
	}
	if _, err := os.Stat(filepath.Join("../src", pj.Info.Logos.Small)); err != nil {
		t.Errorf("logo: %v", err)
	}
	// The binaries come from the SDK's standard build, which names them
	// <executable>_<os>_<arch> from plugin.json (checked on dist/ by
	// TestDistLoadsInGrafana); build.sh runs it through go run, not a
	// downloaded mage.
	mage := string(read(t, magefile))
	if !strings.Contains(mage, `"github.com/grafana/grafana-plugin-sdk-go/build"`) || !strings.Contains(mage, "var Default = build.BuildAll") {
		t.Errorf("Magefile.go does not make the SDK's build.BuildAll the default target")
	}
	if build := string(read(t, buildScript)); !strings.Contains(build, "go run github.com/magefile/mage -v") || !strings.Contains(build, "npm run build") {
		t.Errorf("build.sh does not run npm run build and the mage build through go run")
	}
	if !pj.Annotations {
		t.Error("plugin.json does not declare annotations")
	}

	ds := provisioned(t)
	if ds.Type != plugin.ID || ds.UID == "" || ds.URL == "" {
		t.Errorf("%s: %+v, want type %s with uid and url", datasourceYML, ds, plugin.ID)
	}

	var dash struct {
		Templating struct {
			List []struct {
				Type  string `json:"type"`
				Name  string `json:"name"`
				Query string `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(read(t, dashboardJSON), &dash); err != nil {
		t.Fatal(err)
	}
	var dsVars []string
	for _, v := range dash.Templating.List {
		if v.Type == "datasource" {
			dsVars = append(dsVars, v.Name)
			if v.Query != plugin.ID {
				t.Errorf("dashboard datasource variable %s selects %q, want %s", v.Name, v.Query, plugin.ID)
			}
		}
	}
	if len(dsVars) != 1 {
		t.Fatalf("dashboard has datasource variables %v, want one", dsVars)
	}
	for _, tg := range dashboardTargets(t) {
		if want := "${" + dsVars[0] + "}"; tg.Datasource.Type != plugin.ID || tg.Datasource.UID != want {
			t.Errorf("panel %q target %s: datasource %+v, want type %s uid %s", tg.Panel, tg.RefID, tg.Datasource, plugin.ID, want)
		}
	}
	for _, q := range alertQueries(t) {
		if q.DatasourceUID != ds.UID && q.DatasourceUID != "__expr__" {
			t.Errorf("alert query %s: datasourceUid %q, want %q (the provisioned plugin datasource) or __expr__", q.RefID, q.DatasourceUID, ds.UID)
		}
	}
}

type dashTarget struct {
	Panel      string
	PanelType  string
	RefID      string
	Datasource struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	}
	Model json.RawMessage
}

func dashboardTargets(t *testing.T) []dashTarget {
	t.Helper()
	var dash struct {
		Panels []struct {
			Title   string            `json:"title"`
			Type    string            `json:"type"`
			Targets []json.RawMessage `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(read(t, dashboardJSON), &dash); err != nil {
		t.Fatal(err)
	}
	var out []dashTarget
	for _, p := range dash.Panels {
		for _, raw := range p.Targets {
			tg := dashTarget{Panel: p.Title, PanelType: p.Type, Model: raw}
			var head struct {
				RefID      string `json:"refId"`
				Datasource struct {
					Type string `json:"type"`
					UID  string `json:"uid"`
				} `json:"datasource"`
			}
			if err := json.Unmarshal(raw, &head); err != nil {
				t.Fatal(err)
			}
			tg.RefID, tg.Datasource = head.RefID, head.Datasource
			out = append(out, tg)
		}
	}
	if len(out) == 0 {
		t.Fatal("dashboard has no targets")
	}
	return out
}

type alertQuery struct {
	RefID         string         `yaml:"refId"`
	DatasourceUID string         `yaml:"datasourceUid"`
	Model         map[string]any `yaml:"model"`
}

type alertRule struct {
	UID         string            `yaml:"uid"`
	Title       string            `yaml:"title"`
	Condition   string            `yaml:"condition"`
	For         string            `yaml:"for"`
	Data        []alertQuery      `yaml:"data"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func alertRules(t *testing.T) []alertRule {
	t.Helper()
	var doc struct {
		APIVersion int `yaml:"apiVersion"`
		Groups     []struct {
			Name     string      `yaml:"name"`
			Folder   string      `yaml:"folder"`
			Interval string      `yaml:"interval"`
			Rules    []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(read(t, alertYML), &doc); err != nil {
		t.Fatalf("%s: %v", alertYML, err)
	}
	if doc.APIVersion != 1 || len(doc.Groups) == 0 {
		t.Fatalf("%s: apiVersion %d with %d groups", alertYML, doc.APIVersion, len(doc.Groups))
	}
	var out []alertRule
	for _, g := range doc.Groups {
		if g.Name == "" || g.Folder == "" || g.Interval == "" {
			t.Errorf("group %+v needs name, folder and interval", g)
		}
		out = append(out, g.Rules...)
	}
	return out
}

func alertQueries(t *testing.T) []alertQuery {
	t.Helper()
	var out []alertQuery
	for _, r := range alertRules(t) {
		out = append(out, r.Data...)
	}
	return out
}

// runQuery sends one query model through the plugin as Grafana would.
func runQuery(t *testing.T, d *plugin.Datasource, refID string, model []byte) backend.DataResponse {
	t.Helper()
	var head struct {
		QueryType string `json:"queryType"`
	}
	_ = json.Unmarshal(model, &head)
	resp, err := d.QueryData(context.Background(), &backend.QueryDataRequest{
		PluginContext: backend.PluginContext{DataSourceInstanceSettings: &backend.DataSourceInstanceSettings{UID: "faceid-events"}},
		Queries:       []backend.DataQuery{{RefID: refID, QueryType: head.QueryType, JSON: model}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Responses[refID]
}

func fixtureDatasource(t *testing.T) *plugin.Datasource {
	t.Helper()
	srv := fixture.New(fixture.Options{})
	t.Cleanup(srv.Close)
	inst, err := plugin.NewDatasource(context.Background(), backend.DataSourceInstanceSettings{UID: "faceid-events", URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	d := inst.(*plugin.Datasource)
	t.Cleanup(d.Dispose)
	return d
}

// TestDashboardQueriesRun runs every target of the plugin dashboard through
// the plugin against the fixture exporter.
func TestDashboardQueriesRun(t *testing.T) {
	d := fixtureDatasource(t)
	types := map[string]bool{}
	for _, tg := range dashboardTargets(t) {
		t.Run(tg.Panel, func(t *testing.T) {
			// The frontend replaces dashboard variables before a query reaches the
			// backend; run them as an All selection with the custom all value "*".
			model := dashboardVariable.ReplaceAll(tg.Model, []byte(plugin.AnyValue))
			r := runQuery(t, d, tg.RefID, model)
			if r.Error != nil {
				t.Fatal(r.Error)
			}
			if len(r.Frames) == 0 {
				t.Fatal("no frames")
			}
			var m plugin.Query
			_ = json.Unmarshal(tg.Model, &m)
			types[m.QueryType] = true
			if m.QueryType == plugin.QueryLive && r.Frames[0].Meta.Channel == "" {
				t.Error("live panel frame has no meta.channel")
			}
		})
	}
	for _, qt := range []string{plugin.QuerySummary, plugin.QueryEvents, plugin.QueryLive, plugin.QueryCatalog} {
		if !types[qt] {
			t.Errorf("the dashboard has no %s query", qt)
		}
	}
}

// TestAlertRuleExample checks the Grafana-managed rule: annotations, a
// condition that names its queries, and plugin queries that return numeric
// frames Grafana alerting can evaluate.
func TestAlertRuleExample(t *testing.T) {
	d := fixtureDatasource(t)
	rules := alertRules(t)
	if len(rules) == 0 {
		t.Fatal("no rules")
	}
	for _, r := range rules {
		t.Run(r.Title, func(t *testing.T) {
			if r.UID == "" || r.For == "" || r.Labels["severity"] == "" {
				t.Errorf("rule needs uid, for and a severity label: %+v", r)
			}
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if r.Annotations[a] == "" {
					t.Errorf("annotation %s missing", a)
				}
			}
			if rb := r.Annotations["runbook_url"]; rb != "" {
				name := rb[strings.LastIndex(rb, "/")+1:]
				if _, err := os.Stat(filepath.Join("../../docs/runbooks", name)); err != nil {
					t.Errorf("runbook %s: %v", name, err)
				}
			}
			refs := map[string]bool{}
			var cond *alertQuery
			plugins := 0
			for i, q := range r.Data {
				refs[q.RefID] = true
				if q.RefID == r.Condition {
					cond = &r.Data[i]
				}
				if q.DatasourceUID == "__expr__" {
					continue
				}
				plugins++
				model, err := json.Marshal(q.Model)
				if err != nil {
					t.Fatal(err)
				}
				if q.Model["queryType"] != plugin.QuerySummary {
					t.Errorf("query %s: queryType %v, want summary", q.RefID, q.Model["queryType"])
				}
				resp := runQuery(t, d, q.RefID, model)
				if resp.Error != nil {
					t.Fatalf("query %s: %v", q.RefID, resp.Error)
				}
				f := resp.Frames[0]
				numeric := 0
				for _, fl := range f.Fields {
					if fl.Type().Numeric() {
						numeric++
					}
				}
				if numeric != 1 || f.Meta == nil || (f.Meta.Type != data.FrameTypeNumericLong && f.Meta.Type != data.FrameTypeTimeSeriesWide) {
					t.Errorf("query %s: %d numeric fields, type %v; alerting needs one numeric column", q.RefID, numeric, f.Meta)
				}
			}
			if plugins == 0 {
				t.Error("the rule uses no plugin query")
			}
			if cond == nil || cond.DatasourceUID != "__expr__" {
				t.Fatalf("condition %q is not an expression of the rule", r.Condition)
			}
			expr, _ := cond.Model["expression"].(string)
			for _, m := range regexp.MustCompile(`\$\{?([A-Za-z0-9_]+)`).FindAllStringSubmatch(expr, -1) {
				if !refs[m[1]] {
					t.Errorf("condition expression %q names $%s, which is not a query of the rule", expr, m[1])
				}
			}
		})
	}
}
