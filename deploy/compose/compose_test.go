// Package compose_test checks deploy/compose/compose.yaml. No container
// engine runs where the tests run, so the stack is not started: the file is
// loaded by the compose-spec loader (what docker compose itself uses), and
// everything it builds from or mounts is checked against the repository. It
// is a module of its own so that the loader stays out of the exporter's
// dependencies.
package compose_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"
)

// load loads compose.yaml with the given profiles, as `docker compose
// --profile ...` would.
func load(t *testing.T, profiles ...string) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"compose.yaml"},
		cli.WithWorkingDirectory("."),
		cli.WithProfiles(profiles),
		cli.WithResolvedPaths(true),
		cli.WithoutEnvironmentResolution,
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("compose.yaml does not load: %v", err)
	}
	return p
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no repository root at %s: %v", root, err)
	}
	return root
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatalf("service %s: %v", name, err)
	}
	return s
}

// TestComposeServices checks what each service is: the images, the
// exporter's JetStream mode, and that every address one service uses to
// reach another names a service of the file.
func TestComposeServices(t *testing.T) {
	p := load(t)
	if got, want := p.ServiceNames(), []string{"alertmanager", "faceid-exporter", "grafana", "nats", "prometheus"}; !slices.Equal(sorted(got), want) {
		t.Fatalf("services %v, want %v (simulate only with --profile traffic)", got, want)
	}
	nats := service(t, p, "nats")
	if !strings.HasPrefix(nats.Image, "nats:") || !slices.Contains(nats.Command, "-js") {
		t.Errorf("nats: image %q, command %v: want the official nats image with JetStream (-js)", nats.Image, nats.Command)
	}
	exp := service(t, p, "faceid-exporter")
	for _, want := range []string{"--nats.url=nats://nats:4222", "--jetstream.stream=FACEID", "--web.listen-address=:9479"} {
		if !slices.Contains(exp.Command, want) {
			t.Errorf("faceid-exporter command %v lacks %s", exp.Command, want)
		}
	}
	if exp.Build == nil || exp.Build.Context != repoRoot(t) || exp.Build.Dockerfile != "Dockerfile" {
		t.Errorf("faceid-exporter build %+v: want the repository's Dockerfile", exp.Build)
	}
	sim := service(t, load(t, "traffic"), "simulate")
	if len(sim.Command) == 0 || sim.Command[0] != "simulate" || !slices.Contains(sim.Command, "--jetstream.stream=FACEID") {
		t.Errorf("simulate command %v", sim.Command)
	}
	for _, name := range []string{"prometheus", "alertmanager"} {
		if img := service(t, p, name).Image; !strings.HasPrefix(img, "prom/"+name+":v") {
			t.Errorf("%s image %q: want a pinned official image", name, img)
		}
	}
	g := service(t, p, "grafana")
	if g.Environment["GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS"] == nil || *g.Environment["GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS"] != "faceid-verification-datasource" {
		t.Errorf("grafana does not allow the unsigned plugin: %v", g.Environment)
	}

	// Addresses in the mounted configuration name services of this file.
	root := repoRoot(t)
	var prom struct {
		Alerting struct {
			Alertmanagers []struct {
				StaticConfigs []struct{ Targets []string } `yaml:"static_configs"`
			}
		}
		ScrapeConfigs []struct {
			JobName       string                       `yaml:"job_name"`
			StaticConfigs []struct{ Targets []string } `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
		RuleFiles []string `yaml:"rule_files"`
	}
	readYAML(t, filepath.Join(root, "deploy/prometheus/prometheus.yml"), &prom)
	var targets []string
	for _, sc := range prom.ScrapeConfigs {
		for _, c := range sc.StaticConfigs {
			targets = append(targets, c.Targets...)
		}
	}
	for _, am := range prom.Alerting.Alertmanagers {
		for _, c := range am.StaticConfigs {
			targets = append(targets, c.Targets...)
		}
	}
	for _, ds := range []string{"prometheus.yaml", "faceid-plugin.yaml"} {
		var f struct{ Datasources []struct{ URL string } }
		readYAML(t, filepath.Join(root, "deploy/grafana/provisioning/datasources", ds), &f)
		for _, d := range f.Datasources {
			targets = append(targets, strings.TrimPrefix(d.URL, "http://"))
		}
	}
	if len(targets) < 4 {
		t.Fatalf("only %d addresses found: %v", len(targets), targets)
	}
	for _, addr := range targets {
		host, _, _ := strings.Cut(addr, ":")
		if _, err := p.GetService(host); err != nil {
			t.Errorf("address %s: no service %s in compose.yaml", addr, host)
		}
	}
}

// TestComposeMounts checks that every bind mount and build of the file
// exists in the repository, and that what the programs read inside the
// containers is where the mounts put it: Prometheus's rule files, Grafana's
// dashboards.
func TestComposeMounts(t *testing.T) {
	p := load(t, "traffic")
	mounts := map[string]string{} // container path → host path, per service
	for _, s := range p.Services {
		if s.Build != nil {
			if fi, err := os.Stat(s.Build.Context); err != nil || !fi.IsDir() {
				t.Errorf("%s: build context %s: %v", s.Name, s.Build.Context, err)
			}
			if _, err := os.Stat(filepath.Join(s.Build.Context, s.Build.Dockerfile)); err != nil {
				t.Errorf("%s: dockerfile: %v", s.Name, err)
			}
		}
		for _, v := range s.Volumes {
			switch v.Type {
			case types.VolumeTypeBind:
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("%s mounts %s: %v", s.Name, v.Source, err)
				}
				if !v.ReadOnly {
					t.Errorf("%s mounts %s read-write", s.Name, v.Source)
				}
				mounts[s.Name+":"+v.Target] = v.Source
			case types.VolumeTypeVolume:
				if _, ok := p.Volumes[v.Source]; !ok {
					t.Errorf("%s uses volume %s, not declared", s.Name, v.Source)
				}
			default:
				t.Errorf("%s: volume type %s", s.Name, v.Type)
			}
		}
	}

	// Prometheus: the rule files its config names, resolved inside the
	// container relative to where the config is mounted.
	prom := service(t, p, "prometheus")
	var configPath string
	for _, a := range prom.Command {
		if v, ok := strings.CutPrefix(a, "--config.file="); ok {
			configPath = v
		}
	}
	hostConfig, ok := mounts["prometheus:"+configPath]
	if !ok {
		t.Fatalf("prometheus reads %q, which no mount provides", configPath)
	}
	var cfg struct {
		RuleFiles []string `yaml:"rule_files"`
	}
	readYAML(t, hostConfig, &cfg)
	if len(cfg.RuleFiles) == 0 {
		t.Fatal("the prometheus config has no rule_files")
	}
	for _, pattern := range cfg.RuleFiles {
		inContainer := filepath.Join(filepath.Dir(configPath), pattern)
		host := hostPath(t, mounts, "prometheus", inContainer)
		files, err := filepath.Glob(host)
		if err != nil || len(files) == 0 {
			t.Errorf("rule files %s (%s on the host): none", inContainer, host)
		}
		for _, f := range files {
			if !strings.HasSuffix(f, ".rules.yml") {
				t.Errorf("rule_files %s picks up %s, not a rule file", pattern, f)
			}
		}
	}

	// Grafana: the dashboard provider's path holds the dashboards, and the
	// provisioning directories are the repository's.
	var provider struct {
		Providers []struct{ Options struct{ Path string } }
	}
	readYAML(t, hostPath(t, mounts, "grafana", "/etc/grafana/provisioning/dashboards/faceid.yaml"), &provider)
	if len(provider.Providers) != 1 {
		t.Fatalf("dashboard providers: %+v", provider.Providers)
	}
	dash, _ := filepath.Glob(filepath.Join(hostPath(t, mounts, "grafana", provider.Providers[0].Options.Path), "*.json"))
	want, _ := filepath.Glob(filepath.Join(repoRoot(t), "dashboards", "*.json"))
	if len(want) == 0 || !slices.Equal(dash, want) {
		t.Errorf("grafana loads dashboards %v, want every dashboard of dashboards/ %v", dash, want)
	}
	for _, dir := range []string{"datasources", "dashboards", "alerting"} {
		hostPath(t, mounts, "grafana", "/etc/grafana/provisioning/"+dir)
	}
	hostPath(t, mounts, "alertmanager", "/etc/alertmanager/alertmanager.yml")

	// The plugin: grafana.Dockerfile builds grafana-plugin/ with its build.sh.
	g := service(t, p, "grafana")
	if g.Build == nil || g.Build.Context != filepath.Join(repoRoot(t), "grafana-plugin") {
		t.Fatalf("grafana build %+v: want grafana-plugin/ as the context", g.Build)
	}
	df, err := os.ReadFile(filepath.Join(g.Build.Context, g.Build.Dockerfile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"./build.sh frontend", "FROM --platform=$BUILDPLATFORM node:", "go run github.com/magefile/mage -v \"$target\"",
		"/var/lib/grafana/plugins/faceid-verification-datasource", "FROM grafana/grafana-oss:${GRAFANA_VERSION}"} {
		if !strings.Contains(string(df), want) {
			t.Errorf("grafana.Dockerfile lacks %q", want)
		}
	}
	if strings.Contains(string(df), "PLATFORMS=") {
		t.Error("grafana.Dockerfile sets PLATFORMS, which nothing reads")
	}
	// Grafana at the version the plugin's frontend is built against.
	pkg, err := os.ReadFile(filepath.Join(g.Build.Context, "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	var deps struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	if err := json.Unmarshal(pkg, &deps); err != nil {
		t.Fatal(err)
	}
	grafana := strings.TrimLeft(deps.Dependencies["@grafana/data"], "^~")
	if grafana == "" || !strings.Contains(string(df), "ARG GRAFANA_VERSION="+grafana+"\n") {
		t.Errorf("grafana.Dockerfile does not pin GRAFANA_VERSION=%s, the @grafana/data version of grafana-plugin/package.json", grafana)
	}
	if _, err := os.Stat(filepath.Join(g.Build.Context, "build.sh")); err != nil {
		t.Error(err)
	}
}

// hostPath maps a path inside a service's container to the host through
// the service's bind mounts, failing when no mount covers it.
func hostPath(t *testing.T, mounts map[string]string, svc, inContainer string) string {
	t.Helper()
	for target, source := range mounts {
		name, dir, _ := strings.Cut(target, ":")
		if name != svc {
			continue
		}
		if rel, err := filepath.Rel(dir, inContainer); err == nil && !strings.HasPrefix(rel, "..") {
			return filepath.Join(source, rel)
		}
	}
	t.Fatalf("%s: no mount provides %s", svc, inContainer)
	return ""
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

// TestComposeCommandsParse builds the exporter from the repository and checks
// that the commands compose.yaml runs are accepted: serve's with
// --config.check (flags and their combinations, without connecting), and
// every flag of simulate's in its --help.
func TestComposeCommandsParse(t *testing.T) {
	p := load(t, "traffic")
	bin := filepath.Join(t.TempDir(), "exporter")
	build := exec.Command("go", "build", "-o", bin, "./cmd/exporter")
	build.Dir = repoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	exp := service(t, p, "faceid-exporter")
	if out, err := exec.Command(bin, append(slices.Clone(exp.Command), "--config.check")...).CombinedOutput(); err != nil {
		t.Errorf("exporter %s --config.check: %v\n%s", strings.Join(exp.Command, " "), err, out)
	}
	sim := service(t, p, "simulate")
	help, err := exec.Command(bin, sim.Command[0], "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("exporter simulate --help: %v\n%s", err, help)
	}
	for _, a := range sim.Command[1:] {
		name, _, _ := strings.Cut(a, "=")
		if !strings.Contains(string(help), name+"=") {
			t.Errorf("simulate has no flag %s", name)
		}
	}
}
