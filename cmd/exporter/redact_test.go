package main

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
)

// redactSecret is the password the tests put into NATS URLs and then look
// for in everything the exporter prints.
const redactSecret = "hunter2-in-the-url"

func assertNoSecret(t *testing.T, what, text string) {
	t.Helper()
	if strings.Contains(text, redactSecret) {
		t.Errorf("%s holds the password of the url:\n%s", what, text)
	}
}

// TestServeRedactsCredentials runs serve against a NATS URL with a password:
// unreachable, then refused by the server; the log says what happened and
// never shows the password.
func TestServeRedactsCredentials(t *testing.T) {
	refusing := natstest.RunServer(t, natstest.CoreOnly, func(o *server.Options) { o.Username, o.Password = "exporter", "the-right-one" })
	tests := []struct {
		name, url, want string
	}{
		{"unreachable", "nats://exporter:" + redactSecret + "@" + simFreeAddr(t), "nats not reachable yet"},
		{"refused", "nats://exporter:" + redactSecret + "@" + refusing.Addr().String(), "Authorization Violation"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr syncBuffer
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan int, 1)
			go func() {
				done <- runContext(ctx, []string{"serve", "--nats.core", "--nats.url=" + tc.url, "--log.level=debug", "--shutdown.timeout=1s",
					"--web.listen-address=127.0.0.1:" + strconv.Itoa(natstest.FreePort(t))},
					env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr})
			}()
			natstest.WaitFor(t, 10*time.Second, "the log to say "+tc.want, func() bool { return strings.Contains(stderr.String(), tc.want) })
			cancel()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				t.Fatal("serve did not stop within 15s of cancellation")
			}
			if !strings.Contains(stderr.String(), "nats://REDACTED@") {
				t.Errorf("the log does not show the redacted url:\n%s", stderr.String())
			}
			assertNoSecret(t, "the log", stderr.String())
			assertNoSecret(t, "stdout", stdout.String())
		})
	}
}

// TestConfigCheckRedactsCredentials runs --config.check with a password in
// --nats.url: a valid URL passes, a malformed one is refused, and neither
// output holds the password.
func TestConfigCheckRedactsCredentials(t *testing.T) {
	tests := []struct {
		name, url string
		code      int
		want      string
	}{
		{"valid", "nats://exporter:" + redactSecret + "@nats-1:4222,tls://nats-2:4222", 0, "OK"},
		{"malformed", "nats://exporter:" + redactSecret + "@nats-1:port", 1, `exporter serve: --nats.url: parse "nats://REDACTED@nats-1:port": invalid port ":port" after host`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := simRun("--config.check", "--nats.url", tc.url)
			if code != tc.code || !strings.Contains(stdout+stderr, tc.want) {
				t.Fatalf("exit %d, want %d with %q\nstdout: %s\nstderr: %s", code, tc.code, tc.want, stdout, stderr)
			}
			assertNoSecret(t, "stdout", stdout)
			assertNoSecret(t, "stderr", stderr)
		})
	}
}

// TestSimulateRedactsCredentials runs simulate with the password in the URL:
// accepted (debug logs show the URL), refused and unreachable.
func TestSimulateRedactsCredentials(t *testing.T) {
	s := natstest.RunServer(t, natstest.CoreOnly, func(o *server.Options) { o.Username, o.Password = "sim", redactSecret })
	tests := []struct {
		name, url string
		code      int
		want      string
	}{
		{"accepted", "nats://sim:" + redactSecret + "@" + s.Addr().String(), 0, `msg="publishing synthetic events" url=nats://REDACTED@` + s.Addr().String()},
		{"refused", "nats://sim:wrong-" + redactSecret + "@" + s.Addr().String(), 1, "exporter simulate: connect to nats nats://REDACTED@" + s.Addr().String() + ": nats: Authorization Violation"},
		{"unreachable", "nats://sim:" + redactSecret + "@" + simFreeAddr(t), 1, "exporter simulate: connect to nats nats://REDACTED@"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := simRun("--log.level=debug", "simulate", "--nats.url", tc.url, "--rate", "100", "--duration", "100ms")
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, want %d with %q\nstderr: %s", code, tc.code, tc.want, stderr)
			}
			assertNoSecret(t, "stderr", stderr)
			assertNoSecret(t, "the report", stdout)
		})
	}
}
