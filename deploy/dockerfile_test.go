// Package deploy_test checks the repository's Dockerfile and .dockerignore.
// No container engine runs in CI, so the image is not built here: the test
// parses the Dockerfile and checks what the image must be.
package deploy_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

type instruction struct {
	cmd  string // upper case
	args string
	line int
}

type stage struct {
	from, name string
	ins        []instruction
}

// parseDockerfile splits a Dockerfile into stages of instructions, joining
// continuation lines and dropping comments.
func parseDockerfile(t *testing.T, data string) (global []instruction, stages []*stage) {
	t.Helper()
	lines := strings.Split(data, "\n")
	for i := 0; i < len(lines); i++ {
		start := i + 1
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		for strings.HasSuffix(l, `\`) && i+1 < len(lines) {
			i++
			next := strings.TrimSpace(lines[i])
			if strings.HasPrefix(next, "#") {
				continue
			}
			l = strings.TrimSuffix(l, `\`) + " " + next
		}
		cmd, args, _ := strings.Cut(l, " ")
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			s := &stage{}
			for j := 0; j < len(f); j++ {
				switch {
				case strings.HasPrefix(f[j], "--"):
				case strings.EqualFold(f[j], "AS") && j+1 < len(f):
					s.name = f[j+1]
					j++
				default:
					if s.from == "" {
						s.from = f[j]
					}
				}
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			global = append(global, in)
			continue
		}
		stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, in)
	}
	return global, stages
}

func read(t *testing.T, path ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(append([]string{".."}, path...)...))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// chartPort and chartUID are the chart's defaults the image must agree with.
func chartDefaults(t *testing.T) (port, uid int) {
	t.Helper()
	var v struct {
		Web                struct{ Port int }
		PodSecurityContext struct {
			RunAsUser int `yaml:"runAsUser"`
		} `yaml:"podSecurityContext"`
	}
	if err := yaml.Unmarshal([]byte(read(t, "deploy", "helm", "faceid-exporter", "values.yaml")), &v); err != nil {
		t.Fatal(err)
	}
	return v.Web.Port, v.PodSecurityContext.RunAsUser
}

func TestDockerfile(t *testing.T) {
	_, stages := parseDockerfile(t, read(t, "Dockerfile"))
	if len(stages) < 2 {
		t.Fatalf("%d stages: the Dockerfile must be multi-stage (build, then a minimal runtime)", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]
	port, uid := chartDefaults(t)

	t.Run("build-stage", func(t *testing.T) {
		if !strings.HasPrefix(build.from, "golang:") {
			t.Errorf("build stage FROM %s, want a golang image", build.from)
		}
		var goBuild string
		for _, in := range build.ins {
			if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
				goBuild = in.args
			}
		}
		if goBuild == "" {
			t.Fatal("no RUN go build in the build stage")
		}
		for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-ldflags", "github.com/prometheus/common/version.Version=",
			"github.com/prometheus/common/version.Revision=", "./cmd/exporter"} {
			if !strings.Contains(goBuild, want) {
				t.Errorf("go build lacks %s: %s", want, goBuild)
			}
		}
	})

	t.Run("runtime-stage", func(t *testing.T) {
		if final.from != "scratch" && !strings.HasPrefix(final.from, "gcr.io/distroless/static") {
			t.Errorf("runtime FROM %s, want scratch or distroless static", final.from)
		}
		var user, expose, entrypoint string
		labels := map[string]bool{}
		copied := false
		for _, in := range final.ins {
			switch in.cmd {
			case "RUN":
				t.Errorf("line %d: RUN in the runtime stage (it has no shell): %s", in.line, in.args)
			case "USER":
				user = in.args
			case "EXPOSE":
				expose = in.args
			case "ENTRYPOINT", "CMD":
				if !strings.HasPrefix(in.args, "[") {
					t.Errorf("line %d: %s in shell form needs a shell: %s", in.line, in.cmd, in.args)
				}
				if in.cmd == "ENTRYPOINT" {
					entrypoint = in.args
				}
			case "LABEL":
				for _, m := range regexp.MustCompile(`(org\.opencontainers\.image\.[a-z]+)=`).FindAllStringSubmatch(in.args, -1) {
					labels[m[1]] = true
				}
			case "COPY":
				if strings.Contains(in.args, "--from="+build.name) {
					copied = true
				}
			}
		}
		if !copied {
			t.Errorf("the runtime stage does not COPY --from=%s", build.name)
		}
		u, _, _ := strings.Cut(user, ":")
		if u == "" || u == "0" || u == "root" {
			t.Errorf("USER %q: the image must run as a non-root user", user)
		}
		if u != itoa(uid) {
			t.Errorf("USER %q differs from the chart's podSecurityContext.runAsUser %d", user, uid)
		}
		if expose != itoa(port) && expose != itoa(port)+"/tcp" {
			t.Errorf("EXPOSE %q, want the exporter's port %d", expose, port)
		}
		var ep []string
		if err := json.Unmarshal([]byte(entrypoint), &ep); err != nil || len(ep) == 0 || ep[0] != "/exporter" {
			t.Errorf("ENTRYPOINT %s, want [\"/exporter\"]", entrypoint)
		}
		for _, l := range []string{"title", "description", "source", "version", "revision", "created"} {
			if !labels["org.opencontainers.image."+l] {
				t.Errorf("no LABEL org.opencontainers.image.%s", l)
			}
		}
	})

	t.Run("port-matches-exporter", func(t *testing.T) {
		src := read(t, "cmd", "exporter", "serve.go")
		m := regexp.MustCompile(`DefaultListenAddress\s*=\s*":(\d+)"`).FindStringSubmatch(src)
		if m == nil {
			t.Fatal("no DefaultListenAddress in cmd/exporter/serve.go")
		}
		if m[1] != itoa(port) {
			t.Errorf("the exporter listens on :%s by default, the chart and image on %d", m[1], port)
		}
	})
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

func TestDockerignore(t *testing.T) {
	lines := map[string]bool{}
	for _, l := range strings.Split(read(t, ".dockerignore"), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines[l] = true
		}
	}
	for _, must := range []string{".git", ".tools"} {
		if !lines[must] {
			t.Errorf(".dockerignore does not exclude %s", must)
		}
	}
	for _, keep := range []string{"go.mod", "go.sum", "cmd", "pkg", "internal", "*.go", "**/*.go"} {
		if lines[keep] || lines["/"+keep] {
			t.Errorf(".dockerignore excludes %s, which the build needs", keep)
		}
	}
}
