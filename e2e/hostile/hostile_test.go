// Package hostile_test runs the exporter's JetStream service in-process over
// randomized hostile streams (internal/hostile) and compares its books — the
// exact counters on /metrics summed over partitions, the committed ledger and
// the dead letters — with the independent reference model
// (internal/refmodel) fed with the messages read back from the stream (their
// real sequences and timestamps). Every run prints its seed and the
// configuration drawn from it (partitions, dedupe window and capacity,
// retention), and a failure prints the command that repeats it.
//
//	go test ./e2e/hostile -count=1                                 # one seed, time-based
//	go test ./e2e/hostile -count=1 -seed 42 -partitions 2          # repeat a run
//	go test ./e2e/hostile -count=1 -seeds 20 -msgs 2000            # a longer pass
//	go test ./e2e/hostile -count=1 -run TestModelOrdinary          # ordinary traffic only: the harness itself
//	go test ./e2e/hostile -count=1 -run TestModelByClass -v        # which hostile class disagrees
//	go test ./e2e/hostile -count=1 -run TestModelFaults -seeds 10  # restarts, stream re-created, purges
//	go test ./e2e/hostile -count=1 -run TestModelCore              # core NATS
//	go test ./e2e/hostile -run '^$' -fuzz FuzzModelAgrees          # model and classifier, message by message
package hostile_test

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/faceid-observability/faceid-exporter/internal/hostile"
	"github.com/faceid-observability/faceid-exporter/internal/natstest"
	"github.com/faceid-observability/faceid-exporter/internal/refmodel"
	"github.com/faceid-observability/faceid-exporter/internal/servicetest"
	"github.com/faceid-observability/faceid-exporter/pkg/checkpoint"
	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/config"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
	"github.com/faceid-observability/faceid-exporter/pkg/service"
	"github.com/faceid-observability/faceid-exporter/pkg/stream"
)

var (
	seedFlag       = flag.Uint64("seed", 0, "seed of the first run (0: time-based)")
	seedsFlag      = flag.Int("seeds", 1, "runs, with seeds seed, seed+1, ...")
	nFlag          = flag.Int("msgs", 400, "messages per run (at least)")
	partitionsFlag = flag.Int("partitions", 0, "partitions (0: 1 to 3, drawn from the seed)")
	classesFlag    = flag.String("classes", "all", "comma-separated classes of TestModelHostile (internal/hostile)")
	toleranceFlag  = flag.Duration("future-tolerance", config.DefaultFutureTolerance,
		"events.future_tolerance of the exporter and the model (issue 15); 0: no future_ts rule")
	retentionFlag = flag.Int("retention-days", 0, "ledger.retention_days of the exporter and the model (0: 400 or 2, drawn from the seed)")
	windowFlag    = flag.Duration("dedupe-window", 0, "dedupe.window of the exporter and the model (0: 10m or 2m, drawn from the seed)")
)

const (
	streamName = "FACEID"
	group      = "faceid-exporter"
	bucket     = "faceid-checkpoints"
	prefix     = "faceid.results"
)

var (
	appIDs  = []string{"app-a", "app-b"}
	ruleIDs = []string{"r1"}
)

func firstSeed() uint64 {
	if *seedFlag != 0 {
		return *seedFlag
	}
	return uint64(time.Now().UnixNano()) & 0xffffffff
}

// TestModelOrdinary runs the classes the exporter on main is meant to handle
// already (no far-past or future timestamps, no retention gaps, no dedupe
// capacity pressure): the harness and the model must agree with production
// here, or the harness itself is wrong.
func TestModelOrdinary(t *testing.T) {
	for i := range *seedsFlag {
		seed := firstSeed() + uint64(i)
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			runOnce(t, seed, hostile.OrdinaryClasses(), *nFlag)
		})
	}
}

// TestModelHostile runs every class (or -classes) mixed.
func TestModelHostile(t *testing.T) {
	eachSeed(t, func(t *testing.T, seed uint64, classes []hostile.Class) {
		runOnce(t, seed, classes, *nFlag)
	})
}

// TestModelByClass runs each class alone (with ordinary traffic), so that a
// disagreement names its class.
func TestModelByClass(t *testing.T) {
	seed := firstSeed()
	for _, c := range hostile.AllClasses() {
		t.Run(string(c), func(t *testing.T) {
			runOnce(t, seed, []hostile.Class{c}, max(*nFlag/4, 60))
		})
	}
}

// run is one configuration drawn from a seed.
type run struct {
	seed       uint64
	partitions int
	capacity   int
	window     time.Duration
	retention  int
	classes    []hostile.Class
	n          int
	test       string // the test's name, for the command that repeats the run
}

func (r run) String() string {
	cs := make([]string, len(r.classes))
	for i, c := range r.classes {
		cs[i] = string(c)
	}
	return fmt.Sprintf("seed %d, %d partition(s), dedupe window %s capacity %d, retention %d days, future tolerance %s, classes %s (rerun: go test ./e2e/hostile -count=1 -run '%s' -seed %d -partitions %d -msgs %d -classes %s)",
		r.seed, r.partitions, r.window, r.capacity, r.retention, *toleranceFlag, strings.Join(cs, ","), r.test, r.seed, r.partitions, r.n, strings.Join(cs, ","))
}

// drawRun draws a run's configuration from its seed (flags override).
func drawRun(t *testing.T, seed uint64, classes []hostile.Class, n int) run {
	rnd := rand.New(rand.NewPCG(seed, 1))
	r := run{seed: seed, partitions: *partitionsFlag, capacity: 100000, classes: classes, n: n, test: "^" + t.Name() + "$"}
	if r.partitions == 0 {
		r.partitions = 1 + rnd.IntN(3)
	}
	if rnd.IntN(2) == 0 || slices.Contains(classes, hostile.DupCapacity) {
		r.capacity = 100 // small enough for dup_capacity to fill it
	}
	r.window, r.retention = *windowFlag, *retentionFlag
	if r.window == 0 {
		r.window = []time.Duration{config.DefaultDedupeWindow, 2 * time.Minute}[rnd.IntN(2)]
	}
	if r.retention == 0 {
		r.retention = []int{ledger.DefaultRetentionDays, 2}[rnd.IntN(2)] // 2 days: out_of_order and day_boundary cross it
	}
	return r
}

// newRunModel returns the reference model configured as the run's exporter.
func newRunModel(t *testing.T, r run) *refmodel.Model {
	t.Helper()
	tolerance := *toleranceFlag
	if tolerance == 0 {
		tolerance = -1 // the model's "off"
	}
	catYAML, err := os.ReadFile("../../pkg/classify/catalog.yaml")
	if err != nil {
		t.Fatal(err)
	}
	mdl, err := refmodel.New(refmodel.Config{CatalogYAML: catYAML, Partitions: r.partitions, SubjectPrefix: prefix,
		DedupeWindow: r.window, DedupeCapacity: r.capacity, AppIDs: appIDs, RuleIDs: ruleIDs,
		FutureTolerance: tolerance, RetentionDays: r.retention})
	if err != nil {
		t.Fatal(err)
	}
	return mdl
}

// serviceConfig returns the run's exporter configuration on the server at url.
func serviceConfig(t *testing.T, r run, url string) service.Config {
	t.Helper()
	cat, err := classify.Default()
	if err != nil {
		t.Fatal(err)
	}
	file := config.Default(cat)
	file.Dedupe.Capacity, file.Dedupe.Window = r.capacity, r.window
	file.Events.FutureTolerance = *toleranceFlag
	file.Ledger.RetentionDays = r.retention
	file.Business = config.Business{AppID: appIDs, RuleID: ruleIDs}
	return service.Config{
		NATS:    stream.ConnOptions{URLs: url},
		Subject: prefix + ".>",
		File:    file,
		JetStream: service.JetStream{Stream: streamName, Consumer: group, CheckpointBucket: bucket,
			CheckpointInterval: 200 * time.Millisecond, TakeoverTimeout: 5 * time.Second, Partitions: r.partitions,
			CreateStream: true, StreamMaxAge: 24 * time.Hour, StreamMaxBytes: 1 << 30, DeadLetterStream: "FACEID_DEADLETTER"},
	}
}

// generate returns the run's hostile stream, its times relative to now.
func generate(r run, mdl *refmodel.Model) []hostile.Msg {
	return hostile.Generate(hostile.WithCatalog(hostile.Options{
		Seed: r.seed, N: r.n, Now: time.Now(), Classes: r.classes, SubjectPrefix: prefix,
		DedupeWindow: r.window, DedupeCapacity: r.capacity, RetentionDays: r.retention, AppIDs: appIDs, RuleIDs: ruleIDs,
	}, mdl))
}

func runOnce(t *testing.T, seed uint64, classes []hostile.Class, n int) {
	r := drawRun(t, seed, classes, n)
	t.Logf("%s", r)
	mdl := newRunModel(t, r)
	s := natstest.RunServer(t) // the exporter, in-process, on a fresh server
	st := startService(t, serviceConfig(t, r, s.ClientURL()))

	// Publish the generated stream, in order.
	nc := natstest.Connect(t, s.ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	msgs := generate(r, mdl)
	var futs []jetstream.PubAckFuture
	for _, m := range msgs {
		f, err := js.PublishAsync(m.Subject, m.Data)
		if err != nil {
			t.Fatalf("%s: publish: %v", r, err)
		}
		futs = append(futs, f)
	}
	for _, f := range futs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			t.Fatalf("%s: publish: %v", r, err)
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: publish not acknowledged in 30s", r)
		}
	}

	// Read the stream back: the model gets the real sequences and stamps.
	str, err := js.Stream(t.Context(), streamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := str.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(len(msgs)) {
		t.Fatalf("%s: the stream holds %d messages, %d published", r, info.State.Msgs, len(msgs))
	}
	target := make([]uint64, r.partitions) // the last sequence each partition reads
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := str.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatalf("%s: read back sequence %d: %v", r, seq, err)
		}
		mdl.Apply(refmodel.Msg{Seq: m.Sequence, Subject: m.Subject, Data: m.Data, Stamp: m.Time})
		if p := mdl.PartitionOf(m.Subject); p >= 0 {
			target[p] = m.Sequence
		}
	}
	want := mdl.Expect()

	// Wait until every partition's checkpoint covers its last message (and,
	// with partitions, until the unread messages are measured); past the
	// deadline, compare anyway and say what was missing.
	var body []byte
	var behind []string
	deadline := time.Now().Add(60 * time.Second)
	for {
		body = scrape(t, st)
		seqs, unread := gauges(t, body)
		behind = behind[:0]
		for p, last := range target {
			if got, ok := seqs[fmt.Sprint(p)]; !ok || got < float64(last) {
				behind = append(behind, fmt.Sprintf("partition %d committed sequence %v of %d", p, got, last))
			}
		}
		if r.partitions > 1 && unread != float64(want.Unread) {
			behind = append(behind, fmt.Sprintf("faceid_exporter_jetstream_unpartitioned_messages %v, want %d", unread, want.Unread))
		}
		if len(behind) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	counters, err := refmodel.ParseScrape(body)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := checkpoint.OpenBucket(t.Context(), js, checkpoint.BucketOptions{Bucket: bucket})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := ledger.Read(t.Context(), kv, streamName, group, 0, ledger.Day(1<<30))
	if err != nil {
		t.Fatalf("%s: read the ledger: %v", r, err)
	}
	got := refmodel.Expected{Counters: counters, Ledger: map[refmodel.LedgerKey]uint64{}}
	for _, row := range rows {
		got.Ledger[refmodel.LedgerKey{Day: row.Day, Channel: row.Channel, Code: row.Code, Billable: row.Billable, RuleID: row.RuleID}] += row.Count
	}
	d := refmodel.Diff(want, got)
	if dl := deadLetterDiff(t, js, mdl.Rejected(), []int64{info.Created.UnixNano()}); dl != "" {
		d = strings.TrimPrefix(d+"\n"+dl, "\n")
	}
	if len(behind) > 0 {
		t.Errorf("%s\nafter 60s: %s", r, strings.Join(behind, "; "))
	}
	if d != "" {
		t.Fatalf("%s\nthe exporter's books differ from the model's (want = model, got = exporter):\n%s\n%s", r, shorten(t, r, d), classSummary(msgs))
	}
	t.Logf("%s: %d messages, %d counter series, %d ledger rows agree", r, len(msgs), len(want.Counters), len(want.Ledger))
}

// shorten keeps a long diff readable: the self-metrics (rejections,
// duplicates, evictions, too-old events) first, at most 60 lines; the whole
// diff goes to a file whose path it names.
func shorten(t *testing.T, r run, d string) string {
	lines := strings.Split(d, "\n")
	sort.SliceStable(lines, func(i, j int) bool {
		return strings.HasPrefix(lines[i], "counter faceid_exporter_") && !strings.HasPrefix(lines[j], "counter faceid_exporter_")
	})
	if len(lines) <= 60 {
		return strings.Join(lines, "\n")
	}
	path := filepath.Join(os.TempDir(), fmt.Sprintf("hostile-%d-%s.diff", r.seed, strings.ReplaceAll(t.Name(), "/", "_")))
	if err := os.WriteFile(path, []byte(d+"\n"), 0o644); err != nil {
		path = "(not written: " + err.Error() + ")"
	}
	return fmt.Sprintf("%s\n... %d lines in all (%d counter series, %d ledger rows differ); the whole diff: %s",
		strings.Join(lines[:60], "\n"), len(lines), count(lines, "counter "), count(lines, "ledger "), path)
}

func count(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

func classSummary(msgs []hostile.Msg) string {
	n := map[hostile.Class]int{}
	for _, m := range msgs {
		n[m.Class]++
	}
	var parts []string
	for _, c := range hostile.AllClasses() {
		if n[c] > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", c, n[c]))
		}
	}
	return "messages by class: " + strings.Join(parts, " ")
}

// gauges returns faceid_exporter_checkpoint_sequence by partition and
// faceid_exporter_jetstream_unpartitioned_messages.
func gauges(t *testing.T, body []byte) (map[string]float64, float64) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	seqs := map[string]float64{}
	if f := fams["faceid_exporter_checkpoint_sequence"]; f != nil {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "partition" {
					seqs[l.GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
	}
	unread := 0.0
	if f := fams["faceid_exporter_jetstream_unpartitioned_messages"]; f != nil && len(f.GetMetric()) > 0 {
		unread = f.GetMetric()[0].GetGauge().GetValue()
	}
	return seqs, unread
}

// deadLetterDiff compares the dead-letter stream with the model's
// rejections: each rejected message stored once, under its source stream's
// creation and sequence (the Nats-Msg-Id stream:created:seq; created[e] is
// the creation time, in Unix ns, of the stream of the model's epoch e), with
// the model's reason.
func deadLetterDiff(t *testing.T, js jetstream.JetStream, want []refmodel.Rejection, created []int64) string {
	t.Helper()
	dls, err := js.Stream(t.Context(), "FACEID_DEADLETTER")
	if err != nil {
		return fmt.Sprintf("dead-letter stream: %v", err)
	}
	info, err := dls.Info(t.Context())
	if err != nil {
		return fmt.Sprintf("dead-letter stream: %v", err)
	}
	type key struct {
		epoch int
		seq   uint64
	}
	epochs := map[string]int{}
	for e, ns := range created {
		epochs[strconv.FormatInt(ns, 10)] = e
	}
	got := map[key]string{}
	var lines []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := dls.GetMsg(t.Context(), seq)
		if err != nil {
			return fmt.Sprintf("dead-letter stream sequence %d: %v", seq, err)
		}
		id := m.Header.Get(nats.MsgIdHdr)
		f := strings.Split(id, ":")
		src, err := strconv.ParseUint(f[len(f)-1], 10, 64)
		if err != nil || len(f) != 3 {
			lines = append(lines, fmt.Sprintf("dead letter %d: Nats-Msg-Id %q", seq, id))
			continue
		}
		e, ok := epochs[f[1]]
		if !ok {
			lines = append(lines, fmt.Sprintf("dead letter %d: Nats-Msg-Id %q names a stream created at none of %v", seq, id, created))
			continue
		}
		k := key{e, src}
		if _, dup := got[k]; dup {
			lines = append(lines, fmt.Sprintf("dead letter of stream %d sequence %d stored twice", e, src))
		}
		got[k] = m.Header.Get(stream.HeaderReason)
	}
	wantBy := map[key]string{}
	for _, r := range want {
		wantBy[key{r.Epoch, r.Seq}] = r.Reason
	}
	for k, reason := range wantBy {
		if got[k] != reason {
			lines = append(lines, fmt.Sprintf("dead letter of stream %d sequence %d: want reason %q, got %q", k.epoch, k.seq, reason, got[k]))
		}
	}
	for k, reason := range got {
		if _, ok := wantBy[k]; !ok {
			lines = append(lines, fmt.Sprintf("dead letter of stream %d sequence %d: want none, got reason %q", k.epoch, k.seq, reason))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func scrape(t *testing.T, st service.Started) []byte {
	t.Helper()
	b, err := scrapeErr(st)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func scrapeErr(st service.Started) ([]byte, error) {
	resp, err := http.Get("http://" + st.HTTP[0].String() + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// startService runs the service in the background until the test ends.
func startService(t *testing.T, cfg service.Config) service.Started {
	st, _ := startStoppable(t, cfg)
	return st
}

// startStoppable runs the service in the background and returns a stop
// (graceful: it commits and releases its partitions), also run when the
// test ends.
func startStoppable(t *testing.T, cfg service.Config) (service.Started, func()) {
	t.Helper()
	cfg.Logger = slog.New(slog.DiscardHandler)
	if testing.Verbose() && os.Getenv("HOSTILE_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	st, stopService := servicetest.Start(t, cfg)
	stop := func() {
		if _, err := stopService(); err != nil {
			t.Errorf("service stop: %v", err)
		}
	}
	t.Cleanup(stop)
	return st, stop
}

// eachSeed runs run as a subtest, named by its seed, for each of the
// -seeds seeds from the first, with the -classes classes.
func eachSeed(t *testing.T, run func(t *testing.T, seed uint64, classes []hostile.Class)) {
	t.Helper()
	classes, err := hostile.ParseClasses(*classesFlag)
	if err != nil {
		t.Fatal(err)
	}
	for i := range *seedsFlag {
		seed := firstSeed() + uint64(i)
		t.Run(fmt.Sprint(seed), func(t *testing.T) { run(t, seed, classes) })
	}
}
