package exactly

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
)

// Sizes and timings of the differential tests (2 shared cores must do).
const (
	fixtureSeed     = 20210719
	fixtureMessages = 60000
	publishPace     = 15 * time.Second // the fixture is published over this long, faults meanwhile
	chaosReplicas   = 3
	chaosPartitions = 3
	settleWithin    = 3 * time.Minute
)

// chaosFlags make faults bite: frequent commits, a short takeover timeout.
var chaosFlags = []string{"--jetstream.takeover-timeout", takeoverTimeout.String(), "--jetstream.checkpoint-interval", "200ms"}

// orphanBound is the longest a partition may go without a live owner during
// the chaos: twice the takeover timeout (the owner's death, then a taker's
// own restart) and a loaded machine's slack.
const orphanBound = 2*takeoverTimeout + 5*time.Second

// ledgerRange returns the 400 days up to two days from now: every day the
// books keep for the fixture (its 2021 days are past the retention once the
// days of now are booked), and the most one ledger request may span.
func ledgerRange() (string, string) {
	to := ledger.DayOf(time.Now().Add(48 * time.Hour))
	return (to - ledger.DefaultRetentionDays + 1).String(), to.String()
}

// chaos injects faults into a group while the test watches.
type chaos struct {
	t   testing.TB
	rng *rand.Rand
	g   *group
	log []string

	fenceErr  error  // the fencing property, checked once by freezeOwner
	fencePath string // how the stale owner learnt it lost the partition
	fenced    bool   // freezeOwner ran to the end
	// takeovers is the taker's faceid_exporter_takeovers_total{partition}
	// (summed over its series when it has no partition label).
	takeovers         float64
	takeoversLabelled bool
}

func (c *chaos) note(format string, args ...any) {
	line := time.Now().Format("15:04:05.000 ") + fmt.Sprintf(format, args...)
	c.log = append(c.log, line)
	c.t.Log(line)
}

// gap waits a random 200–1200ms: faults land at random points of the
// replicas' work.
func (c *chaos) gap() { pause(time.Duration(200+c.rng.IntN(1000)) * time.Millisecond) }

// kill kills a random live replica with -9 and starts it again after up to
// 400ms.
func (c *chaos) kill() {
	c.t.Helper()
	live := c.g.live()
	if len(live) == 0 {
		c.t.Fatal("no live replica to kill")
	}
	p := live[c.rng.IntN(len(live))]
	down := time.Duration(c.rng.IntN(400)) * time.Millisecond
	c.note("kill -9 %s (pid %d), restart after %s", p.name, p.pid(), down)
	p.kill()
	pause(down)
	if err := p.startErr(); err != nil {
		c.t.Fatal(err)
	}
}

// freezeOwner SIGSTOPs a replica that owns a partition, waits until another
// replica has taken that partition over (past the takeover timeout), resumes
// it, and checks the fencing property: the resumed stale owner's commit is
// refused (checkpoint_failures_total{reason="fenced"} grows) and it exposes
// no series of the partition any more.
func (c *chaos) freezeOwner() {
	c.t.Helper()
	var victim *proc
	var part string
	var before float64
	eventually(c.t, 60*time.Second, 50*time.Millisecond, "a live replica owning a partition", func() (bool, string) {
		scrapes, err := c.g.scrapeLive()
		if err != nil {
			return false, err.Error()
		}
		own := owners(scrapes)
		for _, k := range slices.Sorted(maps.Keys(own)) {
			if len(own[k]) == 1 {
				victim, part = own[k][0], k
				before, _ = scrapes[victim].get("faceid_exporter_checkpoint_failures_total", "reason", "fenced")
				return true, ""
			}
		}
		return false, fmt.Sprintf("owners %v", own)
	})
	c.note("SIGSTOP %s (pid %d), owner of partition %s", victim.name, victim.pid(), part)
	if err := victim.freeze(); err != nil {
		c.t.Fatal(err)
	}
	stoppedAt := time.Now()
	var taker *proc
	eventually(c.t, 60*time.Second, 50*time.Millisecond, "another replica to take partition "+part+" over from the frozen "+victim.name, func() (bool, string) {
		scrapes, err := c.g.scrapeLive()
		if err != nil {
			return false, err.Error()
		}
		for _, p := range owners(scrapes)[part] {
			taker = p
			c.takeovers, c.takeoversLabelled = scrapes[p].get("faceid_exporter_takeovers_total", "partition", part)
			if !c.takeoversLabelled {
				c.takeovers = scrapes[p].sum("faceid_exporter_takeovers_total")
			}
			return true, ""
		}
		return false, "no live owner"
	})
	c.note("%s took partition %s over after %s (its takeovers_total{partition=%q} = %v); SIGCONT %s",
		taker.name, part, time.Since(stoppedAt).Round(time.Millisecond), part, c.takeovers, victim.name)
	logFrom := len(victim.logText())
	if err := victim.thaw(); err != nil {
		c.t.Fatal(err)
	}
	// Scrape often: the stale owner may legitimately win a partition back
	// later (fair share), but must drop this one as soon as it learns it
	// lost it: from its refused commit (checkpoint_failures_total{reason=
	// "fenced"} grows), or from the newer record its KV watch delivered
	// first (it logs the loss and attempts no commit).
	var last string
	lostRE := regexp.MustCompile(`msg="partition lost to another owner[^"]*".* partition=` + part + ` .*reason="((?:[^"\\]|\\.)*)"`)
	c.fenceErr = natstest.Poll(30*time.Second, 20*time.Millisecond, func() (bool, string) {
		s, err := getMetrics(victim.url())
		if err != nil {
			last = err.Error()
			return false, last
		}
		fenced, _ := s.get("faceid_exporter_checkpoint_failures_total", "reason", "fenced")
		series := s.partitionSeries(part)
		logged := lostRE.FindStringSubmatch(victim.logText()[logFrom:])
		last = fmt.Sprintf("checkpoint_failures_total{reason=\"fenced\"} %v (was %v before the freeze); loss logged: %v; series of partition %s still exposed: %s",
			fenced, before, logged != nil, part, firstN(series, 8))
		if len(series) > 0 || (fenced == before && logged == nil) {
			return false, last
		}
		if fenced == before && strings.Contains(logged[1], "refused") {
			return false, last + " (the log says refused: waiting for the counter)"
		}
		switch {
		case fenced > before:
			c.fencePath = fmt.Sprintf("its commit was refused (checkpoint_failures_total{reason=\"fenced\"} %v → %v)", before, fenced)
		default:
			c.fencePath = fmt.Sprintf("its KV watch delivered the new owner's record before it committed (logged reason %s; checkpoint_failures_total{reason=\"fenced\"} stays %v)", strings.ReplaceAll(logged[1], `\"`, `"`), fenced)
		}
		return true, ""
	})
	if c.fenceErr != nil {
		c.fenceErr = fmt.Errorf("resumed stale owner %s of partition %s: %w", victim.name, part, c.fenceErr)
	}
	c.note("fencing on %s: %v; %s", victim.name, c.fenceErr, c.fencePath)
	c.fenced = true
}

// differential is a disturbed run and the undisturbed reference on the same
// stream.
type differential struct {
	name     string
	urls     string   // NATS client URLs for the replicas and the ledger
	extra    []string // more serve flags (replicas of the KV bucket, ...)
	schedule func(c *chaos)
}

// runDifferential publishes the fixture while the schedule disturbs the
// chaos group, then counts the same stream with one undisturbed process and
// compares counters, ledgers and dead letters.
func runDifferential(t *testing.T, js jetstream.JetStream, d differential) {
	bin := exporterBinary(t)
	cat := loadCatalog(t, bin)
	dir := t.TempDir()
	fx := newFixture(fixtureOptions{Seed: fixtureSeed, N: fixtureMessages, Now: time.Now(), Cat: cat})
	chaosSeed := uint64(time.Now().UnixNano())
	t.Logf("fixture: %d messages (seed %d), %d duplicates, %d rejected, %d without ts; chaos seed %d",
		len(fx.Msgs), fixtureSeed, fx.Expect.Duplicates, sumInts(fx.Expect.Rejected), fx.Expect.NoTS, chaosSeed)

	extra := append(slices.Clone(chaosFlags), d.extra...)
	chaosGroup := newGroup(t, dir, bin, d.urls, "chaos", chaosReplicas, chaosPartitions, extra...)
	chaosGroup.start()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	var pubErr error
	published := make(chan struct{})
	wg.Go(func() {
		defer close(published)
		pubErr = publish(ctx, js, fx.Msgs, publishPace)
	})
	defer wg.Wait()
	defer cancel()

	c := &chaos{t: t, rng: rand.New(rand.NewPCG(chaosSeed, 1)), g: chaosGroup}
	stopWatch := chaosGroup.watchOwners()
	eventually(t, 60*time.Second, 50*time.Millisecond, "the chaos group counting", func() (bool, string) {
		scrapes, err := chaosGroup.scrapeLive()
		if err != nil {
			return false, err.Error()
		}
		n := 0.0
		for _, s := range scrapes {
			n += s.accounted()
		}
		return n > 0, fmt.Sprintf("%v messages counted", n)
	})
	d.schedule(c)
	select {
	case <-published:
	default:
		c.note("faults done before the last publish")
	}
	<-published
	if pubErr != nil {
		t.Fatalf("publish: %v", pubErr)
	}
	st := streamState(t, js, streamName)
	if st.Msgs != uint64(len(fx.Msgs)) {
		t.Fatalf("stream %s holds %d messages, the fixture has %d", streamName, st.Msgs, len(fx.Msgs))
	}
	t.Logf("published %d messages, last sequence %d", st.Msgs, st.LastSeq)

	// The reference: one process, never disturbed, same partitions; it
	// commits as often as the chaos group, so that settling (a second of
	// unchanged commits) sees its last commit.
	refGroup := newGroup(t, dir, bin, d.urls, "ref", 1, chaosPartitions, append([]string{"--jetstream.checkpoint-interval", "200ms"}, d.extra...)...)
	refGroup.start()

	chaosScrapes := chaosGroup.waitSettled(len(fx.Msgs), st.LastSeq, settleWithin)
	watched := stopWatch()
	t.Logf("watched the chaos group in %d scrapes", watched.scrapes)
	refScrapes := refGroup.waitSettled(len(fx.Msgs), st.LastSeq, settleWithin)

	t.Run("reference counts the fixture", func(t *testing.T) {
		checkExpectation(t, refScrapes, fx.Expect)
	})
	t.Run("counters equal the reference", func(t *testing.T) {
		want, got := sums(refScrapes), sums(chaosScrapes)
		if len(want) == 0 {
			t.Fatal("the reference exposes no checkpointed series")
		}
		if diff := diffSeries(want, got); len(diff) > 0 {
			t.Errorf("%d series differ (summed over live replicas, partition ignored; want = reference):\n%s", len(diff), firstN(diff, 40))
		}
	})
	from, to := ledgerRange()
	t.Run("ledger equals the reference", func(t *testing.T) {
		refCSV, err := ledgerCLI(bin, d.urls, streamName, "ref", from, to, "csv")
		if err != nil {
			t.Fatal(err)
		}
		chaosCSV, err := ledgerCLI(bin, d.urls, streamName, "chaos", from, to, "csv")
		if err != nil {
			t.Fatal(err)
		}
		want, err := parseLedgerCSV(refCSV)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseLedgerCSV(chaosCSV)
		if err != nil {
			t.Fatal(err)
		}
		if len(want) == 0 {
			t.Fatal("the reference ledger has no rows")
		}
		if diff := diffLedgers(want, got); len(diff) > 0 {
			t.Errorf("%d ledger rows differ (want = reference):\n%s", len(diff), firstN(diff, 40))
		}
		if refCSV != chaosCSV {
			t.Errorf("ledger CSV output differs from the reference's (same rows, other bytes or order)")
		}
	})
	t.Run("api ledger equals the reference", func(t *testing.T) {
		refCSV, err := httpLedger(refGroup.procs[0].url(), from, to)
		if err != nil {
			t.Fatal(err)
		}
		want, err := parseLedgerCSV(refCSV)
		if err != nil {
			t.Fatal(err)
		}
		if len(want) == 0 {
			t.Fatal("the reference ledger has no rows")
		}
		live := chaosGroup.live()
		if len(live) == 0 {
			t.Fatal("no live chaos replica")
		}
		for _, p := range live {
			out, err := httpLedger(p.url(), from, to)
			if err != nil {
				t.Errorf("%s: %v", p.name, err)
				continue
			}
			got, err := parseLedgerCSV(out)
			if err != nil {
				t.Errorf("%s: %v", p.name, err)
				continue
			}
			if diff := diffLedgers(want, got); len(diff) > 0 {
				t.Errorf("%s: %d rows of /api/v1/ledger differ (want = reference):\n%s", p.name, len(diff), firstN(diff, 40))
			}
		}
	})
	t.Run("rejected messages dead-lettered once", func(t *testing.T) {
		want := uint64(sumInts(fx.Expect.Rejected))
		for _, g := range []string{"ref", "chaos"} {
			st := streamState(t, js, deadLetterStream(g))
			if st.Msgs != want {
				t.Errorf("dead-letter stream %s holds %d messages, want %d (one per rejected message)", deadLetterStream(g), st.Msgs, want)
			}
		}
	})
	t.Run("fencing", func(t *testing.T) {
		if !c.fenced {
			t.Fatal("the schedule froze no owner")
		}
		if !c.takeoversLabelled {
			t.Errorf("faceid_exporter_takeovers_total has no series with the partition label (contract: faceid_exporter_takeovers_total{partition}); without it the taker counts %v", c.takeovers)
		}
		if c.takeovers < 1 {
			t.Errorf("the replica that took the frozen owner's partition over counts faceid_exporter_takeovers_total %v, want ≥ 1", c.takeovers)
		}
		if c.fenceErr != nil {
			t.Error(c.fenceErr)
		} else {
			t.Logf("the resumed stale owner dropped the partition's series: %s", c.fencePath)
		}
	})
	t.Run("no partition without an owner past the takeover timeout", func(t *testing.T) {
		var long []string
		for _, o := range watched.orphans {
			if o.to.Sub(o.from) > orphanBound {
				long = append(long, o.String())
			}
		}
		slices.Sort(long)
		if len(long) > 0 {
			t.Errorf("with live replicas standing by, want every partition owned again within %s (--jetstream.takeover-timeout %s plus slack):\n%s",
				orphanBound, takeoverTimeout, strings.Join(long, "\n"))
		}
	})
	t.Run("no counter goes down within a process", func(t *testing.T) {
		if len(watched.decreases) > 0 {
			t.Errorf("checkpointed counters went down while one process exposed them without a break (a reset to Prometheus):\n%s", strings.Join(watched.decreases, "\n"))
		}
	})
	if t.Failed() {
		t.Logf("faults injected:\n%s", strings.Join(c.log, "\n"))
	}
}

// checkExpectation compares the reference's counters with what the fixture
// must count, whatever order the stream holds it in.
func checkExpectation(t *testing.T, scrapes map[*proc]scrape, x expectation) {
	t.Helper()
	var all []scrape
	for _, s := range scrapes {
		all = append(all, s)
	}
	sumOf := func(f string, want ...string) float64 {
		n := 0.0
		for _, s := range all {
			n += s.sum(f, want...)
		}
		return n
	}
	if got := sumOf("faceid_exporter_duplicates_total"); got != float64(x.Duplicates) {
		t.Errorf("faceid_exporter_duplicates_total %v, want %d", got, x.Duplicates)
	}
	for reason, n := range x.Rejected {
		if got := sumOf("faceid_exporter_events_rejected_total", "reason", reason); got != float64(n) {
			t.Errorf("faceid_exporter_events_rejected_total{reason=%q} %v, want %d", reason, got, n)
		}
	}
	if got := sumOf("faceid_exporter_events_rejected_total"); got != float64(sumInts(x.Rejected)) {
		t.Errorf("faceid_exporter_events_rejected_total %v in all, want %d", got, sumInts(x.Rejected))
	}
	got := map[string]float64{}
	for _, s := range all {
		mf := s["faceid_verifications_total"]
		if mf == nil {
			continue
		}
		for _, m := range mf.Metric {
			ch, _ := label(m, "channel")
			code, _ := label(m, "code")
			b, _ := label(m, "billable")
			if v := value(m); v != 0 {
				got[verKey{ch, code, b}.String()] += v
			}
		}
	}
	want := map[string]float64{}
	for k, n := range x.Verifications {
		want[k.String()] = float64(n)
	}
	if diff := diffSeries(want, got); len(diff) > 0 {
		t.Errorf("faceid_verifications_total by channel/code/billable differs from the fixture's truth:\n%s", firstN(diff, 30))
	}
}

func sumInts(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// TestExactlyOnceSingleServer is the differential exactly-once test on one
// NATS server: kill -9 of random replicas at random points, an owner frozen
// past the takeover timeout and resumed, and the server restarted on the same
// port and store, all while the stream is being published.
func TestExactlyOnceSingleServer(t *testing.T) {
	srv := newSingle(t)
	_, js := connect(t, srv.clientURL())
	createStream(t, js, streamConfig(1))
	runDifferential(t, js, differential{
		name: "single",
		urls: srv.clientURL(),
		schedule: func(c *chaos) {
			for range 3 {
				c.gap()
				c.kill()
			}
			c.gap()
			down := time.Duration(300+c.rng.IntN(700)) * time.Millisecond
			c.note("restart the NATS server (down %s, same port and store)", down)
			if err := srv.restart(down); err != nil {
				c.t.Fatal(err)
			}
			c.gap()
			c.kill()
			c.gap()
			c.freezeOwner()
			for range 4 {
				c.gap()
				c.kill()
			}
		},
	})
}

// TestExactlyOnceCluster is the differential test on a three-node cluster:
// an R3 stream and an R3 checkpoint bucket, stream and KV leader stepdowns,
// one node restarted during consumption, kill -9 and a frozen owner.
func TestExactlyOnceCluster(t *testing.T) {
	cl := newCluster(t)
	nc, js := connect(t, cl.urls())
	createStream(t, js, streamConfig(3))
	kvStream := "KV_faceid-checkpoints"
	stepdown := func(c *chaos, stream string) {
		c.t.Helper()
		before := cl.streamLeader(stream)
		c.note("stepdown of the %s leader (%v)", stream, nodeName(before))
		eventually(c.t, 30*time.Second, 200*time.Millisecond, "stepdown of "+stream, func() (bool, string) {
			err := jsAPI(nc, "$JS.API.STREAM.LEADER.STEPDOWN."+stream)
			return err == nil, fmt.Sprint(err)
		})
		eventually(c.t, 30*time.Second, 50*time.Millisecond, "a new "+stream+" leader", func() (bool, string) {
			l := cl.streamLeader(stream)
			return l != nil && l != before, fmt.Sprintf("leader %v", nodeName(l))
		})
		c.note("%s leader now %s", stream, nodeName(cl.streamLeader(stream)))
	}
	runDifferential(t, js, differential{
		name:  "cluster",
		urls:  cl.urls(),
		extra: []string{"--jetstream.checkpoint-replicas", "3", "--jetstream.stream-replicas", "3"},
		schedule: func(c *chaos) {
			c.gap()
			c.kill()
			c.gap()
			stepdown(c, streamName)
			eventually(c.t, 30*time.Second, 100*time.Millisecond, "the checkpoint bucket's stream "+kvStream, func() (bool, string) {
				return cl.streamLeader(kvStream) != nil, "no leader"
			})
			c.gap()
			stepdown(c, kvStream)
			c.gap()
			c.kill()
			c.gap()
			n := cl.streamLeader(streamName)
			if n == nil {
				n = cl.nodes[c.rng.IntN(len(cl.nodes))]
			}
			down := time.Duration(500+c.rng.IntN(1000)) * time.Millisecond
			c.note("restart NATS node %s (the %s leader; down %s)", n.name, streamName, down)
			if err := n.restart(down); err != nil {
				c.t.Fatal(err)
			}
			eventually(c.t, 60*time.Second, 50*time.Millisecond, "the meta group whole again", cl.metaReady)
			c.gap()
			c.freezeOwner()
			c.gap()
			stepdown(c, kvStream)
			for range 2 {
				c.gap()
				c.kill()
			}
			c.gap()
			stepdown(c, streamName)
		},
	})
}

func nodeName(n *node) string {
	if n == nil {
		return "none"
	}
	return n.name
}
