// Package throughput measures the exporter's checkpointed JetStream mode out
// of process, as users run it, against the physical limit of reading the
// stream: a nats-server in its own process (built from the version go.mod
// pins) holds one stream pre-filled with the workload, and on that stream,
// one after another and round after round, three processes read all of it:
//
//   - ordered: a no-op ordered consumer (OrderedConsumer + Consume, no acks:
//     what the exporter's partitions use), internal/benchconsumer;
//   - explicit-ack: a no-op durable pull consumer acking every message;
//   - exporter: the exporter binary built from this checkout, a new consumer
//     group each time, so it reads the stream from its start.
//
// Each reports msg/s, CPU seconds per million events from the process's own
// accounting, the server's CPU in the same window and the peak RSS; the
// medians over the rounds and the ratios issue 18's acceptance names are
// printed at the end. The exact windows are described at exporterRun and
// consumerRun, and printed with the table.
//
// Without -throughput.full the test is a smoke run (40,000 events, one
// round) asserting only that all three read every event and the figures are
// positive. The full run:
//
//	go test ./e2e/throughput -run 'TestThroughput$' -v -timeout 60m -throughput.full
//
// Options: -throughput.rounds, -throughput.distinct × -throughput.copies
// (the workload), -throughput.partitions, -throughput.pin (taskset: the
// server on CPU 0, the consumer or exporter on CPU 1), -throughput.gomaxprocs
// (the exporter's), -throughput.cpuprofile DIR (an extra exporter run with
// --web.enable-pprof whose CPU profile is written to DIR and summarized with
// go tool pprof -top), -throughput.kinds (a subset), -throughput.seed.
package throughput

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/faceid-observability/faceid-exporter/internal/natsproc"
)

// repoRoot is the module root, relative to this package.
const repoRoot = "../.."

var (
	flagFull       = flag.Bool("throughput.full", false, "run the full benchmark (without it: a smoke run of 40,000 events, one round, asserting only that every process read every event)")
	flagRounds     = flag.Int("throughput.rounds", 5, "rounds of the full run; each runs the three processes one after another, starting with a different one")
	flagDistinct   = flag.Int("throughput.distinct", 365, "distinct events of the workload (the simulator's baseline mix)")
	flagCopies     = flag.Int("throughput.copies", 1200, "copies of each distinct event, each with its own id (events = distinct × copies)")
	flagEventBytes = flag.Int("throughput.event-bytes", 350, "size of every event: the simulator's events are padded with an \"extra\" object the exporter does not read")
	flagPartitions = flag.Int("throughput.partitions", 1, "the exporter's --jetstream.partitions")
	flagPin        = flag.Bool("throughput.pin", false, "pin with taskset: nats-server on CPU 0, the consumer or exporter on CPU 1 (fails without taskset or with fewer than 2 CPUs)")
	flagGOMAXPROCS = flag.Int("throughput.gomaxprocs", 0, "GOMAXPROCS of the exporter process (0: Go's default, the CPUs it may run on)")
	flagProfile    = flag.String("throughput.cpuprofile", "", "DIR: after the rounds, run the exporter once more with --web.enable-pprof, write the CPU profile of its consuming window to DIR/exporter.cpu.pprof and print go tool pprof -top")
	flagKinds      = flag.String("throughput.kinds", "ordered,explicit-ack,exporter", "which processes to measure, comma-separated")
	flagSeed       = flag.Int64("throughput.seed", 0, "seed of the workload's distinct events (0: from the clock; printed)")
	flagTimeout    = flag.Duration("throughput.timeout", 5*time.Minute, "longest wait for any one step of a process (start, reading everything, exit)")
)

const (
	kindOrdered  = "ordered"
	kindExplicit = "explicit-ack"
	kindExporter = "exporter"
)

var allKinds = []string{kindOrdered, kindExplicit, kindExporter}

type options struct {
	rounds, distinct, copies, eventBytes, partitions, gomaxprocs int
	pin                                                          bool
	kinds                                                        []string
	profileDir                                                   string
	seed                                                         int64
	timeout                                                      time.Duration
}

// result is one process's run.
type result struct {
	kind      string
	round     int
	events    float64 // in the window
	window    float64 // seconds
	cpu       float64 // the process's CPU seconds in the window
	serverCPU float64 // nats-server's CPU seconds in the window
	hwm       int64   // VmHWM bytes at the end of the window
	lifeCPU   float64 // CPU seconds over the whole process (rusage), start-up and shutdown included
	scrapes   int     // exporter: scrapes of /metrics in the window
	scrapeCPU float64 // exporter: CPU seconds of one scrape, idle (median)
	note      string
}

func (r result) rate() float64        { return r.events / r.window }
func (r result) usPerEvent() float64  { return r.cpu / r.events * 1e6 }
func (r result) srvPerEvent() float64 { return r.serverCPU / r.events * 1e6 }

type bench struct {
	t                            testing.TB
	o                            options
	dir                          string
	w                            *workload
	srv                          *natsproc.Server
	exporterBin, consumerBin     string
	serverPrefix, consumerPrefix []string
}

func TestThroughput(t *testing.T) {
	o := options{
		rounds: *flagRounds, distinct: *flagDistinct, copies: *flagCopies, eventBytes: *flagEventBytes, partitions: *flagPartitions,
		gomaxprocs: *flagGOMAXPROCS, pin: *flagPin, profileDir: *flagProfile, seed: *flagSeed, timeout: *flagTimeout,
	}
	for _, k := range strings.Split(*flagKinds, ",") {
		if k = strings.TrimSpace(k); !slices.Contains(allKinds, k) {
			t.Fatalf("-throughput.kinds: unknown %q (want some of %s)", k, strings.Join(allKinds, ","))
		}
		o.kinds = append(o.kinds, strings.TrimSpace(k))
	}
	if !*flagFull {
		o.rounds, o.distinct, o.copies, o.profileDir = 1, 40, 1000, ""
	}
	if o.rounds < 1 {
		t.Fatalf("-throughput.rounds %d: want at least 1", o.rounds)
	}
	if o.seed == 0 {
		o.seed = time.Now().UnixNano()
	}
	results := run(t, o)
	if *flagFull {
		return
	}
	// The smoke run: every process read every event, and the figures are
	// figures.
	for _, k := range o.kinds {
		var got []result
		for _, r := range results {
			if r.kind == k {
				got = append(got, r)
			}
		}
		if len(got) != o.rounds {
			t.Errorf("%s: %d results, want %d", k, len(got), o.rounds)
		}
		for _, r := range got {
			if !(r.rate() > 0) || !(r.window > 0) || !(r.cpu >= 0) || !(r.lifeCPU > 0) || r.hwm <= 0 || !(r.events > 0) {
				t.Errorf("%s: figures not positive: %+v", k, r)
			}
		}
	}
}

func run(t *testing.T, o options) []result {
	b := &bench{t: t, o: o, dir: t.TempDir()}
	if o.pin {
		ts, err := exec.LookPath("taskset")
		if err != nil {
			t.Fatalf("-throughput.pin: taskset not found: %v", err)
		}
		if runtime.NumCPU() < 2 {
			t.Fatalf("-throughput.pin: %d CPU, want 2", runtime.NumCPU())
		}
		b.serverPrefix, b.consumerPrefix = []string{ts, "-c", "0"}, []string{ts, "-c", "1"}
	}
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	// Build the three binaries.
	var err error
	natsBin, err := natsproc.Build(repoRoot, b.dir)
	if err != nil {
		t.Fatal(err)
	}
	b.exporterBin, b.consumerBin = filepath.Join(b.dir, "exporter"), filepath.Join(b.dir, "benchconsumer")
	for pkg, bin := range map[string]string{"./cmd/exporter": b.exporterBin, "./internal/benchconsumer": b.consumerBin} {
		cmd := exec.Command("go", "build", "-o", bin, pkg)
		cmd.Dir = repoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}

	natsDir := filepath.Join(b.dir, "nats")
	if err := os.MkdirAll(natsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	b.srv, err = natsproc.Start(natsproc.Options{Bin: natsBin, Dir: natsDir, Prefix: b.serverPrefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- nats-server log tail ---\n%s", b.srv.LogTail(3000))
		}
		b.srv.Kill()
	})

	b.w, err = newWorkload(o.distinct, o.copies, o.eventBytes, o.seed)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	fillStart := time.Now()
	if err := fill(ctx, b.srv.ClientURL(), b.w); err != nil {
		t.Fatal(err)
	}
	t.Logf("workload: %d events = %d distinct (baseline mix, seed %d) × %d copies, mean %.0f bytes, channels %v; filled in %s",
		b.w.events(), len(b.w.templates), o.seed, o.copies, float64(b.w.bytes)/float64(len(b.w.templates)), b.w.channels, time.Since(fillStart).Round(time.Millisecond))
	t.Logf("load average before: %s", loadavg())

	// One untimed ordered read first, so that every measured run finds the
	// stream's blocks where the previous one left them.
	if _, err := b.consumerRun(0, kindOrdered, "warmup"); err != nil {
		t.Fatal(err)
	}

	load0, err := snapshotLoad(b.srv.Pid())
	if err != nil {
		t.Fatal(err)
	}
	var results []result
	for round := 1; round <= o.rounds; round++ {
		// Interleave: each round starts with a different process.
		kinds := slices.Clone(o.kinds)
		rot := (round - 1) % len(kinds)
		kinds = append(kinds[rot:], kinds[:rot]...)
		for _, k := range kinds {
			var r result
			var err error
			label := fmt.Sprintf("r%d", round)
			if k == kindExporter {
				r, err = b.exporterRun(round, label, "", 0)
			} else {
				r, err = b.consumerRun(round, k, label)
			}
			if err != nil {
				t.Fatalf("round %d, %s: %v", round, k, err)
			}
			t.Logf("round %d %-12s %8.0f msg/s  %5.2f µs/event CPU  server %5.2f µs/event  VmHWM %5.1f MiB  (%s)",
				round, k, r.rate(), r.usPerEvent(), r.srvPerEvent(), float64(r.hwm)/(1<<20), r.note)
			results = append(results, r)
		}
	}
	t.Logf("load average after: %s", loadavg())
	if load1, err := snapshotLoad(b.srv.Pid()); err != nil {
		t.Fatal(err)
	} else {
		var readers float64
		for _, r := range results {
			readers += r.lifeCPU
		}
		t.Log(describeLoad(load0, load1, readers, b.srv.Pid()))
	}
	t.Log("\n" + report(b, results))

	if o.profileDir != "" {
		profile(t, b, results)
	}
	return results
}

// consumerRun measures one no-op consumer process. Its window opens when it
// calls Consume (after connecting and creating the consumer) and closes when
// it has handled the N-th message (explicit-ack: and flushed the acks to the
// server), both on its own clock; CPU is /proc/<pid>/stat utime+stime read
// by this process just before telling it to start and just after reading its
// "done" line.
func (b *bench) consumerRun(round int, kind, label string) (result, error) {
	n := b.w.events()
	argv := append(append([]string{}, b.consumerPrefix...), b.consumerBin,
		"--nats.url", b.srv.ClientURL(), "--stream", streamName, "--subject", subjects,
		"--mode", kind, "--durable", "bench-acker-"+label, "--events", strconv.Itoa(n),
		"--timeout", b.o.timeout.String())
	c, err := startChild(b.t, b.dir, kind+"-"+label, argv, nil, true)
	if err != nil {
		return result{}, err
	}
	defer c.kill()
	if l, err := c.line(b.o.timeout); err != nil {
		return result{}, err
	} else if l != "ready" {
		return result{}, fmt.Errorf("%s: %q, want ready", c.name, l)
	}
	cpu0, err1 := cpuSeconds(c.pid())
	srv0, err2 := cpuSeconds(b.srv.Pid())
	if err := joinErr(err1, err2); err != nil {
		return result{}, err
	}
	if _, err := fmt.Fprintln(c.stdin, "go"); err != nil {
		return result{}, err
	}
	l, err := c.line(b.o.timeout + 30*time.Second)
	if err != nil {
		return result{}, err
	}
	cpu1, err1 := cpuSeconds(c.pid())
	srv1, err2 := cpuSeconds(b.srv.Pid())
	hwm, err3 := vmHWM(c.pid())
	if err := joinErr(err1, err2, err3); err != nil {
		return result{}, err
	}
	var got int
	var start, first, last int64
	if _, err := fmt.Sscanf(l, "done %d %d %d %d", &got, &start, &first, &last); err != nil || got != n {
		return result{}, fmt.Errorf("%s: %q, want done %d …: %v", c.name, l, n, err)
	}
	c.stdin.Close()
	if err := c.wait(30 * time.Second); err != nil {
		return result{}, err
	}
	return result{
		kind: kind, round: round, events: float64(n), window: time.Duration(last - start).Seconds(),
		cpu: cpu1 - cpu0, serverCPU: srv1 - srv0, hwm: hwm, lifeCPU: c.lifeCPU(),
		note: fmt.Sprintf("first message %.1f ms after Consume", time.Duration(first-start).Seconds()*1e3),
	}, nil
}

func joinErr(errs ...error) error { return errors.Join(errs...) }

func loadavg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return err.Error()
	}
	return strings.TrimSpace(string(data))
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// report prints the medians per process and the acceptance ratios of issue
// 18.
func report(b *bench, results []result) string {
	var sb strings.Builder
	o := b.o
	fmt.Fprintf(&sb, "out-of-process throughput: %d events, %d round(s), partitions %d, pin %v, exporter GOMAXPROCS %s, %d CPUs\n",
		b.w.events(), o.rounds, o.partitions, o.pin, gomaxprocsText(o.gomaxprocs), runtime.NumCPU())
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "process\tmsg/s (median)\tmin\tmax\tCPU µs/event = s/M events\tserver µs/event\tVmHWM MiB (max)\twhole-life CPU s (median)\t")
	med := map[string]map[string]float64{}
	for _, k := range o.kinds {
		var rate, cpu, srv, life, hwm []float64
		for _, r := range results {
			if r.kind == k {
				rate, cpu, srv, life, hwm = append(rate, r.rate()), append(cpu, r.usPerEvent()), append(srv, r.srvPerEvent()), append(life, r.lifeCPU), append(hwm, float64(r.hwm)/(1<<20))
			}
		}
		med[k] = map[string]float64{"rate": median(rate), "cpu": median(cpu)}
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.0f\t%.3f\t%.3f\t%.1f\t%.2f\t\n", k, median(rate), slices.Min(rate), slices.Max(rate),
			median(cpu), median(srv), slices.Max(hwm), median(life))
	}
	tw.Flush()
	fmt.Fprintln(&sb, "windows: ordered and explicit-ack from Consume to the N-th message handled (explicit-ack: acks flushed), on the consumer's clock;")
	fmt.Fprintln(&sb, "exporter from the first /metrics scrape showing a processed message (the n0 processed by then left out) to its")
	fmt.Fprintln(&sb, "faceid_exporter_last_event_timestamp_seconds; CPU is /proc/<pid>/stat utime+stime over the window (10 ms ticks),")
	fmt.Fprintln(&sb, "the exporter's including the few scrapes in its window; whole-life CPU is the exited process's rusage (start-up, shutdown).")
	ex, ok1 := med[kindExporter]
	or, ok2 := med[kindOrdered]
	ea, ok3 := med[kindExplicit]
	if ok1 && ok2 {
		fmt.Fprintf(&sb, "exporter / ordered msg/s        %.2f×   (target ≥ 0.85×: %s)\n", ex["rate"]/or["rate"], met(ex["rate"]/or["rate"] >= 0.85))
	}
	if ok1 && ok3 {
		fmt.Fprintf(&sb, "exporter / explicit-ack msg/s   %.2f×   (target ≥ 1.8×: %s)\n", ex["rate"]/ea["rate"], met(ex["rate"]/ea["rate"] >= 1.8))
	}
	if ok1 && ok2 {
		d := ex["cpu"] - or["cpu"]
		fmt.Fprintf(&sb, "exporter − ordered CPU/event    %.3f µs (target ≤ 0.5 µs: %s)\n", d, met(d <= 0.5))
		var share []float64
		for _, r := range results {
			if r.kind == kindExporter {
				share = append(share, float64(r.scrapes)*r.scrapeCPU/r.events*1e6)
			}
		}
		fmt.Fprintf(&sb, "  of the exporter's CPU/event, its /metrics scrapes in the window ≈ %.3f µs (median; scrapes × one idle scrape's CPU; included above, not subtracted)\n", median(share))
	}
	return sb.String()
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "not met"
}

func gomaxprocsText(n int) string {
	if n == 0 {
		return "default"
	}
	return strconv.Itoa(n)
}

// profile runs the exporter once more with --web.enable-pprof, fetches the
// CPU profile of its consuming window (from its first processed message, for
// the median exporter window rounded up to whole seconds: pprof's unit, so
// the profile ends a little after the last event) and prints go tool pprof
// -top. The run is not part of the medians.
func profile(t *testing.T, b *bench, results []result) {
	var windows []float64
	for _, r := range results {
		if r.kind == kindExporter {
			windows = append(windows, r.window)
		}
	}
	secs := 3
	if len(windows) > 0 {
		secs = max(1, int(math.Ceil(median(windows))))
	}
	r, err := b.exporterRun(0, "profile", b.o.profileDir, secs)
	if err != nil {
		t.Fatalf("profile run: %v", err)
	}
	path := filepath.Join(b.o.profileDir, "exporter.cpu.pprof")
	var tops []string
	for _, sortBy := range [][]string{{"-top"}, {"-top", "-cum"}} {
		args := append(append([]string{"tool", "pprof"}, sortBy...), "-nodecount=15", path)
		out, err := exec.Command("go", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		tops = append(tops, "go "+strings.Join(args, " ")+"\n"+string(out))
	}
	t.Logf("profiled run (not in the medians): %.0f msg/s, %.3f µs/event CPU; profile of %d s from the first processed message: %s\n%s",
		r.rate(), r.usPerEvent(), secs, path, strings.Join(tops, "\n"))
}
