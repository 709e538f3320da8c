package helm_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/bcrypt"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
)

var (
	exporterOnce sync.Once
	exporterDir  string
	exporterPath string
	exporterErr  error
)

// exporterBin builds ./cmd/exporter once per test run.
func exporterBin(t *testing.T) string {
	t.Helper()
	exporterOnce.Do(func() {
		if exporterDir, exporterErr = os.MkdirTemp("", "faceid-chart-test-"); exporterErr != nil {
			return
		}
		exporterPath = filepath.Join(exporterDir, "exporter")
		cmd := exec.Command("go", "build", "-o", exporterPath, "./cmd/exporter")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			exporterErr = fmt.Errorf("go build ./cmd/exporter: %w\n%s", err, out)
		}
	})
	if exporterErr != nil {
		t.Fatal(exporterErr)
	}
	return exporterPath
}

func containerArgs(t *testing.T, dep object) []string {
	t.Helper()
	raw, _ := dig(dep, "spec", "template", "spec", "containers", "0", "args").([]any)
	if len(raw) == 0 {
		t.Fatal("the exporter container has no args")
	}
	var args []string
	for _, a := range raw {
		s, ok := a.(string)
		if !ok {
			t.Fatalf("arg %v is not a string", a)
		}
		args = append(args, s)
	}
	return args
}

// pod is what the exporter container would see: its args and environment,
// with the ConfigMap and Secret mounts laid out under a local directory.
type pod struct {
	args []string
	env  []string
	dir  string
}

const existingStandIn = "existing-secret-value-of-"

var envRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// layOut writes the files the chart mounts into dir and rewrites the
// container's args and env to use them. Secret values come from the rendered
// Secret, or stand-ins when existingSecret names one the chart does not make.
// Certificates, keys and bcrypt hashes are replaced by valid generated ones,
// so the files can be validated as the exporter would.
func layOut(t *testing.T, objs []object, dir string) pod {
	t.Helper()
	dep := one(t, objs, "Deployment")
	spec := dig(dep, "spec", "template", "spec")
	ct := dig(spec, "containers", "0")
	secrets := map[string]map[string]string{}
	for _, s := range ofKind(objs, "Secret") {
		m := map[string]string{}
		data, _ := s["data"].(map[string]any)
		for k, v := range data {
			b, err := base64.StdEncoding.DecodeString(v.(string))
			if err != nil {
				t.Fatal(err)
			}
			m[k] = string(b)
		}
		secrets[str(s, "metadata", "name")] = m
	}
	configMaps := map[string]map[string]any{}
	for _, c := range ofKind(objs, "ConfigMap") {
		data, _ := c["data"].(map[string]any)
		configMaps[str(c, "metadata", "name")] = data
	}
	secretValue := func(name, key string) string {
		s, ok := secrets[name]
		if !ok {
			if len(secrets) > 0 {
				t.Errorf("Secret %s is not the one the chart renders", name)
			}
			return existingStandIn + key // existingSecret: the chart renders no Secret
		}
		v, ok := s[key]
		if !ok {
			t.Errorf("Secret %s has no key %s", name, key)
		}
		return v
	}

	// Environment, as the kubelet would set it.
	env := map[string]string{}
	var envList []string
	items, _ := dig(ct, "env").([]any)
	for _, e := range items {
		name := str(e, "name")
		var v string
		switch {
		case dig(e, "value") != nil:
			v = fmt.Sprint(dig(e, "value"))
		case dig(e, "valueFrom", "fieldRef") != nil:
			if f := str(e, "valueFrom", "fieldRef", "fieldPath"); f != "metadata.name" {
				t.Fatalf("env %s: unexpected fieldRef %s", name, f)
			}
			v = "faceid-exporter-7d4b9c-x2x9z"
		case dig(e, "valueFrom", "secretKeyRef") != nil:
			v = secretValue(str(e, "valueFrom", "secretKeyRef", "name"), str(e, "valueFrom", "secretKeyRef", "key"))
		case dig(e, "valueFrom", "resourceFieldRef") != nil:
			v = "268435456"
		default:
			t.Fatalf("env %s: unsupported source %v", name, e)
		}
		env[name] = v
		envList = append(envList, name+"="+v)
	}

	// Volumes and mounts.
	vols := map[string]any{}
	vlist, _ := dig(spec, "volumes").([]any)
	for _, v := range vlist {
		vols[str(v, "name")] = v
	}
	mounts, _ := dig(ct, "volumeMounts").([]any)
	var rewrites []string
	for _, m := range mounts {
		path := str(m, "mountPath")
		vol, ok := vols[str(m, "name")]
		if !ok {
			t.Fatalf("volumeMount %s: no volume %s", path, str(m, "name"))
		}
		local := filepath.Join(dir, path)
		if err := os.MkdirAll(local, 0o755); err != nil {
			t.Fatal(err)
		}
		rewrites = append(rewrites, path, local)
		switch {
		case dig(vol, "configMap") != nil:
			data, ok := configMaps[str(vol, "configMap", "name")]
			if !ok {
				t.Fatalf("volume %s: ConfigMap %s is not rendered", str(vol, "name"), str(vol, "configMap", "name"))
			}
			for k, v := range data {
				writeFile(t, filepath.Join(local, k), v.(string))
			}
		case dig(vol, "secret") != nil:
			name := str(vol, "secret", "secretName")
			keys, _ := dig(vol, "secret", "items").([]any)
			if len(keys) == 0 {
				t.Errorf("Secret volume %s mounts every key: list the items in use", name)
			}
			for _, it := range keys {
				writeFile(t, filepath.Join(local, str(it, "path")), secretValue(name, str(it, "key")))
			}
		}
	}
	rewrite := strings.NewReplacer(rewrites...)

	var args []string
	for _, a := range containerArgs(t, dep) {
		a = envRef.ReplaceAllStringFunc(a, func(ref string) string {
			name := envRef.FindStringSubmatch(ref)[1]
			v, ok := env[name]
			if !ok {
				t.Errorf("arg %q refers to $(%s), which the container does not define", a, name)
			}
			return v
		})
		args = append(args, rewrite.Replace(a))
	}
	// Files named by flags must be mounted, and valid where they can be checked.
	for _, a := range args {
		flagName, val, ok := strings.Cut(a, "=")
		if !ok || !strings.HasPrefix(val, dir) {
			if ok && strings.HasPrefix(val, "/etc/") {
				t.Errorf("%s names %s, which no volume mounts", flagName, val)
			}
			continue
		}
		if _, err := os.Stat(val); err != nil {
			t.Errorf("%s: %v (the chart passes a file it does not mount)", flagName, err)
			continue
		}
		if flagName == "--web.config.file" {
			fixWebConfig(t, val, rewrite)
			if err := web.Validate(val); err != nil {
				t.Errorf("the web config the chart makes is invalid for the exporter: %v", err)
			}
		}
	}
	return pod{args: args, env: envList, dir: dir}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// fixWebConfig points the web config at the local files and replaces its
// certificate, key and password hashes by valid generated ones.
func fixWebConfig(t *testing.T, path string, rewrite *strings.Replacer) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if strings.HasPrefix(string(data), existingStandIn) {
		cfg = map[string]any{} // existingSecret: the user's file, not the chart's
	} else if err := yaml.Unmarshal([]byte(rewrite.Replace(string(data))), &cfg); err != nil {
		t.Fatalf("web config: %v\n%s", err, data)
	}
	if tls, ok := cfg["tls_server_config"].(map[string]any); ok {
		cert, key := selfSigned(t)
		certFile, _ := tls["cert_file"].(string)
		keyFile, _ := tls["key_file"].(string)
		if certFile == "" || keyFile == "" {
			t.Errorf("tls_server_config without cert_file or key_file: %v", tls)
		} else {
			writeFile(t, certFile, cert)
			writeFile(t, keyFile, key)
		}
	}
	if users, ok := cfg["basic_auth_users"].(map[string]any); ok {
		hash, err := bcrypt.GenerateFromPassword([]byte("test"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		for u := range users {
			users[u] = string(hash)
		}
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(out))
}

func selfSigned(t *testing.T) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "faceid-exporter"}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
}

// TestExporterAcceptsFlags runs the exporter with the args of every render
// plus --config.check, with the ConfigMap and Secret files laid out as the pod
// mounts them: an unknown flag, a bad value or an invalid config file fails.
func TestExporterAcceptsFlags(t *testing.T) {
	bin := exporterBin(t)
	t.Run("unknown-flag-is-caught", func(t *testing.T) {
		// The check below is only worth something if the exporter rejects
		// a flag it does not know even with --config.check.
		out, err := exec.Command(bin, "--nats.no-such-flag=x", "--config.check").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "no-such-flag") {
			t.Fatalf("exporter accepted an unknown flag: %v\n%s", err, out)
		}
	})
	for _, c := range renderCases(t) {
		t.Run(c.name, func(t *testing.T) {
			objs := mustRender(t, c.args...)
			p := layOut(t, objs, t.TempDir())
			cmd := exec.Command(bin, append(p.args, "--config.check")...)
			cmd.Env = append(os.Environ(), p.env...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("exporter %s --config.check: %v\n%s", strings.Join(p.args, " "), err, out)
			}
			if !strings.Contains(string(out), ": OK") {
				t.Fatalf("exporter --config.check did not say OK:\n%s", out)
			}
			if slices_ContainsPrefix(p.args, "--config.file=") == strings.Contains(string(out), "(no --config.file") {
				t.Errorf("--config.file and the check's summary disagree:\n%s", out)
			}
			if slices_ContainsPrefix(p.args, "--demo") && slices_ContainsPrefix(p.args, "--nats.url=") {
				t.Error("--demo with --nats.url: the exporter refuses to start")
			}
		})
	}
}

func slices_ContainsPrefix(args []string, prefix string) bool {
	for _, a := range args {
		if strings.HasPrefix(a, prefix) {
			return true
		}
	}
	return false
}

// TestHelpDefaults checks the chart's port and paths against the exporter's
// own defaults, read from its --help.
func TestHelpDefaults(t *testing.T) {
	out, err := exec.Command(exporterBin(t), "serve", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("exporter serve --help: %v\n%s", err, out)
	}
	help := string(out)
	vals := chartValues(t)
	for _, want := range []string{
		fmt.Sprintf(`--web.listen-address=:%v`, dig(vals, "web", "port")),
		fmt.Sprintf(`--web.telemetry-path="%v"`, dig(vals, "web", "telemetryPath")),
		fmt.Sprintf(`--shutdown.timeout=%vs`, dig(vals, "shutdownTimeoutSeconds")),
		fmt.Sprintf(`--nats.subject="%v"`, dig(vals, "nats", "subject")),
		fmt.Sprintf(`--nats.queue="%v"`, dig(vals, "nats", "queue")),
		fmt.Sprintf(`--nats.dead-letter-subject="%v"`, dig(vals, "nats", "deadLetterSubject")),
		fmt.Sprintf(`--nats.dead-letter-mode="%v"`, dig(vals, "nats", "deadLetterMode")),
		fmt.Sprintf(`--jetstream.consumer="%v"`, dig(vals, "jetstream", "consumer")),
		fmt.Sprintf(`--jetstream.checkpoint-bucket="%v"`, dig(vals, "jetstream", "checkpointBucket")),
		fmt.Sprintf(`--jetstream.checkpoint-interval=%v`, dig(vals, "jetstream", "checkpointInterval")),
		fmt.Sprintf(`--jetstream.stream="%v"`, dig(vals, "jetstream", "stream")),
		fmt.Sprintf(`--jetstream.takeover-timeout=%v`, dig(vals, "jetstream", "takeoverTimeout")),
		fmt.Sprintf(`--jetstream.partitions=%v`, dig(vals, "jetstream", "partitions")),
		fmt.Sprintf(`--jetstream.stream-max-age=%v`, dig(vals, "jetstream", "streamMaxAge")),
		fmt.Sprintf(`--jetstream.stream-max-bytes=%v`, dig(vals, "jetstream", "streamMaxBytes")),
		fmt.Sprintf(`--jetstream.dead-letter-stream="%v"`, dig(vals, "jetstream", "deadLetterStream")),
	} {
		flagName, wantValue, _ := strings.Cut(want, "=")
		if !strings.Contains(help, flagName) {
			t.Errorf("exporter --help has no %s", flagName)
			continue
		}
		if strings.Contains(help, want) || strings.Contains(help, strings.ReplaceAll(want, `"`, "")) {
			continue
		}
		// Durations: --help prints 168h0m0s for the chart's 168h.
		m := regexp.MustCompile(regexp.QuoteMeta(flagName) + `="?([^"\s]*)"?`).FindStringSubmatch(help)
		if m != nil {
			got, err1 := time.ParseDuration(m[1])
			wanted, err2 := time.ParseDuration(strings.Trim(wantValue, `"`))
			if err1 == nil && err2 == nil && got == wanted {
				continue
			}
		}
		t.Errorf("chart default %s differs from the exporter's (--help):\n%s", want, grepLine(help, flagName))
	}
}

// TestReplicasMatchTheNATSCluster: the exporter's replica defaults are 1
// (the embedded server is one server); the chart's are 3, for the 3-server
// cluster its default nats.urls names, and its values say so.
func TestReplicasMatchTheNATSCluster(t *testing.T) {
	vals := chartValues(t)
	for _, key := range []string{"checkpointReplicas", "streamReplicas"} {
		if n := dig(vals, "jetstream", key); fmt.Sprint(n) != "3" {
			t.Errorf("jetstream.%s defaults to %v, want 3 (the default NATS cluster's size)", key, n)
		}
	}
	if n := dig(vals, "replicaCount"); fmt.Sprint(n) != "2" {
		t.Errorf("replicaCount defaults to %v, want 2 (an owner and a standby)", n)
	}
	raw, err := os.ReadFile(filepath.Join(chart, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), "config.cluster.replicas=3") || !strings.Contains(string(raw), "1 for a single server") {
		t.Error("values.yaml does not say which NATS cluster the replica defaults match and what to change for another")
	}
}

func grepLine(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

func chartValues(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chart, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestDemoPodServes runs the exporter as the chart's demo render would
// (listen address and embedded NATS moved to free local ports): the probe
// paths answer 200, the telemetry path serves metrics, and the OTLP headers
// the chart puts in the Secret reach the OTLP receiver through
// OTEL_EXPORTER_OTLP_HEADERS.
func TestDemoPodServes(t *testing.T) {
	bin := exporterBin(t)
	const header = "Bearer a,b%c d" // a comma and a percent sign must survive the env encoding
	got := make(chan string, 16)
	otlp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		select {
		case got <- r.Header.Get("Authorization"):
		default:
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer otlp.Close()

	dir := t.TempDir()
	valuesFile := filepath.Join(dir, "values.yaml")
	writeFile(t, valuesFile, fmt.Sprintf(`demo: {enabled: true, rate: 100}
nats: {urls: null}
otlp: {endpoint: %q, protocol: http, interval: 1s, headers: {Authorization: %q}}
`, otlp.URL+"/v1/metrics", header))
	objs := mustRender(t, "-f", valuesFile)
	p := layOut(t, objs, dir)
	dep := one(t, objs, "Deployment")
	ct := dig(dep, "spec", "template", "spec", "containers", "0")

	port := natstest.FreePort(t)
	var args []string
	for _, a := range p.args {
		if strings.HasPrefix(a, "--web.listen-address=") {
			a = fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port)
		}
		args = append(args, a)
	}
	args = append(args, "--nats.embedded.listen=127.0.0.1:-1", "--nats.embedded.store-dir="+filepath.Join(dir, "nats"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), p.env...)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			t.Error("exporter did not stop within 15s of SIGTERM")
		}
		if t.Failed() {
			t.Logf("exporter output:\n%s", logs.String())
		}
	}()

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	for _, probe := range []string{"readinessProbe", "livenessProbe"} {
		path := str(ct, probe, "httpGet", "path")
		if path == "" {
			t.Fatalf("%s is not an HTTP GET", probe)
		}
		waitFor(t, 30*time.Second, exited, fmt.Sprintf("%s %s answers 200", probe, path), func() bool {
			resp, err := http.Get(base + path)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
	}
	var metrics string
	waitFor(t, 30*time.Second, exited, "/metrics counts demo events", func() bool {
		resp, err := http.Get(base + findArg(t, p.args, "--web.telemetry-path="))
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		metrics = string(b)
		return strings.Contains(metrics, "faceid_verifications_total{")
	})
	if !strings.Contains(metrics, "faceid_exporter_build_info") {
		t.Error("no faceid_exporter_build_info on the telemetry path")
	}
	select {
	case h := <-got:
		if h != header {
			t.Errorf("OTLP receiver got Authorization %q, want %q", h, header)
		}
	case err := <-exited:
		t.Fatalf("exporter exited: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("no OTLP export within 20s")
	}
}

func findArg(t *testing.T, args []string, prefix string) string {
	t.Helper()
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, prefix); ok {
			return v
		}
	}
	t.Fatalf("no %s in %v", prefix, args)
	return ""
}

// waitFor polls cond until it holds, the process exits or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, exited <-chan error, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		select {
		case err := <-exited:
			t.Fatalf("waiting for %s: exporter exited: %v", what, err)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: not within %s", what, timeout)
		}
	}
}
