package hostile_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/faceid-observability/faceid-exporter/internal/hostile"
	"github.com/faceid-observability/faceid-exporter/internal/natstest"
	"github.com/faceid-observability/faceid-exporter/internal/refmodel"
	"github.com/faceid-observability/faceid-exporter/pkg/checkpoint"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
	"github.com/faceid-observability/faceid-exporter/pkg/service"
)

// The faults TestModelFaults puts between chunks of a hostile stream. The
// multi-process faults (kill -9, SIGSTOP, clusters) are e2e/exactly's.
const (
	faultNone            = "none"
	faultRestart         = "restart"          // the service stops (commits, releases) and a new one starts
	faultNATSRestart     = "nats_restart"     // the NATS server restarts on the same port and store
	faultRecreateRunning = "recreate_running" // the stream is deleted and created again while the service runs
	faultRecreateStopped = "recreate_stopped" // ... while it is stopped
	faultPurgeStopped    = "purge_stopped"    // the service stops, a chunk is published and purged unread, it starts again
	faultPurgeRead       = "purge_read"       // the stream is purged while the service runs, after it read everything: nothing is lost
)

// TestModelFaults publishes a hostile stream in chunks with an in-process
// fault before each chunk but the first, and after each chunk waits until the
// exporter's counters, ledger and dead letters equal the model's (told of
// resets and losses): a difference that does not settle within 30 s fails,
// naming the step.
func TestModelFaults(t *testing.T) {
	eachSeed(t, runFaults)
}

type faultRig struct {
	t       *testing.T
	r       run
	opts    *server.Options
	s       *server.Server
	cfg     service.Config
	st      service.Started
	stop    func()
	nc      *nats.Conn
	js      jetstream.JetStream
	mdl     *refmodel.Model
	last    uint64  // the last sequence of the current stream applied to the model
	created []int64 // creation time (Unix ns) of the stream of each model epoch
	steps   []string
	// With more than one partition, messages purged while no replica ran are
	// counted as lost by every partition that had not looked past them
	// (docs/metrics.md): an upper bound. The lost counter is then checked
	// between the model's exact count and lostHi.
	lostBound bool
	lostHi    uint64
}

func runFaults(t *testing.T, seed uint64, classes []hostile.Class) {
	r := drawRun(t, seed, classes, *nFlag)
	rnd := rand.New(rand.NewPCG(seed, 2))
	f := &faultRig{t: t, r: r}
	f.mdl = newRunModel(t, r)
	f.opts = natstest.Options(t)
	f.s = natstest.Start(t, f.opts)
	f.cfg = serviceConfig(t, r, f.s.ClientURL())
	f.st, f.stop = startStoppable(t, f.cfg)
	f.nc = natstest.Connect(t, f.s.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	var err error
	if f.js, err = jetstream.New(f.nc); err != nil {
		t.Fatal(err)
	}
	err = retry(30*time.Second, func() error { // the service creates the stream
		str, err := f.js.Stream(t.Context(), streamName)
		if err == nil {
			f.created = append(f.created, str.CachedInfo().Created.UnixNano())
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	msgs := generate(r, f.mdl)

	// Chunks at random cuts; a fault before every chunk but the first.
	k := 3 + rnd.IntN(3)
	cuts := []int{0}
	for i := 1; i < k; i++ {
		cuts = append(cuts, rnd.IntN(len(msgs)+1))
	}
	cuts = append(cuts, len(msgs))
	sortInts(cuts)
	// With partitions, a purge counts on each partition only what it had not
	// read of its own subjects (issue 15, defect 3).
	faults := []string{faultNone, faultRestart, faultNATSRestart, faultRecreateRunning, faultRecreateStopped, faultPurgeStopped, faultPurgeRead}
	var plan []string
	for i := 0; i < k; i++ {
		fault := faultNone
		if i > 0 {
			fault = faults[rnd.IntN(len(faults))]
		}
		plan = append(plan, fmt.Sprintf("%s, %d messages", fault, cuts[i+1]-cuts[i]))
	}
	t.Logf("%s\nschedule: %s", r, strings.Join(plan, "; "))

	for i := 0; i < k; i++ {
		chunk := msgs[cuts[i]:cuts[i+1]]
		fault := strings.SplitN(plan[i], ",", 2)[0]
		f.steps = append(f.steps, plan[i])
		switch fault {
		case faultRestart:
			f.stop()
			f.st, f.stop = startStoppable(t, f.cfg)
		case faultNATSRestart:
			f.s = natstest.Restart(t, f.s, f.opts)
			// The new server is shut down when the test ends: stop the
			// service before it (cleanups run last registered first).
			stop := f.stop
			t.Cleanup(func() { stop() })
			natstest.WaitFor(t, 30*time.Second, "the publisher reconnects", f.nc.IsConnected)
		case faultRecreateRunning:
			f.recreate()
		case faultRecreateStopped:
			f.stop()
			f.recreate()
			f.st, f.stop = startStoppable(t, f.cfg)
		case faultPurgeRead:
			// The last step settled: every partition read and committed
			// everything. A partition counts none of the removed messages
			// (issue 15, defect 3: a quiet partition counted the others').
			str, err := f.js.Stream(t.Context(), streamName)
			if err != nil {
				t.Fatal(err)
			}
			if err := str.Purge(t.Context()); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second) // let every partition poll (every 100 ms) the new first sequence
		case faultPurgeStopped:
			f.stop()
			f.publish(chunk)
			for _, m := range f.readBack() {
				f.mdl.LostMsg(m.Subject) // published, never read: lost to the books
			}
			str, err := f.js.Stream(t.Context(), streamName)
			if err != nil {
				t.Fatal(err)
			}
			if r.partitions > 1 {
				// Each partition counts at most every message the stream held.
				f.lostBound = true
				f.lostHi += uint64(r.partitions) * str.CachedInfo().State.Msgs
			}
			if err := str.Purge(t.Context()); err != nil {
				t.Fatal(err)
			}
			f.st, f.stop = startStoppable(t, f.cfg)
			f.settle(plan[i])
			continue
		}
		f.publish(chunk)
		for _, m := range f.readBack() {
			f.mdl.Apply(m)
		}
		f.settle(plan[i])
	}
	want := f.mdl.Expect()
	t.Logf("%s: %d messages in %d chunks, %d counter series, %d ledger rows, %d dead letters agree",
		r, len(msgs), k, len(want.Counters), len(want.Ledger), len(f.mdl.Rejected()))
}

// publish publishes messages in order and waits for their acknowledgements.
func (f *faultRig) publish(msgs []hostile.Msg) {
	t := f.t
	for _, m := range msgs {
		err := retry(30*time.Second, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := f.js.Publish(ctx, m.Subject, m.Data)
			return err
		})
		if err != nil {
			t.Fatalf("%s: publish: %v", f.r, err)
		}
	}
}

// readBack returns the stream's messages after the last one applied.
func (f *faultRig) readBack() []refmodel.Msg {
	t := f.t
	var out []refmodel.Msg
	err := retry(30*time.Second, func() error {
		out = out[:0]
		str, err := f.js.Stream(t.Context(), streamName)
		if err != nil {
			return err
		}
		info, err := str.Info(t.Context())
		if err != nil {
			return err
		}
		for seq := max(f.last+1, info.State.FirstSeq); seq <= info.State.LastSeq; seq++ {
			m, err := str.GetMsg(t.Context(), seq)
			if err != nil {
				return err
			}
			out = append(out, refmodel.Msg{Seq: m.Sequence, Subject: m.Subject, Data: m.Data, Stamp: m.Time})
		}
		if len(out) > 0 {
			f.last = out[len(out)-1].Seq
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: read back: %v", f.r, err)
	}
	return out
}

// recreate deletes the stream and creates it again with the same
// configuration; the model is told.
func (f *faultRig) recreate() {
	t := f.t
	var cfg jetstream.StreamConfig
	err := retry(30*time.Second, func() error {
		str, err := f.js.Stream(t.Context(), streamName)
		if err == nil {
			cfg = str.CachedInfo().Config
		}
		return err
	})
	if err == nil {
		err = retry(30*time.Second, func() error {
			if err := f.js.DeleteStream(t.Context(), streamName); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
				return err
			}
			return nil
		})
	}
	if err == nil {
		err = retry(30*time.Second, func() error {
			str, err := f.js.CreateStream(t.Context(), cfg)
			if err == nil {
				f.created = append(f.created, str.CachedInfo().Created.UnixNano())
			}
			return err
		})
	}
	if err != nil {
		t.Fatalf("%s: re-create the stream: %v", f.r, err)
	}
	f.mdl.StreamReset()
	f.last = 0
}

// settle waits until the exporter's books equal the model's, or fails.
func (f *faultRig) settle(step string) {
	t := f.t
	want := f.mdl.Expect()
	deadline := time.Now().Add(30 * time.Second)
	var d string
	for {
		d = f.diff(want)
		if d == "" {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s\nsteps: %s\nafter step %q the exporter's books did not settle to the model's in 30s (want = model, got = exporter):\n%s",
		f.r, strings.Join(f.steps, "; "), step, shorten(t, f.r, d))
}

func (f *faultRig) diff(want refmodel.Expected) string {
	t := f.t
	body, err := scrapeErr(f.st)
	if err != nil {
		return fmt.Sprintf("scrape: %v", err)
	}
	counters, err := refmodel.ParseScrape(body)
	if err != nil {
		return fmt.Sprintf("scrape: %v", err)
	}
	got := refmodel.Expected{Counters: counters, Ledger: map[refmodel.LedgerKey]uint64{}}
	kv, err := checkpoint.OpenBucket(t.Context(), f.js, checkpoint.BucketOptions{Bucket: bucket})
	if err != nil {
		return fmt.Sprintf("checkpoint bucket: %v", err)
	}
	rows, err := ledger.Read(t.Context(), kv, streamName, group, 0, ledger.Day(1<<30))
	if err != nil {
		return fmt.Sprintf("ledger: %v", err)
	}
	for _, row := range rows {
		got.Ledger[refmodel.LedgerKey{Day: row.Day, Channel: row.Channel, Code: row.Code, Billable: row.Billable, RuleID: row.RuleID}] += row.Count
	}
	const lost = "faceid_exporter_jetstream_lost_messages_total"
	var bound string
	if f.lostBound {
		lo, g := want.Counters[lost], got.Counters[lost]
		if g < lo || g > f.lostHi {
			bound = fmt.Sprintf("counter %s: want %d to %d (partitions count removed messages as an upper bound), got %d", lost, lo, f.lostHi, g)
		}
		want.Counters = maps.Clone(want.Counters)
		delete(want.Counters, lost)
		delete(got.Counters, lost)
	}
	if d := refmodel.Diff(want, got); d != "" || bound != "" {
		return strings.Trim(bound+"\n"+d, "\n")
	}
	return deadLetterDiff(t, f.js, f.mdl.Rejected(), f.created)
}

func retry(within time.Duration, f func() error) error {
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func sortInts(a []int) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j] < a[j-1]; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}
