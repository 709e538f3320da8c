package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
)

// running is an exporter started through the real command line in this
// process, stopped by stop.
type running struct {
	t      *testing.T
	addr   string
	stderr *syncBuffer
	cancel context.CancelFunc
	done   chan int
}

func startServe(t *testing.T, args ...string) *running {
	t.Helper()
	r := &running{t: t, addr: "127.0.0.1:" + strconv.Itoa(natstest.FreePort(t)), stderr: &syncBuffer{}, done: make(chan int, 1)}
	var ctx context.Context
	ctx, r.cancel = context.WithCancel(context.Background())
	args = append(args, "--web.listen-address="+r.addr, "--nats.embedded.listen=127.0.0.1:-1", "--shutdown.timeout=5s")
	go func() {
		r.done <- runContext(ctx, args, env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: r.stderr})
	}()
	natstest.WaitFor(t, 20*time.Second, "the exporter to be ready", func() bool {
		select {
		case code := <-r.done:
			t.Fatalf("exporter %v exited with %d\n%s", args, code, r.stderr.String())
		default:
		}
		resp, err := http.Get("http://" + r.addr + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return r
}

func (r *running) stop() {
	r.t.Helper()
	r.cancel()
	select {
	case code := <-r.done:
		if code != 0 {
			r.t.Errorf("exporter exited with %d\n%s", code, r.stderr.String())
		}
	case <-time.After(20 * time.Second):
		r.t.Error("exporter did not stop within 20s of cancellation")
	}
}

func (r *running) get(path string) (int, string) {
	r.t.Helper()
	resp, err := http.Get("http://" + r.addr + path)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// ledgerTotal is the sum of the counts of today's (Beijing day) ledger rows.
func (r *running) ledgerTotal() (int, error) {
	day := time.Now().In(time.FixedZone("CST", 8*3600)).Format(time.DateOnly)
	code, body := r.get("/api/v1/ledger?from=" + day + "&to=" + day + "&format=json")
	if code != http.StatusOK {
		return 0, fmt.Errorf("/api/v1/ledger: %d %s", code, body)
	}
	var rows struct {
		Rows []struct {
			Count int `json:"count"`
		} `json:"rows"`
	}
	if err := json.Unmarshal([]byte(body), &rows); err != nil {
		return 0, fmt.Errorf("/api/v1/ledger: %w: %s", err, body)
	}
	n := 0
	for _, row := range rows.Rows {
		n += row.Count
	}
	return n, nil
}

// TestDefaultKeepsExactBooks runs the exporter with no mode flag: it is the
// embedded server's checkpointed JetStream mode, so the ledger API answers
// and the log says so; --nats.core is the explicit way to core NATS, where
// the ledger answers 501.
func TestDefaultKeepsExactBooks(t *testing.T) {
	t.Run("default", func(t *testing.T) {
		r := startServe(t, "--nats.embedded.store-dir="+t.TempDir())
		defer r.stop()
		if n, err := r.ledgerTotal(); err != nil || n != 0 {
			t.Errorf("ledger of a fresh default exporter: %d rows counted, err %v", n, err)
		}
		if !strings.Contains(r.stderr.String(), "consuming jetstream with checkpoints") {
			t.Errorf("the default mode is not the checkpointed JetStream mode:\n%s", r.stderr.String())
		}
	})
	t.Run("core_is_explicit", func(t *testing.T) {
		r := startServe(t, "--nats.core", "--nats.embedded.store-dir="+t.TempDir())
		defer r.stop()
		if code, body := r.get("/api/v1/ledger?from=2026-01-01&to=2026-01-01"); code != http.StatusNotImplemented {
			t.Errorf("core mode ledger: %d %s, want 501", code, body)
		}
	})
	t.Run("core_with_stream_refused", func(t *testing.T) {
		var stderr syncBuffer
		code := runContext(context.Background(), []string{"--config.check", "--nats.core", "--jetstream.stream=X"}, env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: &stderr})
		if code != 1 || !strings.Contains(stderr.String(), "--nats.core and --jetstream.stream") {
			t.Errorf("--nats.core --jetstream.stream=X: exit %d, %s", code, stderr.String())
		}
	})
}

// TestDemoStartsFromZero runs --demo twice with the same $TMPDIR and no
// store named: the second run's ledger does not hold the first run's events,
// its store is announced in the log and removed on exit.
func TestDemoStartsFromZero(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	first := startServe(t, "--demo", "--demo.rate=1000")
	const firstAtLeast = 1500
	natstest.WaitFor(t, 60*time.Second, fmt.Sprintf("the first demo to commit %d events", firstAtLeast), func() bool {
		n, err := first.ledgerTotal()
		if err != nil {
			t.Fatal(err)
		}
		return n >= firstAtLeast
	})
	first.stop()
	if !strings.Contains(first.stderr.String(), "store_dir="+tmp) {
		t.Errorf("the demo does not say where its data lives (under %s):\n%s", tmp, first.stderr.String())
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "faceid-exporter-*")); len(left) != 0 {
		t.Errorf("the demo left its store behind: %v", left)
	}

	second := startServe(t, "--demo", "--demo.rate=1")
	defer second.stop()
	// Give a replay of the first run's stream time to be counted, then
	// check that the books hold only the second run's few events.
	time.Sleep(3 * time.Second)
	n, err := second.ledgerTotal()
	if err != nil {
		t.Fatal(err)
	}
	if n >= 100 {
		t.Errorf("the second demo's ledger holds %d events at 1/s: it replayed an earlier run", n)
	}
	if _, err := os.Stat(tmp); err != nil {
		t.Fatal(err)
	}
}
