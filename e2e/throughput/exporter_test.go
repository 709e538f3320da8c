package throughput

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
)

// listenRE finds the address the exporter's HTTP server bound
// (exporter-toolkit logs it at info level).
var listenRE = regexp.MustCompile(`Listening on"? address=(\S+)`)

// progress is what one scrape of the exporter's /metrics says about the
// run. at is the middle of the request: the counters were read then, give or
// take half its round trip.
type progress struct {
	at                            time.Time
	counted, rejected, duplicates float64
	lastEvent                     float64 // faceid_exporter_last_event_timestamp_seconds
}

func (p progress) processed() float64 { return p.counted + p.rejected + p.duplicates }

// scrapeClient asks for /metrics uncompressed: gzip would cost the exporter
// more CPU than writing the text.
var scrapeClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableCompression: true}}

// scrape reads the sums the benchmark needs from the exporter's /metrics
// (text format; a line parser, so that nothing but the four names is
// interpreted).
func scrape(base string) (progress, error) {
	t0 := time.Now()
	resp, err := scrapeClient.Get(base + "/metrics")
	if err != nil {
		return progress{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return progress{}, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	var p progress
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || l[0] == '#' {
			continue
		}
		name := l
		if i := strings.IndexAny(l, "{ "); i >= 0 {
			name = l[:i]
		}
		var dst *float64
		switch name {
		case "faceid_verifications_total":
			dst = &p.counted
		case "faceid_exporter_events_rejected_total":
			dst = &p.rejected
		case "faceid_exporter_duplicates_total":
			dst = &p.duplicates
		case "faceid_exporter_last_event_timestamp_seconds":
			dst = &p.lastEvent
		default:
			continue
		}
		v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
		if err != nil {
			return progress{}, fmt.Errorf("/metrics line %q: %w", l, err)
		}
		*dst += v
	}
	if err := sc.Err(); err != nil {
		return progress{}, err
	}
	p.at = t0.Add(time.Since(t0) / 2)
	return p, nil
}

// exporterRun measures one exporter process reading the whole stream from
// its start as a new consumer group.
//
// The window: it opens at the first scrape of /metrics that shows a
// processed message (scrapes every 5 ms from the moment the HTTP server
// listens, before the exporter has connected to NATS), at the middle of that
// request, with the messages processed by then (n0) left out of the count;
// it closes at faceid_exporter_last_event_timestamp_seconds, the exporter's
// own clock reading when it counted the last event. msg/s = (N − n0) / window.
// CPU: /proc/<pid>/stat utime+stime right after the opening scrape and right
// after the scrape that saw all N, divided by N − n0. The scrapes in the
// window (a few, spaced by the remaining time) are included, not
// subtracted; their count and the cost of one are reported.
func (b *bench) exporterRun(round int, label string, pprofDir string, profileSeconds int) (result, error) {
	w := b.w
	n := float64(w.events())
	group := fmt.Sprintf("bench-%s", label)
	argv := append(append([]string{}, b.consumerPrefix...), b.exporterBin, "serve",
		"--nats.url", b.srv.ClientURL(),
		"--jetstream.stream", streamName, "--nats.subject", subjects,
		"--jetstream.consumer", group, "--jetstream.instance", group,
		"--jetstream.partitions", strconv.Itoa(b.o.partitions),
		"--web.listen-address", "127.0.0.1:0", "--log.level", "info")
	if pprofDir != "" {
		argv = append(argv, "--web.enable-pprof")
	}
	var env []string
	if b.o.gomaxprocs > 0 {
		env = append(env, fmt.Sprintf("GOMAXPROCS=%d", b.o.gomaxprocs))
	}
	c, err := startChild(b.t, b.dir, "exporter-"+label, argv, env, false)
	if err != nil {
		return result{}, err
	}
	defer c.kill()
	var base string
	if err := natstest.Poll(b.o.timeout, 5*time.Millisecond, func() (bool, string) {
		if !c.running() {
			return true, ""
		}
		data, _ := os.ReadFile(c.log)
		if m := listenRE.FindSubmatch(data); m != nil {
			base = "http://" + string(m[1])
			return true, ""
		}
		return false, "no \"Listening on\" line in " + c.log
	}); err != nil || base == "" {
		return result{}, fmt.Errorf("exporter %s: %v (running %v); log:\n%s", label, err, c.running(), tailFile(c.log, 2000))
	}

	var first progress
	if err := natstest.Poll(b.o.timeout, 5*time.Millisecond, func() (bool, string) {
		if !c.running() {
			return true, "exited"
		}
		p, err := scrape(base)
		if err != nil {
			return false, err.Error()
		}
		first = p
		return p.processed() > 0, "nothing processed yet"
	}); err != nil || !c.running() {
		return result{}, fmt.Errorf("exporter %s never started processing: %v; log:\n%s", label, err, tailFile(c.log, 2000))
	}
	cpu0, err1 := cpuSeconds(c.pid())
	srv0, err2 := cpuSeconds(b.srv.Pid())
	if err := joinErr(err1, err2); err != nil {
		return result{}, err
	}
	if first.processed() >= n {
		return result{}, fmt.Errorf("exporter %s had processed all %d events at the first scrape that saw any: too few events to measure (raise -throughput.copies)", label, w.events())
	}
	profile := make(chan error, 1)
	if pprofDir != "" {
		go func() { profile <- fetchProfile(base, profileSeconds, filepath.Join(pprofDir, "exporter.cpu.pprof")) }()
	}

	// A scrape costs the exporter CPU (milliseconds: every series): space
	// them by 70 % of the time left at the rate so far, at least 2 ms, so
	// that a run takes a handful.
	var last progress
	scrapes := 0
	deadline := time.Now().Add(b.o.timeout)
	for cur := first; ; {
		wait := 50 * time.Millisecond
		if dt := cur.at.Sub(first.at).Seconds(); dt > 0 && cur.processed() > first.processed() {
			rate := (cur.processed() - first.processed()) / dt
			wait = time.Duration(0.7 * (n - cur.processed()) / rate * float64(time.Second))
		}
		time.Sleep(min(max(wait, 2*time.Millisecond), 10*time.Second))
		if !c.running() {
			return result{}, fmt.Errorf("exporter %s exited during the run: %s; log:\n%s", label, c.cmd.ProcessState, tailFile(c.log, 2000))
		}
		p, err := scrape(base)
		if err != nil {
			return result{}, fmt.Errorf("exporter %s: %w", label, err)
		}
		scrapes++
		if p.processed() >= n {
			last = p
			break
		}
		if time.Now().After(deadline) {
			return result{}, fmt.Errorf("exporter %s processed %.0f of %d events within %s", label, p.processed(), w.events(), b.o.timeout)
		}
		cur = p
	}
	cpu1, err1 := cpuSeconds(c.pid())
	srv1, err2 := cpuSeconds(b.srv.Pid())
	hwm, err3 := vmHWM(c.pid())
	if err := joinErr(err1, err2, err3); err != nil {
		return result{}, err
	}
	if last.counted != n || last.rejected != 0 || last.duplicates != 0 {
		return result{}, fmt.Errorf("exporter %s: counted %.0f, rejected %.0f, duplicates %.0f; want all %d counted", label, last.counted, last.rejected, last.duplicates, w.events())
	}
	end := time.Unix(0, int64(math.Round(last.lastEvent*1e9)))
	if last.lastEvent == 0 || !end.After(first.at) {
		return result{}, fmt.Errorf("exporter %s: faceid_exporter_last_event_timestamp_seconds %v is not after the window's start %v", label, end, first.at)
	}
	if pprofDir != "" {
		// Before the idle scrapes below, which would be in the profile.
		if err := <-profile; err != nil {
			return result{}, err
		}
	}
	scrapeCost := scrapeCPU(base, c.pid(), 15)
	if err := c.term(30 * time.Second); err != nil {
		return result{}, err
	}
	events := n - first.processed()
	window := end.Sub(first.at).Seconds()
	return result{
		kind: kindExporter, round: round, events: events, window: window,
		cpu: cpu1 - cpu0, serverCPU: srv1 - srv0, hwm: hwm, lifeCPU: c.lifeCPU(),
		scrapes: scrapes, scrapeCPU: scrapeCost,
		note: fmt.Sprintf("n0=%.0f, %d scrapes in the window, %.2f ms CPU each when idle", first.processed(), scrapes, scrapeCost*1e3),
	}, nil
}

// scrapeCPU returns the median CPU seconds one scrape of /metrics costs the
// idle exporter (schedstat, summed over its threads), over k scrapes.
func scrapeCPU(base string, pid, k int) float64 {
	var costs []float64
	for range k {
		a, err := onCPUNanos(pid)
		if err != nil {
			return math.NaN()
		}
		if _, err := scrape(base); err != nil {
			return math.NaN()
		}
		b, err := onCPUNanos(pid)
		if err != nil {
			return math.NaN()
		}
		costs = append(costs, float64(b-a)/1e9)
	}
	sort.Float64s(costs)
	return costs[len(costs)/2]
}

// fetchProfile fetches a CPU profile of seconds from the exporter's
// /debug/pprof/profile into path.
func fetchProfile(base string, seconds int, path string) error {
	c := &http.Client{Timeout: time.Duration(seconds)*time.Second + 30*time.Second}
	resp, err := c.Get(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, seconds))
	if err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("cpu profile: %s: %s", resp.Status, body)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("cpu profile: %w", err)
	}
	return f.Close()
}
