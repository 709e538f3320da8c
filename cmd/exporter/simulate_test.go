package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
	"github.com/faceid-observability/faceid-exporter/pkg/books"
	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/simulate"
)

// simCounter classifies what it receives with a classifier of its own and
// counts it the way the report does. The report's truth comes from the same
// classifier, so agreeing with it proves delivery and tally, not the
// classification (TestServeCountsHandWrittenEvents checks that).
type simCounter struct {
	mu       sync.Mutex
	cls      *classify.Classifier
	rules    *books.Rules // duplicates and the reqId rule, as a partition applies them
	res      classify.Result
	received int64
	by       map[string]int64 // channel/code/billable
	rejected map[string]int64
}

func simSubscribe(t *testing.T, s *server.Server, cat *classify.Catalog, subject string, opts ...nats.Option) *simCounter {
	t.Helper()
	c := &simCounter{
		cls:   classify.New(cat, classify.Options{}),
		rules: books.NewRules(cat, books.RulesOptions{DedupeWindow: 10 * time.Minute, DedupeCapacity: 100000}),
		by:    map[string]int64{}, rejected: map[string]int64{},
	}
	nc := natstest.Connect(t, s.ClientURL(), opts...)
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.received++
		token := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
		if err := c.cls.Classify(m.Data, []byte(token), time.Now(), &c.res); err != nil {
			var re *classify.RejectError
			errors.As(err, &re)
			c.rejected[re.Reason.String()]++
			return
		}
		c.rules.Apply(&c.res)
		code := "unknown"
		if c.res.Code != nil {
			code = c.res.Code.Code
		}
		c.by[c.res.Channel.Name+"/"+code+"/"+c.res.Billable.String()]++
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *simCounter) count() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.received
}

func (c *simCounter) compare(t *testing.T, rep simulate.Report) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.received != rep.Sent {
		t.Errorf("received %d, report says %d sent", c.received, rep.Sent)
	}
	got := map[string]int64{}
	for _, r := range rep.By {
		got[r.Channel+"/"+r.Code+"/"+r.Billable] += r.Count
	}
	if len(got) != len(c.by) {
		t.Errorf("report has %d (channel, code, billable) rows, the subscriber %d", len(got), len(c.by))
	}
	for k, v := range c.by {
		if got[k] != v {
			t.Errorf("%s: report %d, subscriber %d", k, got[k], v)
		}
	}
	for k, v := range rep.Malformed {
		if c.rejected[k] != v {
			t.Errorf("malformed %s: report %d, subscriber %d", k, v, c.rejected[k])
		}
	}
}

// simRun runs the exporter with args and returns its exit code and output.
func simRun(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := runMain(args, env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr})
	return code, stdout.String(), stderr.String()
}

func simDecode(t *testing.T, data []byte) simulate.Report {
	t.Helper()
	var rep simulate.Report
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, data)
	}
	return rep
}

func simWriteFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSimulateCommandDeliversWhatItReports runs the simulate command and
// checks its report's header, that a subscriber receives exactly what the
// report counts, and that a seed repeats the counts.
func TestSimulateCommandDeliversWhatItReports(t *testing.T) {
	s := natstest.RunServer(t, natstest.CoreOnly)
	cat, err := classify.Default()
	if err != nil {
		t.Fatal(err)
	}
	c := simSubscribe(t, s, cat, "faceid.results.>")
	code, stdout, stderr := simRun("simulate", "--nats.url", s.ClientURL(), "--scenario", "billable-failure-spike",
		"--rate", "1000", "--duration", "1500ms", "--seed", "7")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	rep := simDecode(t, []byte(stdout))
	if rep.Sent != 1500 || rep.Seed != 7 || rep.Scenario != simulate.BillableFailureSpike || rep.Transport != "core" || rep.Rate != 1000 || rep.DurationSeconds != 1.5 {
		t.Fatalf("report header: %+v", rep)
	}
	natstest.WaitFor(t, 10*time.Second, "every message", func() bool { return c.count() >= rep.Sent })
	c.compare(t, rep)
	var billableFailures int64
	for _, r := range rep.By {
		if r.Outcome == "failure" && r.Billable == "true" {
			billableFailures += r.Count
		}
	}
	if float64(billableFailures) < 0.3*float64(rep.Sent) {
		t.Errorf("%d billable failures of %d", billableFailures, rep.Sent)
	}
	if !strings.Contains(stderr, "simulate: elapsed=") || !strings.Contains(stderr, "sent=1500") {
		t.Errorf("no progress on stderr:\n%s", stderr)
	}

	// The same seed gives the same counts, with other ids.
	code, stdout2, stderr := simRun("simulate", "--nats.url", s.ClientURL(), "--scenario", "billable-failure-spike",
		"--rate", "1000", "--duration", "1500ms", "--seed", "7")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	rep2 := simDecode(t, []byte(stdout2))
	a, _ := json.Marshal(rep.By)
	b, _ := json.Marshal(rep2.By)
	if !bytes.Equal(a, b) || rep.RunID == rep2.RunID {
		t.Errorf("same seed: run ids %s and %s, counts\n%s\n%s", rep.RunID, rep2.RunID, a, b)
	}
}

// TestSimulateJetStreamStoresWhatItReports publishes through JetStream with
// --nats.subject-prefix and --report.file and finds in the stream as many
// messages as the report counts.
func TestSimulateJetStreamStoresWhatItReports(t *testing.T) {
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s.ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "FACEID", Subjects: []string{"acme.faceid.>"}})
	if err != nil {
		t.Fatal(err)
	}
	reportFile := filepath.Join(t.TempDir(), "report.json")
	code, stdout, stderr := simRun("simulate", "--nats.url", s.ClientURL(), "--jetstream.stream", "FACEID", "--nats.subject-prefix", "acme.faceid",
		"--scenario", "malformed", "--rate", "2000", "--duration", "1s", "--report.file", reportFile)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if stdout != "" {
		t.Errorf("stdout is not empty with --report.file: %q", stdout)
	}
	data, err := os.ReadFile(reportFile)
	if err != nil {
		t.Fatal(err)
	}
	rep := simDecode(t, data)
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sent != 2000 || int64(info.State.Msgs) != rep.Sent || rep.Transport != "jetstream" || rep.SubjectPrefix != "acme.faceid" {
		t.Fatalf("stream holds %d, report: sent %d, transport %s, prefix %s", info.State.Msgs, rep.Sent, rep.Transport, rep.SubjectPrefix)
	}
	if rep.MalformedTotal() < 300 {
		t.Errorf("only %d malformed messages of %d", rep.MalformedTotal(), rep.Sent)
	}
}

func TestSimulateCatalogFile(t *testing.T) {
	s := natstest.RunServer(t, natstest.CoreOnly)
	override := "version: 1\ncodes:\n  - {family: willingness, code: \"0\", category: willingness, billable: true, meaning: 成功}\n"
	file := simWriteFile(t, "override.yaml", override)
	code, stdout, stderr := simRun("--catalog.file", file, "simulate", "--nats.url", s.ClientURL(), "--rate", "2000", "--duration", "1s", "--seed", "3")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	rep := simDecode(t, []byte(stdout))
	if rep.Count("willingness", "0", "true") == 0 || rep.Count("willingness", "0", "unknown") != 0 {
		t.Errorf("willingness successes: billable true %d, unknown %d", rep.Count("willingness", "0", "true"), rep.Count("willingness", "0", "unknown"))
	}
}

func TestSimulateAuth(t *testing.T) {
	cat, err := classify.Default()
	if err != nil {
		t.Fatal(err)
	}
	t.Run("user and password", func(t *testing.T) {
		s := natstest.RunServer(t, natstest.CoreOnly, func(o *server.Options) { o.Username, o.Password = "sim", "s3cret" })
		c := simSubscribe(t, s, cat, "faceid.results.>", nats.UserInfo("sim", "s3cret"))
		good := simWriteFile(t, "password", "s3cret\n")
		code, stdout, stderr := simRun("simulate", "--nats.url", s.ClientURL(), "--nats.user", "sim", "--nats.password-file", good, "--rate", "500", "--duration", "500ms")
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		rep := simDecode(t, []byte(stdout))
		natstest.WaitFor(t, 10*time.Second, "every message", func() bool { return c.count() >= rep.Sent })
		c.compare(t, rep)

		bad := simWriteFile(t, "password", "wrong\n")
		code, _, stderr = simRun("simulate", "--nats.url", s.ClientURL(), "--nats.user", "sim", "--nats.password-file", bad, "--duration", "100ms")
		if code != 1 || !strings.Contains(stderr, "exporter simulate: connect to nats "+s.ClientURL()) || !strings.Contains(strings.ToLower(stderr), "authorization violation") {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
	})
	t.Run("token", func(t *testing.T) {
		s := natstest.RunServer(t, natstest.CoreOnly, func(o *server.Options) { o.Authorization = "tok-123" })
		tok := simWriteFile(t, "token", "tok-123\n")
		code, stdout, stderr := simRun("simulate", "--nats.url", s.ClientURL(), "--nats.token-file", tok, "--rate", "500", "--duration", "200ms")
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		if rep := simDecode(t, []byte(stdout)); rep.Sent != 100 {
			t.Fatalf("sent %d", rep.Sent)
		}
	})
	t.Run("mutual tls", func(t *testing.T) {
		dir := t.TempDir()
		simWriteTLS(t, dir)
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{
			CertFile: filepath.Join(dir, "server.pem"), KeyFile: filepath.Join(dir, "server-key.pem"),
			CaFile: filepath.Join(dir, "ca.pem"), Verify: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		s := natstest.RunServer(t, natstest.CoreOnly, func(o *server.Options) { o.TLSConfig, o.TLS, o.TLSVerify, o.TLSTimeout = tc, true, true, 2 })
		url := "tls://" + s.Addr().String()
		args := []string{"simulate", "--nats.url", url, "--nats.tls.ca-file", filepath.Join(dir, "ca.pem"), "--rate", "500", "--duration", "200ms"}
		code, stdout, stderr := simRun(append(args, "--nats.tls.cert-file", filepath.Join(dir, "client.pem"), "--nats.tls.key-file", filepath.Join(dir, "client-key.pem"))...)
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		if rep := simDecode(t, []byte(stdout)); rep.Sent != 100 {
			t.Fatalf("sent %d", rep.Sent)
		}
		// Without a client certificate the server refuses the connection.
		code, _, stderr = simRun(args...)
		if code != 1 || !strings.Contains(stderr, "exporter simulate: connect to nats "+url) {
			t.Fatalf("without a client certificate: exit %d\n%s", code, stderr)
		}
	})
}

func TestSimulateErrors(t *testing.T) {
	s := natstest.RunServer(t)
	pw := simWriteFile(t, "password", "x\n")
	empty := simWriteFile(t, "token", "\n")
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown scenario", []string{"--scenario", "storm"}, 2, "enum value must be one of baseline,billable-failure-spike,high-risk-device-surge,unknown-codes,malformed, got 'storm'"},
		{"zero rate", []string{"--rate", "0"}, 1, "exporter simulate: rate 0 must be above 0 and at most 1000000 events/s"},
		{"negative duration", []string{"--duration=-1s"}, 1, "exporter simulate: duration -1s must not be negative"},
		{"wildcard prefix", []string{"--nats.subject-prefix", "faceid.*"}, 1, `exporter simulate: subject prefix "faceid.*" is not a NATS subject of literal tokens`},
		{"password without user", []string{"--nats.password-file", pw}, 1, "exporter simulate: nats authentication: --nats.password-file needs --nats.user"},
		{"two auth methods", []string{"--nats.user", "a", "--nats.password-file", pw, "--nats.token-file", pw}, 1, "exporter simulate: nats authentication: give only one of --nats.creds-file, --nats.nkey-seed-file, --nats.user, --nats.token-file"},
		{"empty token", []string{"--nats.token-file", empty}, 1, "exporter simulate: nats token file " + empty + " is empty"},
		{"missing ca file", []string{"--nats.tls.ca-file", empty + ".none"}, 1, "exporter simulate: nats tls ca file: open " + empty + ".none: no such file or directory"},
		{"malformed url", []string{"--nats.url", "nats://u:p@127.0.0.1:x"}, 1, `exporter simulate: --nats.url: parse "nats://REDACTED@127.0.0.1:x": invalid port ":x" after host`},
		{"cert without key", []string{"--nats.tls.cert-file", pw}, 1, "exporter simulate: nats tls: --nats.tls.cert-file and --nats.tls.key-file go together"},
		{"missing stream", []string{"--jetstream.stream", "NOPE"}, 1, `exporter simulate: jetstream stream "NOPE" does not exist`},
		{"no server", []string{"--nats.url", "nats://u:p@" + simFreeAddr(t)}, 1, "exporter simulate: connect to nats nats://REDACTED@"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"simulate"}, tc.args...)
			for _, def := range [][2]string{{"--duration", "100ms"}, {"--nats.url", s.ClientURL()}} {
				if !strings.Contains(strings.Join(tc.args, " "), def[0]) {
					args = append(args, def[0], def[1])
				}
			}
			code, stdout, stderr := simRun(args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, want %d with %q\nstderr: %s", code, tc.code, tc.want, stderr)
			}
			if stdout != "" {
				t.Errorf("a report was written: %s", stdout)
			}
			if strings.Contains(stderr, "u:p@") {
				t.Errorf("credentials in the error: %s", stderr)
			}
		})
	}
}

// simFreeAddr returns a local address nothing listens on.
func simFreeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// simWriteTLS writes a CA, a server certificate for 127.0.0.1 and a client
// certificate into dir.
func simWriteTLS(t *testing.T, dir string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "simulate test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	simWritePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", caDER)
	for i, leaf := range []struct {
		name  string
		usage x509.ExtKeyUsage
	}{{"server", x509.ExtKeyUsageServerAuth}, {"client", x509.ExtKeyUsageClientAuth}} {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: leaf.name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{leaf.usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		simWritePEM(t, filepath.Join(dir, leaf.name+".pem"), "CERTIFICATE", der)
		simWritePEM(t, filepath.Join(dir, leaf.name+"-key.pem"), "EC PRIVATE KEY", keyDER)
	}
}

func simWritePEM(t *testing.T, name, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(name, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
