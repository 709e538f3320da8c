// Package exportertest builds the real FaceID exporter from the repository
// this module lives in, runs it on free loopback ports with its embedded NATS
// server, and drives traffic into it with `exporter simulate`. Tests use it
// to check the plugin against the exporter's actual HTTP API.
package exportertest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// exporterModule is the module path of the repository root.
const exporterModule = "github.com/faceid-observability/faceid-exporter"

// RepoRoot returns the directory of the exporter's go.mod, found by walking
// up from the working directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && modulePath(b) == exporterModule {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no go.mod of module %s above the working directory", exporterModule)
		}
		dir = parent
	}
}

func modulePath(gomod []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		if m, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(m), `"`)
		}
	}
	return ""
}

var (
	buildOnce sync.Once
	buildDir  string
	buildPath string
	buildErr  error
)

// Main runs a package's tests and then removes the exporter binary Build
// made; call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// Build compiles ./cmd/exporter of the repository once per test process and
// returns the binary's path. A failed build fails the test: the plugin's
// second test layer cannot run without the exporter.
func Build(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		root := RepoRoot(t)
		dir, err := os.MkdirTemp("", "faceid-exporter-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildDir, buildPath = dir, filepath.Join(dir, "exporter")
		cmd := exec.Command("go", "build", "-o", buildPath, "./cmd/exporter")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/exporter in %s: %w\n%s", root, err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// Options for Start.
type Options struct {
	// Demo runs the exporter with --demo (built-in baseline traffic) at DemoRate events/s.
	Demo     bool
	DemoRate float64
	// WebConfig, when set, is written to a file and passed as --web.config.file.
	WebConfig string
	// Ring sizes are set through a --config.file when BillableFailureRing > 0.
	BillableFailureRing int
	// JetStreamStream, when set, runs the checkpointed JetStream mode on this
	// stream (--jetstream.stream), which keeps the exact books /api/v1/ledger
	// serves; the stream is created on the exporter's subjects, so Simulate's
	// traffic lands in it.
	JetStreamStream string
}

// Exporter is a running exporter process.
type Exporter struct {
	Bin     string
	URL     string // http://127.0.0.1:<port>
	NATSURL string // nats://127.0.0.1:<port> of the embedded server
	cmd     *exec.Cmd
	out     *syncBuffer
}

// Start builds and runs an exporter with its embedded NATS server, waits until
// /-/ready answers 200, and stops it when the test ends.
func Start(t testing.TB, o Options) *Exporter {
	t.Helper()
	bin := Build(t)
	dir := t.TempDir()
	webPort, natsPort := FreePort(t), FreePort(t)
	e := &Exporter{
		Bin:     bin,
		URL:     "http://127.0.0.1:" + strconv.Itoa(webPort),
		NATSURL: "nats://127.0.0.1:" + strconv.Itoa(natsPort),
		out:     &syncBuffer{},
	}
	args := []string{
		"--web.listen-address", "127.0.0.1:" + strconv.Itoa(webPort),
		"--nats.embedded.listen", "127.0.0.1:" + strconv.Itoa(natsPort),
		"--nats.embedded.store-dir", filepath.Join(dir, "nats"),
		"--log.level", "info",
	}
	if o.Demo {
		args = append(args, "--demo")
		if o.DemoRate > 0 {
			args = append(args, "--demo.rate", strconv.FormatFloat(o.DemoRate, 'f', -1, 64))
		}
	}
	switch {
	case o.JetStreamStream != "":
		args = append(args, "--jetstream.stream", o.JetStreamStream)
	case !o.Demo:
		// No stream named: core NATS, which is an explicit choice (the
		// exporter's default is JetStream on the stream FACEID).
		args = append(args, "--nats.core")
	}
	if o.WebConfig != "" {
		p := filepath.Join(dir, "web.yml")
		if err := os.WriteFile(p, []byte(o.WebConfig), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--web.config.file", p)
	}
	if o.BillableFailureRing > 0 {
		p := filepath.Join(dir, "config.yml")
		cfg := fmt.Sprintf("events: {billable_failure: %d, high_risk: 1000, unknown_code: 200}\n", o.BillableFailureRing)
		if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config.file", p)
	}
	e.cmd = exec.Command(bin, args...)
	e.cmd.Stdout, e.cmd.Stderr = e.out, e.out
	if err := e.cmd.Start(); err != nil {
		t.Fatalf("start exporter: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- e.cmd.Wait() }()
	t.Cleanup(func() {
		_ = e.cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = e.cmd.Process.Kill()
			<-exited
			t.Errorf("exporter did not stop within 15s of SIGINT")
		}
		if t.Failed() {
			t.Logf("exporter output:\n%s", e.out.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case err := <-exited:
			t.Fatalf("exporter exited before it was ready: %v\n%s", err, e.out.String())
		default:
		}
		req, _ := http.NewRequest(http.MethodGet, e.URL+"/-/ready", nil)
		if o.WebConfig != "" {
			req.SetBasicAuth(TestUser, TestPassword)
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("exporter not ready within 60s\n%s", e.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Basic-auth credentials of BasicAuthWebConfig.
const (
	TestUser     = "grafana"
	TestPassword = "plugin-test"
)

// BasicAuthWebConfig is an exporter-toolkit web config that requires
// TestUser/TestPassword (bcrypt hash of TestPassword, cost 10).
const BasicAuthWebConfig = "basic_auth_users:\n  grafana: $2a$10$wGj58ipGwYBzmIGyobcmA.lgs8vF6pogXaufubaXmnYRjDjhEfZFS\n"

// Report is the part of the JSON report of `exporter simulate` the tests
// use: what was sent, by ground truth.
type Report struct {
	Scenario string `json:"scenario"`
	Sent     int    `json:"sent"`
	By       []struct {
		Channel  string `json:"channel"`
		Code     string `json:"code"`
		Outcome  string `json:"outcome"`
		Billable string `json:"billable"`
		Count    int    `json:"count"`
	} `json:"by"`
	Risk []struct {
		Channel string `json:"channel"`
		Risk    string `json:"risk"`
		Count   int    `json:"count"`
	} `json:"risk"`
}

// Simulate publishes a scenario into the exporter's embedded NATS server with
// `exporter simulate` and returns its report.
func (e *Exporter) Simulate(t testing.TB, scenario string, rate float64, d time.Duration, seed int64) Report {
	t.Helper()
	cmd := exec.Command(e.Bin, "simulate", "--nats.url", e.NATSURL, "--scenario", scenario,
		"--rate", strconv.FormatFloat(rate, 'f', -1, 64), "--duration", d.String(), "--seed", strconv.FormatInt(seed, 10))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("exporter simulate: %v\n%s", err, stderr.String())
	}
	var r Report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("simulate report: %v\n%s", err, stdout.String())
	}
	return r
}

// Get returns the body of GET path on the exporter.
func (e *Exporter) Get(t testing.TB, path string) []byte {
	t.Helper()
	resp, err := http.Get(e.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d: %s", path, resp.StatusCode, b.String())
	}
	return b.Bytes()
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
