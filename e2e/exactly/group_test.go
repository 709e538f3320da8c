package exactly

import (
	"bytes"
	"fmt"
	"maps"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// serveArgs are the arguments of a replica of group on natsURL; each group
// dead-letters to its own subject and stream so that groups never meet.
func serveArgs(natsURL, group string, extra ...string) []string {
	args := []string{"serve", "--nats.url", natsURL, "--jetstream.stream", streamName, "--jetstream.consumer", group,
		"--nats.dead-letter-subject", "faceid.deadletter." + group, "--jetstream.dead-letter-stream", deadLetterStream(group)}
	return append(args, extra...)
}

// deadLetterStream is the dead-letter stream of a group's replicas.
func deadLetterStream(group string) string { return "FACEID_DL_" + strings.ToUpper(group) }

// group is the replicas of one consumer group.
type group struct {
	t          testing.TB
	name       string
	partitions int
	procs      []*proc

	prev     string // the last settling snapshot
	prevTime time.Time
}

// newGroup prepares n replicas of name (not started).
func newGroup(t testing.TB, dir, bin, natsURL, name string, n, partitions int, extra ...string) *group {
	g := &group{t: t, name: name, partitions: partitions}
	args := serveArgs(natsURL, name, append([]string{"--jetstream.partitions", strconv.Itoa(partitions)}, extra...)...)
	for i := range n {
		g.procs = append(g.procs, newProc(t, dir, fmt.Sprintf("%s-%d", name, i), bin, args...))
	}
	return g
}

// start starts every replica.
func (g *group) start() {
	g.t.Helper()
	for _, p := range g.procs {
		p.start()
	}
}

// live returns the replicas that run and are not frozen.
func (g *group) live() []*proc {
	var out []*proc
	for _, p := range g.procs {
		if p.running() && !p.frozen() {
			out = append(out, p)
		}
	}
	return out
}

// crashed names replicas whose process ended by itself.
func (g *group) crashed() []string {
	var out []string
	for _, p := range g.procs {
		if ok, state := p.exited(); ok {
			out = append(out, p.name+": "+state)
		}
	}
	return out
}

// scrapeLive scrapes every live replica.
func (g *group) scrapeLive() (map[*proc]scrape, error) {
	out := map[*proc]scrape{}
	for _, p := range g.live() {
		s, err := getMetrics(p.url())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.name, err)
		}
		out[p] = s
	}
	return out, nil
}

// owners returns, per partition, the live replicas exposing its checkpoint
// sequence.
func owners(scrapes map[*proc]scrape) map[string][]*proc {
	out := map[string][]*proc{}
	for p, s := range scrapes {
		for part := range s.byPartition("faceid_exporter_checkpoint_sequence") {
			out[part] = append(out[part], p)
		}
	}
	return out
}

func names(ps []*proc) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.name)
	}
	sort.Strings(out)
	return out
}

// settled reports whether the group has counted all total messages of the
// stream and committed them: every partition has exactly one live owner that
// committed lately, the counters account for total messages, some partition
// has committed lastSeq, and the committed sequences and counters stayed the
// same for a second (five commit intervals of the tests).
func (g *group) settled(total int, lastSeq uint64) (bool, string) {
	if c := g.crashed(); len(c) > 0 {
		return false, "crashed: " + strings.Join(c, "; ")
	}
	scrapes, err := g.scrapeLive()
	if err != nil {
		return false, err.Error()
	}
	own := owners(scrapes)
	var seqs []string
	maxSeq := 0.0
	for part := range g.partitions {
		key := strconv.Itoa(part)
		o := own[key]
		if len(o) != 1 {
			return false, fmt.Sprintf("partition %s owned by %v", key, names(o))
		}
		s := scrapes[o[0]]
		// The lag gauge is refreshed on the replica's poll, seconds apart:
		// shown, not waited on (the counters and sequences below are exact).
		lag, ok := s.get("faceid_exporter_jetstream_lag_messages", "partition", key)
		if !ok {
			return false, fmt.Sprintf("%s owns partition %s but exposes no faceid_exporter_jetstream_lag_messages for it", o[0].name, key)
		}
		last, ok := s.get("faceid_exporter_checkpoint_last_success_timestamp_seconds", "partition", key)
		if !ok {
			return false, fmt.Sprintf("%s owns partition %s but exposes no faceid_exporter_checkpoint_last_success_timestamp_seconds for it", o[0].name, key)
		}
		if age := float64(time.Now().UnixNano())/1e9 - last; age > 5 {
			return false, fmt.Sprintf("partition %s: %s last committed %.1fs ago", key, o[0].name, age)
		}
		seq, _ := s.get("faceid_exporter_checkpoint_sequence", "partition", key)
		maxSeq = max(maxSeq, seq)
		seqs = append(seqs, fmt.Sprintf("p%s=%v(lag %v)@%s", key, seq, lag, o[0].name))
	}
	var all []scrape
	accounted := 0.0
	for _, s := range scrapes {
		all = append(all, s)
		accounted += s.accounted()
	}
	if accounted != float64(total) {
		return false, fmt.Sprintf("counters account for %v of %d messages (%s)", accounted, total, strings.Join(seqs, " "))
	}
	if maxSeq != float64(lastSeq) {
		return false, fmt.Sprintf("highest committed sequence %v, stream's last %d (%s)", maxSeq, lastSeq, strings.Join(seqs, " "))
	}
	sums := sumSeries(all)
	snap := strings.Join(seqs, " ") + "\n" + fmt.Sprint(slices.Sorted(maps.Keys(sums))) + fmt.Sprint(sums)
	if snap != g.prev {
		g.prev, g.prevTime = snap, time.Now()
		return false, "settling: " + strings.Join(seqs, " ")
	}
	if time.Since(g.prevTime) < time.Second {
		return false, "settling: " + strings.Join(seqs, " ")
	}
	return true, ""
}

// waitSettled waits until the group settled on the stream's total messages.
func (g *group) waitSettled(total int, lastSeq uint64, within time.Duration) map[*proc]scrape {
	g.t.Helper()
	start := time.Now()
	defer func() {
		g.t.Logf("group %s settled on %d messages in %s", g.name, total, time.Since(start).Round(time.Millisecond))
	}()
	eventually(g.t, within, 100*time.Millisecond, fmt.Sprintf("group %s to count and commit all %d messages (last sequence %d)", g.name, total, lastSeq),
		func() (bool, string) { return g.settled(total, lastSeq) })
	scrapes, err := g.scrapeLive()
	if err != nil {
		g.t.Fatal(err)
	}
	return scrapes
}

// sums returns the compared series summed over scrapes.
func sums(scrapes map[*proc]scrape) map[string]float64 {
	var all []scrape
	for _, s := range scrapes {
		all = append(all, s)
	}
	return sumSeries(all)
}

// loadCatalog prints the binary's catalog and parses it.
func loadCatalog(t testing.TB, bin string) catalog {
	t.Helper()
	out, err := exec.Command(bin, "catalog", "--format", "csv").Output()
	if err != nil {
		t.Fatalf("exporter catalog: %v", err)
	}
	cat, err := parseCatalogCSV(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// scrapeEach scrapes every live replica, leaving out those that do not
// answer (starting, or just killed).
func (g *group) scrapeEach() map[*proc]scrape {
	out := map[*proc]scrape{}
	for _, p := range g.live() {
		if s, err := getMetrics(p.url()); err == nil {
			out[p] = s
		}
	}
	return out
}

// orphan is a time a partition had no live owner.
type orphan struct {
	partition string
	from, to  time.Time
}

func (o orphan) String() string {
	return fmt.Sprintf("partition %s had no live owner for %s (%s to %s)", o.partition, o.to.Sub(o.from).Round(10*time.Millisecond),
		o.from.Format("15:04:05.000"), o.to.Format("15:04:05.000"))
}

// watch is what watchOwners saw.
type watch struct {
	orphans []orphan
	// decreases are checkpointed series that went down while one process
	// exposed them without a break.
	decreases []string
	scrapes   int
}

// watchOwners scrapes the group every 100ms until stop is called, and
// returns the stretches in which a partition had no live owner and the
// counters that went down within one process.
func (g *group) watchOwners() (stop func() watch) {
	done := make(chan struct{})
	result := make(chan watch, 1)
	go func() {
		var w watch
		var out []orphan
		since := map[string]time.Time{}
		last := map[string]float64{} // pid and series → value
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				now := time.Now()
				for p, from := range since {
					out = append(out, orphan{p, from, now})
				}
				w.orphans = out
				result <- w
				return
			case <-tick.C:
			}
			scrapes := g.scrapeEach()
			w.scrapes++
			for p, s := range scrapes {
				pid := strconv.Itoa(p.pid())
				seen := map[string]bool{}
				for _, f := range s.partitionCounters() {
					for _, m := range s[f].Metric {
						k := pid + " " + seriesKey(f, m)
						v := value(m)
						if prev, ok := last[k]; ok && v < prev && len(w.decreases) < 20 {
							w.decreases = append(w.decreases, fmt.Sprintf("%s %s (pid %s): %v → %v", time.Now().Format("15:04:05.000"), seriesKey(f, m), pid, prev, v))
						}
						last[k] = v
						seen[k] = true
					}
				}
				for k := range last {
					if strings.HasPrefix(k, pid+" ") && !seen[k] {
						delete(last, k) // the series went away: a new run of it starts afresh
					}
				}
			}
			own := owners(scrapes)
			now := time.Now()
			for part := range g.partitions {
				p := strconv.Itoa(part)
				from, orphaned := since[p]
				switch {
				case len(own[p]) == 0 && !orphaned:
					since[p] = now
				case len(own[p]) > 0 && orphaned:
					out = append(out, orphan{p, from, now})
					delete(since, p)
				}
			}
		}
	}()
	var once sync.Once
	var w watch
	stop = func() watch {
		once.Do(func() {
			close(done)
			w = <-result
		})
		return w
	}
	g.t.Cleanup(func() { stop() })
	return stop
}
