package exactly

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/faceid-observability/faceid-exporter/internal/natsproc"
)

// The randomized fault schedules run NATS as separate nats-server processes
// (one, or a three-node cluster), so that a server can be killed with -9,
// frozen and restarted like any pod. The binary is built from the module's
// own nats-server dependency (go.mod pins it, internal/natsproc builds it),
// once per test binary.
var (
	natsBuildOnce sync.Once
	natsBin       string
	natsBuildErr  error
)

// natsServerBinary builds github.com/nats-io/nats-server/v2 (the version in
// go.mod) into the test's build directory the first time a test asks.
func natsServerBinary(t testing.TB) string {
	t.Helper()
	natsBuildOnce.Do(func() {
		natsBin, natsBuildErr = natsproc.Build(repoRoot, buildDir)
	})
	if natsBuildErr != nil {
		t.Fatal(natsBuildErr)
	}
	return natsBin
}

// natsProc is one nats-server process with JetStream: started, killed -9,
// frozen and restarted on the same ports and store directory.
type natsProc struct {
	t         testing.TB
	name      string
	bin       string
	dir       string // store and logs
	port      int    // client port
	monPort   int    // HTTP monitoring port (/healthz)
	conf      string // config file
	mu        sync.Mutex
	cmd       *exec.Cmd
	done      chan struct{}
	gen       int
	logs      []string
	cluster   string // cluster name, "" for a single server
	routePort int
	routes    []string
}

func (n *natsProc) writeConf() error {
	var b strings.Builder
	fmt.Fprintf(&b, "server_name: %s\nlisten: 127.0.0.1:%d\nhttp: 127.0.0.1:%d\n", n.name, n.port, n.monPort)
	fmt.Fprintf(&b, "jetstream {\n  store_dir: %q\n}\n", filepath.Join(n.dir, "store"))
	if n.cluster != "" {
		fmt.Fprintf(&b, "cluster {\n  name: %s\n  listen: 127.0.0.1:%d\n  routes: [%s]\n}\n", n.cluster, n.routePort, strings.Join(n.routes, ", "))
	}
	n.conf = filepath.Join(n.dir, "nats.conf")
	return os.WriteFile(n.conf, []byte(b.String()), 0o644)
}

// start starts the process (not waiting for readiness: see ready).
func (n *natsProc) start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return fmt.Errorf("nats %s already running", n.name)
	}
	n.gen++
	logPath := filepath.Join(n.dir, fmt.Sprintf("nats.%d.log", n.gen))
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(n.bin, "-c", n.conf)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start nats %s: %w", n.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); f.Close(); close(done) }()
	n.cmd, n.done = cmd, done
	n.logs = append(n.logs, logPath)
	return nil
}

// healthy reports whether /healthz says the server and its JetStream are
// ready (for a cluster node: current with the meta group and its streams).
func (n *natsProc) healthy() (bool, string) {
	if !n.running() {
		return false, n.name + " is down"
	}
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", n.monPort))
	if err != nil {
		return false, err.Error()
	}
	resp.Body.Close()
	return resp.StatusCode == 200, n.name + " /healthz " + resp.Status
}

func (n *natsProc) running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL (or SIGTERM when graceful) and waits until the process
// is gone.
func (n *natsProc) kill(graceful bool) {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.cmd = nil
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	sig := syscall.SIGKILL
	if graceful {
		sig = syscall.SIGTERM
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
}

func (n *natsProc) clientURL() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

func (n *natsProc) printLogs() {
	n.mu.Lock()
	logs := append([]string(nil), n.logs...)
	n.mu.Unlock()
	if len(logs) > 0 {
		l := logs[len(logs)-1]
		n.t.Logf("--- nats %s: tail of %s ---\n%s", n.name, l, tail(l, 2000))
	}
}

// natsFarm is one nats-server or a three-node cluster of them.
type natsFarm struct {
	t     testing.TB
	nodes []*natsProc
}

// newNATSFarm starts size nats-server processes (1 or 3), clustered when
// more than one, and waits until every node is healthy.
func newNATSFarm(t testing.TB, size int) *natsFarm {
	t.Helper()
	bin := natsServerBinary(t)
	ports := freePorts(t, 3*size)
	f := &natsFarm{t: t}
	var routes []string
	if size > 1 {
		for i := range size {
			routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[3*i+2]))
		}
	}
	for i := range size {
		n := &natsProc{t: t, name: fmt.Sprintf("n%d", i), bin: bin, dir: t.TempDir(), port: ports[3*i], monPort: ports[3*i+1]}
		if size > 1 {
			n.cluster, n.routePort, n.routes = "faceid-chaos", ports[3*i+2], routes
		}
		if err := n.writeConf(); err != nil {
			t.Fatal(err)
		}
		if err := n.start(); err != nil {
			t.Fatal(err)
		}
		f.nodes = append(f.nodes, n)
	}
	t.Cleanup(func() {
		for _, n := range f.nodes {
			n.kill(false)
			if t.Failed() {
				n.printLogs()
			}
		}
	})
	f.waitHealthy(t, 90*time.Second)
	return f
}

// waitHealthy waits until every running node is healthy.
func (f *natsFarm) waitHealthy(t testing.TB, within time.Duration) {
	t.Helper()
	eventually(t, within, 100*time.Millisecond, "every nats-server healthy", func() (bool, string) {
		for _, n := range f.nodes {
			if ok, why := n.healthy(); !ok {
				return false, why
			}
		}
		return true, ""
	})
}

func (f *natsFarm) urls() string {
	var u []string
	for _, n := range f.nodes {
		u = append(u, n.clientURL())
	}
	return strings.Join(u, ",")
}

func (f *natsFarm) node(name string) *natsProc {
	for _, n := range f.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// leaderOf returns the name of the node leading stream ("" when none, or on
// a single server).
func leaderOf(js jetstream.JetStream, stream string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return ""
	}
	info, err := s.Info(ctx)
	if err != nil || info.Cluster == nil {
		return ""
	}
	return info.Cluster.Leader
}
