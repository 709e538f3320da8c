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
