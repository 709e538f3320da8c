package simulate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Transport names, as the report shows them.
const (
	TransportCore      = "core"
	TransportJetStream = "jetstream"
)

// Publisher delivers generated messages. Run calls it from one goroutine.
type Publisher interface {
	// Publish hands msg over for subject; msg may be reused once it returns.
	// It returns a nil future when nothing more will confirm the message (core
	// NATS), or the future of the server's acknowledgement (JetStream).
	Publish(subject string, msg []byte) (jetstream.PubAckFuture, error)
	// Flush waits until everything handed over has reached the server.
	Flush(ctx context.Context) error
	// Transport returns TransportCore or TransportJetStream.
	Transport() string
}

// NewCorePublisher publishes with core NATS on nc. Closing nc is the caller's job.
func NewCorePublisher(nc *nats.Conn) Publisher { return corePublisher{nc: nc} }

type corePublisher struct{ nc *nats.Conn }

func (p corePublisher) Publish(subject string, msg []byte) (jetstream.PubAckFuture, error) {
	return nil, p.nc.Publish(subject, msg)
}

func (p corePublisher) Flush(ctx context.Context) error { return p.nc.FlushWithContext(ctx) }

func (corePublisher) Transport() string { return TransportCore }

// AckTimeout is how long a JetStream publisher waits for each acknowledgement.
const AckTimeout = 5 * time.Second

// NewJetStreamPublisher publishes on nc with JetStream acknowledgements from
// stream, which must exist. Closing nc is the caller's job.
func NewJetStreamPublisher(ctx context.Context, nc *nats.Conn, stream string) (Publisher, error) {
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(2*MaxPendingAcks),
		jetstream.WithPublishAsyncTimeout(AckTimeout))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if _, err := js.Stream(ctx, stream); err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("jetstream stream %q does not exist (start the exporter with --jetstream.stream %s, or create it): %w", stream, stream, err)
		}
		return nil, fmt.Errorf("look up jetstream stream %q: %w", stream, err)
	}
	return &jsPublisher{js: js, opts: []jetstream.PublishOpt{jetstream.WithExpectStream(stream)}}, nil
}

type jsPublisher struct {
	js   jetstream.JetStream
	opts []jetstream.PublishOpt
}

func (p *jsPublisher) Publish(subject string, msg []byte) (jetstream.PubAckFuture, error) {
	// The client keeps the message until it is acknowledged, to retry it.
	data := append([]byte(nil), msg...)
	return p.js.PublishAsync(subject, data, p.opts...)
}

func (p *jsPublisher) Flush(ctx context.Context) error {
	select {
	case <-p.js.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for jetstream acknowledgements: %w", ctx.Err())
	}
}

func (*jsPublisher) Transport() string { return TransportJetStream }

// MaxPendingAcks bounds the JetStream messages awaiting acknowledgement; Run
// waits for the oldest before publishing more.
const MaxPendingAcks = 4096
