package exactly

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// takeoverTimeout is the chaos groups' --jetstream.takeover-timeout.
const takeoverTimeout = 2 * time.Second

// takeoverBound is how long after a kill every partition must have a live
// owner again: the takeover timeout, plus commit intervals and a loaded
// machine's slack.
const takeoverBound = takeoverTimeout + 5*time.Second

// allOwned reports whether every partition of g has exactly one live owner,
// and with every replica owning one when spread is set.
func allOwned(g *group, spread bool) (bool, string) {
	scrapes, err := g.scrapeLive()
	if err != nil {
		return false, err.Error()
	}
	own := owners(scrapes)
	for p := range g.partitions {
		if o := own[fmt.Sprint(p)]; len(o) != 1 {
			return false, fmt.Sprintf("partition %d owned by %v", p, names(o))
		}
	}
	if spread {
		for p, s := range scrapes {
			if len(s.byPartition("faceid_exporter_checkpoint_sequence")) == 0 {
				return false, p.name + " owns nothing"
			}
		}
	}
	return true, ""
}

// TestTakeover: a partition whose owner was killed gets a live owner within
// the takeover timeout (plus slack), whether the owner stays down or its pod
// restarts at once; a restarted replica gets its fair share back.
func TestTakeover(t *testing.T) {
	bin := exporterBinary(t)
	srv := newSingle(t)
	_, js := connect(t, srv.clientURL())
	createStream(t, js, streamConfig(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	msgs := events("t", 30, "wechat_h5", "0", time.Now())
	msgs = append(msgs, events("u", 30, "eid", "0", time.Now())...)
	msgs = append(msgs, events("v", 30, "app_sdk", "0", time.Now())...)
	if err := publish(ctx, js, msgs, 0); err != nil {
		t.Fatal(err)
	}
	g := newGroup(t, t.TempDir(), bin, srv.clientURL(), "takeover", 3, 3, chaosFlags...)
	g.start()
	eventually(t, time.Minute, 50*time.Millisecond, "every partition owned, one per replica", func() (bool, string) { return allOwned(g, true) })

	victim := func() *proc {
		scrapes, err := g.scrapeLive()
		if err != nil {
			t.Fatal(err)
		}
		return owners(scrapes)["0"][0]
	}
	measure := func(what string, spread bool, bound time.Duration, since time.Time) {
		t.Helper()
		eventually(t, time.Minute, 20*time.Millisecond, what, func() (bool, string) { return allOwned(g, spread) })
		took := time.Since(since)
		t.Logf("%s after %s", what, took.Round(time.Millisecond))
		if bound > 0 && took > bound {
			t.Errorf("%s took %s, want ≤ %s (--jetstream.takeover-timeout %s)", what, took.Round(time.Millisecond), bound, takeoverTimeout)
		}
	}
	t.Run("owner stays down", func(t *testing.T) {
		p := victim()
		p.kill()
		measure("every partition owned by the two left", false, takeoverBound, time.Now())
		if err := p.startErr(); err != nil {
			t.Fatal(err)
		}
		measure("the restarted replica has its share", true, 0, time.Now())
	})
	t.Run("owner restarts at once", func(t *testing.T) {
		p := victim()
		start := time.Now()
		if err := p.restart(); err != nil {
			t.Fatal(err)
		}
		measure("every partition owned again", false, takeoverBound, start)
		measure("one partition per replica again", true, 0, start)
	})
	t.Run("two owners restart at once", func(t *testing.T) {
		scrapes, err := g.scrapeLive()
		if err != nil {
			t.Fatal(err)
		}
		own := owners(scrapes)
		a, b := own["0"][0], own["1"][0]
		start := time.Now()
		a.kill()
		b.kill()
		if err := a.startErr(); err != nil {
			t.Fatal(err)
		}
		if err := b.startErr(); err != nil {
			t.Fatal(err)
		}
		measure("every partition owned again", false, takeoverBound, start)
		measure("one partition per replica again", true, 0, start)
	})
	t.Run("frozen owner resumes", func(t *testing.T) {
		p := victim()
		if err := p.freeze(); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		measure("every partition owned by the two left", false, takeoverBound, start)
		if err := p.thaw(); err != nil {
			t.Fatal(err)
		}
		measure("one partition per replica again", true, 0, time.Now())
		q := victim()
		start = time.Now()
		q.kill()
		if err := q.startErr(); err != nil {
			t.Fatal(err)
		}
		measure("every partition owned again after a restart", false, takeoverBound, start)
	})
}

// TestRestartUnderStableName: a lone replica with a stable
// --jetstream.instance (the Helm chart passes the pod name), killed -9 and
// started again, takes its partition back at once with a new epoch: every
// series is back, exact, well before its 30 s takeover timeout. Under a new
// random name it waited out the whole timeout, ready and with no series.
func TestRestartUnderStableName(t *testing.T) {
	const takeover = 30 * time.Second
	bin := exporterBinary(t)
	srv := newSingle(t)
	_, js := connect(t, srv.clientURL())
	createStream(t, js, streamConfig(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	msgs := append(events("s", 40, "wechat_h5", "0", time.Now()), events("r", 20, "eid", "0", time.Now())...)
	if err := publish(ctx, js, msgs, 0); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, streamName)
	if err != nil {
		t.Fatal(err)
	}
	last := s.CachedInfo().State.LastSeq
	g := newGroup(t, t.TempDir(), bin, srv.clientURL(), "stable", 1, 1,
		"--jetstream.instance", "stable-0", "--jetstream.takeover-timeout", takeover.String(), "--jetstream.checkpoint-interval", "200ms")
	g.start()
	before := g.waitSettled(len(msgs), last, time.Minute)
	p := g.procs[0]
	start := time.Now()
	if err := p.restart(); err != nil {
		t.Fatal(err)
	}
	after := g.waitSettled(len(msgs), last, takeover/3)
	t.Logf("every series back %s after kill -9 and restart (takeover timeout %s)", time.Since(start).Round(time.Millisecond), takeover)
	if b, a := sums(before), sums(after); fmt.Sprint(b) != fmt.Sprint(a) {
		t.Errorf("series differ after the restart:\nbefore %v\nafter  %v", b, a)
	}
	if lines := grepLog(p.logText(), "took back a partition this instance owned before its restart"); len(lines) != 1 {
		t.Errorf("the restarted replica logged %d take-backs of its own partition, want 1", len(lines))
	}
	if n := after[p].sum("faceid_exporter_takeovers_total"); n != 0 {
		t.Errorf("%v takeovers counted for taking back its own partition", n)
	}
}
