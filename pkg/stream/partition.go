package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/faceid-observability/faceid-exporter/pkg/books"
	"github.com/faceid-observability/faceid-exporter/pkg/checkpoint"
	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
)

// Hooks are the process-local views a partition feeds besides its books (live
// event rings, delay histograms, logs). They are called with the partition's
// books locked, from its worker goroutine.
type Hooks interface {
	// Received reports messages taken into the books since the last call:
	// received of them, counted of them counted (not duplicates, not
	// rejected). A partition calls it once per hold of the books' lock, not
	// per message, before it lets the lock go.
	Received(received, counted int)
	// Counted is called for each counted event (for its delay and the
	// event views); received is its time of receipt in Unix nanoseconds.
	Counted(r *classify.Result, received int64)
	Rejected(subject string, rej *classify.RejectError, size int)
	// Processed records the time one sampled message took (one in
	// ProcessingSampleEvery).
	Processed(d time.Duration)
}

// ProcessingSampleEvery is how many messages a partition handles per sample
// passed to Hooks.Processed.
const ProcessingSampleEvery = 32

// GroupObserver receives a group's checkpoint statistics.
type GroupObserver interface {
	CheckpointDone(d time.Duration, bytes int)
	CheckpointFailed(fenced bool)
	Takeover(partition int)
	DeadLetterError()
}

// PartitionStatus is what an owned partition reports.
type PartitionStatus struct {
	Partition   int
	Seq         uint64    // last committed stream sequence
	CommittedAt time.Time // last successful commit
	Lag         uint64    // messages of the partition not yet processed
	Replay      uint64    // messages after the checkpoint when acquired
	Bytes       int       // written by the last commit
}

// partition runs one owned partition: it reads its messages through an
// ack-free ordered consumer from the committed sequence on, applies them to
// its books, and commits books and sequence together every interval. It is
// the one owner of the books and of the I/O that persists them.
type partition struct {
	g     *Group
	p     int
	log   *slog.Logger
	books *books.Books
	cls   *classify.Classifier
	// The worker goroutine (work) owns cls, r and n: it reads the messages
	// and applies them to the books.
	r classify.Result
	n uint32 // messages handled, for sampling

	// Guarded by the books' lock.
	seq uint64 // last processed stream sequence
	// lostUpTo: every sequence up to it was read, counted as lost, or (for a
	// partition that is not exact) seen by its consumer to be another
	// partition's. Committed as the record's LostUpTo.
	lostUpTo uint64
	exact    bool // every sequence of the stream is the partition's: a gap is a loss
	// For a partition that is not exact: its unread messages at the last
	// poll (the consumer's pending count, sequences pendingFrom+1 to
	// pendingTo), less those read since; the most it can have lost before the
	// next poll (see notePartialFirstSeq).
	pending, pendingFrom, pendingTo uint64
	cseq                            uint64                   // delivery sequence of the last handled message, for its consumer
	futures                         []jetstream.PubAckFuture // dead letters not yet acknowledged
	created                         time.Time                // the stream's creation time
	dlErr                           error                    // sticky: a dead letter was not stored; nothing more is committed

	// The worker (work) is the one goroutine that reads and handles
	// messages, one at a time: its reader starts a new server-side consumer
	// (a reset) right after the last message the worker counted.

	// consumer names the server-side consumer that delivered the last
	// handled message (written by handle under the books' lock). A message
	// from another one means the reader started a new consumer: the stream's
	// identity is checked before it is counted.
	consumer atomic.Pointer[string]
	// streamGone: a message came while the stream was not the one the books
	// follow (or could not be checked): nothing more is counted; the
	// partition restarts from its checkpoint.
	streamGone atomic.Bool

	rec       *checkpoint.Record // committed; only the commit loop changes it
	rev       uint64
	uncertain bool // the outcome of the last record write is unknown
	// chain holds the deltas the committed record names (for deleting them
	// once a snapshot replaces them); needFull makes the next commit write a
	// full snapshot: the first of an epoch, and any after a failed one, whose
	// books base may differ from the record's state.
	chain    []checkpoint.Ref
	needFull bool
	// days are the ledger days the committed record names (in its days
	// index); nil: to be read (an adopted record's).
	days map[string]checkpoint.Ref

	// For other goroutines (the group's watch): the epoch, fixed at acquire,
	// and the revision of the last record this owner wrote.
	epoch  uint64
	seeRev atomic.Uint64

	processed atomic.Uint64 // pt.seq, for live()
	// hideUntil, for a partition this process restarts from its checkpoint,
	// is the sequence it had processed before: its series stay hidden until
	// the replay reaches it, so that no counter appears to go down.
	hideUntil uint64

	gcAt     time.Time    // the last collection of unreferenced values (commit goroutine)
	lastOK   atomic.Int64 // monotonic ns of the last successful commit
	status   atomic.Pointer[PartitionStatus]
	fenced   atomic.Bool
	stopping atomic.Bool
	rd       *reader       // the worker's; others may close it and read its consumer
	worked   chan struct{} // closed when the worker returns
	cancel   context.CancelFunc
	done     chan struct{}
	failed   chan error
	stopOnce sync.Once
}

func (pt *partition) key() string { return strconv.Itoa(pt.p) }

// start restores the books from the acquired record and starts consuming.
//
// The record already names this replica, so the others wait the takeover
// timeout before they take the partition: every read here is bounded by
// stepTimeout (a read that waits longer is logged while it waits), and the
// caller releases the partition if start fails.
func (pt *partition) start(ctx context.Context) error {
	g := pt.g
	rec := pt.rec
	var counters, rules []byte
	if err := pt.step(ctx, "checkpoint counters "+rec.Counters.Key, func(ctx context.Context) (err error) {
		counters, err = g.store.Get(ctx, rec.Counters)
		return err
	}); err != nil {
		return err
	}
	if err := pt.step(ctx, "checkpoint rules "+rec.Rules.Key, func(ctx context.Context) (err error) {
		rules, err = g.store.Get(ctx, rec.Rules)
		return err
	}); err != nil {
		return err
	}
	var dayRefs map[string]checkpoint.Ref
	if err := pt.step(ctx, "checkpoint days", func(ctx context.Context) (err error) {
		dayRefs, err = g.store.DayRefs(ctx, rec)
		return err
	}); err != nil {
		return err
	}
	pt.days = maps.Clone(dayRefs)
	days := map[ledger.Day][]byte{}
	for d, ref := range dayRefs {
		day, err := ledger.ParseDay(d)
		if err != nil {
			return fmt.Errorf("checkpoint day %q: %w", d, err)
		}
		if err := pt.step(ctx, "checkpoint day "+ref.Key, func(ctx context.Context) (err error) {
			days[day], err = g.store.Get(ctx, ref)
			return err
		}); err != nil {
			return err
		}
	}
	// The snapshot with its deltas, applied in commit order.
	var deltas []*checkpoint.Delta
	if rec.Deltas != nil {
		if err := pt.step(ctx, fmt.Sprintf("checkpoint deltas (%d) %s", rec.Deltas.Len, rec.Deltas.Head.Key), func(ctx context.Context) (err error) {
			deltas, pt.chain, err = g.store.Deltas(ctx, rec)
			return err
		}); err != nil {
			return err
		}
	}
	var changed []ledger.Day
	if len(deltas) > 0 {
		var err error
		if counters, rules, changed, err = mergeDeltas(counters, rules, days, deltas); err != nil {
			return fmt.Errorf("restore partition %d: %w", pt.p, err)
		}
	}
	if err := pt.books.Restore(counters, rules, days); err != nil {
		return fmt.Errorf("restore partition %d: %w", pt.p, err)
	}
	pt.books.Lock()
	pt.books.RestoredDeltas(changed)
	pt.books.Unlock()
	pt.needFull = true // this epoch's chain starts with its own snapshot
	var stream jetstream.Stream
	if err := pt.step(ctx, "stream info "+g.o.Stream, func(ctx context.Context) (err error) {
		stream, err = g.js.Stream(ctx, g.o.Stream)
		return err
	}); err != nil {
		return err
	}
	info := stream.CachedInfo()
	pt.seq, pt.lostUpTo, pt.created = rec.Seq, rec.LostUpTo, info.Created
	filters := g.o.Filters[pt.p]
	pt.exact = len(filters) == 1 && len(info.Config.Subjects) == 1 && info.Config.Subjects[0] == filters[0]
	switch {
	case rec.StreamCreated.IsZero():
		// A new group starts where the stream starts now (an empty stream
		// reports a first sequence of 0).
		pt.lostUpTo = max(info.State.FirstSeq, 1) - 1
		if pt.lostUpTo > 0 {
			pt.log.Info("new group: the stream's earlier messages are gone already and not counted", "first_seq", info.State.FirstSeq)
		}
	case !rec.StreamCreated.Equal(info.Created):
		pt.hideUntil = 0 // the new stream's sequences start again
		pt.books.StreamReset()
		pt.log.Error("the stream was re-created since the checkpoint: its unread messages are lost to the books", "checkpoint_stream_created", rec.StreamCreated, "stream_created", info.Created, "checkpoint_seq", rec.Seq)
		pt.seq, pt.lostUpTo = 0, 0
	}
	// Messages removed while no replica read the partition: one that is not
	// exact cannot tell its own from the others' here, and counts them all
	// (an upper bound; see notePartialFirstSeq for a running partition).
	pt.noteFirstSeq(info.State.FirstSeq)
	pt.hideUntil = min(pt.hideUntil, info.State.LastSeq)
	// What the checkpoint holds is processed: a partition this process takes
	// back with nothing left to read exposes its series at once.
	pt.processed.Store(pt.seq)
	rd := newReader(g.nc, stream, filters, g.o.PullMaxMessages, pt.log)
	if err := pt.step(ctx, fmt.Sprintf("consumer on %v", filters), func(ctx context.Context) error {
		return rd.create(pt.seq + 1)
	}); err != nil {
		rd.release()
		return err
	}
	pt.rd = rd
	replay := uint64(0)
	_ = pt.step(ctx, "consumer info", func(ctx context.Context) error {
		ci, err := rd.consumer().Info(ctx)
		if err == nil {
			replay = ci.NumPending
		}
		return err
	})
	pt.status.Store(&PartitionStatus{Partition: pt.p, Seq: rec.Seq, CommittedAt: rec.CommittedAt, Lag: replay, Replay: replay})
	pt.lastOK.Store(monoNow())
	from := pt.seq // read before the worker starts: from then on it owns pt.seq
	go pt.work()
	lctx, lcancel := context.WithCancel(context.WithoutCancel(ctx))
	pt.cancel = lcancel
	go pt.loop(lctx)
	pt.log.Info("partition acquired", "seq", from, "epoch", rec.Epoch, "filter", filters, "replay", replay, "exact_gaps", pt.exact)
	return nil
}

// mergeDeltas applies a record's deltas to its snapshot's counters, rules
// and days (replaced in days), and returns the days the deltas changed.
func mergeDeltas(counters, rules []byte, days map[ledger.Day][]byte, deltas []*checkpoint.Delta) ([]byte, []byte, []ledger.Day, error) {
	cs, rs := make([][]byte, len(deltas)), make([][]byte, len(deltas))
	ds := make([]map[ledger.Day][]ledger.Row, len(deltas))
	for i, d := range deltas {
		cs[i], rs[i] = d.Counters, d.Rules
		var err error
		if ds[i], err = ledger.DecodeDaysDelta(d.Days); err != nil {
			return nil, nil, nil, fmt.Errorf("delta %d: %w", i, err)
		}
	}
	counters, err := books.MergeCounters(counters, cs...)
	if err != nil {
		return nil, nil, nil, err
	}
	if rules, err = books.MergeRules(rules, rs...); err != nil {
		return nil, nil, nil, err
	}
	changed := ledger.ChangedDays(ds...)
	for _, day := range changed {
		data, ok := days[day]
		if !ok {
			continue // the day left the books after the delta
		}
		f, err := ledger.MergeDay(day, data, ds...)
		if err != nil {
			return nil, nil, nil, err
		}
		if days[day], err = json.Marshal(f); err != nil {
			return nil, nil, nil, fmt.Errorf("encode ledger day %s: %w", day, err)
		}
	}
	return counters, rules, changed, nil
}

// stepTimeout bounds each read of start and of the identity check: well
// inside the takeover timeout, after which another replica may take the
// partition anyway.
func (pt *partition) stepTimeout() time.Duration {
	return max(pt.g.o.TakeoverTimeout/3, time.Second)
}

// step runs one bounded read of start, and logs what it waits on when it
// takes longer than a quarter of its bound.
func (pt *partition) step(ctx context.Context, what string, f func(context.Context) error) error {
	d := pt.stepTimeout()
	sctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	begin := time.Now()
	slow := time.AfterFunc(d/4, func() {
		pt.log.Warn("partition start waiting", "on", what, "waited", time.Since(begin).Round(time.Millisecond), "limit", d)
	})
	defer slow.Stop()
	if err := f(sctx); err != nil {
		return fmt.Errorf("%s (after %s): %w", what, time.Since(begin).Round(time.Millisecond), err)
	}
	return nil
}

// abandon stops a partition whose start failed and releases its record, so
// that the group does not wait the takeover timeout for it: any replica,
// this one at its next tick included, may acquire it at once.
func (pt *partition) abandon(ctx context.Context) {
	pt.halt()
	rctx, cancel := context.WithTimeout(ctx, pt.stepTimeout())
	defer cancel()
	next := *pt.rec
	next.Owner, next.Released = "", true
	if _, err := pt.g.store.Commit(rctx, &next, pt.rev); err != nil {
		pt.log.Warn("could not release the partition after its start failed: other replicas take it after the takeover timeout", "err", err)
		return
	}
	pt.log.Warn("released the partition after its start failed")
}

// noteFirstSeq counts as lost the messages below the stream's first sequence
// that the partition had not read. The caller holds the books' lock (or owns
// the partition before it starts).
func (pt *partition) noteFirstSeq(first uint64) {
	if first > 0 {
		pt.noteGap(max(pt.seq, pt.lostUpTo)+1, first-1)
	}
}

func (pt *partition) noteGap(from, to uint64) {
	from = max(from, pt.lostUpTo+1, 1)
	if to < from {
		return
	}
	n := to - from + 1
	pt.books.AddLost(n)
	pt.lostUpTo = to
	pt.log.Error("stream messages were removed before they were read: the books miss them", "from_seq", from, "to_seq", to, "messages", n)
}

// notePartialFirstSeq is noteFirstSeq for a running partition that is not
// exact (it shares the stream with other partitions' subjects): the removed
// sequences it had not read may be anyone's. It counts as lost:
//   - while its consumer is behind (it reports messages of the partition not
//     yet delivered), the removed sequences the consumer has not reached:
//     an upper bound, they may be other partitions' messages;
//   - of the removed sequences it had reached, at most its own messages that
//     its consumer reported unread at the previous poll and that it has not
//     read since.
//
// A partition that keeps up counts nothing of the others' (a quiet one reports
// nothing); its own messages that arrive and are removed unread between two
// polls while its consumer catches up are not counted. Then everything its
// consumer has delivered, when all of it was handled, is accounted. ci may be
// nil (no consumer info). The caller holds the books' lock.
func (pt *partition) notePartialFirstSeq(first, last uint64, ci *jetstream.ConsumerInfo) {
	if first == 0 {
		return
	}
	reached := first - 1
	if ci != nil && ci.NumPending > 0 {
		reached = min(reached, ci.Delivered.Stream)
		if from := max(pt.seq, pt.lostUpTo, reached) + 1; first > from {
			pt.noteLost(from, first-1, first-from, "behind")
		}
	}
	// Up to pendingFrom the consumer had delivered or passed over every
	// sequence at the previous poll: its own messages there are not lost.
	if from := max(pt.seq, pt.lostUpTo, pt.pendingFrom) + 1; reached >= from {
		if n := min(reached-from+1, pt.pending); n > 0 {
			pt.noteLost(from, reached, n, "unread")
			pt.pending -= n
		}
	}
	pt.lostUpTo = max(pt.lostUpTo, first-1)
	if ci == nil {
		pt.pending, pt.pendingFrom = 0, 0
		return
	}
	if c := pt.consumer.Load(); ci.Delivered.Consumer == 0 || (c != nil && *c == ci.Name && pt.cseq >= ci.Delivered.Consumer) {
		pt.lostUpTo = max(pt.lostUpTo, ci.Delivered.Stream)
	}
	pt.pending, pt.pendingFrom, pt.pendingTo = ci.NumPending, ci.Delivered.Stream, last
}

// noteLost counts n removed messages of from..to for a partition that is
// not exact; how says which bound (notePartialFirstSeq).
func (pt *partition) noteLost(from, to, n uint64, how string) {
	pt.books.AddLost(n)
	pt.log.Error("stream messages were removed before they were read: the books miss them (other partitions' subjects share the stream: a bound)",
		"from_seq", from, "to_seq", to, "messages", n, "bound", how)
}

// sameStream checks, before the first message of a new server-side consumer
// is counted, that the stream is still the one the books follow: an ordered
// consumer re-creates itself at the next sequence on whatever stream has the
// name now. When it is not (or cannot be checked), nothing more is counted
// and the partition restarts from its checkpoint.
func (pt *partition) sameStream() bool {
	g := pt.g
	ctx, cancel := context.WithTimeout(context.Background(), pt.stepTimeout())
	defer cancel()
	// A reset often follows a server restart or a leader change: retry
	// within the bound before restarting the partition.
	s, err := g.js.Stream(ctx, g.o.Stream)
	for err != nil && ctx.Err() == nil && !pt.stopping.Load() {
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
			s, err = g.js.Stream(ctx, g.o.Stream)
		}
	}
	switch {
	case err != nil:
		err = fmt.Errorf("check stream %s before counting a new consumer's messages: %w", g.o.Stream, err)
	case !s.CachedInfo().Created.Equal(pt.created):
		err = fmt.Errorf("stream %s was re-created (created %s, the books follow %s)", g.o.Stream, s.CachedInfo().Created, pt.created)
	default:
		return true
	}
	pt.streamGone.Store(true)
	pt.fail(&partitionError{err})
	return false
}

// work reads and applies the partition's messages, in stream order, until
// the partition halts or its reader fails.
func (pt *partition) work() {
	defer close(pt.worked)
	defer pt.rd.release()
	for {
		m, a, err := pt.rd.take(true, pt.seq)
		if err != nil {
			if !errors.Is(err, errReaderClosed) {
				// Not counted, so nothing after it may be.
				pt.streamGone.Store(true)
				pt.fail(&partitionError{err})
			}
			return
		}
		if !pt.applyBatch(m, a) {
			return
		}
	}
}

// The worker holds the books' lock while it applies a batch, but lets a
// commit, a poll or a scrape in once it has held it lockHold (looked at every
// lockCheck messages), so that slow messages do not hold them up.
const (
	lockHold  = 200 * time.Microsecond
	lockCheck = 8
)

// applyBatch applies m and the messages that follow it at hand, in order,
// under one hold of the books' lock (see lockHold; released around a new
// consumer's stream check). It reports false when the partition stops
// reading.
func (pt *partition) applyBatch(m *nats.Msg, a ackInfo) bool {
	b := pt.books
	h := pt.g.o.Hooks
	locked := false
	var lockedAt time.Time
	received, counted := 0, 0
	unlock := func() {
		if received > 0 {
			pt.processed.Store(pt.seq)
			h.Received(received, counted)
			received, counted = 0, 0
		}
		b.Unlock()
		locked = false
	}
	defer func() {
		if locked {
			unlock()
		}
	}()
	for i := 0; m != nil; i++ {
		if pt.streamGone.Load() {
			return false
		}
		newConsumer := false
		if c := pt.consumer.Load(); c == nil || *c != a.consumer {
			if locked {
				unlock()
			}
			if !pt.sameStream() {
				return false
			}
			newConsumer = true
		}
		pt.n++
		sample := pt.n%ProcessingSampleEvery == 0
		var start time.Time
		if sample {
			start = time.Now()
		}
		if locked && i%lockCheck == 0 && time.Since(lockedAt) >= lockHold {
			unlock() // let a commit, a poll or a scrape in
		}
		if !locked {
			b.Lock()
			locked, lockedAt = true, time.Now()
		}
		switch pt.handle(m, a, newConsumer) {
		case handledCounted:
			counted++
			received++
		case handledReceived:
			received++
		}
		if sample {
			h.Processed(time.Since(start))
		}
		var err error
		if m, a, err = pt.rd.take(false, pt.seq); err != nil {
			if !errors.Is(err, errReaderClosed) {
				pt.streamGone.Store(true)
				pt.fail(&partitionError{err})
			}
			return false
		}
	}
	return true
}

// What handle did with a message.
const (
	handledSkipped  = iota // not taken into the books (fenced, stopping, or read before)
	handledReceived        // rejected or a duplicate
	handledCounted
)

// handle applies one message to the books. The caller holds the books' lock,
// has checked the stream of a new consumer (newConsumer), and reports the
// messages received to the hooks (see Hooks.Received) and pt.seq to
// pt.processed.
func (pt *partition) handle(m *nats.Msg, a ackInfo, newConsumer bool) int {
	seq, stamp := a.seq, a.ts
	b := pt.books
	if newConsumer {
		name := a.consumer // the reader's string, not the message's (see reader.parse)
		pt.consumer.Store(&name)
	}
	pt.cseq = a.cseq
	if pt.fenced.Load() || pt.stopping.Load() || seq <= pt.seq {
		return handledSkipped
	}
	if pt.exact && seq > pt.seq+1 {
		pt.noteGap(pt.seq+1, seq-1)
	}
	if !pt.exact && pt.pending > 0 && seq > pt.pendingFrom && seq <= pt.pendingTo {
		pt.pending--
	}
	pt.seq = seq
	h := pt.g.o.Hooks
	data, subject := m.Data, m.Subject
	r := &pt.r
	if err := pt.cls.Classify(data, FallbackChannel(subject), stamp, r); err != nil {
		var rej *classify.RejectError
		if !errors.As(err, &rej) {
			rej = &classify.RejectError{Reason: classify.ReasonInvalidJSON, Detail: err.Error()}
		}
		b.Reject(rej.Reason)
		h.Rejected(subject, rej, len(data))
		pt.deadLetter(data, subject, rej, seq)
		return handledReceived
	}
	if b.Apply(r) {
		return handledReceived
	}
	h.Counted(r, stamp.UnixNano())
	return handledCounted
}

// deadLetter republishes a rejected message, once: its Nats-Msg-Id names the
// stream, its creation and the sequence, so a replay after a crash is dropped
// by the dead-letter stream's duplicate window. The commit waits for the
// acknowledgement.
func (pt *partition) deadLetter(data []byte, subject string, rej *classify.RejectError, seq uint64) {
	g := pt.g
	msg := g.o.DeadLetter.message(data, subject, rej, Source{Stream: g.o.Stream, Created: pt.created, Seq: seq})
	id := g.o.Stream + ":" + strconv.FormatInt(pt.created.UnixNano(), 10) + ":" + strconv.FormatUint(seq, 10)
	if g.o.DeadLetterJetStream {
		f, err := g.js.PublishMsgAsync(msg, jetstream.WithMsgID(id))
		if err != nil {
			pt.dlErr = fmt.Errorf("dead-letter stream sequence %d: %w", seq, err)
			return
		}
		pt.futures = append(pt.futures, f)
	} else {
		msg.Header.Set(nats.MsgIdHdr, id)
		if err := g.nc.PublishMsg(msg); err != nil {
			pt.dlErr = fmt.Errorf("dead-letter stream sequence %d: %w", seq, err)
			return
		}
	}
	pt.books.DeadLettered(rej.Reason)
}

// loop commits every interval until the partition stops.
func (pt *partition) loop(ctx context.Context) {
	defer close(pt.done)
	g := pt.g
	t := time.NewTicker(g.o.CheckpointInterval)
	defer t.Stop()
	poll := time.NewTicker(g.o.PollInterval)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
			pt.poll(ctx)
		case <-t.C:
			if err := pt.commit(ctx, false); err != nil {
				// Only a fenced partition stops here: a refused record
				// write that resolve found still this owner's is retried.
				if pt.fenced.Load() {
					return
				}
				var fatal *partitionError
				if errors.As(err, &fatal) {
					pt.fail(err)
					return
				}
			}
		}
	}
}

// partitionError is a failure after which the partition must restart from its
// last checkpoint (a dead letter that could not be stored, a re-created stream).
type partitionError struct{ err error }

func (e *partitionError) Error() string { return e.err.Error() }
func (e *partitionError) Unwrap() error { return e.err }

func (pt *partition) fail(err error) {
	pt.log.Error("partition stops and restarts from its last checkpoint", "err", err)
	select {
	case pt.failed <- err:
	default:
	}
}

// poll updates the lag and looks for lost input and a re-created stream.
func (pt *partition) poll(ctx context.Context) {
	g := pt.g
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var ci *jetstream.ConsumerInfo
	err := errors.New("no consumer")
	if c := pt.rd.consumer(); c != nil {
		ci, err = c.Info(pctx)
	}
	if err == nil {
		st := *pt.status.Load()
		st.Lag = ci.NumPending
		pt.status.Store(&st)
	} else {
		ci = nil
	}
	stream, err := g.js.Stream(pctx, g.o.Stream)
	if err != nil {
		// Not found may be a server still recovering its streams: a stream
		// that is really re-created shows a new creation time.
		pt.log.Debug("stream info", "err", err)
		return
	}
	info := stream.CachedInfo()
	if pt.p == 0 && len(g.o.Filters) > 1 {
		pt.measureUnpartitioned(pctx, stream)
	}
	b := pt.books
	b.Lock()
	created := pt.created
	if created.Equal(info.Created) {
		if pt.exact {
			pt.noteFirstSeq(info.State.FirstSeq)
		} else {
			pt.notePartialFirstSeq(info.State.FirstSeq, info.State.LastSeq, ci)
		}
	}
	b.Unlock()
	if !created.Equal(info.Created) {
		pt.fail(&partitionError{fmt.Errorf("stream %s was re-created", g.o.Stream)})
	}
}

// measureUnpartitioned counts the stream's messages on subjects of the
// group's subject that no partition's filter names (a producer publishing to
// prefix.<not a catalog channel>): no partition reads them.
func (pt *partition) measureUnpartitioned(ctx context.Context, s jetstream.Stream) {
	g := pt.g
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(g.o.Subject))
	if err != nil {
		pt.log.Debug("stream subjects", "err", err)
		return
	}
	covered := map[string]bool{}
	for _, fs := range g.o.Filters {
		for _, f := range fs {
			covered[f] = true
		}
	}
	var n uint64
	for subj, count := range info.State.Subjects {
		if !covered[subj] {
			n += count
		}
	}
	if old := g.unpartitioned.Swap(int64(n)); n > 0 && uint64(max(old, 0)) != n {
		pt.log.Error("stream messages on subjects no partition reads: they are not counted (publish to prefix.<catalog channel>, or run one partition)", "messages", n, "subject", g.o.Subject)
	}
}

// commit writes the books and the position. With release, the record is
// marked released so that another replica may take the partition at once.
// A write refused although the record is still this owner's (its own
// earlier write landed after its answer was lost, for example that of a
// periodic commit stop cancelled) is made again at once over the adopted
// record, up to commitRetries times.
func (pt *partition) commit(ctx context.Context, release bool) error {
	err := pt.commitOnce(ctx, release)
	for i := 0; err != nil && i < commitRetries && errors.Is(err, checkpoint.ErrFenced) && !pt.fenced.Load() && ctx.Err() == nil; i++ {
		pt.log.Info("committing again over the adopted record", "err", err)
		err = pt.commitOnce(ctx, release)
	}
	return err
}

const commitRetries = 3

func (pt *partition) commitOnce(ctx context.Context, release bool) error {
	g := pt.g
	start := time.Now()
	if pt.uncertain {
		// The last record write may have been applied without its answer
		// arriving: find out before writing any value it may reference.
		if err := pt.resolve(ctx); err != nil {
			return err
		}
	}
	b := pt.books
	b.Lock()
	var snap *books.Snapshot
	var err error
	if !pt.needFull {
		snap, err = b.SnapshotDelta()
	}
	if err == nil && (snap == nil || pt.wantFull(snap)) {
		snap, err = b.Snapshot()
	}
	seq, lostUpTo, dlErr, created := pt.seq, pt.lostUpTo, pt.dlErr, pt.created
	// The futures stay the partition's until acknowledged: a commit that
	// fails on one leaves dlErr set, so that no later commit (the final one
	// of stop included) goes past the dead letter.
	futures := pt.futures[:len(pt.futures):len(pt.futures)]
	b.Unlock()
	if dlErr != nil {
		return pt.commitFailed(&partitionError{dlErr})
	}
	if err != nil {
		return pt.commitFailed(err)
	}
	cctx, cancel := context.WithTimeout(ctx, g.o.TakeoverTimeout)
	defer cancel()
	for _, f := range futures {
		var derr error
		select {
		case <-f.Ok():
		case err := <-f.Err():
			g.o.Observer.DeadLetterError()
			derr = fmt.Errorf("dead letter not stored: %w", err)
		case <-cctx.Done():
			derr = fmt.Errorf("dead letter not acknowledged: %w", cctx.Err())
		}
		if derr != nil {
			b.Lock()
			if pt.dlErr == nil {
				pt.dlErr = derr
			}
			b.Unlock()
			return pt.commitFailed(&partitionError{derr})
		}
	}
	b.Lock()
	pt.futures = pt.futures[len(futures):]
	b.Unlock()
	old := pt.rec
	if pt.days == nil {
		if pt.days, err = g.store.DayRefs(cctx, old); err != nil {
			return pt.commitFailed(err)
		}
	}
	next := *old
	days := maps.Clone(pt.days)
	if days == nil {
		days = map[string]checkpoint.Ref{}
	}
	next.Commit++
	next.Seq, next.LostUpTo, next.StreamCreated = seq, lostUpTo, created
	next.Released, next.CommittedAt = release, time.Now().UTC()
	if release {
		next.Owner = ""
	}
	epoch := g.store.EpochPrefix(pt.p, next.Epoch)
	written := 0
	put := func(kind string, ref checkpoint.Ref, data []byte) (checkpoint.Ref, error) {
		nref, n, err := g.store.Put(cctx, g.store.DataKey(pt.p, next.Epoch, kind, checkpoint.NextSlot(ref, epoch)), data)
		written += n
		return nref, err
	}
	switch {
	case snap.Full:
		if next.Counters, err = put("counters", old.Counters, snap.Counters); err != nil {
			return pt.commitFailed(err)
		}
		if next.Rules, err = put("rules", old.Rules, snap.Rules); err != nil {
			return pt.commitFailed(err)
		}
		next.Deltas = nil
	case snap.Changed():
		// A delta, linked to the one before; a failed commit's delta under
		// the same key is overwritten, never referenced.
		d := &checkpoint.Delta{Counters: snap.CountersDelta, Days: snap.DaysDelta, Rules: snap.RulesDelta}
		chain := checkpoint.Chain{First: next.Commit}
		if c := old.Deltas; c != nil {
			d.Prev, chain = c.Head, *c
		}
		data, err := checkpoint.EncodeDelta(d)
		if err != nil {
			return pt.commitFailed(err)
		}
		if chain.Head, err = put(checkpoint.DeltaKind(next.Commit), checkpoint.Ref{}, data); err != nil {
			return pt.commitFailed(err)
		}
		chain.Last, chain.Len, chain.Bytes, chain.Chunks = next.Commit, chain.Len+1, chain.Bytes+len(data), max(chain.Chunks, chain.Head.Chunks)
		next.Deltas = &chain
	}
	for d, data := range snap.Days {
		day := d.String()
		if data == nil {
			delete(days, day)
			continue
		}
		if days[day], err = put(checkpoint.DayKind(day), pt.days[day], data); err != nil {
			return pt.commitFailed(err)
		}
	}
	// The days go in the days index, written when one of them changed (or
	// the record still holds them itself).
	next.Days = nil
	if !maps.Equal(days, pt.days) || (old.DaysIndex == nil && len(days) > 0) {
		data, err := json.Marshal(days)
		if err != nil {
			return pt.commitFailed(fmt.Errorf("encode days index: %w", err))
		}
		var prev checkpoint.Ref
		if old.DaysIndex != nil {
			prev = *old.DaysIndex
		}
		idx, err := put("days", prev, data)
		if err != nil {
			return pt.commitFailed(err)
		}
		next.DaysIndex = &idx
	}
	rev, err := g.store.Commit(cctx, &next, pt.rev)
	if err != nil {
		// Refused or unanswered: the record may hold this very commit (an
		// acknowledgement lost on the way back) or another owner's.
		pt.uncertain = true
		pt.needFull = true // adopted later, the record holds what the books' base does not
		if rerr := pt.resolve(ctx); rerr != nil {
			if !errors.Is(rerr, checkpoint.ErrFenced) {
				pt.g.o.Observer.CheckpointFailed(false)
			}
			return rerr
		}
		if pt.rec.Commit != next.Commit || pt.rec.Seq != next.Seq || pt.rec.Released != next.Released {
			pt.g.o.Observer.CheckpointFailed(false)
			pt.log.Warn("checkpoint failed; retrying at the next interval", "err", err)
			return err
		}
		rev = pt.rev // it was applied
	}
	// Committed.
	pt.rec, pt.rev = &next, rev
	pt.needFull = false
	var obsolete []checkpoint.Ref
	switch {
	case snap.Full:
		obsolete, pt.chain = pt.chain, nil // the snapshot replaces the deltas
	case next.Deltas != old.Deltas:
		pt.chain = append(pt.chain, next.Deltas.Head)
	}
	pt.seeRev.Store(rev)
	b.Lock()
	b.Committed(snap)
	b.Unlock()
	pt.lastOK.Store(monoNow())
	st := *pt.status.Load()
	st.Seq, st.CommittedAt, st.Bytes = seq, next.CommittedAt, written
	pt.status.Store(&st)
	g.o.Observer.CheckpointDone(time.Since(start), written)
	// Values of earlier epochs that the new record no longer references.
	pairs := [][2]checkpoint.Ref{{old.Counters, next.Counters}, {old.Rules, next.Rules}}
	if old.DaysIndex != nil && next.DaysIndex != nil {
		pairs = append(pairs, [2]checkpoint.Ref{*old.DaysIndex, *next.DaysIndex})
	}
	for _, pair := range pairs {
		if pair[0].Key != pair[1].Key && !hasPrefix(pair[0].Key, epoch) {
			obsolete = append(obsolete, pair[0])
		}
	}
	for d, ref := range pt.days {
		if nr, ok := days[d]; (!ok || nr.Key != ref.Key) && (!hasPrefix(ref.Key, epoch) || !ok) {
			obsolete = append(obsolete, ref)
		}
	}
	pt.days = days
	if len(obsolete) > 0 {
		if err := g.store.Delete(cctx, obsolete...); err != nil {
			pt.log.Warn("could not delete obsolete checkpoint values", "err", err)
		}
	}
	if !release {
		pt.collect(cctx)
	}
	return nil
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

// resolve reads the partition's record after a commit whose outcome is
// unknown: a record of this owner and epoch is this owner's own (an applied
// commit whose answer was lost), and is adopted; any other owner's means the
// partition was taken over, and fences this one.
func (pt *partition) resolve(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, pt.g.o.TakeoverTimeout)
	defer cancel()
	rec, rev, err := pt.g.store.Load(rctx, pt.p)
	if err != nil {
		pt.log.Warn("checkpoint outcome unknown; retrying at the next interval", "err", err)
		return fmt.Errorf("resolve checkpoint: %w", err)
	}
	pt.uncertain = false
	if rec.Owner != pt.g.o.Instance || rec.Epoch != pt.epoch {
		pt.g.o.Observer.CheckpointFailed(true)
		pt.fence(fmt.Sprintf("commit refused: the record is owned by %q, epoch %d", rec.Owner, rec.Epoch))
		return checkpoint.ErrFenced
	}
	if rev != pt.rev {
		pt.log.Info("a commit whose answer was lost had been applied: adopting it", "commit", rec.Commit, "seq", rec.Seq)
		pt.rec, pt.rev, pt.days = rec, rev, nil
		pt.seeRev.Store(rev)
	}
	return nil
}

// wantFull reports whether a commit writes a full snapshot rather than the
// delta s: when the record has no snapshot yet, when the deltas since the
// snapshot would reach the group's DeltaRatio times its size, or when they
// would number MaxDeltas.
func (pt *partition) wantFull(s *books.Snapshot) bool {
	rec, ratio := pt.rec, pt.g.o.DeltaRatio
	if ratio < 0 || rec.Counters.Key == "" || rec.Rules.Key == "" {
		return true
	}
	n, size := 1, len(s.CountersDelta)+len(s.DaysDelta)+len(s.RulesDelta)
	if c := rec.Deltas; c != nil {
		n, size = c.Len+1, size+c.Bytes
	}
	return n > MaxDeltas || float64(size) >= ratio*float64(rec.Counters.Size+rec.Rules.Size)
}

func (pt *partition) commitFailed(err error) error {
	pt.needFull = true
	fenced := errors.Is(err, checkpoint.ErrFenced)
	pt.g.o.Observer.CheckpointFailed(fenced)
	if fenced {
		pt.fence("commit refused: another owner committed")
		return err
	}
	pt.log.Warn("checkpoint failed; retrying at the next interval", "err", err)
	return err
}

// fence stops the partition at once without committing: another owner has it.
func (pt *partition) fence(why string) {
	if pt.fenced.Swap(true) {
		return
	}
	pt.log.Error("partition lost to another owner: dropping its series", "reason", why, "epoch", pt.epoch)
	pt.halt()
}

func (pt *partition) halt() {
	pt.stopOnce.Do(func() {
		pt.stopping.Store(true)
		if pt.rd != nil {
			pt.rd.close()
			pt.rd.deleteLast()
		}
		if pt.cancel != nil {
			pt.cancel()
		}
	})
}

// live reports whether the partition may expose its series: it is neither
// fenced nor past the takeover timeout since its last successful commit (after
// that another replica may own it, even if this one does not know yet).
func (pt *partition) live() bool {
	if pt.hideUntil > 0 && pt.processed.Load() < pt.hideUntil {
		return false // replaying what this process had counted already
	}
	return !pt.fenced.Load() && !pt.stopping.Load() && monoNow()-pt.lastOK.Load() < int64(pt.g.o.TakeoverTimeout)
}

// stop stops consuming, commits what was processed and releases the partition.
func (pt *partition) stop(ctx context.Context) error {
	if pt.fenced.Load() {
		return nil
	}
	if pt.rd != nil {
		// The reader stops; the worker applies what was delivered, so the
		// final commit covers it.
		pt.rd.close()
		select {
		case <-pt.worked:
		case <-time.After(pt.stepTimeout()):
			pt.log.Warn("the partition's worker did not finish in time; the final commit covers what it applied")
		}
		if !pt.exact {
			// A last look at how far the consumer has read, so that the
			// record bounds what a later start may count as lost
			// (noteFirstSeq).
			pctx, cancel := context.WithTimeout(ctx, pt.stepTimeout())
			pt.poll(pctx)
			cancel()
		}
	}
	if pt.cancel != nil {
		pt.cancel()
		<-pt.done
	}
	b := pt.books
	b.Lock()
	pt.stopping.Store(true) // no message after the final commit's snapshot
	b.Unlock()
	err := pt.commit(ctx, true)
	pt.halt()
	return err
}

var monoBase = time.Now()

func monoNow() int64 { return int64(time.Since(monoBase)) }

// FallbackChannel returns the subject's last token as bytes, without copying:
// the channel of an event that names none.
func FallbackChannel(subject string) []byte {
	t := subject[strings.LastIndexByte(subject, '.')+1:]
	if t == "" || t == ">" || t == "*" {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(t), len(t))
}
