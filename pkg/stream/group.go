package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/faceid-observability/faceid-exporter/pkg/books"
	"github.com/faceid-observability/faceid-exporter/pkg/checkpoint"
	"github.com/faceid-observability/faceid-exporter/pkg/classify"
)

// Incremental checkpoints: see GroupOptions.DeltaRatio.
const (
	// DefaultDeltaRatio: a full snapshot once the deltas since the last one
	// reach twice its size. With the duplicate window full, a snapshot is
	// its ids (16 bytes each) and a delta the ids taken in since the commit
	// before, so the bytes written per second are about (1+1/ratio) times
	// what the deltas alone cost.
	DefaultDeltaRatio = 2.0
	// MaxDeltas bounds the chain a restore reads: on a quiet partition a
	// full snapshot comes at the latest every MaxDeltas commits that changed
	// something.
	MaxDeltas = 300
)

// GroupOptions configure a replica of a consumer group.
type GroupOptions struct {
	Stream, Group string
	// Filters are the subjects of each partition (len = the number of
	// partitions); Subject is what they split (with more than one partition,
	// messages on its subjects that no filter names are counted as
	// unpartitioned).
	Filters [][]string
	Subject string
	// Owns says, per partition, which channels' series it exports at zero.
	Owns [][]bool
	// Instance names this process in the group. A stable name (the pod's)
	// lets a restarted process take its own partitions back at once; two
	// live processes with the same name are detected and reported (not
	// ready, logged as an error), and then neither takes a record by its
	// name alone.
	Instance string

	CheckpointInterval time.Duration // commit period and heartbeat
	TakeoverTimeout    time.Duration // a partition whose record is older is taken over
	PollInterval       time.Duration // lag and lost-input checks
	PullMaxMessages    int           // messages a partition's reader asks for at a time (default 1000; asked again at half)
	// GCInterval is how often an owner deletes its partitions' unreferenced
	// values and any replica the member keys of processes unheard for
	// MemberExpiry (default one minute).
	GCInterval time.Duration
	// DeltaRatio: a commit writes the change of the counters and the rules'
	// state since the commit before (a delta) until the deltas since the last
	// full snapshot would reach DeltaRatio times its size, or number
	// MaxDeltas; then it writes a full snapshot, which starts a new chain. A
	// restore reads at most 1+DeltaRatio snapshots' worth. Zero means
	// DefaultDeltaRatio; a negative ratio writes a full snapshot at every
	// commit.
	DeltaRatio float64
	// MemberExpiry: a member key not written for this long is a dead
	// process's and is deleted (default three takeover timeouts).
	MemberExpiry time.Duration

	Catalog *classify.Catalog
	Layout  *books.Layout
	Rules   books.RulesOptions

	DeadLetter          *DeadLetter
	DeadLetterJetStream bool // publish dead letters through JetStream (a stream captures the subject)

	Hooks    Hooks
	Observer GroupObserver
	Logger   *slog.Logger
}

// Group is one replica of a consumer group: it owns some of the stream's
// partitions at a time, stands by for the others, and takes over a partition
// whose owner has released it or gone silent for the takeover timeout. Each
// replica aims at its fair share (partitions ÷ live replicas, rounded up).
type Group struct {
	o     GroupOptions
	nc    *nats.Conn
	js    jetstream.JetStream
	store *checkpoint.Store
	log   *slog.Logger

	mu       sync.Mutex
	parts    map[int]*partition
	seen     map[int]*seenRecord
	members  map[string]member
	joined   bool
	problem  string
	cancel   context.CancelFunc
	done     chan struct{}
	watchers []jetstream.KeyWatcher

	// The watch is alive while it delivers this replica's own heartbeats.
	watchGen   atomic.Uint64 // the current watch; an older one's end is not news
	watchEnded atomic.Bool   // the current watch's updates channel closed
	selfSeen   atomic.Int64  // unix ns: the watch last delivered this replica's heartbeat
	watchedAt  time.Time     // when the current watch started (run goroutine only)

	unpartitioned atomic.Int64   // -1: not measured
	resumeAt      map[int]uint64 // partitions this process restarts: the sequence they had reached

	// Member liveness is measured on the server's clock (a KV entry's
	// creation time): skew is the local clock minus the server's, estimated
	// from this replica's own heartbeats as they are delivered.
	skew atomic.Int64
	// runID tells this process's heartbeats from those of another process
	// given the same Instance; firstBeat is the revision of its first one.
	runID      string
	firstBeat  atomic.Uint64
	duplicate  atomic.Int64 // unix ns: another live process's heartbeat under this name was seen
	memberGCAt time.Time    // run goroutine only
	kvMu       sync.Mutex
	kvStream   jetstream.Stream // the bucket's, for purges
}

// member is what the watch last showed of a member key.
type member struct {
	at      time.Time // the entry's creation, on the server's clock
	rev     uint64
	deleted bool
}

type seenRecord struct {
	rec     *checkpoint.Record
	rev     uint64
	changed time.Time
}

// Owned is an owned, live partition, for the metrics.
type Owned struct {
	Books  *books.Books
	Owns   []bool
	Status PartitionStatus
}

// StartGroup joins the group: it watches the group's records and members and
// acquires partitions in the background until Stop.
func StartGroup(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, store *checkpoint.Store, o GroupOptions) (*Group, error) {
	if len(o.Filters) == 0 {
		return nil, errors.New("no partitions")
	}
	if o.PullMaxMessages <= 0 {
		o.PullMaxMessages = 1000
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 5 * time.Second
	}
	g := &Group{o: o, nc: nc, js: js, store: store, log: o.Logger.With("stream", o.Stream, "group", o.Group),
		parts: map[int]*partition{}, seen: map[int]*seenRecord{}, members: map[string]member{}, done: make(chan struct{})}
	if g.o.DeltaRatio == 0 {
		g.o.DeltaRatio = DefaultDeltaRatio
	}
	if g.o.GCInterval <= 0 {
		g.o.GCInterval = time.Minute
	}
	if g.o.MemberExpiry <= 0 {
		g.o.MemberExpiry = 3 * g.o.TakeoverTimeout
	}
	g.runID = newRunID()
	// The first collection of members waits a GCInterval: by then this
	// replica's heartbeats have shown the server's clock.
	g.memberGCAt = time.Now()
	g.unpartitioned.Store(-1)
	g.resumeAt = map[int]uint64{}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	g.cancel = cancel
	go g.run(rctx)
	return g, nil
}

// Partitions returns the number of partitions.
func (g *Group) Partitions() int { return len(g.o.Filters) }

// Owned returns the partitions this replica owns and may expose.
func (g *Group) Owned() []Owned {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Owned, 0, len(g.parts))
	keys := mapsKeys(g.parts)
	slices.Sort(keys)
	for _, p := range keys {
		pt := g.parts[p]
		if pt.live() {
			out = append(out, Owned{Books: pt.books, Owns: g.o.Owns[p], Status: *pt.status.Load()})
		}
	}
	return out
}

// CheckpointAges returns, per partition, how long ago this replica last saw
// its record change (a partition never seen counts from the replica's start).
func (g *Group) CheckpointAges(now time.Time) []time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]time.Duration, len(g.o.Filters))
	for p := range out {
		if s := g.seen[p]; s != nil {
			out[p] = now.Sub(s.changed)
		} else {
			out[p] = now.Sub(monoBase)
		}
	}
	return out
}

// Unpartitioned returns how many messages of the stream lie on subjects of
// Subject that no partition reads, as last measured by the owner of partition
// 0; false when not measured (one partition, or partition 0 not owned here).
func (g *Group) Unpartitioned() (uint64, bool) {
	g.mu.Lock()
	pt := g.parts[0]
	g.mu.Unlock()
	if pt == nil || !pt.live() {
		return 0, false // partition 0 moved: its new owner reports
	}
	n := g.unpartitioned.Load()
	return uint64(max(n, 0)), n >= 0
}

// Ready reports whether the replica has joined the group.
func (g *Group) Ready() (bool, string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.nc.IsConnected() {
		return false, "not connected to nats"
	}
	if g.problem != "" {
		return false, g.problem
	}
	if g.duplicated(time.Now()) {
		return false, g.duplicateMessage()
	}
	if !g.joined {
		return false, "joining consumer group " + g.o.Group + " of stream " + g.o.Stream
	}
	return true, ""
}

func (g *Group) setProblem(s string) {
	g.mu.Lock()
	g.problem = s
	g.mu.Unlock()
}

func (g *Group) run(ctx context.Context) {
	defer close(g.done)
	for attempt := 1; ctx.Err() == nil; attempt++ {
		err := g.watch(ctx, 30*time.Second)
		if err == nil {
			break
		}
		g.setProblem(err.Error())
		g.log.Warn("cannot watch the group's checkpoints, retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(Backoff(attempt, 5*time.Second)):
		}
	}
	g.setProblem("")
	t := time.NewTicker(g.o.CheckpointInterval)
	defer t.Stop()
	for {
		g.tick(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// watch starts the watchers of records and members, replacing any earlier
// ones, and waits up to wait for their initial values.
func (g *Group) watch(ctx context.Context, wait time.Duration) error {
	g.stopWatch()
	gen := g.watchGen.Add(1)
	g.watchEnded.Store(false)
	g.watchedAt = time.Now()
	kv := g.store.KV()
	recs, err := kv.Watch(ctx, g.store.RecordsPattern())
	if err != nil {
		return fmt.Errorf("watch checkpoints: %w", err)
	}
	mems, err := kv.Watch(ctx, g.store.MembersPattern())
	if err != nil {
		_ = recs.Stop()
		return fmt.Errorf("watch members: %w", err)
	}
	g.watchers = []jetstream.KeyWatcher{recs, mems}
	ended := func() {
		if g.watchGen.Load() == gen {
			g.watchEnded.Store(true)
		}
	}
	self := g.store.MemberKey(g.o.Instance)
	ready := make(chan struct{}, 2)
	go func() {
		defer ended()
		first := true
		for e := range recs.Updates() {
			if e == nil {
				if first {
					first = false
					ready <- struct{}{}
				}
				continue
			}
			g.onRecord(e)
		}
	}()
	go func() {
		defer ended()
		first := true
		for e := range mems.Updates() {
			if e == nil {
				if first {
					first = false
					ready <- struct{}{}
				}
				continue
			}
			if e.Key() == self && e.Operation() == jetstream.KeyValuePut {
				g.onOwnKey(e, !first)
			}
			g.mu.Lock()
			// The entry's own time, not the time the watch shows it: a
			// watch that starts shows the keys of processes killed long
			// ago, which are not live.
			g.members[e.Key()] = member{at: e.Created(), rev: e.Revision(), deleted: e.Operation() != jetstream.KeyValuePut}
			g.mu.Unlock()
		}
	}()
	for range 2 {
		select {
		case <-ready:
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
			return fmt.Errorf("watching the group's checkpoints: no initial values within %s", wait)
		}
	}
	return nil
}

// stopWatch stops the current watchers, if any.
func (g *Group) stopWatch() {
	g.watchGen.Add(1)
	for _, w := range g.watchers {
		_ = w.Stop()
	}
	g.watchers = nil
}

// watchStalled reports why the watch must be restarted: its updates ended
// (a server restart can close them), or it has not delivered this replica's
// own heartbeats for a while although they were written.
func (g *Group) watchStalled(now time.Time, beat bool) string {
	if g.watchEnded.Load() {
		return "the watch ended"
	}
	since := g.watchedAt
	if seen := time.Unix(0, g.selfSeen.Load()); seen.After(since) {
		since = seen
	}
	if limit := max(3*g.o.CheckpointInterval, 3*time.Second); beat && now.Sub(since) > limit {
		return fmt.Sprintf("the watch has shown none of this replica's heartbeats for %s", now.Sub(since).Round(time.Second))
	}
	return ""
}

func (g *Group) onRecord(e jetstream.KeyValueEntry) {
	p, ok := g.store.PartitionOf(e.Key())
	if !ok || p >= len(g.o.Filters) {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		delete(g.seen, p)
		return
	}
	rec, err := checkpoint.Decode(e.Value())
	if err != nil {
		g.log.Warn("unreadable checkpoint record", "key", e.Key(), "err", err)
		return
	}
	g.seen[p] = &seenRecord{rec: rec, rev: e.Revision(), changed: time.Now()}
	if pt := g.parts[p]; pt != nil && (rec.Owner != g.o.Instance || rec.Epoch != pt.epoch) && e.Revision() > pt.seeRev.Load() {
		go pt.fence(fmt.Sprintf("record now owned by %q, epoch %d", rec.Owner, rec.Epoch))
	}
}

// tick heartbeats, drops stopped partitions, and releases or acquires one
// partition toward the fair share.
func (g *Group) tick(ctx context.Context) {
	hb, _ := json.Marshal(heartbeat{Instance: g.o.Instance, Run: g.runID, At: time.Now().UTC()})
	hctx, cancel := context.WithTimeout(ctx, g.o.TakeoverTimeout)
	defer cancel()
	rev, err := g.store.KV().Put(hctx, g.store.MemberKey(g.o.Instance), hb)
	if err != nil {
		g.log.Debug("member heartbeat", "err", err)
	} else if g.firstBeat.Load() == 0 {
		g.firstBeat.Store(rev)
	}
	now := time.Now()
	if why := g.watchStalled(now, err == nil); why != "" {
		// The group's watch feeds the member count (the fair share) and the
		// early fence on a foreign commit; restart it. Takeovers do not wait
		// on it (acquire reads the records itself).
		g.log.Warn("restarting the watch of the group's checkpoints and members", "reason", why)
		if err := g.watch(ctx, max(g.o.TakeoverTimeout/2, time.Second)); err != nil {
			g.log.Warn("cannot watch the group's checkpoints; retrying at the next tick", "err", err)
		}
		now = time.Now()
	}
	g.mu.Lock()
	g.joined = true
	for p, pt := range g.parts {
		select {
		case err := <-pt.failed:
			pt.halt()
			delete(g.parts, p)
			g.resumeAt[p] = pt.processed.Load()
			g.log.Warn("partition stopped; it will be acquired again from its checkpoint", "partition", p, "err", err)
		default:
		}
		if pt.fenced.Load() {
			delete(g.parts, p)
		}
	}
	live := 1
	serverNow := now.Add(-time.Duration(g.skew.Load()))
	for k, m := range g.members {
		if k != g.store.MemberKey(g.o.Instance) && !m.deleted && serverNow.Sub(m.at) < g.o.TakeoverTimeout {
			live++
		}
	}
	mine := !g.duplicated(now) // a record under this name is this process's
	n := len(g.o.Filters)
	fair := (n + live - 1) / live
	owned := len(g.parts)
	var release *partition
	if owned > fair {
		release = g.parts[slices.Max(mapsKeys(g.parts))]
		delete(g.parts, release.p)
	}
	var candidates []int
	if owned < fair {
		for p := 0; p < n; p++ {
			if g.parts[p] != nil {
				continue
			}
			s := g.seen[p]
			if s == nil || s.rec.Released || now.Sub(s.changed) >= g.o.TakeoverTimeout || (mine && s.rec.Owner == g.o.Instance) {
				candidates = append(candidates, p)
			}
		}
		// Replicas prefer different partitions (rendezvous hashing).
		slices.SortFunc(candidates, func(a, b int) int {
			ha, hb := xxhash.Sum64String(g.o.Instance+"/"+strconv.Itoa(a)), xxhash.Sum64String(g.o.Instance+"/"+strconv.Itoa(b))
			switch {
			case ha < hb:
				return -1
			case ha > hb:
				return 1
			}
			return 0
		})
	}
	g.mu.Unlock()
	if now.Sub(g.memberGCAt) >= g.o.GCInterval {
		g.memberGCAt = now
		g.collectMembers(ctx, serverNow)
	}
	if release != nil {
		if err := release.stop(ctx); err != nil {
			g.log.Warn("release partition", "partition", release.p, "err", err)
		} else {
			g.log.Info("released partition toward the fair share", "partition", release.p, "fair_share", fair)
		}
	}
	// Up to the fair share; replicas prefer different partitions, and the
	// compare-and-set decides any race.
	for _, p := range candidates {
		if ctx.Err() != nil || owned >= fair {
			return
		}
		if g.acquire(ctx, p) {
			owned++
		}
	}
}

// acquire takes partition p: it writes the record with this replica as owner
// and a new epoch (a compare-and-set on the revision seen), then restores the
// books and starts consuming.
func (g *Group) acquire(ctx context.Context, p int) bool {
	actx, cancel := context.WithTimeout(ctx, g.o.TakeoverTimeout)
	defer cancel()
	rec, rev, err := g.store.Load(actx, p)
	var next checkpoint.Record
	takeover := false
	switch {
	case errors.Is(err, checkpoint.ErrNotFound):
		next = checkpoint.Record{Version: checkpoint.Version, Stream: g.o.Stream, Group: g.o.Group, Partition: p,
			Partitions: len(g.o.Filters), Filter: g.o.Filters[p], Owner: g.o.Instance, Epoch: 1, CommittedAt: time.Now().UTC()}
		rev, err = g.store.Create(actx, &next)
	case err != nil:
		g.log.Warn("load checkpoint", "partition", p, "err", err)
		return false
	default:
		if rec.Partitions != len(g.o.Filters) || !slices.Equal(rec.Filter, g.o.Filters[p]) {
			msg := fmt.Sprintf("partition %d's checkpoint was written with %d partitions and filter %v; this replica has %d and %v: use the same --jetstream.partitions and --nats.subject on every replica, or a new --jetstream.consumer",
				p, rec.Partitions, rec.Filter, len(g.o.Filters), g.o.Filters[p])
			g.setProblem(msg)
			g.log.Error("refusing a partition", "err", msg)
			return false
		}
		g.mu.Lock()
		s := g.seen[p]
		g.mu.Unlock()
		// Stale: this replica has watched the same revision for the whole
		// takeover timeout. A revision it has not seen yet is a live owner.
		stale := s != nil && s.rev == rev && time.Since(s.changed) >= g.o.TakeoverTimeout
		// A record under this process's name is its own (a restart with a
		// stable --jetstream.instance) unless another live process uses
		// the name too.
		mine := rec.Owner == g.o.Instance && !g.duplicated(time.Now())
		if !rec.Released && !mine && !stale {
			if s == nil || s.rev != rev {
				// A revision the watch has not shown (the watch may have
				// stopped across a server restart): the owner's silence is
				// measured from this read on, so a takeover never waits on the
				// watch.
				g.mu.Lock()
				g.seen[p] = &seenRecord{rec: rec, rev: rev, changed: time.Now()}
				g.mu.Unlock()
			}
			return false
		}
		takeover = !rec.Released && !mine
		next = *rec
		next.Owner, next.Epoch, next.Commit, next.Released = g.o.Instance, rec.Epoch+1, 0, false
		rev, err = g.store.Commit(actx, &next, rev)
	}
	if errors.Is(err, checkpoint.ErrFenced) {
		return false // another replica was first
	}
	if err != nil {
		g.log.Warn("acquire partition", "partition", p, "err", err)
		return false
	}
	pt := g.newPartition(p, &next, rev)
	if p == 0 {
		g.unpartitioned.Store(-1) // measured again by this owner
	}
	g.mu.Lock()
	resumeAt, again := g.resumeAt[p] // this process restarts the partition
	pt.hideUntil = resumeAt
	delete(g.resumeAt, p)
	g.mu.Unlock()
	if err := pt.start(ctx); err != nil {
		g.log.Error("start partition", "partition", p, "err", err)
		pt.abandon(ctx)
		return false
	}
	switch {
	case takeover:
		g.o.Observer.Takeover(p)
		g.log.Warn("took over a partition from a silent owner", "partition", p, "previous_owner", rec.Owner, "epoch", next.Epoch)
	case rec != nil && !rec.Released && rec.Owner == g.o.Instance && !again:
		g.log.Info("took back a partition this instance owned before its restart", "partition", p, "instance", g.o.Instance, "epoch", next.Epoch)
	}
	g.mu.Lock()
	g.parts[p] = pt
	g.mu.Unlock()
	return true
}

func (g *Group) newPartition(p int, rec *checkpoint.Record, rev uint64) *partition {
	b := books.New(g.o.Layout, g.o.Rules)
	pt := &partition{
		g: g, p: p, log: g.log.With("partition", p), books: b,
		cls: classify.New(g.o.Catalog, b.Rules().ClassifyOptions()), worked: make(chan struct{}),
		rec: rec, rev: rev, epoch: rec.Epoch, done: make(chan struct{}), failed: make(chan error, 1),
	}
	pt.seeRev.Store(rev)
	return pt
}

// Stop stops every partition, commits it released, and leaves the group.
func (g *Group) Stop(ctx context.Context) error {
	g.cancel()
	select {
	case <-g.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	g.stopWatch()
	g.mu.Lock()
	parts := g.parts
	g.parts = map[int]*partition{}
	g.mu.Unlock()
	var errs []error
	for _, pt := range parts {
		if err := pt.stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("partition %d: %w", pt.p, err))
		}
	}
	if err := g.store.KV().Delete(ctx, g.store.MemberKey(g.o.Instance)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		errs = append(errs, fmt.Errorf("leave group: %w", err))
	}
	return errors.Join(errs...)
}

func mapsKeys[M ~map[int]V, V any](m M) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
