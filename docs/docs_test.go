// Package docs_test executes the documentation: every fenced block of
// README.md and docs/**/*.md says in its info string how it is checked
// (```yaml check=config), a block without a check fails, and each check uses
// the real parser or tool: the config loader, the catalog override parser,
// promtool, amtool, helm, the PromQL parser, the ledger's CSV reader, the
// built exporter's command line. The README's quick start runs against the
// built binary. Tables of flags and alerts are checked against the code and
// the rules, and every alert has its runbook file.
//
// Checks (the word after check=):
//
//	config        exporter --config.file content (pkg/config loader)
//	catalog       --catalog.file content (classify.Catalog.WithOverrides)
//	forecast-calendar  --forecast.calendar-file content (forecast.ParseCalendar)
//	prometheus    prometheus.yml (promtool check config; alerts/ beside it)
//	alertmanager  alertmanager.yml (amtool check-config)
//	helm-values   values for deploy/helm/faceid-exporter (helm template -f)
//	json          a JSON value, or JSON Lines
//	api-json      JSON as the HTTP API writes it: billable is true, false or null
//	ledger-csv    a ledger CSV (ledger.ReadCSV)
//	promql        PromQL expressions, one per non-comment paragraph
//	args          exporter command lines: every flag must exist (exporter … --help)
//	go-test       go test command lines: run with -list in place of -run, so the package builds,
//	              the named tests exist and the test binary accepts every flag, without running them
//	serve, quickstart, script  the README's quick start (TestQuickStart)
//	output        a program's output, shown (not executed)
//	none          not executable here (a cluster, a cloud account); reviewed by eye
//
// Tools are found on PATH (helm also in $HELM and .tools/bin); a missing tool
// fails the test. scripts/test.sh installs them.
package docs_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
	"github.com/faceid-observability/faceid-exporter/internal/promtest"
	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/config"
	"github.com/faceid-observability/faceid-exporter/pkg/forecast"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
)

var (
	root     string // the repository
	exporter string // the built binary
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	root = filepath.Dir(wd)
	dir, err := os.MkdirTemp("", "faceid-docs-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	exporter = filepath.Join(dir, "exporter")
	build := exec.Command("go", "build", "-o", exporter, "./cmd/exporter")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build ./cmd/exporter: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// block is a fenced block of a document.
type block struct {
	file  string // relative to the repository
	line  int    // of the opening fence
	lang  string
	check string
	body  string
}

func (b block) String() string { return fmt.Sprintf("%s:%d", b.file, b.line) }

var fenceRe = regexp.MustCompile("^(\\s*)(```+|~~~+)\\s*(.*)$")

// blocks returns the fenced blocks of README.md and docs/**/*.md.
func blocks(t *testing.T) []block {
	t.Helper()
	files := []string{"README.md"}
	err := filepath.WalkDir(filepath.Join(root, "docs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".md") {
			rel, _ := filepath.Rel(root, p)
			files = append(files, rel)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []block
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		for i := 0; i < len(lines); i++ {
			m := fenceRe.FindStringSubmatch(lines[i])
			if m == nil {
				continue
			}
			b := block{file: f, line: i + 1}
			fields := strings.Fields(m[3])
			for j, w := range fields {
				if j == 0 && !strings.Contains(w, "=") {
					b.lang = w
				} else if v, ok := strings.CutPrefix(w, "check="); ok {
					b.check = v
				}
			}
			var body []string
			for i++; i < len(lines) && !strings.HasPrefix(strings.TrimSpace(lines[i]), m[2]); i++ {
				body = append(body, strings.TrimPrefix(lines[i], m[1]))
			}
			b.body = strings.Join(body, "\n") + "\n"
			out = append(out, b)
		}
	}
	return out
}

// TestEveryBlockChecked runs the check of every fenced block; a block with
// no check, or an unknown one, fails.
func TestEveryBlockChecked(t *testing.T) {
	all := blocks(t)
	if len(all) < 40 {
		t.Fatalf("found %d fenced blocks: is the scan broken?", len(all))
	}
	checks := map[string]func(*testing.T, block){
		"config": checkConfig, "catalog": checkCatalog, "prometheus": checkPrometheus,
		"alertmanager": checkAlertmanager, "helm-values": checkHelmValues, "json": checkJSON,
		"ledger-csv": checkLedgerCSV, "api-json": checkAPIJSON, "forecast-calendar": checkForecastCalendar, "promql": checkPromQL, "args": checkArgs, "go-test": checkGoTest,
		"serve": nil, "quickstart": nil, "script": nil, "output": nil, "none": nil,
	}
	counts := map[string]int{}
	for _, b := range all {
		t.Run(strings.ReplaceAll(b.String(), "/", "_"), func(t *testing.T) {
			fn, known := checks[b.check]
			switch {
			case b.check == "":
				t.Fatalf("%s: a ```%s block without check=…: say how it is checked (see docs/docs_test.go)", b, b.lang)
			case !known:
				t.Fatalf("%s: unknown check=%s", b, b.check)
			}
			counts[b.check]++
			if fn != nil {
				fn(t, b)
			}
		})
	}
	t.Logf("blocks by check: %v", counts)
}

func writeTemp(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func checkConfig(t *testing.T, b block) {
	cat, err := classify.Default()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := config.LoadFile(writeTemp(t, t.TempDir(), "exporter.yaml", b.body), cat); err != nil {
		t.Errorf("%s: the config example does not load: %v", b, err)
	}
}

func checkCatalog(t *testing.T, b block) {
	cat, err := classify.Default()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cat.WithOverrides("overrides.yaml", []byte(b.body)); err != nil {
		t.Errorf("%s: the catalog override example does not parse: %v", b, err)
	}
}

func checkForecastCalendar(t *testing.T, b block) {
	if _, err := forecast.ParseCalendar("calendar.yaml", []byte(b.body)); err != nil {
		t.Errorf("%s: the calendar example does not parse: %v", b, err)
	}
}

func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found on PATH (Debian: apt-get install prometheus prometheus-alertmanager; scripts/test.sh installs it)", name)
	}
	return p
}

func runTool(t *testing.T, b block, dir, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(tool(t, name), args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%s: %s %s: %v\n%s\n--- block ---\n%s", b, name, strings.Join(args, " "), err, out, b.body)
	}
}

func checkPrometheus(t *testing.T, b block) {
	dir := t.TempDir()
	if err := os.Symlink(filepath.Join(root, "alerts"), filepath.Join(dir, "alerts")); err != nil {
		t.Fatal(err)
	}
	writeTemp(t, dir, "prometheus.yml", b.body)
	runTool(t, b, dir, "promtool", "check", "config", "prometheus.yml")
	if strings.Contains(firstLine(b.body), "deploy/prometheus/prometheus.yml") {
		// The snippet stands for the shipped file: same job, same rule files.
		type prom struct {
			RuleFiles []string `yaml:"rule_files"`
			Scrape    []struct {
				Job string `yaml:"job_name"`
			} `yaml:"scrape_configs"`
		}
		var doc, shipped prom
		decodeYAML(t, []byte(b.body), &doc)
		decodeYAML(t, readFile(t, "deploy/prometheus/prometheus.yml"), &shipped)
		ruleFiles := func(base string, globs []string) []string {
			var out []string
			for _, g := range globs {
				m, _ := filepath.Glob(filepath.Join(base, g))
				for _, f := range m {
					rel, _ := filepath.Rel(root, f)
					out = append(out, rel)
				}
			}
			slices.Sort(out)
			return out
		}
		if d, s := ruleFiles(root, doc.RuleFiles), ruleFiles(filepath.Join(root, "deploy", "prometheus"), shipped.RuleFiles); len(d) == 0 || !slices.Equal(d, s) {
			t.Errorf("%s: rule_files load %v, deploy/prometheus/prometheus.yml loads %v", b, d, s)
		}
		if fmt.Sprint(doc.Scrape) != fmt.Sprint(shipped.Scrape) {
			t.Errorf("%s: scrape jobs %v, deploy/prometheus/prometheus.yml %v", b, doc.Scrape, shipped.Scrape)
		}
	}
}

func checkAlertmanager(t *testing.T, b block) {
	dir := t.TempDir()
	writeTemp(t, dir, "alertmanager.yml", b.body)
	runTool(t, b, dir, "amtool", "check-config", "alertmanager.yml")
	if strings.Contains(firstLine(b.body), "deploy/alertmanager/alertmanager.yml") {
		// The snippet stands for the shipped file: same routing and inhibition.
		type am struct {
			Route struct {
				Receiver string   `yaml:"receiver"`
				GroupBy  []string `yaml:"group_by"`
				Routes   []struct {
					Matchers []string `yaml:"matchers"`
					Receiver string   `yaml:"receiver"`
				} `yaml:"routes"`
			} `yaml:"route"`
			Inhibit []struct {
				Source []string `yaml:"source_matchers"`
				Target []string `yaml:"target_matchers"`
				Equal  []string `yaml:"equal"`
			} `yaml:"inhibit_rules"`
		}
		var doc, shipped am
		decodeYAML(t, []byte(b.body), &doc)
		decodeYAML(t, readFile(t, "deploy/alertmanager/alertmanager.yml"), &shipped)
		if fmt.Sprint(doc) != fmt.Sprint(shipped) {
			t.Errorf("%s: routing and inhibition differ from deploy/alertmanager/alertmanager.yml:\n doc     %+v\n shipped %+v", b, doc, shipped)
		}
	}
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

func decodeYAML(t *testing.T, data []byte, v any) {
	t.Helper()
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func checkHelmValues(t *testing.T, b block) {
	helm := os.Getenv("HELM")
	if helm == "" {
		if p := filepath.Join(root, ".tools", "bin", "helm"); fileExists(p) {
			helm = p
		} else if p, err := exec.LookPath("helm"); err == nil {
			helm = p
		} else {
			t.Fatal("helm not found in $HELM, .tools/bin or PATH: GOBIN=$PWD/.tools/bin go install helm.sh/helm/v3/cmd/helm@v3.22.0")
		}
	}
	values := writeTemp(t, t.TempDir(), "values.yaml", b.body)
	cmd := exec.Command(helm, "template", "faceid-exporter", filepath.Join(root, "deploy", "helm", "faceid-exporter"), "--kube-version", "1.33.0", "-f", values)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%s: helm template -f <block>: %v\n%s", b, err, out)
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func checkJSON(t *testing.T, b block) {
	if json.Valid([]byte(b.body)) {
		return
	}
	// JSON Lines: every non-empty line a JSON value.
	for i, l := range strings.Split(strings.TrimSpace(b.body), "\n") {
		if !json.Valid([]byte(l)) {
			var v any
			err := json.Unmarshal([]byte(b.body), &v)
			t.Errorf("%s: neither a JSON value (%v) nor JSON Lines (line %d: %.80s)", b, err, i+1, l)
			return
		}
	}
}

// checkAPIJSON: a JSON example of the API, where every billable is a
// boolean or null, never a string.
func checkAPIJSON(t *testing.T, b block) {
	checkJSON(t, b)
	var v any
	if err := json.Unmarshal([]byte(b.body), &v); err != nil {
		return
	}
	seen := 0
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if k == "billable" {
					seen++
					switch e.(type) {
					case bool, nil:
					default:
						t.Errorf("%s: billable is %v (%T): the API writes true, false or null", b, e, e)
					}
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	if seen == 0 {
		t.Errorf("%s: check=api-json but no billable in the example", b)
	}
}

func checkLedgerCSV(t *testing.T, b block) {
	rows, err := ledger.ReadCSV(strings.NewReader(b.body))
	if err != nil || len(rows) == 0 {
		t.Errorf("%s: ledger.ReadCSV: %d rows, %v", b, len(rows), err)
	}
}

func checkPromQL(t *testing.T, b block) {
	var expr []string
	flush := func() {
		// A paragraph is one expression, or one expression a line.
		if e := strings.TrimSpace(strings.Join(expr, "\n")); e != "" {
			if _, err := parser.ParseExpr(e); err != nil {
				for _, l := range expr {
					if _, err := parser.ParseExpr(l); err != nil {
						t.Errorf("%s: %q: %v", b, l, err)
					}
				}
			}
		}
		expr = nil
	}
	for _, l := range strings.Split(b.body, "\n") {
		if strings.TrimSpace(l) == "" {
			flush()
			continue
		}
		if strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		expr = append(expr, l)
	}
	flush()
}

// checkArgs runs the block in bash with `exporter` and `go run
// ./cmd/exporter` replaced by the built binary given the same arguments and
// --help: the binary refuses an unknown flag or subcommand. Other commands
// of the block (curl, grep, nats) are not run.
func checkArgs(t *testing.T, b block) {
	dir := t.TempDir()
	failed := filepath.Join(dir, "failed")
	calls := filepath.Join(dir, "calls")
	script := `
exporter() { echo x >> "$CALLS"; "$EXPORTER" "$@" --help >/dev/null 2>"$DIR/err" || { echo "exporter $*: $(cat "$DIR/err")" >> "$FAILED"; }; }
go() { if [ "$1" = run ] && [ "$2" = ./cmd/exporter ]; then shift 2; exporter "$@"; else echo "go $*: not an exporter command" >> "$FAILED"; fi; }
command_not_found_handle() { return 0; }
curl() { :; }; nats() { :; }; grep() { :; }; head() { :; }; helm() { :; }; kubectl() { :; }; cat() { :; }
` + b.body
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = t.TempDir() // a block may redirect output to a file
	cmd.Env = append(os.Environ(), "EXPORTER="+exporter, "DIR="+dir, "FAILED="+failed, "CALLS="+calls)
	out, _ := cmd.CombinedOutput()
	if data, err := os.ReadFile(failed); err == nil {
		t.Errorf("%s: %s\n%s", b, data, out)
	}
	if !fileExists(calls) {
		t.Errorf("%s: check=args but no exporter command in the block", b)
	}
}

// checkGoTest runs every `go test` command of the block with -list in place
// of -run (of -bench's top level with -run '^$'): the package must build, the
// pattern must name at least one test and the test binary must accept every flag (it refuses an unknown one); the
// tests themselves do not run.
func checkGoTest(t *testing.T, b block) {
	lines := commandLines(b.body)
	if len(lines) == 0 {
		t.Fatalf("%s: check=go-test but no command in the block", b)
	}
	for _, l := range lines {
		args, err := shellWords(l)
		if err != nil || len(args) < 3 || args[0] != "go" || args[1] != "test" {
			t.Errorf("%s: %q is not a go test command (%v)", b, l, err)
			continue
		}
		pattern, bench := ".", ""
		var rest []string
		for i := 2; i < len(args); i++ {
			switch {
			case args[i] == "-run" && i+1 < len(args):
				pattern = args[i+1]
				i++
			case strings.HasPrefix(args[i], "-run="):
				pattern = strings.TrimPrefix(args[i], "-run=")
			case args[i] == "-bench" && i+1 < len(args):
				bench = args[i+1]
				rest = append(rest, args[i], args[i+1])
				i++
			default:
				rest = append(rest, args[i])
			}
		}
		if pattern == "^$" && bench != "" {
			// A benchmark run: its top-level benchmark must exist.
			pattern, _, _ = strings.Cut(bench, "/")
		}
		cmd := exec.Command("go", append(append([]string{"test"}, rest...), "-list", pattern)...)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%s: %s (with -list %s): %v\n%s", b, l, pattern, err, out)
			continue
		}
		if !regexp.MustCompile(`(?m)^(Test|Benchmark|Fuzz|Example)\w*$`).Match(out) {
			t.Errorf("%s: %s: -run %s names no test\n%s", b, l, pattern, out)
		}
	}
}

// shellWords splits a command line as the shell would for the simple
// commands documented: words separated by blanks, '…' and "…" quoting.
func shellWords(l string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(l); i++ {
		switch c := l[i]; c {
		case ' ', '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case '\'', '"':
			j := strings.IndexByte(l[i+1:], c)
			if j < 0 {
				return nil, fmt.Errorf("unterminated %c", c)
			}
			cur.WriteString(l[i+1 : i+1+j])
			i += j + 1
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// ---- the README's quick start ----

// TestQuickStart runs the README's commands against the built binary: the
// check=serve block (go run ./cmd/exporter → the binary; its ports moved to
// free ones), then every line of the check=quickstart block (localhost:9479
// and the simulator's NATS URL moved likewise), each of which must exit 0
// and print something; the check=script block must name an executable file.
func TestQuickStart(t *testing.T) {
	var serve, quick, script []block
	for _, b := range blocks(t) {
		if b.file != "README.md" {
			continue
		}
		switch b.check {
		case "serve":
			serve = append(serve, b)
		case "quickstart":
			quick = append(quick, b)
		case "script":
			script = append(script, b)
		}
	}
	if len(serve) != 1 || len(quick) != 1 || len(script) != 1 {
		t.Fatalf("README.md has %d check=serve, %d check=quickstart and %d check=script blocks, want one each", len(serve), len(quick), len(script))
	}
	for _, l := range commandLines(script[0].body) {
		f := strings.Fields(l)[0]
		if st, err := os.Stat(filepath.Join(root, f)); err != nil || st.Mode()&0o111 == 0 {
			t.Errorf("%s: %s is not an executable file of the repository", script[0], f)
		}
	}

	httpPort, natsPort := natstest.FreePort(t), natstest.FreePort(t)
	local := "127.0.0.1:" + strconv.Itoa(httpPort)
	tmp := t.TempDir()
	lines := commandLines(serve[0].body)
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "go run ./cmd/exporter") {
		t.Fatalf("%s: want one `go run ./cmd/exporter …` line, got %q", serve[0], lines)
	}
	args := append(strings.Fields(strings.TrimPrefix(lines[0], "go run ./cmd/exporter")),
		"--web.listen-address="+local, "--nats.embedded.listen=127.0.0.1:"+strconv.Itoa(natsPort))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	srv := exec.CommandContext(ctx, exporter, args...)
	srv.Env = append(os.Environ(), "TMPDIR="+tmp)
	var srvLog bytes.Buffer
	srv.Stdout, srv.Stderr = &srvLog, &srvLog
	srv.Cancel = func() error { return srv.Process.Signal(os.Interrupt) }
	srv.WaitDelay = 20 * time.Second
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		_ = srv.Wait()
		if t.Failed() {
			t.Logf("exporter log:\n%s", srvLog.String())
		}
	}()
	waitReady(t, "http://"+local+"/-/ready")
	// A reader takes a few seconds to get to the next command: wait until
	// the demo's first events are committed to the books.
	day := time.Now().In(time.FixedZone("Asia/Shanghai", 8*3600)).Format(time.DateOnly)
	waitFor(t, 60*time.Second, "the demo's first committed ledger rows", func() bool {
		resp, err := http.Get("http://" + local + "/api/v1/ledger?from=" + day + "&to=" + day + "&format=csv")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return strings.Count(string(body), "\n") >= 2
	})

	for _, l := range commandLines(quick[0].body) {
		cmdLine := strings.ReplaceAll(l, "localhost:9479", local)
		sh := `go() { if [ "$1" = run ] && [ "$2" = ./cmd/exporter ]; then shift 2; if [ "$1" = simulate ]; then shift; "$EXPORTER" simulate --nats.url "$NATS_URL" "$@"; else "$EXPORTER" "$@"; fi; else command go "$@"; fi; }
` + cmdLine
		var out bytes.Buffer
		c := exec.Command("bash", "-c", sh)
		c.Dir = root
		c.Env = append(os.Environ(), "EXPORTER="+exporter, "NATS_URL=nats://127.0.0.1:"+strconv.Itoa(natsPort))
		c.Stdout, c.Stderr = &out, &out
		start := time.Now()
		err := c.Run()
		t.Logf("%s (%s): %.300s", l, time.Since(start).Round(time.Millisecond), out.String())
		if err != nil || strings.TrimSpace(out.String()) == "" {
			t.Errorf("%s: %q: %v, output %q", quick[0], l, err, out.String())
		}
		if strings.Contains(l, "/api/v1/ledger") && (!strings.HasPrefix(out.String(), "day,channel,code,billable,count") || strings.Count(out.String(), "\n") < 2) {
			t.Errorf("%s: the ledger command printed no ledger CSV: %q", quick[0], out.String())
		}
		if strings.Contains(l, "/metrics") && !strings.Contains(out.String(), "faceid_verifications_total{") {
			t.Errorf("%s: the metrics command printed no faceid_verifications_total: %q", quick[0], out.String())
		}
	}
	if !strings.Contains(srvLog.String(), "store_dir="+tmp) {
		t.Errorf("the demo does not say where its data lives (under $TMPDIR=%s)", tmp)
	}
}

func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s", what, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within 60s: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// commandLines returns the commands of a shell block: comments stripped,
// continuations joined, blank lines dropped.
func commandLines(body string) []string {
	var out []string
	cur := ""
	for _, l := range strings.Split(body, "\n") {
		if i := strings.Index(l, "  #"); i >= 0 && !strings.Contains(l[:i], "'#") {
			l = l[:i]
		}
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "#") {
			continue
		}
		if s, ok := strings.CutSuffix(l, `\`); ok {
			cur += s + " "
			continue
		}
		cur += l
		if strings.TrimSpace(cur) != "" {
			out = append(out, strings.TrimSpace(cur))
		}
		cur = ""
	}
	return out
}

// ---- tables against the code and the rules ----

// TestServeFlagsTable: docs/service.md's flag table lists every flag of
// `exporter serve` and no flag it lacks.
func TestServeFlagsTable(t *testing.T) {
	help, err := exec.Command(exporter, "serve", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("exporter serve --help: %v\n%s", err, help)
	}
	flagRe := regexp.MustCompile(`--(?:\[no-\])?([a-z][a-z0-9.-]*[a-z0-9])`)
	have := map[string]bool{}
	for _, l := range strings.Split(string(help), "\n") {
		l = strings.TrimSpace(l)
		if m := flagRe.FindStringSubmatch(l); m != nil && strings.HasPrefix(l, "-") {
			have[m[1]] = true
		}
	}
	delete(have, "help")
	delete(have, "help-long")
	delete(have, "help-man")
	delete(have, "version")
	if len(have) < 30 {
		t.Fatalf("found %d flags in exporter serve --help", len(have))
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "service.md"))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(doc))
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, "| `--") {
			continue
		}
		first := strings.SplitN(l, "|", 3)[1]
		for _, m := range flagRe.FindAllStringSubmatch(first, -1) {
			name := m[1]
			if strings.Contains(first, "--"+name+".*") {
				continue // a family: --tencent.*
			}
			documented[name] = true
			if !have[name] {
				t.Errorf("docs/service.md documents --%s, which exporter serve does not have", name)
			}
		}
	}
	// Defaults: the table's second column against --help's.
	defaults := helpDefaults(string(help))
	_, flagsSection, _ := strings.Cut(string(doc), "\n## Flags\n")
	flagsSection, _, _ = strings.Cut(flagsSection, "\n## ")
	sc = bufio.NewScanner(strings.NewReader(flagsSection))
	for sc.Scan() {
		cells := strings.Split(sc.Text(), "|")
		if !strings.HasPrefix(sc.Text(), "| `--") || len(cells) < 4 {
			continue
		}
		names := flagRe.FindAllStringSubmatch(cells[1], -1)
		values := []string{cells[2]}
		if len(names) > 1 {
			values = strings.Split(cells[2], ",")
		}
		if len(values) != len(names) {
			continue // one default for several flags ("off")
		}
		for i, m := range names {
			want, ok := defaults[m[1]]
			if !ok {
				continue
			}
			if got := normDefault(values[i]); !sameDefault(got, want) {
				t.Errorf("docs/service.md gives --%s the default %q, exporter serve --help %q", m[1], got, want)
			}
		}
	}

	// Families written as --prefix.* in the table.
	families := regexp.MustCompile("`--([a-z]+)\\.\\*`").FindAllStringSubmatch(string(doc), -1)
	var missing []string
	for name := range have {
		if documented[name] || slices.ContainsFunc(families, func(m []string) bool { return strings.HasPrefix(name, m[1]+".") }) {
			continue
		}
		if strings.Contains(string(doc), "`--"+name+"`") {
			continue // global flags, documented in the paragraph above the table
		}
		missing = append(missing, name)
	}
	slices.Sort(missing)
	for _, name := range missing {
		t.Errorf("exporter serve --%s is not in docs/service.md's flag table", name)
	}
}

// TestAlertsTableAndRunbooks: every alert of alerts/*.yml is a row of
// docs/alerts.md's table and has its own docs/runbooks/<Alert>.md; the
// README links the table.
func TestAlertsTableAndRunbooks(t *testing.T) {
	alerts, _ := promtest.RuleNames(t, filepath.Join(root, "alerts"))
	if len(alerts) < 20 {
		t.Fatalf("found %d alerts in alerts/*.yml", len(alerts))
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "alerts.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range alerts {
		if !regexp.MustCompile("(?m)^\\| `?"+a+"`?").Match(doc) && !regexp.MustCompile(`(?m)^\| \[`+"`?"+a).Match(doc) {
			t.Errorf("%s is not a row of docs/alerts.md's table", a)
		}
		if !fileExists(filepath.Join(root, "docs", "runbooks", a+".md")) {
			t.Errorf("%s has no docs/runbooks/%s.md", a, a)
		}
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(readme, []byte("(docs/alerts.md)")) {
		t.Error("README.md does not link docs/alerts.md")
	}
}

// TestReadme: under 10 KB, and every relative link of README.md and docs/
// resolves to a file.
func TestReadme(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(readme) >= 10*1024 {
		t.Errorf("README.md is %d bytes, want under 10 KB: move reference material to docs/", len(readme))
	}
	linkRe := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, f := range append([]string{"README.md"}, globDocs(t)...) {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range linkRe.FindAllStringSubmatch(string(data), -1) {
			target := strings.SplitN(m[1], "#", 2)[0]
			if target == "" || strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			if !fileExists(filepath.Join(root, filepath.Dir(f), target)) {
				t.Errorf("%s links %s, which does not exist", f, m[1])
			}
		}
	}
}

func globDocs(t *testing.T) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(filepath.Join(root, "docs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".md") {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
		}
		return err
	})
	return out
}

// helpDefaults returns the defaults kingpin prints in --help
// (--name=DEFAULT), by flag name; a boolean flag's is "false" (kingpin
// prints --[no-]name).
func helpDefaults(help string) map[string]string {
	out := map[string]string{}
	// Definition lines are indented a few spaces; wrapped descriptions,
	// which may start with another flag's name, far more.
	re := regexp.MustCompile(`^ {2,8}--(\[no-\])?([a-z][a-z0-9.-]*[a-z0-9])(=(\S+))?`)
	for _, l := range strings.Split(help, "\n") {
		m := re.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		switch {
		case m[1] != "":
			// A boolean: --help does not show whether it defaults to true.
		case m[4] != "" && !regexp.MustCompile(`^[A-Z][A-Z0-9_.=-]*$`).MatchString(m[4]):
			v := strings.Trim(m[4], `"`)
			if tmp := os.TempDir(); strings.HasPrefix(v, tmp+"/") {
				v = "$TMPDIR" + strings.TrimPrefix(v, tmp)
			}
			out[m[2]] = v
		default:
			out[m[2]] = ""
		}
	}
	return out
}

// normDefault reads a default cell of the table: `x`, (empty), or nothing.
func normDefault(cell string) string {
	c := strings.TrimSpace(cell)
	if i := strings.Index(c, " ("); i > 0 {
		c = c[:i] // 0 (off)
	}
	c = strings.Trim(c, "`")
	if c == "(empty)" {
		return ""
	}
	return c
}

func sameDefault(doc, help string) bool {
	if doc == help || (doc == "false" && help == "") || (doc == "" && help == "false") {
		return true
	}
	if strings.HasPrefix(doc, "(") && help == "" {
		return true // computed at start: "(host, pid, random)"
	}
	d1, err1 := time.ParseDuration(doc)
	d2, err2 := time.ParseDuration(help)
	return err1 == nil && err2 == nil && d1 == d2
}

// TestEveryDocumentedFlagExists: a flag in the first column of any table of
// README.md or docs/ is a flag of some subcommand of the exporter (its
// --help); a renamed or removed flag cannot stay documented.
func TestEveryDocumentedFlagExists(t *testing.T) {
	have := map[string]bool{}
	defRe := regexp.MustCompile(`(?m)^ {2,8}--(?:\[no-\])?([a-z][a-z0-9.-]*[a-z0-9])`)
	for _, cmd := range []string{"serve", "classify", "catalog", "simulate", "ledger", "reconcile"} {
		help, err := exec.Command(exporter, cmd, "--help").CombinedOutput()
		if err != nil {
			t.Fatalf("exporter %s --help: %v\n%s", cmd, err, help)
		}
		for _, m := range defRe.FindAllStringSubmatch(string(help), -1) {
			have[m[1]] = true
		}
	}
	if len(have) < 50 {
		t.Fatalf("found %d flags in the subcommands' --help", len(have))
	}
	flagRe := regexp.MustCompile("`--(?:\\[no-\\])?([a-z][a-z0-9.-]*[a-z0-9])(\\.\\*)?")
	checked := 0
	for _, f := range append([]string{"README.md"}, globDocs(t)...) {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		for i, l := range strings.Split(string(data), "\n") {
			if !strings.HasPrefix(l, "| `--") {
				continue
			}
			first := strings.SplitN(l, "|", 3)[1]
			for _, m := range flagRe.FindAllStringSubmatch(first, -1) {
				checked++
				name := m[1]
				if m[2] != "" {
					found := false
					for h := range have {
						found = found || strings.HasPrefix(h, name+".")
					}
					if !found {
						t.Errorf("%s:%d: no flag of the family --%s.*", f, i+1, name)
					}
					continue
				}
				if !have[name] {
					t.Errorf("%s:%d: --%s is no flag of the exporter", f, i+1, name)
				}
			}
		}
	}
	if checked < 60 {
		t.Errorf("checked %d documented flags: is the scan broken?", checked)
	}
}
