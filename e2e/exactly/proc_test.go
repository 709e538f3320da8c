package exactly

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
)

// eventually polls cond every poll until it reports true, failing t when it
// still does not after within; the failure names what was awaited and the
// last detail cond gave.
func eventually(t testing.TB, within, poll time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	if err := natstest.Poll(within, poll, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// pause holds a fault for d: how long a process stays stopped or a server
// down. It never stands in for waiting on a condition.
func pause(d time.Duration) { <-time.After(d) }

// listenRE finds the address the exporter's HTTP server bound (exporter-toolkit
// logs it at info level once listening).
var listenRE = regexp.MustCompile(`Listening on"? address=(\S+)`)

// proc is one exporter replica: a child process that the test starts, kills,
// freezes and restarts. Every start writes its own log file.
type proc struct {
	t    testing.TB
	name string
	bin  string
	args []string
	dir  string

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	logs    []string
	addr    string
	gen     int
	stopped bool // SIGSTOPped
}

// newProc returns a replica that runs bin with args (the HTTP listen address
// is added: 127.0.0.1:0, learnt from the log); its logs go to dir. Cleanup
// kills it and, when the test failed, prints the tails of its logs.
func newProc(t testing.TB, dir, name, bin string, args ...string) *proc {
	p := &proc{t: t, name: name, bin: bin, args: args, dir: dir}
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			p.printLogs()
		}
	})
	return p
}

// start starts the replica and waits until its HTTP server listens.
func (p *proc) start() {
	p.t.Helper()
	if err := p.startErr(); err != nil {
		p.t.Fatal(err)
	}
}

func (p *proc) startErr() error {
	p.mu.Lock()
	if p.cmd != nil {
		p.mu.Unlock()
		return fmt.Errorf("%s: already running", p.name)
	}
	p.gen++
	logPath := filepath.Join(p.dir, fmt.Sprintf("%s.%d.log", p.name, p.gen))
	f, err := os.Create(logPath)
	if err != nil {
		p.mu.Unlock()
		return err
	}
	args := append(append([]string{}, p.args...), "--web.listen-address", "127.0.0.1:0", "--log.level", "info")
	cmd := exec.Command(p.bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		p.mu.Unlock()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); f.Close(); close(done) }()
	p.cmd, p.done, p.addr, p.stopped = cmd, done, "", false
	p.logs = append(p.logs, logPath)
	p.mu.Unlock()

	var addr string
	err = natstest.Poll(60*time.Second, 20*time.Millisecond, func() (bool, string) {
		select {
		case <-done:
			return true, ""
		default:
		}
		data, _ := os.ReadFile(logPath)
		if m := listenRE.FindSubmatch(data); m != nil {
			addr = string(m[1])
			return true, ""
		}
		return false, "no \"Listening on\" line in " + logPath
	})
	select {
	case <-done:
		return fmt.Errorf("%s exited at start: %s (log below)", p.name, cmd.ProcessState)
	default:
	}
	if err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	p.mu.Lock()
	p.addr = addr
	p.mu.Unlock()
	return nil
}

// url returns the base URL of the running replica's HTTP server.
func (p *proc) url() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return "http://" + p.addr
}

// running reports whether the replica's process is alive (stopped counts).
func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// frozen reports whether the replica is SIGSTOPped.
func (p *proc) frozen() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopped
}

// pid returns the running process's id, 0 when none.
func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// kill sends SIGKILL (kill -9) and waits until the process is gone; it is a
// no-op when none runs.
func (p *proc) kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	p.stopped = false
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// exited reports whether the process ended by itself, with its state.
func (p *proc) exited() (bool, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false, ""
	}
	select {
	case <-p.done:
		return true, p.cmd.ProcessState.String()
	default:
		return false, ""
	}
}

// term sends SIGTERM and waits for a graceful exit (SIGKILL after 20s).
func (p *proc) term() error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
		return fmt.Errorf("%s did not stop within 20s of SIGTERM", p.name)
	}
	if !cmd.ProcessState.Success() {
		return fmt.Errorf("%s exited after SIGTERM: %s", p.name, cmd.ProcessState)
	}
	return nil
}

// freeze sends SIGSTOP; thaw sends SIGCONT.
func (p *proc) freeze() error { return p.signal(syscall.SIGSTOP, true) }
func (p *proc) thaw() error   { return p.signal(syscall.SIGCONT, false) }

func (p *proc) signal(sig syscall.Signal, stopped bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return fmt.Errorf("%s is not running", p.name)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("%s: %s: %w", p.name, sig, err)
	}
	p.stopped = stopped
	return nil
}

// restart kills the replica with -9 and starts it again.
func (p *proc) restart() error {
	p.kill()
	return p.startErr()
}

// logText returns the current log of the replica.
func (p *proc) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.logs) == 0 {
		return ""
	}
	data, _ := os.ReadFile(p.logs[len(p.logs)-1])
	return string(data)
}

// printLogs logs the tails of the last two runs' logs and names the others.
func (p *proc) printLogs() {
	p.mu.Lock()
	logs := append([]string(nil), p.logs...)
	p.mu.Unlock()
	for i, l := range logs {
		if i < len(logs)-2 {
			data, _ := os.ReadFile(l)
			errs := grepLog(string(data), "level=ERROR")
			if len(errs) > 10 {
				errs = append(errs[:10], fmt.Sprintf("... and %d more", len(errs)-10))
			}
			p.t.Logf("--- %s: earlier log %s, its errors:\n%s", p.name, l, strings.Join(errs, "\n"))
			continue
		}
		p.t.Logf("--- %s: tail of %s ---\n%s", p.name, l, tail(l, 4000))
	}
}

// tail returns the last n bytes of a file, starting at a line.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(data) > n {
		data = data[len(data)-n:]
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			data = data[i+1:]
		}
	}
	return string(data)
}

// grepLog returns the lines of text containing s.
func grepLog(text, s string) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewBufferString(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if bytes.Contains(sc.Bytes(), []byte(s)) {
			out = append(out, sc.Text())
		}
	}
	return out
}
