package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/faceid-observability/faceid-exporter/pkg/classify"
)

// Processor handles one message: it returns nil once the message is counted
// (or recognised as a duplicate), or a *classify.RejectError. A Processor is
// used by one goroutine at a time.
type Processor interface {
	Process(data []byte, subject string) error
}

// Dead-letter headers.
const (
	HeaderReason          = "Faceid-Reject-Reason"
	HeaderDetail          = "Faceid-Reject-Detail"
	HeaderOriginalSubject = "Faceid-Original-Subject"
	HeaderTruncated       = "Faceid-Truncated-From"
)

// DeadLetterMaxTruncated is how much of a message is kept when the whole does
// not fit in one NATS message with the dead-letter headers.
const DeadLetterMaxTruncated = 64 << 10

// DeadLetter republishes rejected messages with the reason in headers.
type DeadLetter struct {
	nc      *nats.Conn
	subject string
	obs     Observer
}

// NewDeadLetter returns a DeadLetter publishing to subject.
func NewDeadLetter(nc *nats.Conn, subject string, obs Observer) *DeadLetter {
	return &DeadLetter{nc: nc, subject: subject, obs: obs}
}

// Publish republishes data, received on subject, with rej's reason.
func (d *DeadLetter) Publish(data []byte, subject string, rej *classify.RejectError) error {
	msg := nats.NewMsg(d.subject)
	msg.Header.Set(HeaderReason, rej.Reason.String())
	detail := rej.Detail
	if len(detail) > 512 {
		detail = detail[:512]
	}
	msg.Header.Set(HeaderDetail, detail)
	msg.Header.Set(HeaderOriginalSubject, subject)
	msg.Data = data
	if max := d.nc.MaxPayload(); max > 0 && int64(len(data)+4096) > max {
		msg.Header.Set(HeaderTruncated, strconv.Itoa(len(data)))
		msg.Data = data[:min(len(data), DeadLetterMaxTruncated)]
	}
	if err := d.nc.PublishMsg(msg); err != nil {
		d.obs.DeadLetterError()
		return fmt.Errorf("dead-letter %s message to %s: %w", rej.Reason, d.subject, err)
	}
	d.obs.DeadLettered(rej.Reason)
	return nil
}

// Core is a core-NATS queue subscription feeding one Processor.
type Core struct {
	nc  *nats.Conn
	sub *nats.Subscription
	obs Observer
	dl  *DeadLetter
	log *slog.Logger

	dropped int
}

// CoreOptions configure a core-NATS subscription.
type CoreOptions struct {
	Subject, Queue string
	// PendingMsgs and PendingBytes bound what the client buffers before it
	// drops messages (0: the nats.go defaults, 512Ki messages and 64 MiB;
	// -1: no limit).
	PendingMsgs, PendingBytes int
}

// SubscribeCore subscribes to o.Subject in queue group o.Queue; p handles
// each message in the subscription's goroutine, rejected ones go to dl.
func SubscribeCore(nc *nats.Conn, o CoreOptions, p Processor, dl *DeadLetter, obs Observer, logger *slog.Logger) (*Core, error) {
	c := &Core{nc: nc, obs: obs, dl: dl, log: logger}
	handle := func(m *nats.Msg) {
		err := p.Process(m.Data, m.Subject)
		if err == nil {
			return
		}
		var rej *classify.RejectError
		if !errors.As(err, &rej) {
			rej = &classify.RejectError{Reason: classify.ReasonInvalidJSON, Detail: err.Error()}
		}
		if err := dl.Publish(m.Data, m.Subject, rej); err != nil {
			logger.Error("dead letter lost", "err", err)
		}
	}
	var err error
	if o.Queue == "" {
		c.sub, err = nc.Subscribe(o.Subject, handle)
	} else {
		c.sub, err = nc.QueueSubscribe(o.Subject, o.Queue, handle)
	}
	if err != nil {
		return nil, fmt.Errorf("subscribe to %s: %w", o.Subject, err)
	}
	if o.PendingMsgs != 0 || o.PendingBytes != 0 {
		msgs, bytes := o.PendingMsgs, o.PendingBytes
		if msgs == 0 {
			msgs = nats.DefaultSubPendingMsgsLimit
		}
		if bytes == 0 {
			bytes = nats.DefaultSubPendingBytesLimit
		}
		if err := c.sub.SetPendingLimits(msgs, bytes); err != nil {
			return nil, fmt.Errorf("subscription limits: %w", err)
		}
	}
	return c, nil
}

// Ready reports whether messages can arrive.
func (c *Core) Ready() (bool, string) {
	if !c.nc.IsConnected() {
		return false, "not connected to nats"
	}
	return true, ""
}

// Poll updates the dropped-message count.
func (c *Core) Poll(context.Context) {
	if d, err := c.sub.Dropped(); err == nil && d > c.dropped {
		c.obs.Dropped(d - c.dropped)
		c.log.Warn("nats dropped messages: the exporter is not keeping up", "dropped", d-c.dropped)
		c.dropped = d
	}
}

// Stop stops intake and waits until the messages already received are
// processed, or ctx ends.
func (c *Core) Stop(ctx context.Context) error {
	if err := c.sub.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		return fmt.Errorf("drain subscription: %w", err)
	}
	if err := waitFor(ctx, func() bool { return !c.sub.IsValid() }); err != nil {
		return fmt.Errorf("drain subscription: %w", err)
	}
	c.Poll(ctx)
	return flush(ctx, c.nc)
}

func waitFor(ctx context.Context, done func() bool) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for !done() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

func flush(ctx context.Context, nc *nats.Conn) error {
	if !nc.IsConnected() {
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	if err := nc.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("flush nats connection: %w", err)
	}
	return nil
}

// JetStreamOptions configure the JetStream consumer.
type JetStreamOptions struct {
	Stream, Consumer, Subject string
	CreateStream              bool
	MaxAckPending             int
	AckWait                   time.Duration
	// PullMaxMessages is how many messages one pull asks for (default 500).
	PullMaxMessages int
}

// JetStream consumes a stream through a durable pull consumer with explicit
// acks: a message is acked only after the Processor counted it; a rejected
// one is dead-lettered, then terminated so that it is not redelivered.
type JetStream struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	o    JetStreamOptions
	p    Processor
	dl   *DeadLetter
	obs  Observer
	log  *slog.Logger
	cons atomic.Pointer[consumerState]

	bound   atomic.Bool
	lastErr atomic.Pointer[string]
	rebind  chan struct{}
	done    chan struct{}
	stop    context.CancelFunc
}

type consumerState struct {
	c  jetstream.Consumer
	cc jetstream.ConsumeContext
}

// ConsumeJetStream binds to (and if needed creates) the stream and durable
// consumer, retrying with backoff until it succeeds or ctx ends, and keeps it
// bound: when the consumer is deleted it is created again.
func ConsumeJetStream(ctx context.Context, nc *nats.Conn, o JetStreamOptions, p Processor, dl *DeadLetter, obs Observer, logger *slog.Logger) (*JetStream, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if o.PullMaxMessages <= 0 {
		o.PullMaxMessages = 500
	}
	if o.MaxAckPending > 0 && o.PullMaxMessages > o.MaxAckPending {
		o.PullMaxMessages = o.MaxAckPending
	}
	j := &JetStream{nc: nc, js: js, o: o, p: p, dl: dl, obs: obs, log: logger,
		rebind: make(chan struct{}, 1), done: make(chan struct{})}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	j.stop = cancel
	j.setErr("binding to the consumer")
	go j.run(runCtx)
	return j, nil
}

func (j *JetStream) setErr(s string) { j.lastErr.Store(&s) }

// Ready reports whether the connection is up and the consumer bound.
func (j *JetStream) Ready() (bool, string) {
	if !j.nc.IsConnected() {
		return false, "not connected to nats"
	}
	if !j.bound.Load() {
		return false, "not bound to jetstream consumer " + j.o.Stream + "/" + j.o.Consumer + ": " + *j.lastErr.Load()
	}
	return true, ""
}

func (j *JetStream) run(ctx context.Context) {
	defer close(j.done)
	for attempt := 1; ; attempt++ {
		err := j.bind(ctx)
		if err == nil {
			attempt = 0
			select {
			case <-ctx.Done():
				return
			case <-j.rebind:
				j.bound.Store(false)
				if st := j.cons.Swap(nil); st != nil {
					st.cc.Stop()
				}
				continue
			}
		}
		if ctx.Err() != nil {
			return
		}
		j.setErr(err.Error())
		j.log.Warn("jetstream consumer not bound, retrying", "stream", j.o.Stream, "consumer", j.o.Consumer, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(Backoff(attempt, 5*time.Second)):
		}
	}
}

func (j *JetStream) bind(ctx context.Context) error {
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	stream, err := j.js.Stream(actx, j.o.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) && j.o.CreateStream {
		stream, err = j.js.CreateStream(actx, jetstream.StreamConfig{
			Name:     j.o.Stream,
			Subjects: []string{j.o.Subject},
			Storage:  jetstream.FileStorage,
		})
		if err == nil {
			j.log.Info("created jetstream stream", "stream", j.o.Stream, "subject", j.o.Subject)
		}
	}
	if err != nil {
		return fmt.Errorf("stream %s: %w", j.o.Stream, err)
	}
	cfg := jetstream.ConsumerConfig{
		Durable:       j.o.Consumer,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		FilterSubject: j.o.Subject,
		MaxAckPending: j.o.MaxAckPending,
		AckWait:       j.o.AckWait,
		Description:   "FaceID exporter: counts verification results",
	}
	cons, err := stream.CreateOrUpdateConsumer(actx, cfg)
	if err != nil {
		return fmt.Errorf("consumer %s: %w", j.o.Consumer, err)
	}
	cc, err := cons.Consume(j.handle,
		jetstream.PullMaxMessages(j.o.PullMaxMessages),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
				j.log.Warn("jetstream consumer gone, binding again", "err", err)
				select {
				case j.rebind <- struct{}{}:
				default:
				}
				return
			}
			j.log.Debug("jetstream consume", "err", err)
		}))
	if err != nil {
		return fmt.Errorf("consume %s/%s: %w", j.o.Stream, j.o.Consumer, err)
	}
	j.cons.Store(&consumerState{c: cons, cc: cc})
	j.bound.Store(true)
	j.log.Info("consuming jetstream", "stream", j.o.Stream, "consumer", j.o.Consumer, "subject", j.o.Subject)
	return nil
}

func (j *JetStream) handle(m jetstream.Msg) {
	data, subject := m.Data(), m.Subject()
	err := j.p.Process(data, subject)
	if err == nil {
		if err := m.Ack(); err != nil {
			j.log.Warn("jetstream ack", "err", err)
		}
		return
	}
	var rej *classify.RejectError
	if !errors.As(err, &rej) {
		rej = &classify.RejectError{Reason: classify.ReasonInvalidJSON, Detail: err.Error()}
	}
	if err := j.dl.Publish(data, subject, rej); err != nil {
		// Not lost: redelivered after a pause and dead-lettered again.
		j.log.Error("dead letter failed, the message will be redelivered", "err", err)
		_ = m.NakWithDelay(5 * time.Second)
		return
	}
	if err := m.Term(); err != nil {
		j.log.Warn("jetstream term", "err", err)
	}
}

// Poll updates the pending and ack-pending gauges from the consumer's info.
func (j *JetStream) Poll(ctx context.Context) {
	st := j.cons.Load()
	if st == nil || !j.nc.IsConnected() {
		return
	}
	ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := st.c.Info(ictx)
	if err != nil {
		if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
			j.bound.Store(false)
			j.setErr(err.Error())
			select {
			case j.rebind <- struct{}{}:
			default:
			}
		}
		return
	}
	j.obs.SetJetStreamPending(info.NumPending, uint64(info.NumAckPending))
}

// Stop stops fetching, lets the messages already fetched be processed and
// acked, and flushes the acks, or gives up when ctx ends.
func (j *JetStream) Stop(ctx context.Context) error {
	j.stop()
	select {
	case <-j.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	j.bound.Store(false)
	if st := j.cons.Load(); st != nil {
		st.cc.Drain()
		select {
		case <-st.cc.Closed():
		case <-ctx.Done():
			return fmt.Errorf("drain jetstream consumer: %w", ctx.Err())
		}
	}
	return flush(ctx, j.nc)
}
