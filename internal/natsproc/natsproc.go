// Package natsproc builds nats-server from the module's own dependency (the
// version go.mod pins) and runs it as a separate process, as users run it:
// for the tests and benchmarks that need the server outside their own process
// (e2e/exactly's fault schedules, e2e/throughput's measurements).
package natsproc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Module is the package path of the server built by Build.
const Module = "github.com/nats-io/nats-server/v2"

// Build builds Module, at the version moduleRoot's go.mod requires, into
// dir/nats-server and returns the binary's path.
func Build(moduleRoot, dir string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("the go tool is not in PATH: %w", err)
	}
	bin := filepath.Join(dir, "nats-server")
	cmd := exec.Command(goBin, "build", "-o", bin, Module)
	cmd.Dir = moduleRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", Module, err, out)
	}
	return bin, nil
}

// Options configure one server process.
type Options struct {
	// Bin is the nats-server binary (from Build).
	Bin string
	// Dir holds the configuration, the JetStream store, the ports file and
	// the log.
	Dir string
	// Name is the server's name ("" : "bench").
	Name string
	// Prefix is put before Bin on the command line, e.g. taskset -c 0.
	Prefix []string
	// Env is added to the process's environment (GOMAXPROCS=1).
	Env []string
	// Ready bounds the wait for the server to listen and be healthy
	// (0: 60s).
	Ready time.Duration
}

// Server is one running nats-server process with JetStream, listening on
// loopback ports it picked itself.
type Server struct {
	cmd     *exec.Cmd
	done    chan struct{}
	log     string
	client  string // nats://127.0.0.1:port
	monitor string // http://127.0.0.1:port
}

// Start writes the configuration, starts the process and waits until its
// /healthz answers 200 (JetStream ready). On an error the process is gone.
func Start(o Options) (*Server, error) {
	if o.Name == "" {
		o.Name = "bench"
	}
	if o.Ready <= 0 {
		o.Ready = 60 * time.Second
	}
	conf := fmt.Sprintf("server_name: %s\nlisten: 127.0.0.1:-1\nhttp: 127.0.0.1:-1\nports_file_dir: %q\njetstream {\n  store_dir: %q\n}\n",
		o.Name, o.Dir, filepath.Join(o.Dir, "store"))
	confPath := filepath.Join(o.Dir, "nats.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	logPath := filepath.Join(o.Dir, "nats.log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	argv := append(append([]string{}, o.Prefix...), o.Bin, "-c", confPath)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), o.Env...)
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start nats-server: %w", err)
	}
	s := &Server{cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() { _ = cmd.Wait(); f.Close(); close(s.done) }()
	if err := s.waitReady(o.Dir, o.Ready); err != nil {
		s.Kill()
		return nil, fmt.Errorf("%w; log tail:\n%s", err, s.LogTail(2000))
	}
	return s, nil
}

// waitReady reads the ports file the server writes once it listens, then
// polls /healthz.
func (s *Server) waitReady(dir string, within time.Duration) error {
	deadline := time.Now().Add(within)
	// <program name>_<pid>.ports: the program name is the binary's, also
	// behind a taskset prefix (which execs it in the same process).
	portsGlob := filepath.Join(dir, fmt.Sprintf("*_%d.ports", s.cmd.Process.Pid))
	hc := http.Client{Timeout: 2 * time.Second}
	last := "no ports file " + portsGlob
	for {
		select {
		case <-s.done:
			return fmt.Errorf("nats-server exited at start: %s", s.cmd.ProcessState)
		default:
		}
		if s.client == "" {
			if m, _ := filepath.Glob(portsGlob); len(m) == 1 {
				data, _ := os.ReadFile(m[0])
				var ports struct{ Nats, Monitoring []string }
				if json.Unmarshal(data, &ports) == nil && len(ports.Nats) > 0 && len(ports.Monitoring) > 0 {
					s.client, s.monitor = ports.Nats[0], ports.Monitoring[0]
				}
			}
		}
		if s.client != "" {
			resp, err := hc.Get(s.monitor + "/healthz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return nil
				}
				last = "/healthz " + resp.Status
			} else {
				last = err.Error()
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nats-server not ready within %s (last: %s)", within, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ClientURL is the server's nats:// URL.
func (s *Server) ClientURL() string { return s.client }

// MonitorURL is the server's HTTP monitoring base URL.
func (s *Server) MonitorURL() string { return s.monitor }

// Pid is the process id (with a taskset prefix: taskset execs the server in
// the same process).
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Running reports whether the process is alive.
func (s *Server) Running() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// Stop sends SIGTERM and waits for the exit, sending SIGKILL after within;
// it reports an exit that was not clean.
func (s *Server) Stop(within time.Duration) error {
	if !s.Running() {
		return fmt.Errorf("nats-server had exited: %s", s.cmd.ProcessState)
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	select {
	case <-s.done:
	case <-ctx.Done():
		s.Kill()
		return errors.New("nats-server did not stop within " + within.String() + " of SIGTERM")
	}
	return nil
}

// Kill sends SIGKILL and waits until the process is gone.
func (s *Server) Kill() {
	if s.Running() {
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-s.done
}

// LogTail returns the last n bytes of the server's log.
func (s *Server) LogTail(n int) string {
	data, err := os.ReadFile(s.log)
	if err != nil {
		return err.Error()
	}
	if len(data) > n {
		data = data[len(data)-n:]
	}
	return strings.TrimSpace(string(data))
}
