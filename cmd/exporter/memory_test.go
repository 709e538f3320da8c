package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/simulate"
)

// MemoryBudget is the resident memory the exporter may use at 100 k events/s.
const MemoryBudget = 64 << 20

// TestMemoryAt100k builds the exporter, runs it alone as a subprocess on a
// NATS server in the test process (core NATS, default flags and config),
// publishes 100,000 baseline events a second for 10 s (pre-generated, each
// with its own id), checks every one was received or counted as dropped, and
// reads its peak resident memory (VmHWM) from /proc: at most 64 MiB.
func TestMemoryAt100k(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the 100 k/s memory test takes about 15 s")
	}
	const rate, seconds = 100_000, 10
	bin := filepath.Join(t.TempDir(), "exporter")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	s := natstest.RunServer(t, natstest.CoreOnly, func(o *server.Options) { o.MaxPending = 256 << 20 })

	// Pre-generate every message, so that publishing costs little.
	cat, err := classify.Default()
	if err != nil {
		t.Fatal(err)
	}
	gen, err := simulate.NewGenerator(cat, simulate.Baseline, 11, simulate.WithRunID("mem"))
	if err != nil {
		t.Fatal(err)
	}
	n := rate * seconds
	arena := make([]byte, 0, n*360)
	offs := make([]int, n+1)
	subjects := make([]string, n)
	now := time.Now()
	for i := 0; i < n; i++ {
		msg, subj, _ := gen.Next(arena[len(arena):], now.Add(time.Duration(i)*10*time.Microsecond))
		arena = append(arena, msg...)
		offs[i+1], subjects[i] = len(arena), subj
	}

	addr := "127.0.0.1:" + strconv.Itoa(natstest.FreePort(t))
	var stderr syncBuffer
	cmd := exec.Command(bin, "--nats.core", "--nats.url="+s.ClientURL(), "--web.listen-address="+addr, "--log.level=warn")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	waitHTTP(t, "http://"+addr+"/-/ready", &stderr)

	nc := natstest.Connect(t, s.ClientURL())
	const tick = 10 * time.Millisecond
	perTick := rate * int(tick) / int(time.Second)
	start := time.Now()
	var peak uint64
	for i := 0; i < n; {
		for end := min(i+perTick, n); i < end; i++ {
			if err := nc.Publish(subjects[i], arena[offs[i]:offs[i+1]]); err != nil {
				t.Fatal(err)
			}
		}
		if i%rate == 0 {
			if rss := procStatus(t, cmd.Process.Pid, "VmRSS"); rss > peak {
				peak = rss
			}
		}
		if d := time.Until(start.Add(time.Duration(i/perTick) * tick)); d > 0 {
			time.Sleep(d) // pacing the producer, not waiting for a result
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	sent := time.Since(start)
	// Every message is either counted or counted as dropped (the dropped
	// count is polled every few seconds). How many a shared machine drops at
	// this rate is not the code's to decide: it is logged, and speed is the
	// benchmarks' business.
	var received, dropped float64
	deadline := time.Now().Add(20 * time.Second)
	for received+dropped < float64(n) {
		if time.Now().After(deadline) {
			t.Fatalf("received %v and dropped %v of %d events\n%s", received, dropped, n, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
		received, dropped = scrapeSum(t, "http://"+addr+"/metrics", "faceid_exporter_events_received_total"), scrapeSum(t, "http://"+addr+"/metrics", "faceid_exporter_nats_dropped_messages_total")
	}
	caughtUp := time.Since(start)
	hwm := procStatus(t, cmd.Process.Pid, "VmHWM")
	rss := procStatus(t, cmd.Process.Pid, "VmRSS")
	t.Logf("%d events in %s (%.0f/s offered), all received or counted as dropped %s after the start; exporter VmHWM %.1f MiB, VmRSS %.1f MiB (peak sampled while publishing %.1f MiB), dropped %v",
		n, sent.Round(time.Millisecond), float64(n)/sent.Seconds(), caughtUp.Round(time.Millisecond), mib(hwm), mib(rss), mib(peak), dropped)
	var gauges []string
	for _, g := range []string{"go_memstats_heap_inuse_bytes", "go_memstats_next_gc_bytes", "go_memstats_sys_bytes"} {
		gauges = append(gauges, fmt.Sprintf("%s %.1f MiB", strings.TrimPrefix(g, "go_memstats_"), mib(uint64(scrapeSum(t, "http://"+addr+"/metrics", g)))))
	}
	t.Logf("RssAnon %.1f MiB, RssFile %.1f MiB; %s", mib(procStatus(t, cmd.Process.Pid, "RssAnon")), mib(procStatus(t, cmd.Process.Pid, "RssFile")), strings.Join(gauges, ", "))
	if received+dropped != float64(n) {
		t.Errorf("received %v + dropped %v != %d sent", received, dropped, n)
	}
	if hwm > MemoryBudget {
		t.Errorf("exporter peak resident memory %.1f MiB, over the %d MiB budget", mib(hwm), MemoryBudget>>20)
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// procStatus reads one "kB" field of /proc/<pid>/status, in bytes.
func procStatus(t *testing.T, pid int, field string) uint64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && k == field {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

func waitHTTP(t *testing.T, url string, stderr *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not 200 within 15s\n%s", url, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// scrapeFamilies reads /metrics.
func scrapeFamilies(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

func scrapeSum(t *testing.T, url, name string) float64 {
	t.Helper()
	var sum float64
	if mf, ok := scrapeFamilies(t, url)[name]; ok {
		for _, m := range mf.Metric {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// JetStreamMemoryBudget is the resident memory the exporter may use in the
// checkpointed JetStream mode at 100 k events/s (issue: ≤ 96 MiB).
const JetStreamMemoryBudget = 96 << 20

// TestMemoryJetStream fills a JetStream stream with 1,000,000 baseline events
// (10 s at 100 k/s, each with its own id), then runs the exporter alone as a
// subprocess in the checkpointed mode with the default windows and reads its
// peak resident memory (VmHWM) once it has committed the whole stream. It
// reads as fast as it can (faster than 100 k/s on this machine), so this is
// the memory at 100 k events/s or above: at most 96 MiB.
func TestMemoryJetStream(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the JetStream memory test takes about 30 s")
	}
	const n = 1_000_000
	bin := filepath.Join(t.TempDir(), "exporter")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s.ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "FACEID", Subjects: []string{"faceid.results.>"}}); err != nil {
		t.Fatal(err)
	}
	cat, err := classify.Default()
	if err != nil {
		t.Fatal(err)
	}
	gen, err := simulate.NewGenerator(cat, simulate.Baseline, 12, simulate.WithRunID("memjs"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 1024)
	now := time.Now()
	var futs []jetstream.PubAckFuture
	for i := 0; i < n; i++ {
		msg, subj, _ := gen.Next(buf, now.Add(time.Duration(i)*10*time.Microsecond))
		buf = msg[:0]
		f, err := js.PublishAsync(subj, msg)
		if err != nil {
			t.Fatal(err)
		}
		if futs = append(futs, f); len(futs) == 4000 {
			for _, f := range futs {
				select {
				case <-f.Ok():
				case err := <-f.Err():
					t.Fatal(err)
				}
			}
			futs = futs[:0]
		}
	}
	<-js.PublishAsyncComplete()
	st, err := js.Stream(t.Context(), "FACEID")
	if err != nil {
		t.Fatal(err)
	}
	last := st.CachedInfo().State.LastSeq

	addr := "127.0.0.1:" + strconv.Itoa(natstest.FreePort(t))
	var stderr syncBuffer
	cmd := exec.Command(bin, "--nats.url="+s.ClientURL(), "--web.listen-address="+addr, "--log.level=warn", "--jetstream.stream=FACEID")
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	waitHTTP(t, "http://"+addr+"/-/healthy", &stderr)
	var peak uint64
	deadline := time.Now().Add(90 * time.Second)
	for scrapeSum(t, "http://"+addr+"/metrics", "faceid_exporter_checkpoint_sequence") < float64(last) {
		if time.Now().After(deadline) {
			t.Fatalf("not committed up to %d within 90s\n%s", last, stderr.String())
		}
		if rss := procStatus(t, cmd.Process.Pid, "VmRSS"); rss > peak {
			peak = rss
		}
		time.Sleep(100 * time.Millisecond)
	}
	took := time.Since(start)
	hwm := procStatus(t, cmd.Process.Pid, "VmHWM")
	counted := scrapeSum(t, "http://"+addr+"/metrics", "faceid_verifications_total") + scrapeSum(t, "http://"+addr+"/metrics", "faceid_exporter_duplicates_total") + scrapeSum(t, "http://"+addr+"/metrics", "faceid_exporter_events_rejected_total")
	t.Logf("%d events committed in %s (%.0f/s, start included); exporter VmHWM %.1f MiB (peak VmRSS sampled %.1f MiB), checkpoint %.0f bytes",
		n, took.Round(time.Millisecond), float64(n)/took.Seconds(), mib(hwm), mib(peak), scrapeSum(t, "http://"+addr+"/metrics", "faceid_exporter_checkpoint_size_bytes"))
	if c, sum := scrapeHistogram(t, "http://"+addr+"/metrics", "faceid_exporter_checkpoint_duration_seconds"); c > 0 {
		t.Logf("%d checkpoints, mean %.1f ms", c, 1000*sum/float64(c))
	}
	if counted != n {
		t.Errorf("counted %v of %d events", counted, n)
	}
	if hwm > JetStreamMemoryBudget {
		t.Errorf("exporter peak resident memory %.1f MiB, over the %d MiB budget", mib(hwm), JetStreamMemoryBudget>>20)
	}
}

// scrapeHistogram returns a histogram's sample count and sum.
func scrapeHistogram(t *testing.T, url, name string) (uint64, float64) {
	t.Helper()
	if mf, ok := scrapeFamilies(t, url)[name]; ok && len(mf.Metric) > 0 {
		h := mf.Metric[0].GetHistogram()
		return h.GetSampleCount(), h.GetSampleSum()
	}
	return 0, 0
}
