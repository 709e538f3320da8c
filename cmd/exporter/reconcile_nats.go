package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/faceid-observability/faceid-exporter/pkg/reconcile"
	"github.com/faceid-observability/faceid-exporter/pkg/stream"
)

// natsLedgerFlags name the committed books of a stream's consumer group.
type natsLedgerFlags struct {
	conn                     stream.ConnOptions
	stream, consumer, bucket string
}

func addNATSLedgerFlags(cmd *kingpin.CmdClause) *natsLedgerFlags {
	f := &natsLedgerFlags{}
	cmd.Flag("nats.url", "NATS server URLs, comma-separated, to read the committed books from (instead of --ledger.file).").PlaceHolder("URL").StringVar(&f.conn.URLs)
	cmd.Flag("nats.name", "Connection name shown by the NATS server.").Default("faceid-exporter-reconcile").StringVar(&f.conn.Name)
	addNATSSecurityFlags(cmd, &f.conn)
	cmd.Flag("jetstream.stream", "Stream whose consumer group's committed books are read.").PlaceHolder("NAME").StringVar(&f.stream)
	cmd.Flag("jetstream.consumer", "The consumer group (serve's --jetstream.consumer).").Default("faceid-exporter").StringVar(&f.consumer)
	cmd.Flag("jetstream.checkpoint-bucket", "KV bucket of the group's checkpoints.").Default("faceid-checkpoints").StringVar(&f.bucket)
	return f
}

// open connects and returns the group's books; done closes the connection.
func (f *natsLedgerFlags) open(ctx context.Context, read reconcile.ReadFunc) (books reconcile.Ledger, done func(), err error) {
	if f.stream == "" {
		return nil, nil, errors.New("--nats.url needs --jetstream.stream: the books are kept in JetStream mode")
	}
	if err := checkNATSURLs(f.conn.URLs); err != nil {
		return nil, nil, err
	}
	f.conn.ConnectTimeout = 10 * time.Second
	nc, err := stream.Dial(f.conn, nil)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	kv, err := js.KeyValue(ctx, f.bucket)
	if err != nil {
		nc.Close()
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			return nil, nil, fmt.Errorf("checkpoint bucket %s not found: no exporter has kept books in JetStream mode on this server (--jetstream.checkpoint-bucket)", f.bucket)
		}
		return nil, nil, fmt.Errorf("open checkpoint bucket %s: %w", f.bucket, err)
	}
	return reconcile.KVLedger{KV: kv, Stream: f.stream, Group: f.consumer, Read: read}, nc.Close, nil
}
