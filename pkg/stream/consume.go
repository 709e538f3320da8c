package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/redact"
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
	// HeaderPayload says what the payload is: reference (none), redacted
	// or full (see DeadLetterMode).
	HeaderPayload = "Faceid-Payload"
	// HeaderOriginalBytes is the rejected message's size.
	HeaderOriginalBytes = "Faceid-Original-Bytes"
	// HeaderRedactedFields is how many personal fields a redacted payload
	// left out.
	HeaderRedactedFields = "Faceid-Redacted-Fields"
	// The source of a message consumed from a stream (JetStream mode): its
	// stream, the stream's creation time (RFC 3339, UTC, nanoseconds: a
	// stream deleted and re-created under the same name is another stream)
	// and the message's sequence in it, enough to fetch the original while
	// the stream keeps it (nats stream get <stream> <sequence>).
	HeaderSourceStream   = "Faceid-Source-Stream"
	HeaderSourceCreated  = "Faceid-Source-Created"
	HeaderSourceSequence = "Faceid-Source-Sequence"
)

// DeadLetterMode says what of a rejected message its dead letter carries
// besides the headers.
type DeadLetterMode uint8

// Dead-letter modes.
const (
	// DeadLetterReference carries no payload: the headers name the source
	// stream and sequence (in JetStream mode; in core mode there is no
	// stream to refer to, and the original is not kept anywhere).
	DeadLetterReference DeadLetterMode = iota
	// DeadLetterRedacted carries the JSON object without the catalog's
	// personal fields and without the contract field whose value was
	// rejected (channel, code or ts: a value that broke the contract may be
	// anything, a name or an ID number); a payload that is not a JSON object
	// cannot be redacted safely and goes by reference.
	DeadLetterRedacted
	// DeadLetterFull carries the payload as received, personal data
	// included.
	DeadLetterFull
)

var deadLetterModes = []string{"reference", "redacted", "full"}

func (m DeadLetterMode) String() string {
	if int(m) < len(deadLetterModes) {
		return deadLetterModes[m]
	}
	return "unknown"
}

// DeadLetterModes lists the modes' names.
func DeadLetterModes() []string { return slices.Clone(deadLetterModes) }

// ParseDeadLetterMode returns the mode named s.
func ParseDeadLetterMode(s string) (DeadLetterMode, error) {
	i := slices.Index(deadLetterModes, s)
	if i < 0 {
		return 0, fmt.Errorf("dead-letter mode %q is not one of %s", s, strings.Join(deadLetterModes, ", "))
	}
	return DeadLetterMode(i), nil
}

// DeadLetterMaxPayload is the largest message a dead letter carries a
// payload of: a larger one goes by reference whatever the mode, as does a
// payload that would not fit in the server's max payload with the headers
// (DeadLetterMaxHeaders).
const DeadLetterMaxPayload = 64 << 10

// DeadLetterMaxHeaders bounds the dead-letter headers (Nats-Msg-Id
// included) besides the original subject and the source stream's name
// (the detail is cut at 512 bytes).
const DeadLetterMaxHeaders = 1 << 10

// maxDetail is the most bytes of a rejection detail a dead letter keeps.
const maxDetail = 512

// DeadLetterOptions configure what a dead letter carries.
type DeadLetterOptions struct {
	Mode DeadLetterMode
	// Redactor removes the personal fields in DeadLetterRedacted mode
	// (nil there: every payload goes by reference).
	Redactor *redact.Redactor
}

// rejectedField is the contract field whose value a reason rejects: a
// redacted dead letter leaves it out too. Keyed by the reason's label, so a
// reason added to the classifier is named here without a code change there.
var rejectedField = map[string]string{
	"unknown_channel": "channel", "invalid_code": "code", "invalid_ts": "ts", "future_ts": "ts",
}

// DeadLetter republishes rejected messages with the reason in headers.
type DeadLetter struct {
	nc      *nats.Conn
	subject string
	obs     Observer
	o       DeadLetterOptions
	// byReason is o.Redactor with the field rejectedField names.
	byReason map[string]*redact.Redactor
}

// NewDeadLetter returns a DeadLetter publishing to subject by reference.
func NewDeadLetter(nc *nats.Conn, subject string, obs Observer) *DeadLetter {
	return NewDeadLetterWith(nc, subject, obs, DeadLetterOptions{})
}

// NewDeadLetterWith returns a DeadLetter publishing to subject in o's mode.
func NewDeadLetterWith(nc *nats.Conn, subject string, obs Observer, o DeadLetterOptions) *DeadLetter {
	d := &DeadLetter{nc: nc, subject: subject, obs: obs, o: o, byReason: map[string]*redact.Redactor{}}
	if o.Redactor != nil {
		for reason, field := range rejectedField {
			d.byReason[reason] = o.Redactor.With(field)
		}
	}
	return d
}

// Mode returns the dead letters' mode.
func (d *DeadLetter) Mode() DeadLetterMode { return d.o.Mode }

// Source names a message in its stream; the zero Source (core mode) names
// none.
type Source struct {
	Stream  string
	Created time.Time
	Seq     uint64
}

// message builds the dead letter of data, received on subject from src.
func (d *DeadLetter) message(data []byte, subject string, rej *classify.RejectError, src Source) *nats.Msg {
	msg := nats.NewMsg(d.subject)
	msg.Header.Set(HeaderReason, rej.Reason.String())
	detail := rej.Detail
	if len(detail) > maxDetail {
		detail = strings.ToValidUTF8(detail[:maxDetail], "")
	}
	msg.Header.Set(HeaderDetail, detail)
	msg.Header.Set(HeaderOriginalSubject, subject)
	msg.Header.Set(HeaderOriginalBytes, strconv.Itoa(len(data)))
	if src.Stream != "" {
		msg.Header.Set(HeaderSourceStream, src.Stream)
		msg.Header.Set(HeaderSourceCreated, src.Created.UTC().Format(time.RFC3339Nano))
		msg.Header.Set(HeaderSourceSequence, strconv.FormatUint(src.Seq, 10))
	}
	mode := d.o.Mode
	var payload []byte
	switch mode {
	case DeadLetterFull:
		payload = data
	case DeadLetterRedacted:
		r := d.o.Redactor
		if rr, ok := d.byReason[rej.Reason.String()]; ok {
			r = rr
		}
		if r == nil {
			mode = DeadLetterReference
			break
		}
		out, n, err := r.Object(data)
		if err != nil {
			mode = DeadLetterReference
			break
		}
		payload = out
		msg.Header.Set(HeaderRedactedFields, strconv.Itoa(n))
	}
	limit := int64(DeadLetterMaxPayload)
	if max := d.nc.MaxPayload(); max > 0 {
		limit = min(limit, max-int64(DeadLetterMaxHeaders+len(subject)+len(d.subject)+2*len(src.Stream)))
	}
	if len(data) > DeadLetterMaxPayload || int64(len(payload)) > limit {
		mode, payload = DeadLetterReference, nil
		msg.Header.Del(HeaderRedactedFields)
	}
	msg.Header.Set(HeaderPayload, mode.String())
	msg.Data = payload
	return msg
}

// Publish republishes data, received on subject, with rej's reason, through
// core NATS (core mode: at most once; see the JetStream mode for exactly once).
func (d *DeadLetter) Publish(data []byte, subject string, rej *classify.RejectError) error {
	if err := d.nc.PublishMsg(d.message(data, subject, rej, Source{})); err != nil {
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
	if !c.nc.IsConnected() {
		// No server to confirm a drain (it would wait out ctx): stop at
		// once. Messages the client still buffers are not counted, as core
		// NATS promises no delivery across a disconnection anyway.
		c.Poll(ctx)
		if err := c.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
			return fmt.Errorf("unsubscribe: %w", err)
		}
		return nil
	}
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
