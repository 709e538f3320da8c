package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/faceid-observability/faceid-exporter/internal/promtest"
)

// TestStackScript runs scripts/stack.sh as docs/stack.md tells a newcomer
// to: it must print where to look, Prometheus must have loaded every rule of
// alerts/*.yml (healthy) and scrape the exporter, and an alert must go
// through Alertmanager: the script's own hint (kill -STOP the exporter)
// makes FaceIDExporterDown fire (for: 2m). Ctrl-C (SIGINT) stops all of it.
// Needs Debian's prometheus and prometheus-alertmanager (a missing one
// fails the test); takes about three minutes.
func TestStackScript(t *testing.T) {
	lookTool(t, "prometheus")
	lookTool(t, "prometheus-alertmanager")
	wantGroups, wantRules := shippedRules(t)

	cmd := exec.Command(filepath.Join(repoRoot, "scripts", "stack.sh"))
	cmd.Env = append(os.Environ(), "STACK_DIR="+t.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logMu sync.Mutex
	var log strings.Builder
	cmd.Stderr = writerFunc(func(p []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return log.Write(p)
	})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	urls := make(chan map[string]string, 1)
	go func() {
		found := map[string]string{}
		sc := bufio.NewScanner(stdout)
		lineRe := regexp.MustCompile(`^\s+(exporter|prometheus|alertmanager)\s+(http://127\.0\.0\.1:\d+)/\S*\s*(?:\(pid (\d+))?`)
		sent := false
		for sc.Scan() {
			logMu.Lock()
			log.WriteString(sc.Text() + "\n")
			logMu.Unlock()
			if m := lineRe.FindStringSubmatch(sc.Text()); m != nil {
				found[m[1]] = m[2]
				if m[3] != "" {
					found["exporter_pid"] = m[3]
				}
			}
			if !sent && len(found) == 4 {
				urls <- found
				sent = true
			}
		}
		exited <- cmd.Wait()
	}()
	stopped := false
	defer func() {
		if !stopped {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			logMu.Lock()
			t.Logf("stack.sh output:\n%s", log.String())
			logMu.Unlock()
		}
	}()

	var at map[string]string
	select {
	case at = <-urls:
	case err := <-exited:
		stopped = true
		t.Fatalf("stack.sh exited before printing where to look: %v", err)
	case <-time.After(5 * time.Minute):
		t.Fatal("stack.sh printed no exporter, prometheus and alertmanager URLs (with the exporter's pid) within 5 minutes")
	}
	t.Logf("stack: %v", at)

	// The shipped rules, loaded and healthy.
	poll(t, 60*time.Second, "Prometheus to load every shipped rule", func() (bool, string) {
		var r struct {
			Data struct {
				Groups []struct {
					Name  string `json:"name"`
					Rules []struct {
						Name   string `json:"name"`
						Health string `json:"health"`
					} `json:"rules"`
				} `json:"groups"`
			} `json:"data"`
		}
		if err := getJSON(at["prometheus"]+"/api/v1/rules", &r); err != nil {
			return false, err.Error()
		}
		groups, rules, unhealthy := 0, 0, 0
		for _, g := range r.Data.Groups {
			groups++
			for _, rule := range g.Rules {
				rules++
				if rule.Health != "ok" {
					unhealthy++
				}
			}
		}
		return groups == wantGroups && rules == wantRules && unhealthy == 0,
			fmt.Sprintf("%d groups, %d rules (%d not ok); alerts/*.yml has %d groups, %d rules", groups, rules, unhealthy, wantGroups, wantRules)
	})
	poll(t, 60*time.Second, "Prometheus to scrape the exporter", func() (bool, string) {
		var r struct {
			Data struct {
				ActiveTargets []struct {
					Health string            `json:"health"`
					Labels map[string]string `json:"labels"`
				} `json:"activeTargets"`
			} `json:"data"`
		}
		if err := getJSON(at["prometheus"]+"/api/v1/targets", &r); err != nil {
			return false, err.Error()
		}
		for _, tg := range r.Data.ActiveTargets {
			if tg.Labels["job"] == "faceid-exporter" && tg.Health == "up" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", r.Data.ActiveTargets)
	})

	// An alert through Alertmanager, as the script says to make one.
	pid, err := strconv.Atoi(at["exporter_pid"])
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	poll(t, 5*time.Minute, "FaceIDExporterDown active in Alertmanager", func() (bool, string) {
		var alerts []struct {
			Labels map[string]string `json:"labels"`
			Status struct {
				State string `json:"state"`
			} `json:"status"`
		}
		if err := getJSON(at["alertmanager"]+"/api/v2/alerts", &alerts); err != nil {
			return false, err.Error()
		}
		for _, a := range alerts {
			if a.Labels["alertname"] == "FaceIDExporterDown" && a.Status.State == "active" && a.Labels["severity"] == "page" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d alerts: %+v", len(alerts), alerts)
	})
	_ = syscall.Kill(pid, syscall.SIGCONT)

	// Ctrl-C stops all of it.
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		stopped = true
	case <-time.After(60 * time.Second):
		t.Fatal("stack.sh did not stop within 60s of SIGINT")
	}
	for _, name := range []string{"exporter", "prometheus", "alertmanager"} {
		addr := strings.TrimPrefix(at[name], "http://")
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still listens on %s after the stack stopped", name, addr)
		}
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("the exporter (pid %d) still runs after the stack stopped", pid)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// shippedRules counts the groups and rules of alerts/*.yml.
func shippedRules(t *testing.T) (groups, rules int) {
	t.Helper()
	for _, g := range promtest.RuleGroups(t, filepath.Join(repoRoot, "alerts")) {
		groups++
		rules += len(g)
	}
	return groups, rules
}

func getJSON(url string, v any) error {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	return json.Unmarshal(body, v)
}

// poll calls cond until it holds or limit passes; cond says why not.
func poll(t *testing.T, limit time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s: %s", what, limit, why)
		}
		time.Sleep(time.Second)
	}
}
