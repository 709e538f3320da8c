package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

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

// message builds the dead letter of data, received on subject.
func (d *DeadLetter) message(data []byte, subject string, rej *classify.RejectError) *nats.Msg {
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
	return msg
}

// Publish republishes data, received on subject, with rej's reason, through
// core NATS (core mode: at most once; see the JetStream mode for exactly once).
func (d *DeadLetter) Publish(data []byte, subject string, rej *classify.RejectError) error {
	if err := d.nc.PublishMsg(d.message(data, subject, rej)); err != nil {
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
	// A round trip: the server has the subscription before the caller
	// reports ready (core NATS drops what is published before it).
	if nc.IsConnected() {
		if err := nc.FlushTimeout(10 * time.Second); err != nil {
			logger.Warn("subscription not yet confirmed by the server", "subject", o.Subject, "err", err)
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
