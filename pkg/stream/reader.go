package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// reader reads a partition's messages in stream order without acks, as
// nats.go's ordered consumer does, but on its caller's goroutine: an
// ephemeral, ack-free, in-memory consumer starting where the caller says, a
// channel subscription that the connection's read loop fills, pull requests
// kept topped up, and a new consumer (a reset) at any gap in the delivery
// sequence, any status but an expired pull, a missed heartbeat or a
// reconnect. The caller (the partition's worker) counts every message it
// takes before it takes the next, so a reset starts exactly after what was
// counted: nothing handed over can be left uncounted, as with a consumer that
// delivers on its own goroutine.
//
// Why not jetstream.OrderedConsumer: measured out of process (e2e/throughput),
// its delivery path (the subscription's own goroutine, a heartbeat timer reset,
// a message wrapper and a second parse of the reply subject per message)
// costs about as much CPU as the exporter's whole decode and classify.
type reader struct {
	nc        *nats.Conn
	stream    jetstream.Stream
	filters   []string
	batch     int           // messages a pull asks for
	heartbeat time.Duration // the server's idle heartbeat on a waiting pull
	expires   time.Duration // a pull's lifetime
	log       *slog.Logger

	prefix string // of this reader's consumer names
	serial int

	cons    atomic.Pointer[jetstream.Consumer] // the current consumer; for other goroutines (poll)
	name    string                             // its name
	sub     *nats.Subscription
	ch      chan *nats.Msg
	next    string // the current consumer's pull subject
	ack     string // the prefix of its messages' reply subjects
	cseq    uint64 // the last delivery sequence taken
	run     int    // messages taken since the channel was last found empty
	pending int    // messages asked for and not yet taken
	// heard: a message or heartbeat came since the last tick; silent: none
	// came in the tick before that either.
	heard, silent bool
	status        chan nats.Status
	quit          chan struct{}
	closing       atomic.Bool // quit is closed: take hands out what was delivered, then stops
	ticker        *time.Ticker
}

func newReader(nc *nats.Conn, stream jetstream.Stream, filters []string, batch int, log *slog.Logger) *reader {
	return &reader{
		nc: nc, stream: stream, filters: filters, batch: max(batch, 2),
		heartbeat: readerHeartbeat, expires: readerExpires, log: log,
		prefix: nuid.Next(), status: nc.StatusChanged(nats.RECONNECTING, nats.CONNECTED),
		quit: make(chan struct{}), ticker: time.NewTicker(readerHeartbeat),
	}
}

// A pull waits at most readerExpires; while it waits the server sends an
// idle heartbeat every readerHeartbeat, and two missed ones reset the reader.
const (
	readerHeartbeat = 5 * time.Second
	readerExpires   = 30 * time.Second
)

// A reader that took gatherAfter messages or more since it last found none
// at hand sleeps gatherWait before it waits for the next one: under load the
// worker then wakes once per batch, not once per message (a wake-up costs
// about as much CPU as counting a message); a quiet stream sees no delay.
const (
	gatherAfter = 16
	gatherWait  = 200 * time.Microsecond
)

// errReaderClosed is returned once close was called.
var errReaderClosed = errors.New("reader closed")

// consumer returns the current server-side consumer, nil before the first.
func (r *reader) consumer() jetstream.Consumer {
	if c := r.cons.Load(); c != nil {
		return *c
	}
	return nil
}

// start (re)starts reading at stream sequence from with a new consumer. It
// retries until it succeeds or the reader is closed.
func (r *reader) start(from uint64) error {
	r.drop(true)
	backoff := 50 * time.Millisecond
	for {
		err := r.create(from)
		if err == nil {
			return nil
		}
		r.log.Warn("could not create the partition's consumer; retrying", "err", err, "start_seq", from, "retry_in", backoff)
		select {
		case <-r.quit:
			return errReaderClosed
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

func (r *reader) create(from uint64) error {
	r.serial++
	name := r.prefix + "_" + strconv.Itoa(r.serial)
	cfg := jetstream.ConsumerConfig{
		Name:              name,
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       max(from, 1),
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: 5 * time.Minute,
		Replicas:          1,
		MemoryStorage:     true,
	}
	if len(r.filters) == 1 {
		cfg.FilterSubject = r.filters[0]
	} else {
		cfg.FilterSubjects = r.filters
	}
	ch := make(chan *nats.Msg, 2*r.batch+64)
	sub, err := r.nc.ChanSubscribe(r.nc.NewInbox(), ch)
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := r.stream.CreateConsumer(ctx, cfg)
	if err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("create consumer %s: %w", name, err)
	}
	r.cons.Store(&c)
	r.name, r.sub, r.ch = name, sub, ch
	r.next = "$JS.API.CONSUMER.MSG.NEXT." + c.CachedInfo().Stream + "." + name
	r.ack = "$JS.ACK." + c.CachedInfo().Stream + "." + name + "."
	r.cseq, r.pending, r.heard, r.silent = 0, 0, true, false
	return r.pull()
}

// pull tops the outstanding pull requests up to a batch.
func (r *reader) pull() error {
	n := r.batch - r.pending
	req, _ := json.Marshal(struct {
		Batch     int           `json:"batch"`
		Expires   time.Duration `json:"expires"`
		Heartbeat time.Duration `json:"idle_heartbeat"`
	}{n, r.expires, r.heartbeat})
	if err := r.nc.PublishRequest(r.next, r.sub.Subject, req); err != nil {
		return fmt.Errorf("pull from consumer %s: %w", r.name, err)
	}
	r.pending += n
	return nil
}

// drop ends the current consumer: its subscription at once, with del the
// server-side consumer in the background (its inactivity threshold removes it
// anyway).
func (r *reader) drop(del bool) {
	if r.sub != nil {
		_ = r.sub.Unsubscribe()
		if del {
			go r.deleteConsumer(r.name)
		}
	}
	r.sub, r.ch = nil, nil
}

func (r *reader) deleteConsumer(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = r.stream.DeleteConsumer(ctx, name)
}

// close ends reading: take hands out what was delivered already and then
// returns errReaderClosed. Any goroutine may call it.
func (r *reader) close() {
	if !r.closing.Swap(true) {
		close(r.quit)
	}
}

// release frees what the reader holds but its last server-side consumer
// (see deleteLast); called by its goroutine once it has stopped using it.
func (r *reader) release() {
	r.drop(false)
	r.ticker.Stop()
	r.nc.RemoveStatusListener(r.status)
}

// deleteLast deletes the last server-side consumer, in the background. Any
// goroutine may call it.
func (r *reader) deleteLast() {
	if c := r.consumer(); c != nil {
		go r.deleteConsumer(c.CachedInfo().Name)
	}
}

// take returns the next message, waiting for it when wait is set (else nil
// when none is at hand). counted is the last stream sequence the caller
// counted: a reset starts after it. The message's reply subject is parsed
// into a.
func (r *reader) take(wait bool, counted uint64) (*nats.Msg, ackInfo, error) {
	for {
		if r.closing.Load() && r.sub != nil {
			_ = r.sub.Unsubscribe() // nothing more comes in; what came is handed out
			r.sub = nil
		}
		if r.ch == nil {
			if r.closing.Load() {
				return nil, ackInfo{}, errReaderClosed
			}
			if !wait {
				return nil, ackInfo{}, nil // start a new consumer when the caller may wait
			}
			if err := r.start(counted + 1); err != nil {
				return nil, ackInfo{}, err
			}
		}
		var m *nats.Msg
		select {
		case m = <-r.ch:
		default:
			if r.closing.Load() {
				r.ch = nil
				return nil, ackInfo{}, errReaderClosed
			}
			if !wait {
				return nil, ackInfo{}, nil
			}
			if r.run >= gatherAfter {
				// Busy: let a batch gather rather than be woken for
				// every message the read loop delivers.
				r.run = 0
				time.Sleep(gatherWait)
				continue
			}
			r.run = 0
			if n, err := r.sub.Dropped(); err == nil && n > 0 {
				// The client dropped deliveries (a slow consumer): the
				// gap shows only at the next message, if one comes.
				r.reset(fmt.Sprintf("%d deliveries dropped", n), counted)
				continue
			}
			select {
			case m = <-r.ch:
			case <-r.quit:
				return nil, ackInfo{}, errReaderClosed
			case s := <-r.status:
				if s == nats.CONNECTED {
					r.reset("reconnected", counted)
				}
				continue
			case <-r.ticker.C:
				if !r.heard && r.silent {
					r.reset("no heartbeat", counted)
				}
				r.silent, r.heard = !r.heard, false
				continue
			}
		}
		r.heard = true
		if m.Reply == "" {
			r.control(m, counted)
			continue
		}
		a, ok := r.parse(m.Reply)
		if !ok {
			return nil, ackInfo{}, fmt.Errorf("message without jetstream metadata: reply subject %q", m.Reply)
		}
		if a.consumer != r.name {
			continue // an earlier consumer's, in flight
		}
		if a.cseq != r.cseq+1 {
			r.reset(fmt.Sprintf("delivery sequence %d after %d", a.cseq, r.cseq), counted)
			continue
		}
		r.cseq = a.cseq
		r.pending--
		r.run++
		if r.pending <= r.batch/2 && r.sub != nil {
			if err := r.pull(); err != nil {
				r.reset(err.Error(), counted)
			}
		}
		return m, a, nil
	}
}

// parse reads a message's reply subject: its tail alone for the current
// consumer's (the fast path), the whole subject otherwise. a.consumer is the
// reader's own string for the current consumer, never the message's.
func (r *reader) parse(reply string) (a ackInfo, ok bool) {
	if strings.HasPrefix(reply, r.ack) {
		seq, cseq, ts, ok := parseAckTail(reply[len(r.ack):])
		return ackInfo{seq: seq, cseq: cseq, ts: time.Unix(0, int64(ts)), consumer: r.name}, ok
	}
	if a, ok = parseAck(reply); ok && a.consumer == r.name {
		a.consumer = r.name
	}
	return a, ok
}

// control handles a status message: an idle heartbeat, an expired or
// completed pull (its unfilled count is asked for again), or anything else,
// after which the reader starts a new consumer.
func (r *reader) control(m *nats.Msg, counted uint64) {
	if m.Sub != r.sub {
		return
	}
	code := m.Header.Get("Status")
	switch code {
	case "100": // idle heartbeat (or flow control, which an ack-free pull does not use)
		return
	case "404", "408":
		left, err := strconv.Atoi(m.Header.Get("Nats-Pending-Messages"))
		if err != nil {
			left = r.pending // not said: ask for a whole batch again
		}
		r.pending = max(r.pending-left, 0)
		if r.pending <= r.batch/2 && r.sub != nil {
			if err := r.pull(); err != nil {
				r.reset(err.Error(), counted)
			}
		}
		return
	}
	r.reset(fmt.Sprintf("status %s %s", code, m.Header.Get("Description")), counted)
}

// reset drops the current consumer; the next take starts a new one after
// counted.
func (r *reader) reset(why string, counted uint64) {
	r.log.Info("partition consumer reset", "reason", why, "consumer", r.name, "next_seq", counted+1)
	r.drop(true)
}
