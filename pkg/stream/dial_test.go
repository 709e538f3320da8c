package stream_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
	"github.com/faceid-observability/faceid-exporter/pkg/stream"
)

func TestDial(t *testing.T) {
	s := natstest.RunServer(t, natstest.CoreOnly, func(o *server.Options) { o.Username, o.Password = "ledger", "s3cret" })
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wrong := filepath.Join(dir, "wrong")
	if err := os.WriteFile(wrong, []byte("nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "nats://" + l.Addr().String()
	l.Close()

	t.Run("connects", func(t *testing.T) {
		nc, err := stream.Dial(stream.ConnOptions{URLs: s.ClientURL(), Name: "ledger-test", User: "ledger", PasswordFile: pw, ConnectTimeout: 5 * time.Second}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if !nc.IsConnected() {
			t.Fatal("not connected")
		}
		if got := nc.Opts.Name; got != "ledger-test" {
			t.Errorf("connection name %q", got)
		}
	})
	t.Run("wrong_password", func(t *testing.T) {
		_, err := stream.Dial(stream.ConnOptions{URLs: s.ClientURL(), User: "ledger", PasswordFile: wrong, ConnectTimeout: 5 * time.Second}, nil)
		if !errors.Is(err, nats.ErrAuthorization) {
			t.Fatalf("error %v, want an authorization error", err)
		}
	})
	t.Run("no_server_fails_at_once", func(t *testing.T) {
		start := time.Now()
		_, err := stream.Dial(stream.ConnOptions{URLs: closed, ConnectTimeout: 5 * time.Second}, nil)
		if !errors.Is(err, nats.ErrNoServers) {
			t.Fatalf("error %v, want %v", err, nats.ErrNoServers)
		}
		if err.Error() != "connect to nats "+closed+": "+nats.ErrNoServers.Error() {
			t.Errorf("error %q", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("took %s: a refused connection must not be retried", d)
		}
	})
	t.Run("silent_server_times_out", func(t *testing.T) {
		silent, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer silent.Close()
		done := make(chan struct{})
		defer close(done)
		go func() { // accept and never speak
			if c, err := silent.Accept(); err == nil {
				<-done
				c.Close()
			}
		}()
		start := time.Now()
		_, err = stream.Dial(stream.ConnOptions{URLs: "nats://" + silent.Addr().String(), ConnectTimeout: 300 * time.Millisecond}, nil)
		if err == nil {
			t.Fatal("connected to a server that never spoke")
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("took %s with a 300ms timeout", d)
		}
	})
	t.Run("options_checked", func(t *testing.T) {
		_, err := stream.Dial(stream.ConnOptions{URLs: s.ClientURL(), PasswordFile: pw, ConnectTimeout: 5 * time.Second}, nil)
		if err == nil || err.Error() != "nats authentication: --nats.password-file needs --nats.user" {
			t.Fatalf("error %v", err)
		}
	})
}
