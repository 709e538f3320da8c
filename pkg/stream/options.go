package stream

import "github.com/nats-io/nats.go"

// NATSOptions returns the nats.go options of o's authentication and TLS
// settings, checked as Connect checks them, for commands that connect on
// their own.
func (o ConnOptions) NATSOptions() ([]nats.Option, error) { return o.natsOptions() }
