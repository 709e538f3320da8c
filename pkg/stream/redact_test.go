package stream_test

import (
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
	"github.com/faceid-observability/faceid-exporter/pkg/stream"
)

func TestRedactURLs(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"no credentials", "nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"user and password", "nats://exporter:s3cret@nats:4222", "nats://REDACTED@nats:4222"},
		{"token as user", "nats://tok-123@nats:4222", "nats://REDACTED@nats:4222"},
		{"list", "nats://a:1@n1:4222, tls://n2:4222,tls://b:2@n3:4222", "nats://REDACTED@n1:4222, tls://n2:4222,tls://REDACTED@n3:4222"},
		{"password with slash and at", "nats://u:pa/s@s@nats:4222", "nats://REDACTED@nats:4222"},
		{"percent-encoded", "wss://u:p%40ss@nats:443/ws", "wss://REDACTED@nats:443/ws"},
		{"in an error", `parse "nats://u:s3cret@127.0.0.1:x": invalid port ":x" after host`, `parse "nats://REDACTED@127.0.0.1:x": invalid port ":x" after host`},
		{"two in a sentence", "from nats://u:p@a to nats://v:q@b failed", "from nats://REDACTED@a to nats://REDACTED@b failed"},
		{"mail address is not a url", "write to ops@example.com", "write to ops@example.com"},
		{"empty", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := stream.RedactURLs(tc.in); got != tc.want {
				t.Errorf("RedactURLs(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// logBuffer collects log lines for a test to search; safe for the NATS
// client's goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// capture returns a debug-level logger into a buffer.
func capture() (*slog.Logger, *logBuffer) {
	buf := &logBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// freeAddr returns a local address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestConnectRedactsCredentials runs Connect, Dial and Check on URLs that
// carry secrets and searches every log line and error for them.
func TestConnectRedactsCredentials(t *testing.T) {
	const secret = "hunter2-secret"
	noSecret := func(t *testing.T, what, text string) {
		t.Helper()
		if strings.Contains(text, secret) {
			t.Errorf("%s holds the secret:\n%s", what, text)
		}
	}
	t.Run("token_in_url_connected", func(t *testing.T) {
		s := natstest.RunServer(t, natstest.CoreOnly, func(o *server.Options) { o.Authorization = secret })
		logger, logs := capture()
		nc, err := stream.Connect(stream.ConnOptions{URLs: "nats://" + secret + "@" + s.Addr().String()}, nil, logger)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		natstest.WaitFor(t, 5*time.Second, "connected with the token of the url", nc.IsConnected)
		natstest.WaitFor(t, 5*time.Second, "the connection logged", func() bool { return strings.Contains(logs.String(), "connected to nats") })
		if !strings.Contains(logs.String(), "nats://REDACTED@") {
			t.Errorf("the logged url is not redacted:\n%s", logs)
		}
		noSecret(t, "the log", logs.String())
	})
	t.Run("wrong_password_in_url", func(t *testing.T) {
		s := natstest.RunServer(t, natstest.CoreOnly, func(o *server.Options) { o.Username, o.Password = "exporter", "right" })
		logger, logs := capture()
		nc, err := stream.Connect(stream.ConnOptions{URLs: "nats://exporter:" + secret + "@" + s.Addr().String()}, nil, logger)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		natstest.WaitFor(t, 5*time.Second, "the authorization error logged", func() bool {
			return strings.Contains(strings.ToLower(logs.String()), "authorization violation")
		})
		noSecret(t, "the log", logs.String())
	})
	t.Run("unreachable", func(t *testing.T) {
		logger, logs := capture()
		nc, err := stream.Connect(stream.ConnOptions{URLs: "nats://exporter:" + secret + "@" + freeAddr(t)}, nil, logger)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		natstest.WaitFor(t, 5*time.Second, "the failed attempt logged", func() bool {
			return strings.Contains(logs.String(), "nats not reachable yet") && strings.Contains(logs.String(), "nats connection attempt failed")
		})
		noSecret(t, "the log", logs.String())
		_, err = stream.Dial(stream.ConnOptions{URLs: "nats://exporter:" + secret + "@" + freeAddr(t)}, logger)
		if err == nil || !strings.Contains(err.Error(), "connect to nats nats://REDACTED@") {
			t.Fatalf("Dial: %v", err)
		}
		noSecret(t, "the Dial error", err.Error())
	})
	t.Run("malformed_url", func(t *testing.T) {
		o := stream.ConnOptions{URLs: "nats://127.0.0.1:4222,nats://exporter:" + secret + "@127.0.0.1:notaport"}
		logger, logs := capture()
		for name, err := range map[string]error{
			"Check": o.Check(),
			"Connect": func() error {
				_, err := stream.Connect(o, nil, logger)
				return err
			}(),
			"Dial": func() error {
				_, err := stream.Dial(o, logger)
				return err
			}(),
		} {
			want := `--nats.url: parse "nats://REDACTED@127.0.0.1:notaport": invalid port ":notaport" after host`
			if err == nil || err.Error() != want {
				t.Errorf("%s: got %v, want %s", name, err, want)
			}
		}
		noSecret(t, "the log", logs.String())
	})
}
