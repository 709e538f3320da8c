package stream

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Inbox sizes: the deliverer waits while inboxMax messages are handed over and
// not yet applied (the batch the worker applies included; see pullOptions);
// an idle worker lets up to inboxGather messages (or inboxWait) gather before
// it takes a batch, so that it wakes about once per batch and not once per
// message when it is faster than the stream is read.
const (
	inboxMax    = 256
	inboxGather = 64
	inboxWait   = time.Millisecond
)

// inbox hands a partition's messages from its consumer's delivery goroutine to
// its worker in batches: the deliverer appends under a mutex (no channel
// operation per message), the worker swaps the whole batch out and applies it
// in delivery order under one hold of the books' lock, so the checkpoint (taken
// under that lock) covers exactly what was applied. After close nothing more
// is taken or handed over.
type inbox struct {
	mu      sync.Mutex
	room    sync.Cond // the deliverer waits while inboxMax messages are not applied
	drained sync.Cond // drain waits for the worker
	batch   []jetstream.Msg
	idle    bool // the worker waits on wake
	want    int  // the batch length at which the deliverer wakes an idle worker
	closed  bool
	// Messages handed over and applied (or dropped by the worker) so far.
	handed, done uint64
	wake         chan struct{}
	timer        *time.Timer
}

func newInbox() *inbox {
	in := &inbox{wake: make(chan struct{}, 1), timer: time.NewTimer(time.Hour)}
	in.timer.Stop()
	in.room.L, in.drained.L = &in.mu, &in.mu
	in.batch = make([]jetstream.Msg, 0, inboxMax)
	return in
}

// put hands one message over; it waits while inboxMax are not applied.
func (in *inbox) put(m jetstream.Msg) {
	in.mu.Lock()
	for in.handed-in.done >= inboxMax && !in.closed {
		in.room.Wait()
	}
	if in.closed {
		in.mu.Unlock()
		return
	}
	in.batch = append(in.batch, m)
	in.handed++
	if in.idle && len(in.batch) >= in.want {
		in.idle = false
		select {
		case in.wake <- struct{}{}:
		default:
		}
	}
	in.mu.Unlock()
}

// take returns the next batch (spare, emptied, becomes the one the deliverer
// fills); false once the inbox is closed.
func (in *inbox) take(spare []jetstream.Msg) ([]jetstream.Msg, bool) {
	in.mu.Lock()
	for len(in.batch) == 0 && !in.closed {
		in.wait(1, 0)
	}
	if len(in.batch) < inboxGather && !in.closed {
		in.wait(inboxGather, inboxWait)
	}
	if in.closed {
		in.mu.Unlock()
		return nil, false
	}
	b := in.batch
	in.batch = spare[:0]
	in.mu.Unlock()
	return b, true
}

// wait waits, with in.mu held (released while waiting), until the batch holds
// want messages, the inbox closes, or d (0: no limit) passes.
func (in *inbox) wait(want int, d time.Duration) {
	in.idle, in.want = true, want
	in.mu.Unlock()
	if d == 0 {
		<-in.wake
	} else {
		in.timer.Reset(d)
		select {
		case <-in.wake:
		case <-in.timer.C:
		}
		in.timer.Stop()
	}
	in.mu.Lock()
	in.idle = false
	select { // a wake sent as the timer fired
	case <-in.wake:
	default:
	}
}

// applied records that the worker is done with n messages.
func (in *inbox) applied(n int) {
	in.mu.Lock()
	in.done += uint64(n)
	in.room.Broadcast()
	in.drained.Broadcast()
	in.mu.Unlock()
}

// drain waits, at most d, until the worker is done with every message handed
// over so far; it reports whether it is.
func (in *inbox) drain(d time.Duration) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	target, expired := in.handed, false
	t := time.AfterFunc(d, func() {
		in.mu.Lock()
		expired = true
		in.drained.Broadcast()
		in.mu.Unlock()
	})
	defer t.Stop()
	for in.done < target && !in.closed && !expired {
		if in.idle && len(in.batch) > 0 {
			in.idle = false // a gathering worker: take what there is now
			select {
			case in.wake <- struct{}{}:
			default:
			}
		}
		in.drained.Wait()
	}
	return in.done >= target
}

// close stops the hand-over: the deliverer and the worker return.
func (in *inbox) close() {
	in.mu.Lock()
	in.closed = true
	in.room.Broadcast()
	in.drained.Broadcast()
	in.mu.Unlock()
	select {
	case in.wake <- struct{}{}:
	default:
	}
}

// pullOptions are the pull options of a partition's consumer when the
// configured pull is n. Without the inbox the consumer pulls again once n/2 of
// a pull were handled (nats.go's default threshold); with it a message
// handed to the inbox counts as handled although up to inboxMax wait there,
// so the consumer pulls again inboxMax later: the server holds the partition
// behind as long as it did without the inbox, and a poll sees it behind as
// often (notePartialFirstSeq).
func pullOptions(n int) []jetstream.PullConsumeOpt {
	return []jetstream.PullConsumeOpt{jetstream.PullMaxMessages(n), jetstream.PullThresholdMessages(max(n/2-inboxMax, 1))}
}
