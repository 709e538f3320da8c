package main

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"

	"github.com/faceid-observability/faceid-exporter/grafana-plugin/pkg/plugin"
)

// distDir is what ../build.sh builds: npm run build and the SDK's mage build.
const distDir = "../dist"

// grafanaPlatforms are the os/arch pairs the SDK's build.BuildAll builds and
// Grafana looks for as <executable>_<os>_<arch>[.exe].
var grafanaPlatforms = []string{"linux/amd64", "linux/arm64", "linux/arm", "darwin/amd64", "darwin/arm64", "windows/amd64"}

// angularPatterns are what Grafana's loader takes as an Angular plugin (its
// angular detector), which Grafana 12 no longer loads.
var angularPatterns = []*regexp.Regexp{
	regexp.MustCompile(`PanelCtrl`),
	regexp.MustCompile(`QueryCtrl`),
	regexp.MustCompile(`ConfigCtrl`),
	regexp.MustCompile(`app/plugins/sdk`),
	regexp.MustCompile(`angular\.isNumber\(`),
	regexp.MustCompile(`editor\.html`),
	regexp.MustCompile(`ctrl\.annotation`),
	regexp.MustCompile(`getLegacyAngularInjector`),
	regexp.MustCompile(`['"](app/core/utils/promiseToDigest)|(app/plugins/.*?)|(app/core/core_module)['"]`),
	regexp.MustCompile(`from\s+['"]grafana\/app\/`),
	regexp.MustCompile(`System\.register\(`),
}

// Rules of Grafana's plugin.json schema for the keys a datasource uses.
var (
	schemaTopKeys = []string{"$schema", "alerting", "annotations", "autoEnabled", "backend", "buildMode", "builtIn", "category",
		"dependencies", "enterpriseFeatures", "executable", "hideFromList", "id", "includes", "info", "logs", "metrics",
		"name", "preload", "queryOptions", "routes", "skipDataQuery", "state", "streaming", "tracing", "type"}
	schemaInfoKeys       = []string{"author", "build", "description", "keywords", "links", "logos", "screenshots", "updated", "version"}
	schemaDependencyKeys = []string{"grafanaDependency", "grafanaVersion", "plugins"}
	schemaCategories     = []string{"tsdb", "logging", "cloud", "tracing", "profiling", "sql", "enterprise", "iot", "other"}
	schemaVersion        = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$`)
	schemaUpdated        = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
	schemaGrafanaDep     = regexp.MustCompile(`^(<=|>=|<|>|=|~|\^)?([0-9]+)(\.[0-9x\*]+)(\.[0-9x\*]+)?(\s(<=|>=|<|=>)?([0-9]+)(\.[0-9x]+)(\.[0-9x]+))?$`)
)

func readDist(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(distDir, name))
	if err != nil {
		t.Fatalf("%v: dist/ is built by ./build.sh (npm run build, then the SDK's mage build); run it first", err)
	}
	return b
}

func keysOf(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func onlyKeys(t *testing.T, what string, m map[string]json.RawMessage, allowed []string) {
	t.Helper()
	for _, k := range keysOf(m) {
		if !slices.Contains(allowed, k) {
			t.Errorf("%s: key %q is not in Grafana's plugin.json schema", what, k)
		}
	}
}

func requireKeys(t *testing.T, what string, m map[string]json.RawMessage, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			t.Errorf("%s: required key %q is missing", what, k)
		}
	}
}

// TestDistLoadsInGrafana checks the built plugin the way Grafana's loader
// reads it: plugin.json by the schema's rules, a backend binary per platform
// named after "executable" (and of that platform), an AMD module.js that asks
// Grafana for the shared packages and matches none of the Angular patterns,
// its source map, and the host's binary answering Grafana's handshake.
func TestDistLoadsInGrafana(t *testing.T) {
	raw := readDist(t, "plugin.json")
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Fatalf("dist/plugin.json: %v", err)
	}
	var pj struct {
		ID, Type, Name, Category, Executable, BuildMode string
		Backend, Annotations, Metrics, Alerting         bool
		Info                                            struct {
			Version, Updated string
			Keywords         []string
			Logos            struct{ Small, Large string }
			Screenshots      []struct{ Name, Path string }
		}
		Dependencies struct {
			GrafanaDependency string
		}
	}
	if err := json.Unmarshal(raw, &pj); err != nil {
		t.Fatalf("dist/plugin.json: %v", err)
	}

	t.Run("plugin.json follows the schema", func(t *testing.T) {
		requireKeys(t, "plugin.json", top, "type", "name", "id", "info", "dependencies")
		onlyKeys(t, "plugin.json", top, schemaTopKeys)
		var info, deps map[string]json.RawMessage
		_ = json.Unmarshal(top["info"], &info)
		_ = json.Unmarshal(top["dependencies"], &deps)
		requireKeys(t, "info", info, "logos", "version", "updated", "keywords")
		onlyKeys(t, "info", info, schemaInfoKeys)
		requireKeys(t, "dependencies", deps, "grafanaDependency")
		onlyKeys(t, "dependencies", deps, schemaDependencyKeys)
		if !grafanaPluginID.MatchString(pj.ID) || pj.ID != plugin.ID || pj.Type != "datasource" || pj.Name == "" {
			t.Errorf("id %q type %q name %q", pj.ID, pj.Type, pj.Name)
		}
		if !slices.Contains(schemaCategories, pj.Category) {
			t.Errorf("category %q", pj.Category)
		}
		if !schemaVersion.MatchString(pj.Info.Version) || !schemaUpdated.MatchString(pj.Info.Updated) || len(pj.Info.Keywords) == 0 {
			t.Errorf("info: version %q updated %q keywords %v", pj.Info.Version, pj.Info.Updated, pj.Info.Keywords)
		}
		if !schemaGrafanaDep.MatchString(pj.Dependencies.GrafanaDependency) {
			t.Errorf("grafanaDependency %q", pj.Dependencies.GrafanaDependency)
		}
		if !pj.Backend || pj.Executable == "" || !pj.Annotations || !pj.Metrics || !pj.Alerting {
			t.Errorf("backend %v executable %q annotations %v metrics %v alerting %v", pj.Backend, pj.Executable, pj.Annotations, pj.Metrics, pj.Alerting)
		}
		if pj.BuildMode != "production" {
			t.Errorf("buildMode %q: dist/ was not built with npm run build", pj.BuildMode)
		}
		for _, sc := range pj.Info.Screenshots {
			if b := readDist(t, sc.Path); !bytes.HasPrefix(b, []byte("\x89PNG")) {
				t.Errorf("screenshot %s is not a PNG", sc.Path)
			}
		}
		for _, logo := range []string{pj.Info.Logos.Small, pj.Info.Logos.Large} {
			if b := readDist(t, logo); !bytes.Contains(b, []byte("<svg")) {
				t.Errorf("logo %s is not an SVG", logo)
			}
		}
		// dist/plugin.json is src/plugin.json plus the build mode.
		var src map[string]json.RawMessage
		if err := json.Unmarshal(read(t, pluginJSON), &src); err != nil {
			t.Fatal(err)
		}
		delete(top, "buildMode")
		if !slices.Equal(keysOf(src), keysOf(top)) {
			t.Errorf("dist/plugin.json keys %v, src/plugin.json keys %v: rebuild dist/", keysOf(top), keysOf(src))
		}
		for k, v := range src {
			var a, b any
			_ = json.Unmarshal(v, &a)
			_ = json.Unmarshal(top[k], &b)
			if fmt.Sprint(a) != fmt.Sprint(b) {
				t.Errorf("dist/plugin.json %s differs from src/plugin.json: rebuild dist/", k)
			}
		}
	})

	t.Run("a backend binary for every platform, of that platform", func(t *testing.T) {
		for _, p := range grafanaPlatforms {
			goos, goarch, _ := strings.Cut(p, "/")
			name := fmt.Sprintf("%s_%s_%s", pj.Executable, goos, goarch)
			if goos == "windows" {
				name += ".exe"
			}
			path := filepath.Join(distDir, name)
			st, err := os.Stat(path)
			if err != nil {
				t.Errorf("%s: %v", p, err)
				continue
			}
			if st.Mode()&0o111 == 0 {
				t.Errorf("%s is not executable", name)
			}
			if got := binaryPlatform(t, path); got != p {
				t.Errorf("%s is a %s binary", name, got)
			}
		}
		manifest := string(readDist(t, "go_plugin_build_manifest"))
		if !strings.Contains(manifest, ":pkg/main.go\n") {
			t.Errorf("go_plugin_build_manifest does not list pkg/main.go:\n%s", manifest)
		}
	})

	t.Run("module.js is an AMD module without Angular", func(t *testing.T) {
		js := readDist(t, "module.js")
		m := regexp.MustCompile(`(?m)^define\((\[[^\]]*\])`).FindSubmatch(js)
		if m == nil {
			t.Fatal("module.js does not start an AMD define([...], factory)")
		}
		var deps []string
		if err := json.Unmarshal(m[1], &deps); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"@grafana/data", "@grafana/runtime", "@grafana/ui", "react"} {
			if !slices.Contains(deps, want) {
				t.Errorf("module.js does not take %s from Grafana (dependencies %v): it must stay external", want, deps)
			}
		}
		for _, re := range angularPatterns {
			if loc := re.FindIndex(js); loc != nil {
				t.Errorf("module.js matches Grafana's Angular pattern %s at %q", re, js[max(0, loc[0]-40):min(len(js), loc[1]+40)])
			}
		}
		if !bytes.Contains(js, []byte("//# sourceMappingURL=module.js.map")) {
			t.Error("module.js does not name its source map")
		}
		var sm struct {
			Version int      `json:"version"`
			Sources []string `json:"sources"`
		}
		if err := json.Unmarshal(readDist(t, "module.js.map"), &sm); err != nil {
			t.Fatalf("module.js.map: %v", err)
		}
		var ours []string
		for _, s := range sm.Sources {
			if strings.Contains(s, "/./") && !strings.Contains(s, "node_modules") {
				ours = append(ours, s[strings.Index(s, "/./")+3:])
			}
		}
		for _, want := range []string{"module.ts", "datasource.ts", "components/QueryEditor.tsx", "components/AnnotationsQueryEditor.tsx", "components/VariableQueryEditor.tsx"} {
			if !slices.Contains(ours, want) {
				t.Errorf("module.js.map has no source %s (sources %v)", want, ours)
			}
		}
	})

	t.Run("the host's binary answers Grafana's handshake", func(t *testing.T) {
		name := fmt.Sprintf("%s_%s_%s", pj.Executable, runtime.GOOS, runtime.GOARCH)
		p := startPlugin(t, filepath.Join(distDir, name))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, err := p.diagnostics.CheckHealth(ctx, &pluginv2.CheckHealthRequest{PluginContext: pluginContext("http://127.0.0.1:1", time.Now())})
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != pluginv2.CheckHealthResponse_ERROR || !strings.HasPrefix(res.Message, "Cannot reach the exporter at http://127.0.0.1:1") {
			t.Fatalf("%v %s", res.Status, res.Message)
		}
	})

	t.Run("version agrees with package.json and the changelog", func(t *testing.T) {
		var pkg struct{ Version string }
		if err := json.Unmarshal(read(t, "../package.json"), &pkg); err != nil {
			t.Fatal(err)
		}
		if pkg.Version != pj.Info.Version {
			t.Errorf("package.json version %s, plugin.json %s", pkg.Version, pj.Info.Version)
		}
		sc := bufio.NewScanner(bytes.NewReader(readDist(t, "CHANGELOG.md")))
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "## "); ok {
				if !strings.HasPrefix(v, pj.Info.Version) {
					t.Errorf("the newest CHANGELOG entry is %q, plugin.json says %s", v, pj.Info.Version)
				}
				break
			}
		}
		if lic := readDist(t, "LICENSE"); !bytes.Contains(lic, []byte("Apache License")) {
			t.Error("dist/LICENSE is not the Apache license")
		}
	})
}

// binaryPlatform reads os/arch from an executable's header.
func binaryPlatform(t *testing.T, path string) string {
	t.Helper()
	if f, err := elf.Open(path); err == nil {
		defer f.Close()
		switch f.Machine {
		case elf.EM_X86_64:
			return "linux/amd64"
		case elf.EM_AARCH64:
			return "linux/arm64"
		case elf.EM_ARM:
			return "linux/arm"
		}
		return "linux/" + f.Machine.String()
	}
	if f, err := macho.Open(path); err == nil {
		defer f.Close()
		switch f.Cpu {
		case macho.CpuAmd64:
			return "darwin/amd64"
		case macho.CpuArm64:
			return "darwin/arm64"
		}
		return "darwin/" + f.Cpu.String()
	}
	if f, err := pe.Open(path); err == nil {
		defer f.Close()
		if f.Machine == pe.IMAGE_FILE_MACHINE_AMD64 {
			return "windows/amd64"
		}
		return fmt.Sprintf("windows/%#x", f.Machine)
	}
	return "unknown"
}
