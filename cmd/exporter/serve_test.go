package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	colmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/protobuf/proto"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
)

// syncBuffer is a bytes.Buffer safe for the logger and the test to share.
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

// TestDemo runs the README's main command, `exporter --demo`, through the
// real command line (serve is the default subcommand) on free ports and
// scrapes /metrics until verifications are counted.
func TestDemo(t *testing.T) {
	var stdout, stderr syncBuffer
	addr := "127.0.0.1:" + strconv.Itoa(natstest.FreePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	start := time.Now()
	go func() {
		done <- runContext(ctx, []string{"--demo", "--demo.rate=200", "--web.listen-address=" + addr,
			"--nats.embedded.listen=127.0.0.1:-1", "--nats.embedded.store-dir=" + t.TempDir()},
			env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr})
	}()
	url := "http://" + addr + "/metrics"
	var counted float64
	for deadline := time.Now().Add(15 * time.Second); counted == 0; {
		select {
		case code := <-done:
			t.Fatalf("exporter --demo exited with %d\n%s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no verification counted 15s after start\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
		resp, err := http.Get(url)
		if err != nil {
			continue
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		mfs, err := parser.TextToMetricFamilies(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if mf, ok := mfs["faceid_verifications_total"]; ok {
			counted = 0
			for _, m := range mf.Metric {
				counted += m.GetCounter().GetValue()
			}
		}
	}
	t.Logf("demo: %v verifications counted %s after start", counted, time.Since(start).Round(time.Millisecond))
	resp, err := http.Get("http://" + addr + "/-/ready")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/-/ready: %d", resp.StatusCode)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exporter --demo exited with %d after cancellation\n%s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Error("exporter --demo did not stop within 10s of cancellation")
	}
}

// TestConfigCheck runs `exporter --config.check` through runMain: valid files
// print a summary and exit 0, invalid ones exit 1 naming file:line and field.
func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(good, []byte("dedupe:\n  window: 5m\nbusiness_dimensions:\n  app_id: [app-a]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("dedupe:\n  window: 5m\n  windw: 1m\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	timeFile := filepath.Join(dir, "time.yaml")
	if err := os.WriteFile(timeFile, []byte("events:\n  future_tolerance: 2m\nledger:\n  retention_days: 30\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	kvFile := filepath.Join(dir, "kv.yaml")
	if err := os.WriteFile(kvFile, []byte("dedupe:\n  store: jetstream\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	headers := filepath.Join(dir, "otlp-headers")
	if err := os.WriteFile(headers, []byte("# secrets\nAuthorization=Bearer s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		code     int
		contains string
	}{
		{"valid", []string{"--config.file=" + good, "--config.check"}, 0, "dedupe: window 5m0s, capacity 100000"},
		{"valid_explicit_serve", []string{"serve", "--config.file=" + good, "--config.check"}, 0, "series bound:"},
		{"defaults", []string{"--config.check"}, 0, "(no --config.file: defaults): OK"},
		{"time_defaults", []string{"--config.check"}, 0, "future_tolerance 5m0s\nledger: retention_days 400\n"},
		{"time_from_the_file", []string{"--config.file=" + timeFile, "--config.check"}, 0, "future_tolerance 2m0s\nledger: retention_days 30\n"},
		{"time_flags_override_the_file", []string{"--config.file=" + timeFile, "--config.check", "--events.future-tolerance=30s", "--ledger.retention-days=800"}, 0, "future_tolerance 30s\nledger: retention_days 800\n"},
		{"future_tolerance_negative", []string{"--config.check", "--events.future-tolerance=-1s"}, 1, "--events.future-tolerance -1s is out of range 0s..24h0m0s"},
		{"retention_zero", []string{"--config.check", "--ledger.retention-days=0"}, 1, "--ledger.retention-days 0 is out of range 1..3660"},
		{"removed_dedupe_store", []string{"--config.file=" + kvFile, "--config.check"}, 1, kvFile + `:2: field "store": was removed`},
		{"partitions_need_channel_subjects", []string{"--config.check", "--jetstream.stream=FACEID", "--jetstream.partitions=3", "--nats.subject=faceid.results"}, 1, `--jetstream.partitions 3 needs --nats.subject of the form prefix.> or prefix.*`},
		{"too_many_partitions", []string{"--config.check", "--jetstream.stream=FACEID", "--jetstream.partitions=10"}, 1, `--jetstream.partitions 10: at most 9 (one per catalog channel)`},
		{"takeover_below_two_intervals", []string{"--config.check", "--jetstream.stream=FACEID", "--jetstream.checkpoint-interval=5s", "--jetstream.takeover-timeout=6s"}, 1, `--jetstream.takeover-timeout 6s must be at least twice --jetstream.checkpoint-interval 5s`},
		{"instance_with_dot", []string{"--config.check", "--jetstream.stream=FACEID", "--jetstream.instance=pod.0"}, 1, `--jetstream.instance "pod.0": use letters, digits, '-' and '_' only`},
		{"instance_pod_name", []string{"--config.check", "--jetstream.stream=FACEID", "--jetstream.instance=faceid-exporter-7d9c5b-x2k4q"}, 0, "OK"},
		{"stream_name_with_dot", []string{"--config.check", "--jetstream.stream=FACE.ID"}, 1, `--jetstream.stream "FACE.ID" and --jetstream.consumer "faceid-exporter" may not contain`},
		{"invalid", []string{"--config.file=" + bad, "--config.check"}, 1, bad + `:3: field "windw": unknown field in dedupe`},
		{"missing", []string{"--config.file=" + filepath.Join(dir, "none.yaml"), "--config.check"}, 1, "no such file"},
		// What serve would refuse at start, found without starting.
		{"demo_with_nats_url", []string{"--config.check", "--demo", "--nats.url=nats://127.0.0.1:4222"}, 1, "--demo runs its own embedded NATS server; leave --nats.url empty"},
		{"dead_letter_inside_subject", []string{"--config.check", "--nats.subject=faceid.>"}, 1, `--nats.dead-letter-subject "faceid.deadletter" is inside --nats.subject "faceid.>"`},
		{"password_file_missing", []string{"--config.check", "--nats.user=exporter", "--nats.password-file=" + filepath.Join(dir, "nopw")}, 1, "read nats password file: open " + filepath.Join(dir, "nopw") + ": no such file or directory"},
		{"token_file_unreadable", []string{"--config.check", "--nats.token-file=" + dir}, 1, "read nats token file: read " + dir + ": is a directory"},
		{"creds_file_unreadable", []string{"--config.check", "--nats.creds-file=" + dir}, 1, "nats creds file: read " + dir + ": is a directory"},
		{"nkey_seed_missing", []string{"--config.check", "--nats.nkey-seed-file=" + filepath.Join(dir, "noseed")}, 1, "nats nkey seed file:"},
		{"tls_ca_missing", []string{"--config.check", "--nats.tls.ca-file=" + filepath.Join(dir, "noca.pem")}, 1, "nats tls ca file: open " + filepath.Join(dir, "noca.pem") + ": no such file or directory"},
		{"two_auth_methods", []string{"--config.check", "--nats.user=u", "--nats.token-file=" + good}, 1, "give only one of"},
		{"web_config_invalid", []string{"--config.check", "--web.config.file=" + bad}, 1, "--web.config.file " + bad + ":"},
		{"otlp_headers_file_missing", []string{"--config.check", "--otlp.endpoint=127.0.0.1:4317", "--otlp.headers-file=" + filepath.Join(dir, "nohdr")}, 1, "read otlp headers file: open " + filepath.Join(dir, "nohdr") + ": no such file or directory"},
		{"valid_secrets", []string{"--config.check", "--nats.user=u", "--nats.password-file=" + good, "--otlp.endpoint=127.0.0.1:4317", "--otlp.headers-file=" + headers}, 0, "(no --config.file: defaults): OK"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := runContext(context.Background(), tc.args, env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr})
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, stdout.String(), stderr.String())
			}
			if out := stdout.String() + stderr.String(); !strings.Contains(out, tc.contains) {
				t.Errorf("output does not contain %q:\n%s", tc.contains, out)
			}
		})
	}
}

// TestServeFlags checks that every flag of the contract exists with its default.
func TestServeFlags(t *testing.T) {
	app := kingpin.New("exporter", "")
	c := &cli{env: env{stdin: strings.NewReader(""), stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}, logConfig: &promslog.Config{}}
	c.catalogFile = app.Flag("catalog.file", "").String()
	cmd, _ := addServe(app, c)
	flags := map[string]string{}
	for _, f := range cmd.Model().Flags {
		flags[f.Name] = strings.Join(f.Default, ",")
	}
	want := map[string]string{
		"web.listen-address": ":9479", "web.config.file": "", "web.telemetry-path": "/metrics",
		"nats.url": "", "nats.subject": "faceid.results.>", "nats.queue": "faceid-exporter",
		"nats.dead-letter-subject": "faceid.deadletter", "nats.dead-letter-mode": "auto", "nats.name": "faceid-exporter", "nats.creds-file": "",
		"nats.nkey-seed-file": "", "nats.user": "", "nats.password-file": "", "nats.token-file": "",
		"nats.tls.ca-file": "", "nats.tls.cert-file": "", "nats.tls.key-file": "",
		"nats.embedded.listen": "127.0.0.1:4222", "nats.embedded.store-dir": filepath.Join(os.TempDir(), "faceid-exporter-nats"),
		"nats.core": "", "jetstream.stream": "FACEID", "jetstream.consumer": "faceid-exporter", "jetstream.create-stream": "true",
		"jetstream.checkpoint-bucket": "faceid-checkpoints", "jetstream.checkpoint-replicas": "1", "jetstream.checkpoint-interval": "1s",
		"jetstream.takeover-timeout": "10s", "jetstream.partitions": "1", "jetstream.stream-max-age": "168h0m0s",
		"jetstream.stream-max-bytes": "8GiB", "jetstream.stream-replicas": "1", "jetstream.dead-letter-stream": "FACEID_DEADLETTER", "jetstream.instance": "",
		"config.file": "", "config.check": "", "otlp.endpoint": "", "otlp.protocol": "grpc", "otlp.header": "", "otlp.headers-file": "",
		"otlp.insecure": "", "otlp.interval": "15s", "demo": "", "demo.rate": "50", "shutdown.timeout": "10s",
		"events.future-tolerance": "5m0s", "ledger.retention-days": "400",
	}
	for name, def := range want {
		got, ok := flags[name]
		if !ok {
			t.Errorf("no --%s", name)
			continue
		}
		if got != def && !(def == "" && got == "false") {
			t.Errorf("--%s defaults to %q, want %q", name, got, def)
		}
	}
	if !cmd.Model().Default {
		t.Error("serve is not the default command")
	}
}

// TestOTLPHeadersFile runs the exporter with --otlp.headers-file against an
// OTLP/HTTP receiver and finds the file's headers on its exports.
func TestOTLPHeadersFile(t *testing.T) {
	got := make(chan http.Header, 100)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req colmetrics.ExportMetricsServiceRequest
		if r.URL.Path != "/v1/metrics" || proto.Unmarshal(body, &req) != nil || len(req.ResourceMetrics) == 0 {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		select {
		case got <- r.Header.Clone():
		default:
		}
		out, _ := proto.Marshal(&colmetrics.ExportMetricsServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	defer rcv.Close()
	hdrFile := filepath.Join(t.TempDir(), "otlp-headers")
	if err := os.WriteFile(hdrFile, []byte("# tenant and token\nX-Tenant = faceid\n\nAuthorization=Bearer s3cret=x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- runContext(ctx, []string{"--web.listen-address=127.0.0.1:0",
			"--nats.embedded.listen=127.0.0.1:-1", "--nats.embedded.store-dir=" + t.TempDir(),
			"--otlp.endpoint=" + rcv.Listener.Addr().String(), "--otlp.insecure", "--otlp.protocol=http", "--otlp.interval=100ms", "--otlp.headers-file=" + hdrFile,
			"--otlp.header=X-Extra=1"},
			env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr})
	}()
	select {
	case h := <-got:
		if h.Get("Authorization") != "Bearer s3cret=x" || h.Get("X-Tenant") != "faceid" || h.Get("X-Extra") != "1" {
			t.Errorf("export headers %v, want the file's Authorization and X-Tenant and the flag's X-Extra", h)
		}
	case code := <-done:
		t.Fatalf("exporter exited with %d\n%s", code, stderr.String())
	case <-time.After(15 * time.Second):
		t.Fatalf("no OTLP export within 15s\n%s", stderr.String())
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d\n%s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Error("not stopped within 15s")
	}
	if strings.Contains(stderr.String(), "s3cret") {
		t.Error("the secret header value was logged")
	}
}
