package simulate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/faceid-observability/faceid-exporter/pkg/classify"
)

// MaxRate is the highest rate Run accepts, in events per second.
const MaxRate = 1_000_000

// pacerTick is how often the pacer wakes to send the events that are due;
// maxBurst bounds how far behind one wake-up catches up.
const (
	pacerTick = 5 * time.Millisecond
	maxBurst  = 100 * time.Millisecond
)

// Config says what Run publishes.
type Config struct {
	// Catalog is the catalog events are drawn from and classified against;
	// required.
	Catalog *classify.Catalog
	// Scenario is the traffic mix; empty means Baseline.
	Scenario Scenario
	// Rate is the number of events per second; above 0, at most MaxRate.
	Rate float64
	// Duration is how long to publish; 0 runs until ctx is done. Exactly
	// round(Rate × Duration) events are sent, unless the publisher falls so
	// far behind that they are not all out within max(1s, Duration/10) after
	// the Duration.
	Duration time.Duration
	// Seed makes the event mix reproducible.
	Seed int64
	// SubjectPrefix is where events go (<prefix>.<channel>); empty means
	// DefaultSubjectPrefix.
	SubjectPrefix string
	// RunID starts every event id; empty means one made from the start time,
	// so that runs with the same seed do not look like redeliveries.
	RunID string
	// Progress receives a progress line every ProgressEvery (default 1s) and
	// a last one at the end; nil writes none.
	Progress      io.Writer
	ProgressEvery time.Duration
	// DrainTimeout bounds the wait for the server to confirm the last messages
	// once publishing stops (default 10s).
	DrainTimeout time.Duration
}

// Report is what Run sent: the ground truth a correct exporter counts.
// Sent = the counts of By + the counts of Malformed.
type Report struct {
	Scenario        Scenario  `json:"scenario"`
	Seed            int64     `json:"seed"`
	RunID           string    `json:"run_id"`
	Transport       string    `json:"transport"`
	SubjectPrefix   string    `json:"subject_prefix"`
	Rate            float64   `json:"rate"`
	DurationSeconds float64   `json:"duration_seconds"`
	Started         time.Time `json:"started"`
	ElapsedSeconds  float64   `json:"elapsed_seconds"`
	// Interrupted is set when ctx ended the run before its duration.
	Interrupted bool `json:"interrupted"`
	// Sent counts messages the server took: published on core NATS, or
	// acknowledged by the stream with JetStream.
	Sent int64 `json:"sent"`
	// Errors counts messages that failed to publish; they are not in Sent.
	Errors    int64  `json:"errors"`
	LastError string `json:"last_error,omitempty"`
	// Malformed counts the sent messages a classifier rejects, by reason
	// (every reason present, zeros included).
	Malformed map[string]int64 `json:"malformed"`
	// By counts the accepted messages by channel, code and billable.
	By []Row `json:"by"`
	// Risk counts the accepted messages by channel and risk.
	Risk []RiskRow `json:"risk"`
}

// Row is the count of one (channel, code, billable); Outcome follows from the code.
type Row struct {
	Channel  string `json:"channel"`
	Code     string `json:"code"`
	Outcome  string `json:"outcome"`
	Billable string `json:"billable"`
	Count    int64  `json:"count"`
}

// RiskRow is the count of one (channel, risk).
type RiskRow struct {
	Channel string `json:"channel"`
	Risk    string `json:"risk"`
	Count   int64  `json:"count"`
}

// Count returns the count of (channel, code, billable); code "unknown" for
// codes not in the catalog.
func (r *Report) Count(channel, code, billable string) int64 {
	var n int64
	for _, row := range r.By {
		if row.Channel == channel && row.Code == code && row.Billable == billable {
			n += row.Count
		}
	}
	return n
}

// Accepted returns the number of sent messages a classifier accepts.
func (r *Report) Accepted() int64 {
	var n int64
	for _, row := range r.By {
		n += row.Count
	}
	return n
}

// MalformedTotal returns the number of sent messages a classifier rejects.
func (r *Report) MalformedTotal() int64 {
	var n int64
	for _, v := range r.Malformed {
		n += v
	}
	return n
}

// Validate checks c and fills in the defaults of its empty fields.
func (c *Config) Validate() error {
	if c.Catalog == nil {
		return errors.New("no catalog")
	}
	if !(c.Rate > 0 && c.Rate <= MaxRate) {
		return fmt.Errorf("rate %g must be above 0 and at most %d events/s", c.Rate, MaxRate)
	}
	if c.Duration < 0 {
		return fmt.Errorf("duration %s must not be negative", c.Duration)
	}
	if c.Scenario == "" {
		c.Scenario = Baseline
	}
	if _, err := ParseScenario(string(c.Scenario)); err != nil {
		return err
	}
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = DefaultSubjectPrefix
	}
	if err := validSubjectPrefix(c.SubjectPrefix); err != nil {
		return err
	}
	if c.RunID == "" {
		c.RunID = "r" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = time.Second
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 10 * time.Second
	}
	return nil
}

// Run publishes cfg's scenario through pub at cfg.Rate until cfg.Duration has
// passed or ctx is done, then waits (at most cfg.DrainTimeout) for the server
// to take the last messages and returns what was sent. A cancelled ctx is the
// normal way to end a run without a duration and is not an error; the report
// is valid whatever the error.
func Run(ctx context.Context, cfg Config, pub Publisher) (Report, error) {
	if pub == nil {
		return Report{}, errors.New("no publisher")
	}
	if err := cfg.Validate(); err != nil {
		return Report{}, err
	}
	gen, err := NewGenerator(cfg.Catalog, cfg.Scenario, cfg.Seed, WithSubjectPrefix(cfg.SubjectPrefix), WithRunID(cfg.RunID))
	if err != nil {
		return Report{}, err
	}
	t := newTally(cfg.Catalog)
	var acks ackQueue

	pace := newPacer(cfg.Rate, cfg.Duration)
	total := pace.total

	// A publisher that falls behind may finish the events due this long
	// after the duration.
	grace := max(time.Second, cfg.Duration/10)
	start := time.Now()
	ticker := time.NewTicker(pacerTick)
	defer ticker.Stop()
	lastProgress, lastSent := start, int64(0)
	buf := make([]byte, 0, 1024)
	var generated int64
	interrupted := false
loop:
	for total < 0 || generated < total {
		var now time.Time
		select {
		case <-ctx.Done():
			interrupted = true
			break loop
		case <-ticker.C:
			now = time.Now()
		}
		elapsed := now.Sub(start)
		n := pace.due(elapsed)
		for range n {
			msg, subject, truth := gen.Next(buf, now)
			buf = msg[:0]
			generated++
			fut, err := pub.Publish(subject, msg)
			switch {
			case err != nil:
				t.fail(err)
			case fut == nil:
				t.add(truth)
			default:
				acks.push(fut, truth)
				if acks.len() >= MaxPendingAcks {
					acks.wait(t)
				}
			}
		}
		acks.collect(t)
		if cfg.Progress != nil && now.Sub(lastProgress) >= cfg.ProgressEvery {
			rate := float64(t.sent-lastSent) / now.Sub(lastProgress).Seconds()
			writeProgress(cfg.Progress, now.Sub(start), t, rate, acks.len())
			lastProgress, lastSent = now, t.sent
		}
		if total >= 0 && elapsed >= cfg.Duration+grace {
			break // too far behind: stop, short of total
		}
	}
	elapsed := time.Since(start)

	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.DrainTimeout)
	defer cancel()
	for acks.len() > 0 && dctx.Err() == nil {
		acks.wait(t)
	}
	for acks.len() > 0 { // not confirmed in time: count as lost
		acks.pop()
		t.fail(errors.New("no acknowledgement before the drain timeout"))
	}
	var runErr error
	if err := pub.Flush(dctx); err != nil {
		runErr = fmt.Errorf("flush: %w", err)
	}

	rep := Report{
		Scenario: cfg.Scenario, Seed: cfg.Seed, RunID: gen.RunID(), Transport: pub.Transport(),
		SubjectPrefix: cfg.SubjectPrefix, Rate: cfg.Rate, DurationSeconds: cfg.Duration.Seconds(),
		Started: start.UTC(), ElapsedSeconds: elapsed.Seconds(), Interrupted: interrupted && (total < 0 || generated < total),
	}
	t.fill(&rep)
	if cfg.Progress != nil {
		writeProgress(cfg.Progress, elapsed, t, float64(t.sent)/elapsed.Seconds(), 0)
	}
	return rep, runErr
}

// pacer is Run's schedule. By elapsed time e, rate×e events are due (all
// of round(rate×duration) once the duration has passed); one call hands out
// at most maxBurst's worth, so that a stalled publisher catches up without a
// flood. Ticks the loop was too busy for are dropped by the ticker; the next
// one sends what they would have.
type pacer struct {
	rate     float64
	duration time.Duration
	total    int64 // -1: no end
	maxBatch int64
	given    int64
}

func newPacer(rate float64, duration time.Duration) *pacer {
	p := &pacer{rate: rate, duration: duration, total: -1, maxBatch: int64(math.Ceil(rate*maxBurst.Seconds())) + 1}
	if duration > 0 {
		p.total = int64(math.Round(rate * duration.Seconds()))
	}
	return p
}

// due returns how many events to send now, elapsed after the start.
func (p *pacer) due(elapsed time.Duration) int64 {
	target := int64(p.rate * elapsed.Seconds())
	if p.total >= 0 && (target > p.total || elapsed >= p.duration) {
		target = p.total
	}
	n := max(0, min(target-p.given, p.maxBatch))
	p.given += n
	return n
}

func writeProgress(w io.Writer, elapsed time.Duration, t *tally, rate float64, pending int) {
	fmt.Fprintf(w, "simulate: elapsed=%s sent=%d rate=%.0f/s errors=%d malformed=%d pending_acks=%d\n",
		elapsed.Truncate(100*time.Millisecond), t.sent, rate, t.errors, t.malformed(), pending)
}

// ackQueue holds JetStream messages awaiting acknowledgement, oldest first.
type ackQueue struct {
	q    []pendingAck
	head int
}

type pendingAck struct {
	f     jetstream.PubAckFuture
	truth Truth
}

func (a *ackQueue) len() int { return len(a.q) - a.head }

func (a *ackQueue) push(f jetstream.PubAckFuture, truth Truth) {
	if a.head > 0 && a.head == len(a.q) {
		a.q, a.head = a.q[:0], 0
	}
	a.q = append(a.q, pendingAck{f: f, truth: truth})
}

func (a *ackQueue) pop() pendingAck {
	p := a.q[a.head]
	a.q[a.head] = pendingAck{}
	a.head++
	if a.head == len(a.q) {
		a.q, a.head = a.q[:0], 0
	}
	return p
}

// collect accounts for the acknowledgements that have arrived, oldest first,
// without waiting.
func (a *ackQueue) collect(t *tally) {
	for a.len() > 0 {
		p := a.q[a.head]
		select {
		case <-p.f.Ok():
			a.pop()
			t.add(p.truth)
		case err := <-p.f.Err():
			a.pop()
			t.fail(err)
		default:
			return
		}
	}
}

// wait waits for the oldest message's acknowledgement (the client times it
// out after AckTimeout) and accounts for it.
func (a *ackQueue) wait(t *tally) {
	p := a.pop()
	timer := time.NewTimer(AckTimeout + time.Second)
	defer timer.Stop()
	select {
	case <-p.f.Ok():
		t.add(p.truth)
	case err := <-p.f.Err():
		t.fail(err)
	case <-timer.C:
		t.fail(errors.New("no acknowledgement"))
	}
}
