package main

import (
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
)

// TestStopWhileNATSUnreachable runs the built binary against a NATS URL where
// nothing listens, in core and JetStream mode, and sends SIGTERM once its HTTP
// server answers: nothing was ever connected, so it exits 0 at once (it used
// to wait out the 10 s shutdown timeout on a drain that cannot start, then
// exit 1: "drain nats connection: nats: connection reconnecting").
func TestStopWhileNATSUnreachable(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "exporter")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"core", nil},
		{"jetstream", []string{"--jetstream.stream=FACEID"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nowhere := "nats://127.0.0.1:" + strconv.Itoa(natstest.FreePort(t)) // free a moment ago: nothing listens
			addr := "127.0.0.1:" + strconv.Itoa(natstest.FreePort(t))
			var stderr syncBuffer
			cmd := exec.Command(bin, append([]string{"--nats.url=" + nowhere, "--web.listen-address=" + addr, "--log.level=info"}, tc.args...)...)
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			defer func() {
				_ = cmd.Process.Kill()
				<-done
			}()
			waitHTTP(t, "http://"+addr+"/-/healthy", &stderr)
			sent := time.Now()
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			var err error
			select {
			case err = <-done:
			case <-time.After(15 * time.Second):
				t.Fatalf("still running 15s after SIGTERM\n%s", stderr.String())
			}
			done <- err // for the deferred wait
			took := time.Since(sent)
			if err != nil {
				t.Fatalf("exit after SIGTERM: %v, want 0\n%s", err, stderr.String())
			}
			// Generous for a loaded machine, far below the 10 s shutdown timeout.
			if took > 3*time.Second {
				t.Fatalf("exited %s after SIGTERM, want at once (< 3s)\n%s", took.Round(time.Millisecond), stderr.String())
			}
			t.Logf("exited 0 %s after SIGTERM", took.Round(time.Millisecond))
		})
	}
}
