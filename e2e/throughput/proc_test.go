package throughput

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat:
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// cpuSeconds returns the CPU time the process has used so far, user plus
// system, from its own accounting in /proc/<pid>/stat (utime + stime, in
// clock ticks of 10 ms; all threads, exited ones included).
func cpuSeconds(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu time of pid %d: %w", pid, err)
	}
	// The command name (field 2) may hold spaces: count from its ')'.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(data[i+1:]))
	// f[0] is field 3 (state): utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the name", pid, len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return float64(ut+st) / clockTicks, nil
}

// onCPUNanos returns the time the process's live threads have run, summed
// from /proc/<pid>/task/*/schedstat (nanoseconds): finer than cpuSeconds,
// used for the small cost of one scrape.
func onCPUNanos(pid int) (int64, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		return 0, fmt.Errorf("schedstat of pid %d: %d tasks, %v", pid, len(tasks), err)
	}
	var sum int64
	for _, p := range tasks {
		data, err := os.ReadFile(p)
		if err != nil {
			continue // a thread that just exited
		}
		f := strings.Fields(string(data))
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", p, err)
		}
		sum += v
	}
	return sum, nil
}

// vmHWM returns the process's peak resident set size (VmHWM of
// /proc/<pid>/status) in bytes.
func vmHWM(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmHWM %q: %w", v, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no VmHWM", pid)
}

// child is one measured process: a no-op consumer speaking the
// internal/benchconsumer protocol on stdin and stdout, or the exporter,
// whose stdout and stderr go to its log.
type child struct {
	t     testing.TB
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string // stdout lines, consumers only
	log   string
	done  chan struct{}
}

// startChild starts argv (with env added) and registers its kill at the
// end of the test, printing its log's tail when the test failed.
func startChild(t testing.TB, dir, name string, argv, env []string, protocol bool) (*child, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = f
	c := &child{t: t, name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	var stdout io.ReadCloser
	if protocol {
		if c.stdin, err = cmd.StdinPipe(); err != nil {
			f.Close()
			return nil, err
		}
		if stdout, err = cmd.StdoutPipe(); err != nil {
			f.Close()
			return nil, err
		}
		c.lines = make(chan string, 16)
	} else {
		cmd.Stdout = f
	}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	if protocol {
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				c.lines <- sc.Text()
			}
			close(c.lines)
		}()
	}
	go func() { _ = cmd.Wait(); f.Close(); close(c.done) }()
	t.Cleanup(func() {
		c.kill()
		if t.Failed() {
			t.Logf("--- %s: tail of %s ---\n%s", name, logPath, tailFile(logPath, 3000))
		}
	})
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) running() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

func (c *child) kill() {
	if c.running() {
		_ = c.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-c.done
}

// line waits for the next stdout line, failing when the process exits
// first or within passes.
func (c *child) line(within time.Duration) (string, error) {
	select {
	case l, ok := <-c.lines:
		if !ok {
			<-c.done
			return "", fmt.Errorf("%s exited (%s) before writing the awaited line; log:\n%s", c.name, c.cmd.ProcessState, tailFile(c.log, 2000))
		}
		return l, nil
	case <-time.After(within):
		return "", fmt.Errorf("%s wrote no line within %s; log:\n%s", c.name, within, tailFile(c.log, 2000))
	}
}

// wait waits for the process to exit by itself within d and wants status 0.
func (c *child) wait(d time.Duration) error {
	select {
	case <-c.done:
	case <-time.After(d):
		c.kill()
		return fmt.Errorf("%s did not exit within %s", c.name, d)
	}
	if !c.cmd.ProcessState.Success() {
		return fmt.Errorf("%s exited with %s; log:\n%s", c.name, c.cmd.ProcessState, tailFile(c.log, 2000))
	}
	return nil
}

// term sends SIGTERM and waits for a clean exit within d.
func (c *child) term(d time.Duration) error {
	if !c.running() {
		return fmt.Errorf("%s had exited: %s; log:\n%s", c.name, c.cmd.ProcessState, tailFile(c.log, 2000))
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	return c.wait(d)
}

// lifeCPU is the CPU the exited process used over its whole life (user plus
// system, from the rusage wait4 returned), in seconds.
func (c *child) lifeCPU() float64 {
	ru, ok := c.cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(data) > n {
		data = data[len(data)-n:]
	}
	return strings.TrimSpace(string(data))
}
