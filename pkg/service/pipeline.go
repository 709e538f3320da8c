package service

import (
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/faceid-observability/faceid-exporter/pkg/api"
	"github.com/faceid-observability/faceid-exporter/pkg/books"
	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/metrics"
	"github.com/faceid-observability/faceid-exporter/pkg/stream"
)

// hooks feed the process-local views (live event rings, delay histogram,
// rate-limited logs) from every partition; they implement stream.Hooks.
type hooks struct {
	m          *metrics.Metrics
	ev         *api.Events // nil: none
	received   prometheus.Counter
	log        *slog.Logger
	unknownLog *rate.Limiter
	rejectLog  *rate.Limiter
}

// NewHooks returns the process-local views every partition feeds (nil
// events: no ring buffers).
func NewHooks(m *metrics.Metrics, ev *api.Events, jetstream bool, log *slog.Logger) stream.Hooks {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &hooks{m: m, ev: ev, received: m.ReceivedCounter(jetstream), log: log,
		unknownLog: rate.NewLimiter(rate.Every(time.Second), 1), rejectLog: rate.NewLimiter(rate.Every(time.Second), 1)}
}

func (h *hooks) Received(received, counted int) {
	h.received.Add(float64(received))
	if counted > 0 {
		h.m.CountedAt(time.Now())
	}
}

func (h *hooks) Counted(r *classify.Result, received int64) {
	h.m.Counted(r, received)
	if h.ev != nil {
		h.ev.Observe(r, received)
	}
	if r.Code == nil && h.unknownLog.Allow() {
		h.log.Warn("unknown return code (logged at most once a second)", "channel", r.Channel.Name, "family", r.Family.Name, "raw_code", string(classify.ShownCode(r.CodeRaw)))
	}
}

func (h *hooks) Processed(d time.Duration) { h.m.ObserveProcessing(d) }

func (h *hooks) Rejected(subject string, rej *classify.RejectError, size int) {
	if h.rejectLog.Allow() {
		h.log.Warn("rejected message (logged at most once a second)", "subject", subject, "reason", rej.Reason.String(), "detail", rej.Detail, "bytes", size)
	}
}

// Pipeline counts core NATS messages into one in-memory partition's books (no
// checkpoint: core NATS has no positions to resume from). It implements
// stream.Processor and is used by the one subscription goroutine.
type Pipeline struct {
	b     *books.Books
	c     *classify.Classifier
	h     stream.Hooks
	m     *metrics.Metrics
	clock func() time.Time
	r     classify.Result
	n     uint32
}

// NewPipeline returns the core pipeline counting into b.
func NewPipeline(b *books.Books, h stream.Hooks, m *metrics.Metrics, clock func() time.Time) *Pipeline {
	if clock == nil {
		clock = time.Now
	}
	return &Pipeline{b: b, h: h, m: m, clock: clock,
		c: classify.New(b.Layout().Catalog(), b.Rules().ClassifyOptions())}
}

// Process implements stream.Processor.
func (p *Pipeline) Process(data []byte, subject string) error {
	now := p.clock()
	p.n++
	sample := p.n%metrics.ProcessingSampleEvery == 0
	var start time.Time
	if sample {
		start = time.Now()
	}
	b := p.b
	b.Lock()
	defer b.Unlock()
	r := &p.r
	if err := p.c.Classify(data, stream.FallbackChannel(subject), now, r); err != nil {
		var rej *classify.RejectError
		if !errors.As(err, &rej) {
			rej = &classify.RejectError{Reason: classify.ReasonInvalidJSON, Detail: err.Error()}
		}
		b.Reject(rej.Reason)
		p.h.Rejected(subject, rej, len(data))
		p.h.Received(1, 0)
		return rej
	}
	if b.Apply(r) {
		p.h.Received(1, 0)
	} else {
		p.h.Counted(r, now.UnixNano())
		p.h.Received(1, 1)
	}
	if sample {
		p.m.ObserveProcessing(time.Since(start))
	}
	return nil
}

// CoreObserver is the core consumer's Observer: the process metrics, with
// dead letters counted in the books.
func CoreObserver(m *metrics.Metrics, b *books.Books) stream.Observer { return coreObserver{m, b} }

type coreObserver struct {
	*metrics.Metrics
	b *books.Books
}

func (o coreObserver) DeadLettered(r classify.Reason) {
	o.b.Lock()
	o.b.DeadLettered(r)
	o.b.Unlock()
}

// CoarseClock is a clock read with one atomic load, advanced every tick by a
// goroutine: cheaper than time.Now on the hot path, precise to the tick.
type CoarseClock struct {
	ns   atomic.Int64
	stop chan struct{}
	done chan struct{}
}

// NewCoarseClock starts a clock that advances every tick.
func NewCoarseClock(tick time.Duration) *CoarseClock {
	c := &CoarseClock{stop: make(chan struct{}), done: make(chan struct{})}
	c.ns.Store(time.Now().UnixNano())
	go func() {
		defer close(c.done)
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-c.stop:
				return
			case now := <-t.C:
				c.ns.Store(now.UnixNano())
			}
		}
	}()
	return c
}

// Now returns the time of the last tick.
func (c *CoarseClock) Now() time.Time { return time.Unix(0, c.ns.Load()) }

// Stop stops the clock's goroutine.
func (c *CoarseClock) Stop() {
	close(c.stop)
	<-c.done
}
