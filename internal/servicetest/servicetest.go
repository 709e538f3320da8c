// Package servicetest runs the exporter's service in a test's process.
package servicetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/exporter-toolkit/web"

	"github.com/faceid-observability/faceid-exporter/pkg/service"
)

// Start runs the service with cfg in the background, on a free loopback
// port, with the tests' subjects (queue faceid-exporter, dead letters on
// faceid.deadletter, /metrics) and a 100 ms poll. It returns once the
// service is ready, and a stop that cancels it and reports how long it took
// to end and its error; stop also runs when the test ends.
func Start(t testing.TB, cfg service.Config) (service.Started, func() (time.Duration, error)) {
	t.Helper()
	addrs := []string{"127.0.0.1:0"}
	sock, cfgFile := false, ""
	cfg.Web = &web.FlagConfig{WebListenAddresses: &addrs, WebSystemdSocket: &sock, WebConfigFile: &cfgFile}
	cfg.Queue, cfg.DeadLetterSubject, cfg.TelemetryPath = "faceid-exporter", "faceid.deadletter", "/metrics"
	cfg.PollInterval = 100 * time.Millisecond
	ready := make(chan service.Started, 1)
	cfg.OnReady = func(s service.Started) { ready <- s }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- service.Run(ctx, cfg) }()
	var st service.Started
	select {
	case st = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("service ended at start: %v", err)
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("service not started within 20s")
	}
	var once sync.Once
	var took time.Duration
	var stopErr error
	stop := func() (time.Duration, error) {
		once.Do(func() {
			start := time.Now()
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(30 * time.Second):
				stopErr = fmt.Errorf("not stopped after 30s")
			}
			took = time.Since(start)
		})
		return took, stopErr
	}
	t.Cleanup(func() { _, _ = stop() })
	return st, stop
}
