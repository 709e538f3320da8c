package exactly

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/faceid-observability/faceid-exporter/internal/hostile"
	"github.com/faceid-observability/faceid-exporter/internal/natstest"
	"github.com/faceid-observability/faceid-exporter/internal/refmodel"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
	"github.com/faceid-observability/faceid-exporter/pkg/stream"
)

// Randomized fault schedules (issue 15, "What to build" 3). Each run draws,
// from one seed, a topology (1–3 partitions, 1–3 replicas; one nats-server
// process or a three-node cluster of them) and a schedule of faults
// interleaved with publishing, runs it against the exporter binary, and at
// every quiet point and at the end compares what the exporter's books hold —
// the exact counters summed over the live replicas, the ledger through
// `exporter ledger` and every live replica's /api/v1/ledger, the dead-letter
// stream — with the independent reference model (internal/refmodel) fed
// the stream's messages as stored (sequence, subject, payload, JetStream
// timestamp) and told what was removed unread and when the stream was
// re-created.
//
// The short pass runs by default (a few seeds, new ones every run, printed);
// the long pass is opt-in:
//
//	go test ./e2e/exactly -run 'TestChaos' -v -seed 1234            # one seed again
//	go test ./e2e/exactly -run 'TestChaos' -v -seeds 40 -timeout 3h  # 40 seeds of each
//	go test ./e2e/exactly -run 'TestChaos' -v -chaos.duration 30m -timeout 2h
//	go test ./e2e/exactly -run 'TestChaos' -v -chaos.faults kill,freeze -chaos.input ordinary
var (
	flagSeed            = flag.Uint64("seed", 0, "chaos: run this one seed (0: draw new seeds)")
	flagSeeds           = flag.Int("seeds", 0, "chaos: seeds per test (0: the short pass's count)")
	flagDuration        = flag.Duration("chaos.duration", 0, "chaos: draw seeds until this much time has passed (the long pass; overrides -seeds)")
	flagFaults          = flag.String("chaos.faults", "all", "chaos: the fault classes to draw from, comma-separated ("+strings.Join(allFaults, ",")+"), all, or none (publishing only: input defects apart from faults)")
	flagInput           = flag.String("chaos.input", "all", "chaos: the published traffic: the internal/hostile classes to draw from, comma-separated (ordinary, far_future, ...), all, or fixture (the differential tests' fixture: valid, duplicated and bad lines, no future timestamps)")
	flagKeepOn          = flag.Bool("chaos.keep-going", false, "chaos: after a failing check, go on with the schedule (later checks then show the failure's consequences)")
	flagFutureTolerance = flag.Duration("chaos.model-future-tolerance", 0, "chaos: the model's future-timestamp tolerance (0: the exporter's default; negative: no such rule, as before issue 15)")
	flagLostExact       = flag.Bool("chaos.lost-exact", false, "chaos: with several partitions, want faceid_exporter_jetstream_lost_messages_total exact (docs/service.md promises only an upper bound)")
	flagKnown           = flag.Bool("chaos.known", false, "chaos: run TestChaosKnown, the recorded seeds that found defects of issue 15")
	flagLogDir          = flag.String("chaos.log-dir", "", "chaos: keep each seed's exporter logs and config under this directory (seed-named subdirectories) instead of the test's temporary directory")
	flagReport          = flag.String("chaos.report", os.Getenv("FACEID_CHAOS_REPORT"), "chaos: append one line per seed (seed, topology, result) to this file (env FACEID_CHAOS_REPORT)")
)

// Fault classes.
const (
	fKill            = "kill"             // kill -9 of a replica, restarted within a second
	fKillDown        = "kill-down"        // kill -9 of a replica that stays down past the takeover timeout
	fFreeze          = "freeze"           // SIGSTOP past the takeover timeout, then SIGCONT
	fNATSRestart     = "nats-restart"     // the nats-server (a cluster: one node) killed -9 or stopped by SIGTERM, restarted on its port and store
	fStepdownStream  = "stepdown-stream"  // the stream's leader steps down (cluster)
	fStepdownKV      = "stepdown-kv"      // the checkpoint bucket's leader steps down (cluster)
	fRecreateRunning = "recreate-running" // the stream deleted and re-created while the replicas run
	fRecreateStopped = "recreate-stopped" // the same while every replica is down, messages published before they start
	fPurge           = "purge"            // replicas down, messages published, the oldest unread ones purged (by sequence)
	fPurgeSubject    = "purge-subject"    // replicas down, messages published, one channel's subject purged
	fLimits          = "limits"           // replicas down, messages published, MaxMsgs lowered so the oldest unread age out
	fQuiet           = "quiet"            // no message arrives while ownership moves: owners killed, the group restarted
)

var allFaults = []string{fKill, fKillDown, fFreeze, fNATSRestart, fStepdownStream, fStepdownKV,
	fRecreateRunning, fRecreateStopped, fPurge, fPurgeSubject, fLimits, fQuiet}

// clusterOnly are the classes that need a cluster.
var clusterOnly = map[string]bool{fStepdownStream: true, fStepdownKV: true}

// Short-pass sizes: each seed takes about a minute on two loaded cores.
const (
	shortSeedsSingle  = 2
	shortSeedsCluster = 2
	settleWithinChaos = 75 * time.Second
)

// step is one entry of a schedule.
type step struct {
	Kind string // a fault class, or "publish"
	N    int    // messages to publish (publish; the batch published while the replicas are down)
	Who  int    // a replica or node index (modulo what there is)
	Ms   int    // a duration in milliseconds: down time, the freeze beyond the takeover timeout, the publish's pace
	K    int    // the removal's size: messages cut (purge), kept (limits); the channel (purge-subject)
}

func (s step) String() string {
	switch s.Kind {
	case "publish":
		return fmt.Sprintf("publish %d messages over %dms (concurrent with what follows)", s.N, s.Ms)
	case fKill:
		return fmt.Sprintf("kill -9 replica #%d, restart after %dms", s.Who, s.Ms)
	case fKillDown:
		return fmt.Sprintf("kill -9 replica #%d, down for the takeover timeout + %dms", s.Who, s.Ms)
	case fFreeze:
		return fmt.Sprintf("SIGSTOP replica #%d (an owner if one is live) for the takeover timeout + %dms, SIGCONT", s.Who, s.Ms)
	case fNATSRestart:
		if s.natsGraceful() {
			return fmt.Sprintf("SIGTERM nats-server node #%d (graceful), down %dms, restart", s.Who, s.Ms)
		}
		return fmt.Sprintf("kill -9 nats-server node #%d, down %dms, restart", s.Who, s.Ms)
	case fStepdownStream, fStepdownKV:
		return s.Kind
	case fRecreateRunning:
		return "settle, then delete and re-create the stream while the replicas run"
	case fRecreateStopped:
		return fmt.Sprintf("settle, kill -9 every replica, delete and re-create the stream, publish %d, restart the replicas", s.N)
	case fPurge:
		return fmt.Sprintf("settle, kill -9 every replica, publish %d, purge the stream below the %d-th of them, restart", s.N, s.K+1)
	case fPurgeSubject:
		return fmt.Sprintf("settle, kill -9 every replica, publish %d, purge the subject of channel #%d, restart", s.N, s.K)
	case fLimits:
		return fmt.Sprintf("settle, kill -9 every replica, publish %d, lower MaxMsgs to %d then lift it, restart", s.N, s.K)
	case fQuiet:
		return fmt.Sprintf("settle and check; with no message arriving, kill -9 owner #%d and wait for its partitions to move (mode %d); check", s.Who, s.K)
	}
	return s.Kind
}

// natsGraceful: a nats-restart step with an odd down time stops the server
// with SIGTERM (a graceful shutdown), an even one with SIGKILL. (Taken from
// the down time so that adding it changed no seed's schedule.)
func (s step) natsGraceful() bool { return s.Kind == fNATSRestart && s.Ms%2 == 1 }

// syncs reports whether a step waits for the group to settle first.
func (s step) syncs() bool {
	switch s.Kind {
	case fRecreateRunning, fRecreateStopped, fPurge, fPurgeSubject, fLimits, fQuiet:
		return true
	}
	return false
}

// topology is what a seed runs on, and how the exporter is configured.
type topology struct {
	Cluster        bool
	Partitions     int
	Replicas       int
	DedupeCapacity int  // dedupe.capacity in --config.file; 0: the default
	Business       bool // business-dimension allowlists in --config.file
}

// Business allowlists of the seeds that draw them.
var chaosAppIDs, chaosRuleIDs = []string{"app-a", "app-b"}, []string{"rule-1", "rule-2"}

func (tp topology) String() string {
	n := "1 nats-server"
	if tp.Cluster {
		n = "3-node cluster (R3 stream and bucket)"
	}
	s := fmt.Sprintf("%s, %d partitions, %d replicas", n, tp.Partitions, tp.Replicas)
	if tp.DedupeCapacity > 0 {
		s += fmt.Sprintf(", dedupe.capacity %d", tp.DedupeCapacity)
	}
	if tp.Business {
		s += ", business dimensions"
	}
	return s
}

// configFile returns the --config.file text of tp, "" when none is needed.
func (tp topology) configFile() string {
	var b strings.Builder
	if tp.DedupeCapacity > 0 {
		fmt.Fprintf(&b, "dedupe:\n  capacity: %d\n", tp.DedupeCapacity)
	}
	if tp.Business {
		fmt.Fprintf(&b, "business_dimensions:\n  app_id: [%s]\n  rule_id: [%s]\n", strings.Join(chaosAppIDs, ", "), strings.Join(chaosRuleIDs, ", "))
	}
	return b.String()
}

// chaosOpts are a run's input and fault classes (-chaos.input,
// -chaos.faults).
type chaosOpts struct{ input, faults string }

// rerun is the command that runs seed again.
func (o chaosOpts) rerun(cluster bool, seed uint64) string {
	test := "TestChaosSingle"
	if cluster {
		test = "TestChaosCluster"
	}
	return fmt.Sprintf("go test ./e2e/exactly -run '^%s$' -v -seed %d -chaos.input %s -chaos.faults %s", test, seed, o.input, o.faults)
}

// faultsEnabled parses a -chaos.faults value.
func faultsEnabled(faults string) (map[string]bool, error) {
	out := map[string]bool{}
	if faults == "none" {
		return out, nil
	}
	if faults == "all" || faults == "" {
		for _, f := range allFaults {
			out[f] = true
		}
		return out, nil
	}
	for _, f := range strings.Split(faults, ",") {
		f = strings.TrimSpace(f)
		if !slices.Contains(allFaults, f) {
			return nil, fmt.Errorf("-chaos.faults: unknown class %q (have %s)", f, strings.Join(allFaults, ","))
		}
		out[f] = true
	}
	return out, nil
}

// drawSchedule draws a topology and a schedule from seed.
func drawSchedule(seed uint64, cluster bool, enabled map[string]bool) (topology, []step) {
	rng := rand.New(rand.NewPCG(seed, 0xc4a05))
	tp := topology{Cluster: cluster, Partitions: 1 + rng.IntN(3), Replicas: 1 + rng.IntN(3)}
	var classes []string
	for _, f := range allFaults {
		// With several partitions a purge of one subject removes unread
		// messages without moving the stream's first sequence: no partition
		// can tell them from messages it read (docs/service.md, "Lost input"),
		// so the class is drawn with one partition only.
		if f == fPurgeSubject && tp.Partitions > 1 {
			continue
		}
		if enabled[f] && (cluster || !clusterOnly[f]) {
			classes = append(classes, f)
		}
	}
	publish := func() step {
		return step{Kind: "publish", N: 80 + rng.IntN(220), Ms: 300 + rng.IntN(1500)}
	}
	if rng.IntN(3) == 0 {
		tp.DedupeCapacity = 200 + rng.IntN(200)
	}
	tp.Business = rng.IntN(3) == 0
	var steps []step
	faults := 6 + rng.IntN(3)
	if len(classes) == 0 {
		return tp, []step{publish(), publish(), publish(), publish()}
	}
	steps = append(steps, publish())
	for range faults {
		f := classes[rng.IntN(len(classes))]
		s := step{Kind: f, Who: rng.IntN(3)}
		switch f {
		case fKill:
			s.Ms = rng.IntN(800)
		case fKillDown:
			s.Ms = 500 + rng.IntN(1500)
		case fFreeze:
			s.Ms = 1000 + rng.IntN(2000)
		case fNATSRestart:
			s.Ms = 200 + rng.IntN(1500)
		case fRecreateStopped:
			s.N = 20 + rng.IntN(120)
		case fPurge:
			s.N = 30 + rng.IntN(120)
			s.K = 1 + rng.IntN(s.N-1)
		case fPurgeSubject:
			s.N = 30 + rng.IntN(120)
			s.K = rng.IntN(len(channels))
		case fLimits:
			s.N = 30 + rng.IntN(120)
			s.K = 1 + rng.IntN(s.N-1)
		case fQuiet:
			s.K = rng.IntN(3) // 0: kill an owner, restart it; 1: kill an owner, keep it down past the timeout; 2: restart every replica
		}
		steps = append(steps, s)
		if rng.IntN(3) > 0 || s.syncs() {
			steps = append(steps, publish())
		}
	}
	return tp, steps
}

// chaosSeeds returns the seeds a test runs: -seed, or -seeds new ones, or
// the short pass's count; with -chaos.duration, next draws more until the
// time is up.
func chaosSeeds(short int, env string) (first []uint64, more func() (uint64, bool)) {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(os.Getpid())))
	draw := func() uint64 { return rng.Uint64()>>34 + 1 } // short enough to type
	if *flagSeed != 0 {
		return []uint64{*flagSeed}, func() (uint64, bool) { return 0, false }
	}
	// The short pass's seeds may be named in the environment (CI does:
	// scripts/test.sh), a comma-separated list.
	if list := os.Getenv(env); list != "" && *flagSeeds == 0 && *flagDuration == 0 {
		for _, f := range strings.Split(list, ",") {
			seed, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64)
			if err != nil || seed == 0 {
				panic(fmt.Sprintf("%s: %q is not a seed", env, f))
			}
			first = append(first, seed)
		}
		return first, func() (uint64, bool) { return 0, false }
	}
	if *flagDuration > 0 {
		end := time.Now().Add(*flagDuration)
		return nil, func() (uint64, bool) { return draw(), time.Now().Before(end) }
	}
	n := short
	if *flagSeeds > 0 {
		n = *flagSeeds
	}
	for range n {
		first = append(first, draw())
	}
	return first, func() (uint64, bool) { return 0, false }
}

// TestChaosSingle runs randomized fault schedules on one nats-server process.
func TestChaosSingle(t *testing.T) { runChaosSeeds(t, false, shortSeedsSingle) }

// TestChaosCluster runs randomized fault schedules on a three-node cluster
// of nats-server processes: an R3 stream and checkpoint bucket, a node
// killed -9 and restarted, stream and KV leader stepdowns, and the rest.
func TestChaosCluster(t *testing.T) { runChaosSeeds(t, true, shortSeedsCluster) }

func runChaosSeeds(t *testing.T, cluster bool, short int) {
	o := chaosOpts{input: *flagInput, faults: *flagFaults}
	env := "FACEID_CHAOS_SEEDS_SINGLE"
	if cluster {
		env = "FACEID_CHAOS_SEEDS_CLUSTER"
	}
	first, more := chaosSeeds(short, env)
	t.Logf("chaos seeds: %v (input %s, faults %s)", first, o.input, o.faults)
	var results []string
	for _, s := range first {
		results = append(results, runChaosSeed(t, cluster, s, o))
	}
	for {
		s, ok := more()
		if !ok {
			break
		}
		results = append(results, runChaosSeed(t, cluster, s, o))
	}
	t.Logf("chaos results:\n%s", strings.Join(results, "\n"))
}

// runChaosSeed runs one seed as a subtest and returns its result line (also
// appended to -chaos.report).
func runChaosSeed(t *testing.T, cluster bool, seed uint64, o chaosOpts) string {
	enabled, err := faultsEnabled(o.faults)
	if err != nil {
		t.Fatal(err)
	}
	if o.input != "fixture" {
		if _, err := hostile.ParseClasses(o.input); err != nil {
			t.Fatalf("-chaos.input: %v", err)
		}
	}
	tp, sched := drawSchedule(seed, cluster, enabled)
	start := time.Now()
	res := &chaosResult{}
	ok := t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
		runChaos(t, seed, tp, sched, o, res)
	})
	line := fmt.Sprintf("%s seed=%d [%s] input=%s faults=%s: ", t.Name(), seed, tp, o.input, o.faults)
	switch {
	case ok && res.inconclusive != "":
		line += fmt.Sprintf("inconclusive in %s (%s)", time.Since(start).Round(time.Second), res.inconclusive)
	case ok:
		line += fmt.Sprintf("pass in %s", time.Since(start).Round(time.Second))
	default:
		line += "FAIL"
		if res.failedAt != "" {
			line += " " + res.failedAt
		}
		line += "; rerun: " + o.rerun(cluster, seed)
	}
	reportLine(line)
	return line
}

func reportLine(line string) {
	if *flagReport == "" {
		return
	}
	f, err := os.OpenFile(*flagReport, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintln(f, time.Now().UTC().Format(time.RFC3339), line)
}

// chaosResult says where a seed failed.
type chaosResult struct {
	failedAt string // the check that failed and the fault classes since the last good one
	// inconclusive says why the run stopped without a verdict: the server
	// brought back messages the harness had seen it remove, so what the
	// books must hold is no longer known.
	inconclusive string
}

// chaosRun is one seed's world.
type chaosRun struct {
	t      *testing.T
	seed   uint64
	tp     topology
	sched  []step
	opts   chaosOpts
	bin    string
	farm   *natsFarm
	nc     *nats.Conn
	js     jetstream.JetStream
	g      *group
	model  *refmodel.Model
	input  []msg
	next   int // the next input message to publish
	log    []string
	result *chaosResult

	// The current stream's messages folded into the model: the last
	// sequence read back, and per partition the last surviving sequence of
	// its subjects.
	lastRead uint64
	partLast map[int]uint64
	resets   int
	// unpart holds the sequences of the current stream's messages that no
	// partition reads, as long as the stream holds them (with several
	// partitions: faceid_exporter_jetstream_unpartitioned_messages summed
	// over the live replicas must equal their number).
	unpart []uint64

	pubDone chan error // the publish under way, nil when none

	// removedSeqs are the sequences of the current stream that the harness
	// saw removed unread; stopped ends the run without a verdict.
	removedSeqs []uint64
	stopped     bool
	// The watch of the stream's first sequence after a removal (see
	// watchRemoved): stopped by a re-created stream and at the end.
	watchStop  chan struct{}
	watchMu    sync.Mutex
	servedBack []uint64 // removed sequences the stream served again

	liveness []string // problems the next check reports

	// lostSlack is how far faceid_exporter_jetstream_lost_messages_total may
	// exceed the model's exact count (several partitions: an upper bound).
	lostSlack uint64

	sinceCheck []string // fault classes since the last good check
	checks     int
}

func (r *chaosRun) note(format string, args ...any) {
	line := time.Now().Format("15:04:05.000 ") + fmt.Sprintf(format, args...)
	r.log = append(r.log, line)
	r.t.Log(line)
}

// header is printed with every failure: how to get the same run again.
func (r *chaosRun) header() string {
	var b strings.Builder
	fmt.Fprintf(&b, "chaos seed %d: %s; input %s\nrerun: %s\nschedule:\n", r.seed, r.tp, r.opts.input, r.opts.rerun(r.tp.Cluster, r.seed))
	for i, s := range r.sched {
		fmt.Fprintf(&b, "  %2d. %s\n", i+1, s)
	}
	return b.String()
}

func (r *chaosRun) fatalf(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("%s\n%s\nevents:\n%s", fmt.Sprintf(format, args...), r.header(), strings.Join(r.log, "\n"))
}

// runChaos runs one seed's schedule; res says where it failed.
func runChaos(t *testing.T, seed uint64, tp topology, sched []step, o chaosOpts, res *chaosResult) {
	r := &chaosRun{t: t, seed: seed, tp: tp, sched: sched, opts: o, partLast: map[int]uint64{}, result: res}
	t.Logf("%s", r.header())
	r.bin = exporterBinary(t)
	catYAML, err := os.ReadFile(filepath.Join(repoRoot, "pkg", "classify", "catalog.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	mc := refmodel.Config{CatalogYAML: catYAML, Partitions: tp.Partitions, SubjectPrefix: strings.TrimSuffix(subjectPrefix, "."),
		DedupeCapacity: tp.DedupeCapacity, FutureTolerance: *flagFutureTolerance}
	if tp.Business {
		mc.AppIDs, mc.RuleIDs = chaosAppIDs, chaosRuleIDs
	}
	r.model, err = refmodel.New(mc)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, s := range sched {
		total += s.N
	}
	r.input = chaosInput(t, r.model, seed, total, tp, o.input)

	size, reps := 1, 1
	if tp.Cluster {
		size, reps = 3, 3
	}
	r.farm = newNATSFarm(t, size)
	r.nc, r.js = connect(t, r.farm.urls())
	createStream(t, r.js, streamConfig(reps))
	extra := slices.Clone(chaosFlags)
	if tp.Cluster {
		extra = append(extra, "--jetstream.checkpoint-replicas", "3", "--jetstream.stream-replicas", "3")
	}
	dir := t.TempDir()
	if *flagLogDir != "" {
		dir = filepath.Join(*flagLogDir, fmt.Sprintf("%s-%d", map[bool]string{false: "single", true: "cluster"}[tp.Cluster], seed))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Logf("exporter logs kept in %s", dir)
	}
	if text := tp.configFile(); text != "" {
		path := filepath.Join(dir, "config.yaml")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		extra = append(extra, "--config.file", path)
	}
	r.g = newGroup(t, dir, r.bin, r.farm.urls(), "chaos", tp.Replicas, tp.Partitions, extra...)
	r.g.start()
	t.Cleanup(r.stopWatch)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("chaos seed %d failed; rerun: %s", seed, o.rerun(tp.Cluster, seed))
		}
	})

	for i, s := range sched {
		if r.stopped {
			break
		}
		r.note("step %d: %s", i+1, s)
		r.do(s)
	}
	if r.stopped {
		r.waitPublished()
		t.Logf("inconclusive: %s\nevents:\n%s", res.inconclusive, strings.Join(r.log, "\n"))
		return
	}
	r.waitPublished()
	r.check("the end")
}

// resurrected reports whether the stream holds again a message the harness
// saw removed. A nats-server killed -9 soon after messages were removed by
// the stream's limits can come back with them (seen with nats-server
// 2.15.3 on a single server, with sync_interval always too): the exporter then
// counts what the stream holds, and the model, told they were lost, no
// longer knows what the books must be. The run stops there without a
// verdict, and its report line says so.
func (r *chaosRun) resurrected() bool {
	r.watchMu.Lock()
	served := slices.Clone(r.servedBack)
	r.watchMu.Unlock()
	if len(r.removedSeqs) > 0 && len(served) == 0 {
		// A removed message in the dead-letter stream was served to a
		// replica after its removal.
		stored, err := r.deadLettered()
		if err != nil {
			r.fatalf("read the dead-letter stream: %v", err)
		}
		for _, seq := range r.removedSeqs {
			if stored[strconv.FormatUint(seq, 10)] > 0 {
				served = append(served, seq)
			}
		}
	}
	if len(served) > 0 {
		r.stopped = true
		r.result.inconclusive = fmt.Sprintf("the stream served again (as its first sequence, or to a replica that dead-lettered it) %d of the %d messages removed unread (sequences %v) after a restart: what the books must hold is no longer known",
			len(served), len(r.removedSeqs), served)
		r.note("%s", r.result.inconclusive)
		return true
	}
	var back []uint64
	for _, seq := range r.removedSeqs {
		var found bool
		err := natstest.Poll(30*time.Second, 200*time.Millisecond, func() (bool, string) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := r.stream().GetMsg(ctx, seq)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				return true, ""
			}
			found = err == nil
			return found, fmt.Sprint(err)
		})
		if err != nil {
			r.fatalf("get removed message %d: %v", seq, err)
		}
		if found {
			back = append(back, seq)
		}
	}
	if len(back) == 0 {
		return false
	}
	r.stopped = true
	r.result.inconclusive = fmt.Sprintf("the server holds again %d of the %d messages removed unread (sequences %d…%d) after a restart: what the books must hold is no longer known",
		len(back), len(r.removedSeqs), back[0], back[len(back)-1])
	r.note("%s", r.result.inconclusive)
	return true
}

// chaosInput returns n messages (at least) of the chosen traffic.
func chaosInput(t *testing.T, m *refmodel.Model, seed uint64, n int, tp topology, input string) []msg {
	if n == 0 {
		return nil
	}
	var msgs []msg
	if input == "fixture" {
		msgs = newFixture(fixtureOptions{Seed: seed, N: n, Now: time.Now(), Cat: loadCatalog(t, exporterBinary(t))}).Msgs
	} else {
		classes, err := hostile.ParseClasses(input)
		if err != nil {
			t.Fatal(err)
		}
		o := hostile.WithCatalog(hostile.Options{Seed: seed, N: n, Now: time.Now(), Classes: classes, SubjectPrefix: strings.TrimSuffix(subjectPrefix, "."),
			DedupeCapacity: tp.DedupeCapacity}, m)
		if tp.Business {
			o.AppIDs, o.RuleIDs = chaosAppIDs, chaosRuleIDs
		}
		for _, h := range hostile.Generate(o) {
			msgs = append(msgs, msg{Subject: h.Subject, Data: h.Data})
		}
	}
	// Ids unique to the seed's run: a message published twice is stored
	// once (Nats-Msg-Id), and runs never meet.
	for i := range msgs {
		msgs[i].MsgID = fmt.Sprintf("c%d-%d", seed, i)
	}
	return msgs
}

// do runs one step.
func (r *chaosRun) do(s step) {
	r.t.Helper()
	// A step that settles first joins the fault classes of the next check
	// once that first check has passed.
	if s.Kind != "publish" && !s.syncs() {
		r.sinceCheck = append(r.sinceCheck, s.Kind)
	}
	began := func() { r.sinceCheck = append(r.sinceCheck, s.Kind) }
	switch s.Kind {
	case "publish":
		r.waitPublished()
		r.publishAsync(s.N, time.Duration(s.Ms)*time.Millisecond)
	case fKill:
		p := r.pickLive(s.Who)
		if p == nil {
			return
		}
		r.note("kill -9 %s (pid %d)", p.name, p.pid())
		p.kill()
		pause(time.Duration(s.Ms) * time.Millisecond)
		r.startProc(p)
	case fKillDown:
		p := r.pickLive(s.Who)
		if p == nil {
			return
		}
		r.note("kill -9 %s (pid %d), down for %s", p.name, p.pid(), takeoverTimeout+time.Duration(s.Ms)*time.Millisecond)
		p.kill()
		pause(takeoverTimeout + time.Duration(s.Ms)*time.Millisecond)
		r.startProc(p)
	case fFreeze:
		p := r.pickOwner(s.Who)
		if p == nil {
			return
		}
		r.note("SIGSTOP %s (pid %d)", p.name, p.pid())
		if err := p.freeze(); err != nil {
			r.fatalf("%v", err)
		}
		pause(takeoverTimeout + time.Duration(s.Ms)*time.Millisecond)
		r.note("SIGCONT %s", p.name)
		if err := p.thaw(); err != nil {
			r.fatalf("%v", err)
		}
	case fNATSRestart:
		n := r.farm.nodes[s.Who%len(r.farm.nodes)]
		r.note("%s", strings.Replace(s.String(), fmt.Sprintf("node #%d", s.Who), n.name, 1))
		n.kill(s.natsGraceful())
		pause(time.Duration(s.Ms) * time.Millisecond)
		if err := n.start(); err != nil {
			r.fatalf("%v", err)
		}
		r.farm.waitHealthy(r.t, 2*time.Minute)
		r.note("nats-server %s healthy again", n.name)
	case fStepdownStream:
		r.stepdown(streamName)
	case fStepdownKV:
		r.stepdown("KV_faceid-checkpoints")
	case fRecreateRunning:
		r.waitPublished()
		r.sync("before the stream is re-created")
		began()
		r.recreate()
	case fRecreateStopped:
		r.waitPublished()
		r.sync("before the stream is re-created")
		began()
		r.killAll()
		r.recreate()
		r.publishAsync(s.N, 0)
		r.waitPublished()
		r.startAll()
	case fPurge, fPurgeSubject, fLimits:
		r.waitPublished()
		r.sync("before messages are removed")
		began()
		r.killAll()
		r.remove(s)
		r.startAll()
	case fQuiet:
		r.waitPublished()
		r.sync("before the quiet period")
		began()
		r.quiet(s)
	default:
		r.fatalf("unknown step %q", s.Kind)
	}
}

func (r *chaosRun) startProc(p *proc) {
	if err := p.startErr(); err != nil {
		r.fatalf("%v", err)
	}
}

// pickLive returns a live replica (the who-th of them, modulo).
func (r *chaosRun) pickLive(who int) *proc {
	live := r.g.live()
	if len(live) == 0 {
		r.note("no live replica")
		return nil
	}
	return live[who%len(live)]
}

// pickOwner returns a live replica that owns a partition, else any live one.
func (r *chaosRun) pickOwner(who int) *proc {
	scrapes := r.g.scrapeEach()
	var owning []*proc
	for _, p := range r.g.live() {
		if s, ok := scrapes[p]; ok && len(s.byPartition("faceid_exporter_checkpoint_sequence")) > 0 {
			owning = append(owning, p)
		}
	}
	if len(owning) > 0 {
		return owning[who%len(owning)]
	}
	return r.pickLive(who)
}

func (r *chaosRun) killAll() {
	for _, p := range r.g.procs {
		if p.running() {
			r.note("kill -9 %s (pid %d)", p.name, p.pid())
		}
		p.kill()
	}
}

func (r *chaosRun) startAll() {
	for _, p := range r.g.procs {
		if !p.running() {
			r.startProc(p)
		}
	}
	r.note("every replica started")
}

func (r *chaosRun) stepdown(stream string) {
	before := leaderOf(r.js, stream)
	r.note("stepdown of the %s leader (%s)", stream, before)
	err := natstest.Poll(30*time.Second, 200*time.Millisecond, func() (bool, string) {
		err := jsAPI(r.nc, "$JS.API.STREAM.LEADER.STEPDOWN."+stream)
		return err == nil, fmt.Sprint(err)
	})
	if err != nil {
		r.fatalf("stepdown of %s: %v", stream, err)
	}
	err = natstest.Poll(30*time.Second, 100*time.Millisecond, func() (bool, string) {
		l := leaderOf(r.js, stream)
		return l != "" && l != before, "leader " + l
	})
	if err != nil {
		r.fatalf("a new %s leader: %v", stream, err)
	}
	r.note("%s leader now %s", stream, leaderOf(r.js, stream))
}

// publishAsync publishes the next n input messages over pace, in the
// background.
func (r *chaosRun) publishAsync(n int, pace time.Duration) {
	n = min(n, len(r.input)-r.next)
	batch := r.input[r.next : r.next+n]
	r.next += n
	done := make(chan error, 1)
	r.pubDone = done
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		done <- publish(ctx, r.js, batch, pace)
	}()
}

func (r *chaosRun) waitPublished() {
	if r.pubDone == nil {
		return
	}
	err := <-r.pubDone
	r.pubDone = nil
	if err != nil {
		r.fatalf("publish: %v", err)
	}
}

// stream returns the stream's handle, retrying while servers restart.
func (r *chaosRun) stream() jetstream.Stream {
	var s jetstream.Stream
	err := natstest.Poll(60*time.Second, 100*time.Millisecond, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		s, err = r.js.Stream(ctx, streamName)
		return err == nil, fmt.Sprint(err)
	})
	if err != nil {
		r.fatalf("stream %s: %v", streamName, err)
	}
	return s
}

// readFrom returns the stream's messages from sequence from to its last, as
// stored (a removed sequence is absent).
func (r *chaosRun) readFrom(from uint64) []refmodel.Msg {
	st := streamState(r.t, r.js, streamName)
	s := r.stream()
	var out []refmodel.Msg
	for seq := max(from, st.FirstSeq); seq <= st.LastSeq; seq++ {
		var m *jetstream.RawStreamMsg
		err := natstest.Poll(30*time.Second, 100*time.Millisecond, func() (bool, string) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var err error
			m, err = s.GetMsg(ctx, seq)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				return true, ""
			}
			return err == nil, fmt.Sprint(err)
		})
		if err != nil {
			r.fatalf("get message %d: %v", seq, err)
		}
		if m != nil {
			out = append(out, refmodel.Msg{Seq: m.Sequence, Subject: m.Subject, Data: m.Data, Stamp: m.Time})
		}
	}
	return out
}

// absorb folds the stream's messages not yet read back into the model.
func (r *chaosRun) absorb() {
	for _, m := range r.readFrom(r.lastRead + 1) {
		r.apply(m)
	}
	if st := streamState(r.t, r.js, streamName); st.LastSeq > r.lastRead {
		r.lastRead = st.LastSeq
	}
}

func (r *chaosRun) apply(m refmodel.Msg) {
	r.model.Apply(m)
	if p := r.model.PartitionOf(m.Subject); p >= 0 {
		r.partLast[p] = max(r.partLast[p], m.Seq)
	} else {
		r.unpart = append(r.unpart, m.Seq)
	}
	r.lastRead = max(r.lastRead, m.Seq)
}

// sync folds what was published into the model and waits until the group
// has read and committed all of it; then checks.
func (r *chaosRun) sync(what string) {
	r.waitPublished()
	r.absorb()
	r.check(what)
}

// recreate deletes the stream and creates it again (empty, a new creation
// time); the model is told.
func (r *chaosRun) recreate() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := natstest.Poll(30*time.Second, 200*time.Millisecond, func() (bool, string) {
		err := r.js.DeleteStream(ctx, streamName)
		return err == nil || errors.Is(err, jetstream.ErrStreamNotFound), fmt.Sprint(err)
	})
	if err != nil {
		r.fatalf("delete stream: %v", err)
	}
	reps := 1
	if r.tp.Cluster {
		reps = 3
	}
	createStream(r.t, r.js, streamConfig(reps))
	r.model.StreamReset()
	r.resets++
	r.lastRead, r.partLast, r.unpart, r.removedSeqs = 0, map[int]uint64{}, nil, nil
	r.stopWatch()
	r.note("stream %s deleted and re-created", streamName)
}

// remove publishes s.N messages while every replica is down and removes some
// of them, unread, as s says; the model is told which partitions lost how
// many.
func (r *chaosRun) remove(s step) {
	r.publishAsync(s.N, 0)
	r.waitPublished()
	before := r.readFrom(r.lastRead + 1)
	if len(before) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	str := r.stream()
	switch s.Kind {
	case fPurge:
		cut := before[min(s.K, len(before)-1)].Seq
		r.note("purge the stream below sequence %d", cut)
		if err := str.Purge(ctx, jetstream.WithPurgeSequence(cut)); err != nil {
			r.fatalf("purge: %v", err)
		}
	case fPurgeSubject:
		subj := subjectPrefix + channels[s.K%len(channels)]
		r.note("purge subject %s", subj)
		if err := str.Purge(ctx, jetstream.WithPurgeSubject(subj)); err != nil {
			r.fatalf("purge %s: %v", subj, err)
		}
	case fLimits:
		cfg := streamConfig(1)
		if r.tp.Cluster {
			cfg = streamConfig(3)
		}
		cfg.MaxMsgs = int64(s.K)
		r.note("MaxMsgs %d", s.K)
		if _, err := r.js.UpdateStream(ctx, cfg); err != nil {
			r.fatalf("update stream: %v", err)
		}
		cfg.MaxMsgs = -1
		if _, err := r.js.UpdateStream(ctx, cfg); err != nil {
			r.fatalf("update stream: %v", err)
		}
	}
	after := r.readFrom(before[0].Seq)
	kept := map[uint64]bool{}
	for _, m := range after {
		kept[m.Seq] = true
	}
	lost := map[int]uint64{}
	removed := uint64(len(before) - len(after))
	// With several partitions docs/service.md promises an upper bound: a
	// partition counts every removed sequence it had not looked past, its
	// own or another's, so up to removed + the earlier sequences above its
	// last message each.
	if r.tp.Partitions > 1 && removed > 0 {
		for p := range r.tp.Partitions {
			r.lostSlack += removed + (before[0].Seq - 1 - min(r.partLast[p], before[0].Seq-1))
		}
	}
	for _, m := range before {
		if kept[m.Seq] {
			r.apply(m)
			continue
		}
		r.removedSeqs = append(r.removedSeqs, m.Seq)
		if p := r.model.PartitionOf(m.Subject); p >= 0 {
			lost[p]++
		}
	}
	r.lastRead = max(r.lastRead, before[len(before)-1].Seq)
	// A purge below a sequence and a lowered MaxMsgs also remove messages
	// read before: those no partition reads leave the gauge.
	r.unpart = slices.DeleteFunc(r.unpart, func(seq uint64) bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := str.GetMsg(ctx, seq)
		if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			r.fatalf("get message %d: %v", seq, err)
		}
		return err != nil
	})
	for p, n := range lost {
		r.model.Lost(p, n)
		if r.tp.Partitions > 1 {
			r.lostSlack -= n // the exact count (removed messages some partition reads) is the floor
		}
	}
	r.note("removed unread: %d of %d published (by partition %v)", len(before)-len(after), len(before), lost)
	r.watchRemoved()
}

// watchRemoved watches the stream's first sequence from a removal on, until
// the stream is re-created or the run ends. A node (or server) killed -9
// soon after the removal can come back without it and, as the stream's
// leader, serve the removed messages again for a while (seen on a 3-node
// cluster with nats-server 2.15.3): the exporter reads what is served, and a
// later check may no longer find them (resurrected).
func (r *chaosRun) watchRemoved() {
	removed := map[uint64]bool{}
	for _, seq := range r.removedSeqs {
		removed[seq] = true
	}
	r.stopWatch()
	stop := make(chan struct{})
	r.watchStop = stop
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			s, err := r.js.Stream(ctx, streamName)
			cancel()
			if err != nil {
				continue
			}
			if first := s.CachedInfo().State.FirstSeq; removed[first] {
				r.watchMu.Lock()
				if !slices.Contains(r.servedBack, first) {
					r.servedBack = append(r.servedBack, first)
				}
				r.watchMu.Unlock()
			}
		}
	}()
}

func (r *chaosRun) stopWatch() {
	if r.watchStop != nil {
		close(r.watchStop)
		r.watchStop = nil
	}
}

// quiet moves ownership while no message arrives: the group has read
// everything; owners are killed (or the whole group restarted) and the
// partitions must come back with their series and books whole.
func (r *chaosRun) quiet(s step) {
	switch s.K {
	case 0, 1:
		p := r.pickOwner(s.Who)
		if p == nil {
			return
		}
		r.note("quiet: kill -9 %s (pid %d)", p.name, p.pid())
		killed := time.Now()
		p.kill()
		if len(r.g.procs) > 1 {
			// Stay down until another replica has taken over.
			r.owned(killed, "after an owner was killed -9 in a quiet period")
			r.check("quiet: an owner killed, its partitions taken over with nothing to read")
		} else if s.K == 1 {
			pause(takeoverTimeout + time.Second) // alone: down past the timeout
		}
		r.startProc(p)
	default:
		killed := time.Now()
		r.killAll()
		r.startAll()
		r.owned(killed, "after every replica was killed -9 and restarted in a quiet period")
	}
	r.check("quiet: ownership moved with nothing to read")
}

// owned waits until every partition has one live owner again and notes a
// liveness problem (reported by the next check) when that took longer than
// orphanBound after since.
func (r *chaosRun) owned(since time.Time, what string) {
	err := natstest.Poll(settleWithinChaos, 50*time.Millisecond, func() (bool, string) { return allOwned(r.g, false) })
	took := time.Since(since)
	r.note("every partition owned again %s after %s", what, took.Round(10*time.Millisecond))
	if err != nil || took > orphanBound {
		r.liveness = append(r.liveness, fmt.Sprintf("liveness: every partition owned again only %s after %s (want ≤ %s: --jetstream.takeover-timeout %s plus slack); %v",
			took.Round(10*time.Millisecond), what, orphanBound, takeoverTimeout, err))
	}
}

// check waits until the group settles on what the model expects, then
// compares counters, ledgers and dead letters; a difference fails the seed.
func (r *chaosRun) check(what string) {
	r.t.Helper()
	r.waitPublished()
	r.absorb()
	if r.resurrected() {
		return
	}
	r.checks++
	want := r.model.Expect()
	raw, status, settled := r.settle(want, settleWithinChaos)
	problems := r.liveness
	r.liveness = nil
	if !settled {
		problems = append(problems, "not settled within "+settleWithinChaos.String()+": "+status)
	}
	got, err := refmodel.ParseScrape(raw...)
	if err != nil {
		problems = append(problems, err.Error())
	}
	if d := r.counterDiff(want, got); d != "" {
		problems = append(problems, "counters summed over the live replicas (want = model; the exporter's own counters first):\n"+firstN(ranked(d), 60))
	}
	if r.tp.Partitions > 1 {
		scrapes := map[*proc]scrape{}
		for i, b := range raw {
			if s, err := parseMetrics(strings.NewReader(string(b))); err == nil {
				scrapes[&proc{name: strconv.Itoa(i)}] = s
			}
		}
		if d := r.unpartitionedDiff(scrapes); d != "" {
			problems = append(problems, d)
		}
	}
	problems = append(problems, r.checkLedgers(want)...)
	problems = append(problems, r.checkDeadLetters(want)...)
	if len(problems) == 0 {
		r.note("check %d (%s): counters, ledger (cli, api) and dead letters equal the model (%d series, %d ledger rows)", r.checks, what, len(want.Counters), len(want.Ledger))
		r.sinceCheck = nil
		return
	}
	classes := slices.Compact(slices.Sorted(slices.Values(r.sinceCheck)))
	faults := fmt.Sprintf("fault classes since the last good check: %v", classes)
	if len(classes) == 0 {
		faults = "no fault since the last good check: the input alone"
	}
	r.result.failedAt = fmt.Sprintf("at check %d (%s); %s", r.checks, what, faults)
	msg := fmt.Sprintf("check %d (%s) failed; %s\n%s", r.checks, what, faults, strings.Join(problems, "\n"))
	if *flagKeepOn {
		r.t.Errorf("%s\n%s", msg, r.header())
		r.sinceCheck = nil
		return
	}
	r.fatalf("%s", msg)
}

func firstNLines(s string, n int) string { return firstN(strings.Split(s, "\n"), n) }

// settle waits until every partition has one live owner that committed the
// partition's last message of the stream lately, the exact counters equal
// the model's and nothing changed for a second. On timeout it returns what
// it last saw.
func (r *chaosRun) settle(want refmodel.Expected, within time.Duration) ([][]byte, string, bool) {
	var raw [][]byte
	var status, prev string
	var prevAt time.Time
	err := natstest.Poll(within, 150*time.Millisecond, func() (bool, string) {
		if c := r.g.crashed(); len(c) > 0 {
			status = "crashed: " + strings.Join(c, "; ")
			return false, status
		}
		raw = nil
		scrapes := map[*proc]scrape{}
		for _, p := range r.g.live() {
			b, err := rawMetrics(p.url())
			if err != nil {
				status = p.name + ": " + err.Error()
				return false, status
			}
			s, err := parseMetrics(strings.NewReader(string(b)))
			if err != nil {
				status = err.Error()
				return false, status
			}
			raw = append(raw, b)
			scrapes[p] = s
		}
		own := owners(scrapes)
		var seqs []string
		for part := range r.tp.Partitions {
			key := strconv.Itoa(part)
			o := own[key]
			if len(o) != 1 {
				status = fmt.Sprintf("partition %s owned by %v", key, names(o))
				return false, status
			}
			s := scrapes[o[0]]
			last, _ := s.get("faceid_exporter_checkpoint_last_success_timestamp_seconds", "partition", key)
			if age := float64(time.Now().UnixNano())/1e9 - last; age > 5 {
				status = fmt.Sprintf("partition %s: %s last committed %.1fs ago", key, o[0].name, age)
				return false, status
			}
			seq, _ := s.get("faceid_exporter_checkpoint_sequence", "partition", key)
			seqs = append(seqs, fmt.Sprintf("p%s=%v@%s", key, seq, o[0].name))
			if uint64(seq) != r.partLast[part] {
				status = fmt.Sprintf("partition %s committed sequence %v, its last message is %d (%s)", key, seq, r.partLast[part], strings.Join(seqs, " "))
				return false, status
			}
		}
		got, err := refmodel.ParseScrape(raw...)
		if err != nil {
			status = err.Error()
			return false, status
		}
		diff := r.counterDiff(want, got)
		if d := r.unpartitionedDiff(scrapes); d != "" {
			diff = strings.TrimPrefix(diff+"\n"+d, "\n")
		}
		snap := strings.Join(seqs, " ") + fmt.Sprint(got) + diff
		if snap != prev {
			prev, prevAt = snap, time.Now()
		}
		// Equal to the model and unchanged for a second: settled. Different
		// but unchanged for longer than a lost-input poll (5s): settled too,
		// on a difference that no more waiting will mend.
		switch stable := time.Since(prevAt); {
		case diff == "" && stable >= time.Second:
			return true, ""
		case diff != "" && stable >= 8*time.Second:
			status = fmt.Sprintf("unchanged for %s but different from the model (%s)", stable.Round(time.Second), strings.Join(seqs, " "))
			return true, status
		case diff != "":
			status = fmt.Sprintf("counters differ from the model (%s): %s", strings.Join(seqs, " "), firstNLines(diff, 5))
		default:
			status = "settling: " + strings.Join(seqs, " ")
		}
		return false, status
	})
	return raw, status, err == nil
}

// rawMetrics returns base+"/metrics" as text.
func rawMetrics(base string) ([]byte, error) {
	resp, err := httpClient.Get(base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s/metrics: %s", base, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// ledgerSpans are the two ledger requests that cover every day the books
// may keep: the retention before the newest accepted day, which is at most
// tomorrow in Beijing (events later than their stamp by more than the
// tolerance are rejected).
func ledgerSpans(want refmodel.Expected) [][2]string {
	// From the model's oldest day (a partition whose newest accepted day is
	// years back keeps its days from then) or 800 days back, to two days
	// ahead, in requests of at most the API's limit.
	to := ledger.DayOf(time.Now().Add(48 * time.Hour))
	from := to - 2*ledger.DefaultRetentionDays + 1
	for k := range want.Ledger {
		if d, err := ledger.ParseDay(k.Day); err == nil && d < from {
			from = d
		}
	}
	var spans [][2]string
	for end := to; end >= from; end -= ledger.DefaultRetentionDays {
		spans = append(spans, [2]string{max(from, end-ledger.DefaultRetentionDays+1).String(), end.String()})
	}
	return spans
}

// checkLedgers compares `exporter ledger` and every live replica's
// /api/v1/ledger with the model's ledger.
func (r *chaosRun) checkLedgers(want refmodel.Expected) []string {
	var problems []string
	read := func(get func(from, to string) (string, error)) (map[refmodel.LedgerKey]uint64, error) {
		out := map[refmodel.LedgerKey]uint64{}
		for _, sp := range ledgerSpans(want) {
			// An error is retried for 15s (a replica reconnecting after a
			// NATS restart); one that persists is reported.
			var text string
			var err error
			start := time.Now()
			for {
				if text, err = get(sp[0], sp[1]); err == nil || time.Since(start) > 15*time.Second {
					break
				}
				pause(500 * time.Millisecond)
			}
			if err != nil {
				return nil, fmt.Errorf("%w (still failing after %s)", err, time.Since(start).Round(time.Second))
			}
			if d := time.Since(start); d > time.Second {
				r.note("a ledger read succeeded only after %s of retries", d.Round(100*time.Millisecond))
			}
			rows, err := refmodel.ParseLedgerCSV(strings.NewReader(text))
			if err != nil {
				return nil, err
			}
			for k, v := range rows {
				out[k] += v
			}
		}
		return out, nil
	}
	compare := func(who string, got map[refmodel.LedgerKey]uint64, err error) {
		if err != nil {
			problems = append(problems, fmt.Sprintf("ledger from %s: %v", who, err))
			return
		}
		if d := refmodel.Diff(refmodel.Expected{Ledger: want.Ledger}, refmodel.Expected{Ledger: got}); d != "" {
			problems = append(problems, fmt.Sprintf("ledger from %s (want = model):\n%s", who, firstNLines(d, 30)))
		}
	}
	got, err := read(func(from, to string) (string, error) {
		return ledgerCLI(r.bin, r.farm.urls(), streamName, "chaos", from, to, "csv")
	})
	compare("`exporter ledger`", got, err)
	for _, p := range r.g.live() {
		got, err := read(func(from, to string) (string, error) { return httpLedger(p.url(), from, to) })
		compare(p.name+" /api/v1/ledger", got, err)
	}
	return problems
}

// checkDeadLetters: the dead-letter stream holds one message per rejected
// message the model counts (a replay stores it once).
func (r *chaosRun) checkDeadLetters(want refmodel.Expected) []string {
	var n uint64
	for k, v := range want.Counters {
		if strings.HasPrefix(k, "faceid_exporter_dead_letters_total") {
			n += v
		}
	}
	st := streamState(r.t, r.js, deadLetterStream("chaos"))
	if st.Msgs != n {
		out := []string{fmt.Sprintf("dead-letter stream %s holds %d messages, the model dead-letters %d", deadLetterStream("chaos"), st.Msgs, n)}
		return append(out, r.deadLetterDiff()...)
	}
	return nil
}

// deadLetterDiff names the sequences of the current stream that the model
// dead-letters and the dead-letter stream lacks, and the other way round.
func (r *chaosRun) deadLetterDiff() []string {
	stored, err := r.deadLettered()
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, rj := range r.model.Rejected() {
		if rj.Epoch != r.resets {
			continue
		}
		k := strconv.FormatUint(rj.Seq, 10)
		if stored[k] == 0 {
			out = append(out, fmt.Sprintf("the model dead-letters sequence %d (%s) of the current stream; the dead-letter stream does not hold it", rj.Seq, rj.Reason))
		}
		delete(stored, k)
	}
	for k := range stored {
		out = append(out, "the dead-letter stream holds sequence "+k+" of the current stream, which the model does not dead-letter")
	}
	slices.Sort(out)
	return out
}

// TestChaosSchedule: a seed always draws the same topology and schedule,
// other seeds draw others, a single server never gets a cluster-only fault,
// and every fault class turns up within a few seeds.
func TestChaosSchedule(t *testing.T) {
	all := map[string]bool{}
	for _, f := range allFaults {
		all[f] = true
	}
	str := func(tp topology, s []step) string { return fmt.Sprint(tp, s) }
	t.Run("deterministic", func(t *testing.T) {
		a1, s1 := drawSchedule(42, true, all)
		a2, s2 := drawSchedule(42, true, all)
		b, sb := drawSchedule(43, true, all)
		if str(a1, s1) != str(a2, s2) {
			t.Error("seed 42 drew two schedules")
		}
		if str(a1, s1) == str(b, sb) {
			t.Error("seeds 42 and 43 drew the same schedule")
		}
	})
	t.Run("classes", func(t *testing.T) {
		seen := map[string]bool{}
		for seed := uint64(1); seed <= 200; seed++ {
			for _, cluster := range []bool{false, true} {
				tp, steps := drawSchedule(seed, cluster, all)
				if tp.Partitions < 1 || tp.Partitions > 3 || tp.Replicas < 1 || tp.Replicas > 3 {
					t.Fatalf("seed %d: %s", seed, tp)
				}
				for _, s := range steps {
					if clusterOnly[s.Kind] && !cluster {
						t.Fatalf("seed %d: %s on a single server", seed, s.Kind)
					}
					seen[s.Kind] = true
				}
			}
		}
		for _, f := range allFaults {
			if !seen[f] {
				t.Errorf("fault class %s never drawn in 200 seeds", f)
			}
		}
	})
	t.Run("only the enabled classes", func(t *testing.T) {
		_, steps := drawSchedule(7, true, map[string]bool{fFreeze: true})
		for _, s := range steps {
			if s.Kind != "publish" && s.Kind != fFreeze {
				t.Errorf("drew %s with only freeze enabled", s.Kind)
			}
		}
		_, steps = drawSchedule(7, true, map[string]bool{})
		for _, s := range steps {
			if s.Kind != "publish" {
				t.Errorf("drew %s with no class enabled", s.Kind)
			}
		}
	})
}

// knownSeeds are seeds that found defects on main before issue 15's fixes
// (2026-12-06), each with the input and fault classes it ran with. After a
// fix, `go test ./e2e/exactly -run TestChaosKnown -v -chaos.known` runs them
// all again; each line's rerun command runs one.
var knownSeeds = []struct {
	name    string // what it found on main
	cluster bool
	seed    uint64
	o       chaosOpts
}{
	{"re-created stream while running counted twice (defect 2; passes since h/partition), single", false, 386000702, chaosOpts{"ordinary", fRecreateRunning}},
	{"re-created stream while running counted twice (defect 2; passes since h/partition), cluster", true, 96319388, chaosOpts{"ordinary", fRecreateRunning}},
	{"lost input with 3 partitions (defect 3; within the documented upper bound since h/partition, exact only with -chaos.lost-exact), limits, cluster", true, 195554373, chaosOpts{"ordinary", fLimits}},
	{"lost input with 2 partitions (defect 3; within the documented upper bound since h/partition), purge", false, 272712597, chaosOpts{"ordinary", fPurge}},
	{"unpartitioned gauge still reported by partition 0's former owner (defect 7; passes since h/group)", false, 870318949, chaosOpts{"all", "kill,kill-down,freeze,nats-restart,stepdown-stream,stepdown-kv,recreate-stopped,quiet"}},
	{"far-future ts accepted, the ledger's real days dropped (defect 1; passes since h/books)", false, 4242, chaosOpts{"ordinary,far_future", "none"}},
	{"graceful nats-server restart while publishing, 2 partitions: a message neither counted nor dead-lettered (nats.go's ordered consumer started its new consumer after a message not yet counted; passes since caughtUp, and by construction since the partition reads with its own reader)", false, 1013009033, chaosOpts{"all", "all"}},
	{"the same, another schedule", false, 495946339, chaosOpts{"all", "all"}},
	{"harness: a partition whose newest day is years back keeps its days; the ledger reads reached back 800 days only (passes since ledgerSpans follows the model's oldest day)", false, 768534826, chaosOpts{"all", "all"}},
	{"cluster, an owner frozen past its commit's deadline: its own applied commit taken for a fence, the partition held and never committed again (passes since TestRefusedCommitStillOwnedRetries's fix)", true, 697910899, chaosOpts{"all", "all"}},
}

// TestChaosKnown runs knownSeeds (opt-in: -chaos.known; several minutes).
func TestChaosKnown(t *testing.T) {
	if !*flagKnown {
		t.Skip("opt-in: -chaos.known runs the recorded seeds that found the defects of issue 15")
	}
	var results []string
	for _, k := range knownSeeds {
		t.Run(k.name, func(t *testing.T) {
			results = append(results, runChaosSeed(t, k.cluster, k.seed, k.o))
		})
	}
	t.Logf("chaos results:\n%s", strings.Join(results, "\n"))
}

// deadLettered counts the dead-letter stream's messages from the current
// stream by their source sequence.
func (r *chaosRun) deadLettered() (map[string]int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := r.stream().Info(ctx)
	if err != nil {
		return nil, err
	}
	created := info.Created.UTC().Format(time.RFC3339Nano)
	stored := map[string]int{}
	dl, err := r.js.Stream(ctx, deadLetterStream("chaos"))
	if err != nil {
		return nil, err
	}
	dst := streamState(r.t, r.js, deadLetterStream("chaos"))
	for seq := dst.FirstSeq; seq <= dst.LastSeq && seq > 0; seq++ {
		m, err := dl.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		if m.Header.Get(stream.HeaderSourceCreated) == created {
			stored[m.Header.Get(stream.HeaderSourceSequence)]++
		}
	}
	return stored, nil
}

// ranked orders a diff's lines: the exporter's own counters (duplicates,
// rejections, lost input, ...) first, then faceid_verifications_total, then
// the rest, so that the lines that explain a difference are never cut.
func ranked(diff string) []string {
	lines := strings.Split(diff, "\n")
	rank := func(l string) int {
		switch {
		case strings.Contains(l, " faceid_exporter_"):
			return 0
		case strings.Contains(l, " faceid_verifications_total"):
			return 1
		}
		return 2
	}
	slices.SortStableFunc(lines, func(a, b string) int { return rank(a) - rank(b) })
	return lines
}

// unpartitionedDiff compares faceid_exporter_jetstream_unpartitioned_messages
// summed over the live replicas with the stream's messages that no partition
// reads ("" when equal, or with one partition).
func (r *chaosRun) unpartitionedDiff(scrapes map[*proc]scrape) string {
	if r.tp.Partitions <= 1 {
		return ""
	}
	got := 0.0
	var who []string
	for p, s := range scrapes {
		if v, ok := s.get("faceid_exporter_jetstream_unpartitioned_messages"); ok {
			got += v
			who = append(who, fmt.Sprintf("%s=%v", p.name, v))
		}
	}
	if got == float64(len(r.unpart)) {
		return ""
	}
	slices.Sort(who)
	return fmt.Sprintf("faceid_exporter_jetstream_unpartitioned_messages summed over the live replicas: want %d (the stream's messages no partition reads), got %v (%s)", len(r.unpart), got, strings.Join(who, " "))
}

// counterDiff is refmodel.Diff of the counters, except that with several
// partitions faceid_exporter_jetstream_lost_messages_total may lie anywhere
// from the exact count to the documented upper bound (-chaos.lost-exact: no
// slack).
func (r *chaosRun) counterDiff(want refmodel.Expected, got map[string]uint64) string {
	key := refmodel.CounterKey("faceid_exporter_jetstream_lost_messages_total")
	w, g := want.Counters[key], got[key]
	if r.lostSlack > 0 && !*flagLostExact && g >= w && g <= w+r.lostSlack && g != w {
		wc := maps.Clone(want.Counters)
		wc[key] = g
		want = refmodel.Expected{Counters: wc}
	}
	return refmodel.Diff(refmodel.Expected{Counters: want.Counters}, refmodel.Expected{Counters: got})
}
