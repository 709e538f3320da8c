package service_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
	"github.com/faceid-observability/faceid-exporter/pkg/service"
	"github.com/faceid-observability/faceid-exporter/pkg/stream"
)

// lockedBuffer is a log sink the service and the test share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDeadLetterWindow: the duplicate window of the dead-letter stream the
// exporter creates follows the takeover timeout (10 timeouts, at least
// 10 minutes), since a replay publishes dead letters again up to about a
// takeover timeout after the last commit, more after a checkpoint outage; a
// stream of the user's with a shorter window is used, with a warning that
// names the window it needs.
func TestDeadLetterWindow(t *testing.T) {
	for _, tc := range []struct {
		name     string
		takeover time.Duration
		user     time.Duration // 0: the exporter creates the stream
		want     time.Duration // the created stream's window
		warn     bool
	}{
		{"created_default", 10 * time.Second, 0, 10 * time.Minute, false},
		{"created_long_takeover", 2 * time.Minute, 0, 20 * time.Minute, false},
		{"user_stream_2m", 10 * time.Second, 2 * time.Minute, 0, true},
		{"user_stream_long_enough", 10 * time.Second, time.Hour, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := natstest.RunServer(t)
			js, err := jetstream.New(natstest.Connect(t, s.ClientURL()))
			if err != nil {
				t.Fatal(err)
			}
			if tc.user > 0 {
				if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "USER_DL", Subjects: []string{"faceid.deadletter"}, Duplicates: tc.user}); err != nil {
					t.Fatal(err)
				}
			}
			var logs lockedBuffer
			cfg := service.Config{NATS: stream.ConnOptions{URLs: s.ClientURL()}, JetStream: jsConfig(),
				Logger: slog.New(slog.NewTextHandler(&logs, nil))}
			cfg.JetStream.TakeoverTimeout = tc.takeover
			st, stop := started(t, cfg)
			defer func() { _, _ = stop() }()
			natstest.WaitFor(t, 20*time.Second, "ready", func() bool {
				resp, err := http.Get("http://" + st.HTTP[0].String() + "/-/ready")
				if err != nil {
					return false
				}
				resp.Body.Close()
				return resp.StatusCode == 200
			})
			if tc.user == 0 {
				dl, err := js.Stream(t.Context(), "FACEID_DEADLETTER")
				if err != nil {
					t.Fatal(err)
				}
				if got := dl.CachedInfo().Config.Duplicates; got != tc.want || got != service.DeadLetterWindow(tc.takeover) {
					t.Errorf("created dead-letter stream's duplicate window %s, want %s", got, tc.want)
				}
			}
			warned := strings.Contains(logs.String(), "the dead-letter stream's duplicate window is shorter than the exporter needs")
			if warned != tc.warn {
				t.Errorf("warned %v, want %v; log:\n%s", warned, tc.warn, logs.String())
			}
			if tc.warn && !strings.Contains(logs.String(), "stream=USER_DL duplicate_window=2m0s needed=10m0s") {
				t.Errorf("the warning does not name the stream, its window and the window needed:\n%s", logs.String())
			}
		})
	}
}
