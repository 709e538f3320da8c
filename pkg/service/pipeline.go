// Package service runs the exporter: it wires the NATS stream, the
// classification pipeline, the metrics, the HTTP API and the OTLP push, and
// stops them in order.
package service

import (
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/faceid-observability/faceid-exporter/pkg/api"
	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/dedupe"
	"github.com/faceid-observability/faceid-exporter/pkg/metrics"
)

// PipelineConfig is what every pipeline shares.
type PipelineConfig struct {
	Catalog *classify.Catalog
	Metrics *metrics.Metrics
	Events  *api.Events  // nil: no ring buffers or stream
	Dedupe  dedupe.Store // one store shared by every pipeline; nil: off
	ReqIDs  int          // reqId capacity of each classifier's in-memory store
	// ReqIDStore, when set, holds the reqId billing rule's state for every
	// pipeline (safe for concurrent use); nil: each classifier its own
	// in-memory store.
	ReqIDStore classify.ReqIDStore
	Logger     *slog.Logger     // nil: discard
	Clock      func() time.Time // time of receipt; nil: time.Now
}

// Pipelines makes one Pipeline per consuming goroutine around shared state.
type Pipelines struct {
	cfg        PipelineConfig
	unknownLog *rate.Limiter
	rejectLog  *rate.Limiter
}

// NewPipelines returns a factory of pipelines sharing cfg.
func NewPipelines(cfg PipelineConfig) *Pipelines {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	return &Pipelines{
		cfg:        cfg,
		unknownLog: rate.NewLimiter(rate.Every(time.Second), 1),
		rejectLog:  rate.NewLimiter(rate.Every(time.Second), 1),
	}
}

// New returns a pipeline for one goroutine; jetstream selects the transport
// label of faceid_exporter_events_received_total.
func (ps *Pipelines) New(jetstream bool) *Pipeline {
	return &Pipeline{
		ps:       ps,
		m:        ps.cfg.Metrics,
		ev:       ps.cfg.Events,
		clock:    ps.cfg.Clock,
		c:        classify.New(ps.cfg.Catalog, classify.Options{Dedupe: ps.cfg.Dedupe, ReqIDs: ps.cfg.ReqIDStore, ReqIDCapacity: ps.cfg.ReqIDs}),
		received: ps.cfg.Metrics.ReceivedCounter(jetstream),
	}
}

// Pipeline decodes, classifies and counts messages. It is not safe for
// concurrent use: each consuming goroutine has its own.
type Pipeline struct {
	ps       *Pipelines
	m        *metrics.Metrics
	ev       *api.Events
	clock    func() time.Time
	c        *classify.Classifier
	r        classify.Result
	received prometheus.Counter
	n        uint32
	reqIDEv  uint64
}

// Process implements stream.Processor.
func (p *Pipeline) Process(data []byte, subject string) error {
	p.received.Inc()
	now := p.clock()
	p.n++
	sample := p.n%metrics.ProcessingSampleEvery == 0
	var start time.Time
	if sample {
		start = time.Now()
	}
	r := &p.r
	if err := p.c.Classify(data, lastToken(subject), now, r); err != nil {
		var rej *classify.RejectError
		if !errors.As(err, &rej) {
			rej = &classify.RejectError{Reason: classify.ReasonInvalidJSON, Detail: err.Error()}
		}
		p.m.Rejected(rej.Reason)
		if p.ps.rejectLog.Allow() {
			p.ps.cfg.Logger.Warn("rejected message (logged at most once a second)", "subject", subject, "reason", rej.Reason.String(), "detail", rej.Detail, "bytes", len(data))
		}
		return rej
	}
	if r.Duplicate {
		p.m.Duplicate()
	} else {
		ns := now.UnixNano()
		p.m.Count(r, ns)
		if p.ev != nil {
			p.ev.Observe(r, ns)
		}
		if r.Code == nil && p.ps.unknownLog.Allow() {
			p.ps.cfg.Logger.Warn("unknown return code (logged at most once a second)", "channel", r.Channel.Name, "family", r.Family.Name, "raw_code", string(r.CodeRaw))
		}
	}
	if ev := p.c.ReqIDEvicted(); ev != p.reqIDEv {
		p.m.AddReqIDEvicted(ev - p.reqIDEv)
		p.reqIDEv = ev
	}
	if sample {
		p.m.ObserveProcessing(time.Since(start))
	}
	return nil
}

// lastToken returns the subject's last token as bytes, without copying: the
// channel of an event that names none.
func lastToken(subject string) []byte {
	t := subject[strings.LastIndexByte(subject, '.')+1:]
	if t == "" || t == ">" || t == "*" {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(t), len(t))
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
