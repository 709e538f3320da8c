// Package helm_test checks the Helm chart in faceid-exporter/ with a real helm
// binary: lint, renders with default values and with every optional part on
// (golden files), the alert rules and dashboards it ships against alerts/ and
// dashboards/, the pod's security, where secrets end up, and that the exporter
// accepts the flags the Deployment passes.
//
// helm is found in $HELM, then ../../.tools/bin/helm, then PATH; install it with
//
//	GOBIN=$PWD/.tools/bin go install helm.sh/helm/v3/cmd/helm@v3.22.0
//
// go test ./deploy/helm -update rewrites the chart's copies of alerts/*.yml and
// dashboards/*.json (files/alerts, files/dashboards), the golden renders and the
// values table of the chart's README.
package helm_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/faceid-observability/faceid-exporter/internal/golden"
	"github.com/nats-io/nkeys"

	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite the chart's copies of alerts/ and dashboards/, the golden renders and the README values table")

const (
	chartName   = "faceid-exporter"
	release     = "faceid-exporter"
	namespace   = "faceid"
	kubeVersion = "1.33.0" // a helm built by go install has no Kubernetes version of its own
	secretDir   = "/etc/faceid-exporter/secrets/"
	configDir   = "/etc/faceid-exporter/config/"
	helmInstall = "GOBIN=$PWD/.tools/bin go install helm.sh/helm/v3/cmd/helm@v3.22.0"
)

// root is the repository root, chart the chart directory.
var root, chart string

func TestMain(m *testing.M) {
	flag.Parse()
	var err error
	if root, err = filepath.Abs(filepath.Join("..", "..")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	chart = filepath.Join(root, "deploy", "helm", chartName)
	if *update {
		if err := syncChartFiles(); err != nil {
			fmt.Fprintln(os.Stderr, "sync chart files:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	if exporterDir != "" {
		os.RemoveAll(exporterDir)
	}
	os.Exit(code)
}

// ---- the chart's copies of alerts/ and dashboards/ ----

type sourceFile struct {
	name string
	data []byte
}

// alertRuleFiles returns alerts/*.yml and *.yaml that are Prometheus rule
// files (a top-level "groups" key); promtool test files are left out.
func alertRuleFiles() ([]sourceFile, error) {
	var out []sourceFile
	for _, pat := range []string{"*.yml", "*.yaml"} {
		paths, err := filepath.Glob(filepath.Join(root, "alerts", pat))
		if err != nil {
			return nil, err
		}
		for _, p := range paths {
			data, err := os.ReadFile(p)
			if err != nil {
				return nil, err
			}
			var doc map[string]any
			if err := yaml.Unmarshal(data, &doc); err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			if _, ok := doc["groups"]; ok {
				out = append(out, sourceFile{filepath.Base(p), data})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// dashboardFiles returns dashboards/*.json.
func dashboardFiles() ([]sourceFile, error) {
	paths, err := filepath.Glob(filepath.Join(root, "dashboards", "*.json"))
	if err != nil {
		return nil, err
	}
	var out []sourceFile
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		out = append(out, sourceFile{filepath.Base(p), data})
	}
	return out, nil
}

// chartCopies maps each directory under the chart's files/ to its source.
var chartCopies = []struct {
	dir    string
	source func() ([]sourceFile, error)
}{
	{"alerts", alertRuleFiles},
	{"dashboards", dashboardFiles},
}

// syncChartFiles makes files/alerts and files/dashboards exact copies of the
// sources, removing files the sources no longer have.
func syncChartFiles() error {
	for _, c := range chartCopies {
		want, err := c.source()
		if err != nil {
			return err
		}
		dir := filepath.Join(chart, "files", c.dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		keep := map[string]bool{}
		for _, f := range want {
			keep[f.name] = true
			if err := os.WriteFile(filepath.Join(dir, f.name), f.data, 0o644); err != nil {
				return err
			}
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if !keep[e.Name()] {
				if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// TestChartFilesInSync fails when the chart's copies differ from alerts/ and
// dashboards/, the single source of truth.
func TestChartFilesInSync(t *testing.T) {
	for _, c := range chartCopies {
		t.Run(c.dir, func(t *testing.T) {
			want, err := c.source()
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(chart, "files", c.dir)
			entries, err := os.ReadDir(dir)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			var have []string
			for _, e := range entries {
				have = append(have, e.Name())
			}
			var wantNames []string
			for _, f := range want {
				wantNames = append(wantNames, f.name)
				got, err := os.ReadFile(filepath.Join(dir, f.name))
				if err != nil {
					t.Errorf("%s/%s is missing from the chart's files/%s: run go test ./deploy/helm -update", c.dir, f.name, c.dir)
					continue
				}
				if !bytes.Equal(got, f.data) {
					t.Errorf("files/%s/%s differs from %s/%s: run go test ./deploy/helm -update", c.dir, f.name, c.dir, f.name)
				}
			}
			sort.Strings(have)
			sort.Strings(wantNames)
			if !slices.Equal(have, wantNames) {
				t.Errorf("files/%s has %v, %s/ has %v: run go test ./deploy/helm -update", c.dir, have, c.dir, wantNames)
			}
		})
	}
}

// TestChartShipsAlerts fails when alerts/ has no alerting rule: the chart
// must bring the project's alerts.
func TestChartShipsAlerts(t *testing.T) {
	files, err := alertRuleFiles()
	if err != nil {
		t.Fatal(err)
	}
	alerts := 0
	for _, f := range files {
		alerts += len(alertNames(t, f.data))
	}
	if alerts == 0 {
		t.Fatalf("alerts/ has no alerting rules (%d rule files): the chart's PrometheusRule would be empty", len(files))
	}
}

// ---- helm ----

func helmBin(t *testing.T) string {
	t.Helper()
	if h := os.Getenv("HELM"); h != "" {
		return h
	}
	if p := filepath.Join(root, ".tools", "bin", "helm"); fileExists(p) {
		return p
	}
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	t.Fatalf("helm not found in $HELM, .tools/bin or PATH; install it with: %s", helmInstall)
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// runHelm runs helm in the chart directory and returns stdout; stderr is part
// of the error.
func runHelm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(helmBin(t), args...)
	cmd.Dir = chart
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// template renders the chart in dir with extra helm args.
func templateIn(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	full := append([]string{"template", release, dir, "--namespace", namespace, "--kube-version", kubeVersion}, args...)
	return runHelm(t, full...)
}

func render(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return templateIn(t, ".", args...)
}

func mustRender(t *testing.T, args ...string) []object {
	t.Helper()
	out, err := render(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return parseDocs(t, out)
}

// renderCase is a set of values the tests render the chart with.
type renderCase struct {
	name   string
	args   []string
	golden bool
}

// allOn turns every optional part on (ci/all-on-values.yaml).
var allOn = []string{"-f", "ci/all-on-values.yaml"}

// renderCases are the value sets every structural check runs on.
func renderCases(t *testing.T) []renderCase {
	seed := nkeySeed(t)
	return []renderCase{
		{name: "default", golden: true},
		{name: "all-on", args: allOn, golden: true},
		{name: "creds", args: []string{"--set", "nats.auth.method=creds", "--set-string", "nats.auth.creds=TEST-MARKER-creds"}},
		{name: "nkey", args: []string{"--set", "nats.auth.method=nkey", "--set-string", "nats.auth.nkeySeed=" + seed}},
		{name: "token", args: []string{"--set", "nats.auth.method=token", "--set-string", "nats.auth.token=TEST-MARKER-token",
			"--set", "jetstream.stream=FACEID", "--set", "jetstream.createStream=true"}},
		{name: "demo", args: []string{"--set", "demo.enabled=true", "--set", "nats.urls=null"}},
		{name: "existing-secret", args: []string{"--set", "existingSecret=faceid-secrets", "--set", "nats.auth.method=creds",
			"--set", "nats.tls.enabled=true", "--set", "nats.tls.clientCert=true", "--set", "web.tls.enabled=true",
			"--set", "web.basicAuth.enabled=true", "--set", "otlp.endpoint=collector:4317", "--set", "otlp.headersFromSecret=true",
			"--set", "config.dedupe.window=5m"}},
		{name: "probe-headers", args: []string{"--set", "web.basicAuth.enabled=true", "--set", "web.basicAuth.users.prom=TEST-MARKER-hash",
			"--set", "probes.httpHeaders[0].name=Authorization", "--set", "probes.httpHeaders[0].value=Basic cHJvbTpwcm9t"}},
	}
}

// TestJetStreamArgs checks the Deployment passes every jetstream value as its
// flag in JetStream mode, the stream-creation flags only with createStream,
// nothing of JetStream in core mode, and never the flags the exporter removed.
func TestJetStreamArgs(t *testing.T) {
	removed := []string{"--jetstream.max-ack-pending", "--jetstream.ack-wait"}
	always := []string{"--jetstream.stream=FACEID", "--jetstream.consumer=faceid-exporter", "--jetstream.partitions=1",
		"--jetstream.checkpoint-bucket=faceid-checkpoints", "--jetstream.checkpoint-interval=1s",
		"--jetstream.checkpoint-replicas=3", "--jetstream.takeover-timeout=10s", "--jetstream.instance=$(POD_NAME)"}
	creation := []string{"--jetstream.stream-max-age=168h", "--jetstream.stream-max-bytes=8GiB",
		"--jetstream.stream-replicas=3", "--jetstream.dead-letter-stream=FACEID_DEADLETTER"}
	for _, c := range []struct {
		name           string
		args           []string
		want, unwanted []string
	}{
		{"core", []string{"--set", "jetstream.stream="}, []string{"--nats.core"}, append(append([]string{"--jetstream.", "--no-jetstream."}, always...), creation...)},
		{"default", nil, append(append([]string{"--jetstream.create-stream"}, always...), creation...),
			[]string{"--no-jetstream.create-stream", "--nats.core"}},
		{"demo", []string{"--set", "demo.enabled=true", "--set", "nats.urls=null"}, []string{"--demo", "--jetstream.checkpoint-replicas=1", "--jetstream.stream-replicas=1"},
			[]string{"--nats.url", "--nats.core"}},
		{"existing-stream", []string{"--set", "jetstream.stream=FACEID", "--set", "jetstream.createStream=false"},
			append([]string{"--no-jetstream.create-stream"}, always...), creation},
		{"replicas-share-partitions", []string{"--set", "jetstream.stream=FACEID", "--set", "jetstream.partitions=3", "--set", "replicaCount=3",
			"--set", "jetstream.checkpointReplicas=3", "--set", "jetstream.streamReplicas=3", "--set", "jetstream.takeoverTimeout=20s"},
			[]string{"--jetstream.partitions=3", "--jetstream.checkpoint-replicas=3", "--jetstream.stream-replicas=3", "--jetstream.takeover-timeout=20s"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			objs := mustRender(t, c.args...)
			args := containerArgs(t, one(t, objs, "Deployment"))
			has := func(want string) bool {
				for _, a := range args {
					if a == want || (strings.HasSuffix(want, ".") && strings.HasPrefix(a, want)) {
						return true
					}
				}
				return false
			}
			for _, w := range c.want {
				if !has(w) {
					t.Errorf("args lack %s: %v", w, args)
				}
			}
			for _, u := range append(c.unwanted, removed...) {
				for _, a := range args {
					if a == u || strings.HasPrefix(a, u+"=") || (strings.HasSuffix(u, ".") && strings.HasPrefix(a, u)) {
						t.Errorf("args hold %s: %v", a, args)
					}
				}
			}
			if c.name == "replicas-share-partitions" {
				if n := dig(one(t, objs, "Deployment"), "spec", "replicas"); n != 3 {
					t.Errorf("replicas %v, want 3", n)
				}
			}
		})
	}
}

// ---- parsed objects ----

type object = map[string]any

func parseDocs(t *testing.T, out string) []object {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(out))
	var objs []object
	for {
		var o object
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("rendered YAML: %v", err)
		}
		if o != nil {
			objs = append(objs, o)
		}
	}
	return objs
}

// dig walks maps by key and lists by index ("0").
func dig(v any, path ...string) any {
	for _, p := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			var i int
			if _, err := fmt.Sscan(p, &i); err != nil || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func str(v any, path ...string) string {
	s, _ := dig(v, path...).(string)
	return s
}

func ofKind(objs []object, kind string) []object {
	var out []object
	for _, o := range objs {
		if o["kind"] == kind {
			out = append(out, o)
		}
	}
	return out
}

func one(t *testing.T, objs []object, kind string) object {
	t.Helper()
	k := ofKind(objs, kind)
	if len(k) != 1 {
		t.Fatalf("%d objects of kind %s, want 1", len(k), kind)
	}
	return k[0]
}

// normalise makes YAML-decoded values comparable: maps, lists, float64 numbers.
func normalise(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func alertNames(t *testing.T, data []byte) []string {
	t.Helper()
	var doc struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				names = append(names, r.Alert)
			}
		}
	}
	return names
}

// ---- lint and golden ----

func TestLint(t *testing.T) {
	for _, c := range []renderCase{{name: "default"}, {name: "all-on", args: allOn}} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"lint", "--strict", "--kube-version", kubeVersion, "."}, c.args...)
			out, err := runHelm(t, args...)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, "0 chart(s) failed") {
				t.Fatalf("helm lint: %s", out)
			}
		})
	}
}

var (
	sourceLine  = regexp.MustCompile(`(?m)^# Source: \S+/templates/(\S+)$`)
	sourceAnnot = regexp.MustCompile(`(?m)^    faceid-exporter/source: (\S+)$`)
)

// goldenForm is helm's output with the bodies copied from alerts/ and
// dashboards/ cut: TestPrometheusRule and TestDashboards compare those with
// their sources, and the golden files stay about the chart's templates.
func goldenForm(t *testing.T, out string) string {
	t.Helper()
	docs := strings.Split(out, "\n---\n")
	for i, d := range docs {
		src := sourceLine.FindStringSubmatch(d)
		if src == nil {
			continue
		}
		var cut, note string
		switch src[1] {
		case "prometheusrule.yaml":
			cut, note = "\nspec:\n", "  # groups: those of %s (checked by TestPrometheusRule)\n"
		case "dashboards.yaml":
			cut, note = "\ndata:\n", "  # the JSON of %s, byte for byte (checked by TestDashboards)\n"
		default:
			continue
		}
		at := strings.Index(d, cut)
		from := sourceAnnot.FindStringSubmatch(d)
		if at < 0 || from == nil {
			t.Fatalf("rendered %s without %q or a faceid-exporter/source annotation:\n%s", src[1], strings.TrimSpace(cut), d)
		}
		docs[i] = d[:at+len(cut)] + fmt.Sprintf(note, from[1])
	}
	return strings.Join(docs, "\n---\n")
}

func TestGolden(t *testing.T) {
	for _, c := range renderCases(t) {
		if !c.golden {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			out, err := render(t, c.args...)
			if err != nil {
				t.Fatal(err)
			}
			got := goldenForm(t, out)
			golden.Check(t, filepath.Join(chart, "tests", "golden", c.name+".yaml"), []byte(got), *update, "go test ./deploy/helm -update")
		})
	}
}

// ---- alert rules and dashboards ----

// expectedGroups is what the chart must render for one alerts/ file, given
// the rule labels it adds and the alerts it leaves out.
func expectedGroups(t *testing.T, data []byte, extraLabels map[string]any, disabled []string) any {
	t.Helper()
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	groups := normalise(t, doc["groups"]).([]any)
	var out []any
	for _, g := range groups {
		g := g.(map[string]any)
		var rules []any
		for _, r := range g["rules"].([]any) {
			r := r.(map[string]any)
			alert, _ := r["alert"].(string)
			if alert != "" && slices.Contains(disabled, alert) {
				continue
			}
			if alert != "" && len(extraLabels) > 0 {
				labels, _ := r["labels"].(map[string]any)
				merged := map[string]any{}
				for k, v := range extraLabels {
					merged[k] = v
				}
				for k, v := range labels { // the rule's own labels win
					merged[k] = v
				}
				r["labels"] = merged
			}
			rules = append(rules, r)
		}
		if len(rules) > 0 {
			g["rules"] = rules
			out = append(out, g)
		}
	}
	return out
}

func TestPrometheusRule(t *testing.T) {
	files, err := alertRuleFiles()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("alerts/ has no rule files")
	}
	firstAlert := ""
	for _, f := range files {
		if names := alertNames(t, f.data); len(names) > 0 && firstAlert == "" {
			firstAlert = names[0]
		}
	}
	cases := []struct {
		name      string
		args      []string
		labels    map[string]any
		disabled  []string
		namespace string
	}{
		{name: "all-on", args: allOn, labels: map[string]any{"team": "identity"}, namespace: "monitoring"},
		{name: "disabled-alert", args: []string{"--set", "prometheusRule.enabled=true", "--set", "prometheusRule.disabledAlerts[0]=" + firstAlert},
			disabled: []string{firstAlert}, namespace: namespace},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rules := ofKind(mustRender(t, c.args...), "PrometheusRule")
			bySource := map[string]object{}
			for _, r := range rules {
				src := str(r, "metadata", "annotations", "faceid-exporter/source")
				if _, dup := bySource[src]; dup {
					t.Errorf("two PrometheusRules from %s", src)
				}
				bySource[src] = r
				if ns := str(r, "metadata", "namespace"); ns != c.namespace {
					t.Errorf("%s: namespace %q, want %q", src, ns, c.namespace)
				}
			}
			for _, f := range files {
				src := "alerts/" + f.name
				r, ok := bySource[src]
				want := expectedGroups(t, f.data, c.labels, c.disabled)
				if want == nil {
					if ok {
						t.Errorf("%s: rendered although every rule is disabled", src)
					}
					continue
				}
				if !ok {
					t.Errorf("no PrometheusRule from %s", src)
					continue
				}
				delete(bySource, src)
				got := normalise(t, dig(r, "spec", "groups"))
				if !reflect.DeepEqual(got, want) {
					gj, _ := json.MarshalIndent(got, "", " ")
					wj, _ := json.MarshalIndent(want, "", " ")
					t.Errorf("%s: rendered groups differ from the file\n got: %.2000s\nwant: %.2000s", src, gj, wj)
				}
			}
			for src := range bySource {
				t.Errorf("PrometheusRule from %s, which is not a rule file of alerts/", src)
			}
		})
	}
	t.Run("off-by-default", func(t *testing.T) {
		if n := len(ofKind(mustRender(t), "PrometheusRule")); n != 0 {
			t.Errorf("%d PrometheusRules with default values, want none", n)
		}
	})
}

// checkDashboards asserts the rendered dashboard ConfigMaps hold exactly the
// files, byte for byte, labelled for the Grafana sidecar.
func checkDashboards(t *testing.T, objs []object, files []sourceFile, ns, label, value, folderAnnotation, folder string) {
	t.Helper()
	got := map[string]string{}
	for _, cm := range ofKind(objs, "ConfigMap") {
		if str(cm, "metadata", "labels", label) == "" {
			continue
		}
		if v := str(cm, "metadata", "labels", label); v != value {
			t.Errorf("%s: label %s=%q, want %q", str(cm, "metadata", "name"), label, v, value)
		}
		if f := str(cm, "metadata", "annotations", folderAnnotation); f != folder {
			t.Errorf("%s: annotation %s=%q, want %q", str(cm, "metadata", "name"), folderAnnotation, f, folder)
		}
		if n := str(cm, "metadata", "namespace"); n != ns {
			t.Errorf("%s: namespace %q, want %q", str(cm, "metadata", "name"), n, ns)
		}
		data, _ := cm["data"].(map[string]any)
		if len(data) != 1 {
			t.Errorf("%s: %d data keys, want 1 dashboard", str(cm, "metadata", "name"), len(data))
		}
		for k, v := range data {
			if _, dup := got[k]; dup {
				t.Errorf("dashboard %s in two ConfigMaps", k)
			}
			got[k], _ = v.(string)
		}
	}
	if len(got) != len(files) {
		t.Errorf("%d dashboard ConfigMaps, want %d (one per dashboards/*.json)", len(got), len(files))
	}
	for _, f := range files {
		g, ok := got[f.name]
		if !ok {
			t.Errorf("no ConfigMap holds dashboard %s", f.name)
			continue
		}
		if g != string(f.data) {
			t.Errorf("ConfigMap of %s differs from the file (%d bytes rendered, %d in the file)", f.name, len(g), len(f.data))
		}
	}
}

func TestDashboards(t *testing.T) {
	files, err := dashboardFiles()
	if err != nil {
		t.Fatal(err)
	}
	t.Run("all-on", func(t *testing.T) {
		checkDashboards(t, mustRender(t, allOn...), files, "monitoring", "grafana_dashboard", "1", "grafana_folder", "FaceID")
	})
	t.Run("custom-label-and-folder", func(t *testing.T) {
		objs := mustRender(t, "--set", "dashboards.enabled=true", "--set", "dashboards.label=my_dashboards",
			"--set-string", "dashboards.labelValue=yes", "--set", "dashboards.folderAnnotation=k8s-sidecar-target-directory",
			"--set", "dashboards.folder=/tmp/dashboards/faceid")
		checkDashboards(t, objs, files, namespace, "my_dashboards", "yes", "k8s-sidecar-target-directory", "/tmp/dashboards/faceid")
	})
	t.Run("off-by-default", func(t *testing.T) {
		checkDashboards(t, mustRender(t), nil, namespace, "grafana_dashboard", "1", "grafana_folder", "FaceID")
	})
}

// TestDashboardBytesPreserved renders dashboards whose bytes a YAML block
// would change (no final newline, two, CRLF, leading space) from a copy of
// the chart: each must come out unchanged.
func TestDashboardBytesPreserved(t *testing.T) {
	dir := filepath.Join(t.TempDir(), chartName)
	if err := os.CopyFS(dir, os.DirFS(chart)); err != nil {
		t.Fatal(err)
	}
	dash := filepath.Join(dir, "files", "dashboards")
	if err := os.RemoveAll(dash); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dash, 0o755); err != nil {
		t.Fatal(err)
	}
	files := []sourceFile{
		{"a_no_newline.json", []byte(`{"title":"a","panels":[]}`)},
		{"b.two.newlines.json", []byte("{\n  \"title\": \"b\"\n}\n\n")},
		{"c-crlf.json", []byte("{\r\n  \"title\": \"c\"\r\n}\r\n")},
		{"d-leading-space.json", []byte("  {\"title\": \"d <>&\\u00e9 面\"}\n")},
		{"e-block.json", []byte("{\n  \"title\": \"e: {{ not a template }}\",\n\n  \"x\": \"\\t\"\n}\n")},
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dash, f.name), f.data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := templateIn(t, dir, "--set", "dashboards.enabled=true")
	if err != nil {
		t.Fatal(err)
	}
	checkDashboards(t, parseDocs(t, out), files, namespace, "grafana_dashboard", "1", "grafana_folder", "FaceID")
}

// ---- security ----

func TestPodSecurity(t *testing.T) {
	for _, c := range renderCases(t) {
		t.Run(c.name, func(t *testing.T) {
			objs := mustRender(t, c.args...)
			dep := one(t, objs, "Deployment")
			pod := dig(dep, "spec", "template", "spec")
			if dig(pod, "securityContext", "runAsNonRoot") != true {
				t.Error("pod securityContext.runAsNonRoot is not true")
			}
			if uid, _ := dig(pod, "securityContext", "runAsUser").(int); uid == 0 {
				t.Error("pod securityContext.runAsUser is 0 or unset")
			}
			if dig(pod, "automountServiceAccountToken") != false {
				t.Error("the service account token is mounted; the exporter does not use the API")
			}
			podSeccomp := str(pod, "securityContext", "seccompProfile", "type")
			containers, _ := dig(pod, "containers").([]any)
			if len(containers) == 0 {
				t.Fatal("no containers")
			}
			for _, ct := range containers {
				name := str(ct, "name")
				sc := dig(ct, "securityContext")
				if dig(sc, "readOnlyRootFilesystem") != true {
					t.Errorf("%s: readOnlyRootFilesystem is not true", name)
				}
				if dig(sc, "allowPrivilegeEscalation") != false {
					t.Errorf("%s: allowPrivilegeEscalation is not false", name)
				}
				if dig(sc, "privileged") == true {
					t.Errorf("%s: privileged", name)
				}
				if dig(sc, "runAsNonRoot") == false {
					t.Errorf("%s: runAsNonRoot false overrides the pod's", name)
				}
				drop, _ := dig(sc, "capabilities", "drop").([]any)
				if !slices.Contains(drop, any("ALL")) {
					t.Errorf("%s: capabilities.drop %v lacks ALL", name, drop)
				}
				if add := dig(sc, "capabilities", "add"); add != nil {
					t.Errorf("%s: capabilities.add %v", name, add)
				}
				if s := str(sc, "seccompProfile", "type"); s != "RuntimeDefault" && !(s == "" && podSeccomp == "RuntimeDefault") {
					t.Errorf("%s: seccomp profile %q (pod %q), want RuntimeDefault", name, s, podSeccomp)
				}
			}
			// The only writable path, /tmp, is an emptyDir.
			mounts, _ := dig(containers[0], "volumeMounts").([]any)
			hasTmp := false
			for _, m := range mounts {
				if str(m, "mountPath") == "/tmp" {
					hasTmp = true
				}
			}
			if !hasTmp {
				t.Error("no /tmp emptyDir: the embedded NATS store (demo) cannot be written on a read-only root")
			}
		})
	}
}

// TestProbesAndShutdown checks the probes hit the exporter's health endpoints
// on its port and that Kubernetes waits longer than the exporter's shutdown.
func TestProbesAndShutdown(t *testing.T) {
	cases := []struct {
		name, scheme string
		args         []string
		tcp          bool
		headers      bool
	}{
		{name: "default", scheme: "HTTP"},
		{name: "tls", scheme: "HTTPS", args: []string{"--set", "web.tls.enabled=true", "--set", "web.tls.cert=x", "--set", "web.tls.key=y"}},
		{name: "basic-auth-no-headers", tcp: true, args: []string{"--set", "web.basicAuth.enabled=true", "--set", "web.basicAuth.users.prom=h"}},
		{name: "basic-auth-headers", scheme: "HTTP", headers: true, args: []string{"--set", "web.basicAuth.enabled=true",
			"--set", "web.basicAuth.users.prom=h", "--set", "probes.httpHeaders[0].name=Authorization", "--set", "probes.httpHeaders[0].value=Basic eA=="}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dep := one(t, mustRender(t, c.args...), "Deployment")
			ct := dig(dep, "spec", "template", "spec", "containers", "0")
			for probe, path := range map[string]string{"livenessProbe": "/-/healthy", "readinessProbe": "/-/ready"} {
				p := dig(ct, probe)
				if c.tcp {
					if str(p, "tcpSocket", "port") != "http" || dig(p, "httpGet") != nil {
						t.Errorf("%s: %v, want a TCP check of port http", probe, p)
					}
					continue
				}
				if str(p, "httpGet", "path") != path || str(p, "httpGet", "port") != "http" || str(p, "httpGet", "scheme") != c.scheme {
					t.Errorf("%s: %v, want GET %s %s on port http", probe, dig(p, "httpGet"), c.scheme, path)
				}
				if (dig(p, "httpGet", "httpHeaders") != nil) != c.headers {
					t.Errorf("%s: headers %v", probe, dig(p, "httpGet", "httpHeaders"))
				}
			}
			if str(ct, "ports", "0", "name") != "http" {
				t.Errorf("container port is not named http: %v", dig(ct, "ports"))
			}
			grace, _ := dig(dep, "spec", "template", "spec", "terminationGracePeriodSeconds").(int)
			args := containerArgs(t, dep)
			var timeout int
			for _, a := range args {
				if s, ok := strings.CutPrefix(a, "--shutdown.timeout="); ok {
					fmt.Sscanf(s, "%ds", &timeout)
				}
			}
			if timeout == 0 || grace <= timeout {
				t.Errorf("terminationGracePeriodSeconds %d, --shutdown.timeout %ds: Kubernetes must wait longer than the exporter drains", grace, timeout)
			}
		})
	}
}

// ---- secrets ----

var (
	secretKeyName = regexp.MustCompile(`(?i)password|passwd|secret|token|creds|nkey|seed|private|\.key$|key\.pem|bearer|authorization`)
	secretValue   = regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----|-----BEGIN NATS USER JWT-----|\bS[UAOCN][A-Z2-7]{56}\b|TEST-MARKER|(?i)bearer\s+\S`)
)

// markers returns the secret test values of a values file (TEST-MARKER...).
func markers(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chart, path))
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		case string:
			if strings.Contains(x, "TEST-MARKER") {
				found = append(found, x)
			}
		}
	}
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	walk(v)
	if len(found) == 0 {
		t.Fatalf("%s has no TEST-MARKER secret values", path)
	}
	return found
}

// rawDocs splits helm's output into documents.
func rawDocs(out string) []string {
	var docs []string
	for _, d := range strings.Split(out, "\n---\n") {
		if strings.TrimSpace(d) != "" {
			docs = append(docs, d)
		}
	}
	return docs
}

func TestSecretsOnlyInSecrets(t *testing.T) {
	for _, c := range renderCases(t) {
		t.Run(c.name, func(t *testing.T) {
			out, err := render(t, c.args...)
			if err != nil {
				t.Fatal(err)
			}
			var secretText strings.Builder
			for _, d := range rawDocs(out) {
				var o object
				if err := yaml.Unmarshal([]byte(d), &o); err != nil {
					t.Fatal(err)
				}
				kind, _ := o["kind"].(string)
				if kind == "Secret" {
					data, _ := o["data"].(map[string]any)
					for k, v := range data {
						dec, err := base64.StdEncoding.DecodeString(v.(string))
						if err != nil {
							t.Errorf("Secret key %s: %v", k, err)
						}
						secretText.Write(dec)
						secretText.WriteByte('\n')
					}
					continue
				}
				// Outside Secrets: no marker, plain or base64, and nothing that looks secret.
				if m := secretValue.FindString(d); m != "" {
					t.Errorf("%s %s holds secret-looking %q", kind, str(o, "metadata", "name"), m)
				}
				if kind == "ConfigMap" {
					checkConfigMap(t, o)
				}
				if kind == "Deployment" {
					checkEnv(t, o)
				}
			}
			if c.name == "all-on" {
				for _, m := range markers(t, "ci/all-on-values.yaml") {
					if !strings.Contains(secretText.String(), m) {
						t.Errorf("secret value %q is not in the Secret", m)
					}
					b64 := base64.StdEncoding.EncodeToString([]byte(m))
					for _, d := range rawDocs(out) {
						if !strings.Contains(d, "kind: Secret") && strings.Contains(d, b64) {
							t.Errorf("base64 of %q outside the Secret", m)
						}
					}
				}
			}
			if c.name == "existing-secret" && len(ofKind(parseDocs(t, out), "Secret")) != 0 {
				t.Error("a Secret is rendered although existingSecret is set")
			}
		})
	}
}

// checkConfigMap rejects secret-looking keys in a ConfigMap, including keys
// inside the exporter's config file.
func checkConfigMap(t *testing.T, cm object) {
	t.Helper()
	name := str(cm, "metadata", "name")
	data, _ := cm["data"].(map[string]any)
	for k, v := range data {
		if secretKeyName.MatchString(k) {
			t.Errorf("ConfigMap %s has secret-looking key %q", name, k)
		}
		if !strings.HasSuffix(k, ".yml") && !strings.HasSuffix(k, ".yaml") {
			continue
		}
		var cfg any
		if err := yaml.Unmarshal([]byte(v.(string)), &cfg); err != nil {
			t.Errorf("ConfigMap %s key %s: %v", name, k, err)
			continue
		}
		var walk func(v any, path string)
		walk = func(v any, path string) {
			switch x := v.(type) {
			case map[string]any:
				for kk, vv := range x {
					if secretKeyName.MatchString(kk) {
						t.Errorf("ConfigMap %s: %s has secret-looking key %q", name, k, path+kk)
					}
					walk(vv, path+kk+".")
				}
			case []any:
				for _, e := range x {
					walk(e, path)
				}
			}
		}
		walk(cfg, "")
	}
}

// checkEnv requires secret-looking environment variables to come from a Secret.
func checkEnv(t *testing.T, dep object) {
	t.Helper()
	env, _ := dig(dep, "spec", "template", "spec", "containers", "0", "env").([]any)
	for _, e := range env {
		name := str(e, "name")
		if secretKeyName.MatchString(name) || strings.Contains(name, "HEADERS") {
			if dig(e, "value") != nil || dig(e, "valueFrom", "secretKeyRef") == nil {
				t.Errorf("env %s is not from a secretKeyRef: %v", name, e)
			}
		}
	}
}

func nkeySeed(t *testing.T) string {
	t.Helper()
	// A valid user seed derived from fixed bytes: nobody's key, but one the
	// exporter's --config.check accepts.
	seed, err := nkeys.EncodeSeed(nkeys.PrefixByteUser, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	return string(seed)
}

// subset reports whether every label of sel is in labels.
func subset(sel, labels any) bool {
	s, _ := sel.(map[string]any)
	l, _ := labels.(map[string]any)
	if len(s) == 0 {
		return false
	}
	for k, v := range s {
		if l[k] != v {
			return false
		}
	}
	return true
}

// TestObjectsFitTogether checks the references between the rendered objects:
// selectors, port names, the job label, the HPA's target, the service account.
func TestObjectsFitTogether(t *testing.T) {
	objs := mustRender(t, allOn...)
	dep := one(t, objs, "Deployment")
	podLabels := dig(dep, "spec", "template", "metadata", "labels")
	if !subset(dig(dep, "spec", "selector", "matchLabels"), podLabels) {
		t.Error("the Deployment's selector does not match its pods")
	}
	svc := one(t, objs, "Service")
	if !subset(dig(svc, "spec", "selector"), podLabels) {
		t.Error("the Service's selector does not match the pods")
	}
	if str(svc, "spec", "ports", "0", "targetPort") != str(dep, "spec", "template", "spec", "containers", "0", "ports", "0", "name") {
		t.Error("the Service's targetPort is not the container's port name")
	}
	sm := one(t, objs, "ServiceMonitor")
	if !subset(dig(sm, "spec", "selector", "matchLabels"), dig(svc, "metadata", "labels")) {
		t.Error("the ServiceMonitor's selector does not match the Service")
	}
	if ns, _ := dig(sm, "spec", "namespaceSelector", "matchNames").([]any); !slices.Contains(ns, any(str(svc, "metadata", "namespace"))) {
		t.Errorf("the ServiceMonitor looks in %v, the Service is in %s", ns, str(svc, "metadata", "namespace"))
	}
	if str(sm, "spec", "endpoints", "0", "port") != str(svc, "spec", "ports", "0", "name") {
		t.Error("the ServiceMonitor's port is not the Service's port name")
	}
	if str(sm, "spec", "endpoints", "0", "scheme") != "https" {
		t.Error("web.tls is on but the ServiceMonitor scrapes http")
	}
	if job := str(svc, "metadata", "labels", str(sm, "spec", "jobLabel")); job != "faceid-exporter" {
		t.Errorf("the job label would be %q; the alerts and dashboards expect job=\"faceid-exporter\"", job)
	}
	if !subset(dig(one(t, objs, "PodDisruptionBudget"), "spec", "selector", "matchLabels"), podLabels) {
		t.Error("the PodDisruptionBudget's selector does not match the pods")
	}
	if !subset(dig(one(t, objs, "NetworkPolicy"), "spec", "podSelector", "matchLabels"), podLabels) {
		t.Error("the NetworkPolicy's podSelector does not match the pods")
	}
	hpa := one(t, objs, "HorizontalPodAutoscaler")
	if str(hpa, "spec", "scaleTargetRef", "name") != str(dep, "metadata", "name") || str(hpa, "spec", "scaleTargetRef", "kind") != "Deployment" {
		t.Error("the HPA does not target the Deployment")
	}
	if dig(dep, "spec", "replicas") != nil {
		t.Error("the Deployment sets replicas although the HPA owns them")
	}
	if str(dep, "spec", "template", "spec", "serviceAccountName") != str(one(t, objs, "ServiceAccount"), "metadata", "name") {
		t.Error("the pod does not use the chart's ServiceAccount")
	}
	for _, ann := range []string{"checksum/config", "checksum/secret"} {
		if str(dep, "spec", "template", "metadata", "annotations", ann) == "" {
			t.Errorf("no %s annotation: pods would not roll when it changes", ann)
		}
	}
	// The checksum follows the config.
	other := one(t, mustRender(t, append(slices.Clone(allOn), "--set", "config.dedupe.window=20m")...), "Deployment")
	if str(other, "spec", "template", "metadata", "annotations", "checksum/config") == str(dep, "spec", "template", "metadata", "annotations", "checksum/config") {
		t.Error("checksum/config did not change with the config")
	}
}
