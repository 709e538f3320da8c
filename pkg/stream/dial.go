package stream

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// Dial connects to NATS once, for a command that reads and exits: unlike
// Connect it fails when no server of o.URLs answers within timeout (per
// server) instead of retrying in the background.
func Dial(o ConnOptions, timeout time.Duration) (*nats.Conn, error) {
	opts, err := o.natsOptions()
	if err != nil {
		return nil, err
	}
	name := o.Name
	if name == "" {
		name = "faceid-exporter"
	}
	opts = append(opts, nats.Name(name), nats.Timeout(timeout))
	nc, err := nats.Connect(o.URLs, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats: %w", err)
	}
	return nc, nil
}
