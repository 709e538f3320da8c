package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/nats-io/nats.go"
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
	cmd.Flag("nats.creds-file", "NATS credentials file (JWT and NKey seed).").PlaceHolder("FILE").StringVar(&f.conn.CredsFile)
	cmd.Flag("nats.nkey-seed-file", "File holding an NKey seed to authenticate with.").PlaceHolder("FILE").StringVar(&f.conn.NKeySeedFile)
	cmd.Flag("nats.user", "NATS user name (the password is read from --nats.password-file).").StringVar(&f.conn.User)
	cmd.Flag("nats.password-file", "File holding the password of --nats.user.").PlaceHolder("FILE").StringVar(&f.conn.PasswordFile)
	cmd.Flag("nats.token-file", "File holding a NATS authentication token.").PlaceHolder("FILE").StringVar(&f.conn.TokenFile)
	cmd.Flag("nats.tls.ca-file", "CA certificate(s) to verify the NATS server with; turns TLS on.").PlaceHolder("FILE").StringVar(&f.conn.TLSCAFile)
	cmd.Flag("nats.tls.cert-file", "Client certificate for NATS mutual TLS (with --nats.tls.key-file).").PlaceHolder("FILE").StringVar(&f.conn.TLSCertFile)
	cmd.Flag("nats.tls.key-file", "Client key for NATS mutual TLS.").PlaceHolder("FILE").StringVar(&f.conn.TLSKeyFile)
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
	opts, err := f.conn.NATSOptions()
	if err != nil {
		return nil, nil, err
	}
	opts = append(opts, nats.Name(f.conn.Name), nats.Timeout(10*time.Second))
	nc, err := nats.Connect(f.conn.URLs, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to %s: %w", simulateRedactURLs(f.conn.URLs), err)
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
