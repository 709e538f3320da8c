// Package natstest runs in-process NATS servers and clients for tests, and
// waits on conditions with a deadline.
package natstest

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// RunServer starts an in-process NATS server on 127.0.0.1 at a free port,
// with JetStream stored under t.TempDir(); each non-nil mod then adjusts the
// options. The server is shut down when the test ends.
func RunServer(t testing.TB, mods ...func(*server.Options)) *server.Server {
	t.Helper()
	return Start(t, Options(t, mods...))
}

// Options returns RunServer's options: 127.0.0.1 at a free port, JetStream
// stored under t.TempDir(), then each non-nil mod applied.
func Options(t testing.TB, mods ...func(*server.Options)) *server.Options {
	opts := &server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true}
	for _, mod := range mods {
		if mod != nil {
			mod(opts)
		}
	}
	return opts
}

// Start starts an in-process NATS server with opts, shut down when the test
// ends.
func Start(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// Restart shuts s, started with opts, down and starts a server with the same
// options on the port s listened on and the same store, as an operator's
// restart does; clients reconnect to it.
func Restart(t testing.TB, s *server.Server, opts *server.Options) *server.Server {
	t.Helper()
	again := opts.Clone()
	again.Port = s.Addr().(*net.TCPAddr).Port
	s.Shutdown()
	s.WaitForShutdown()
	return Start(t, again)
}

// CoreOnly is a RunServer option that turns JetStream off.
func CoreOnly(o *server.Options) { o.JetStream = false }

// Connect connects a client to url, closed when the test ends.
func Connect(t testing.TB, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// WaitFor polls cond until it holds, failing t if it still does not after
// within; what names the condition in the failure.
func WaitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Poll calls cond every poll until it holds, or returns an error with cond's
// last detail after within: WaitFor for goroutines other than the test's.
func Poll(within, poll time.Duration, cond func() (bool, string)) error {
	deadline := time.Now().Add(within)
	for {
		ok, detail := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s (last: %s)", within, detail)
		}
		time.Sleep(poll)
	}
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
