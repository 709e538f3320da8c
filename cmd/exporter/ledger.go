package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/faceid-observability/faceid-exporter/pkg/checkpoint"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
	"github.com/faceid-observability/faceid-exporter/pkg/stream"
)

// ledgerReader returns the committed rows of days from..to of a stream and
// group, summed over its partitions, from the checkpoint bucket kv.
type ledgerReader func(ctx context.Context, kv jetstream.KeyValue, stream, group string, from, to ledger.Day) ([]ledger.Row, error)

// ledgerFlags are the flags of the ledger subcommand.
type ledgerFlags struct {
	conn                  stream.ConnOptions
	timeout               time.Duration
	stream, group, bucket string
	from, to              ledger.Day
	format                string
}

// addLedger registers the ledger subcommand, reading with ledger.Read.
func addLedger(app *kingpin.Application, c *cli) (*kingpin.CmdClause, func(context.Context) error) {
	return addLedgerWith(app, c, ledger.Read)
}

// addLedgerWith is addLedger with the reader given (tests pass a fake).
func addLedgerWith(app *kingpin.Application, c *cli, read ledgerReader) (*kingpin.CmdClause, func(context.Context) error) {
	cmd := app.Command("ledger", "Print the exact books (verifications per Beijing day, channel, code and billability) committed by the exporters of a JetStream stream and group, read from NATS (docs/ledger.md).")
	f := &ledgerFlags{}
	cmd.Flag("nats.url", "NATS server URLs, comma-separated.").Required().PlaceHolder("URL").StringVar(&f.conn.URLs)
	cmd.Flag("nats.name", "Connection name shown by the NATS server.").Default("faceid-exporter-ledger").StringVar(&f.conn.Name)
	addNATSSecurityFlags(cmd, &f.conn)
	cmd.Flag("timeout", "Longest time to connect to NATS and read the ledger.").Default("30s").DurationVar(&f.timeout)
	cmd.Flag("jetstream.stream", "Stream the exporters consume (their --jetstream.stream).").Required().PlaceHolder("NAME").StringVar(&f.stream)
	cmd.Flag("jetstream.consumer", "Group whose books to read (the exporters' --jetstream.consumer).").Default("faceid-exporter").StringVar(&f.group)
	cmd.Flag("jetstream.checkpoint-bucket", "KV bucket holding the checkpoints (the exporters' --jetstream.checkpoint-bucket).").Default("faceid-checkpoints").StringVar(&f.bucket)
	cmd.Flag("from", "First Beijing day, YYYY-MM-DD.").Required().PlaceHolder("YYYY-MM-DD").SetValue(dayValue{"--from", &f.from})
	cmd.Flag("to", "Last Beijing day (included), YYYY-MM-DD.").Required().PlaceHolder("YYYY-MM-DD").SetValue(dayValue{"--to", &f.to})
	cmd.Flag("format", "Output format: csv, json or table.").Default("table").StringVar(&f.format)
	cmd.Validate(func(*kingpin.CmdClause) error { return f.validate() })
	return cmd, func(ctx context.Context) error { return runLedger(ctx, c, f, read) }
}

// dayValue is a flag holding a Beijing day.
type dayValue struct {
	flag string
	d    *ledger.Day
}

func (v dayValue) Set(s string) error {
	d, err := ledger.ParseDay(s)
	if err != nil {
		return fmt.Errorf("%s: %w", v.flag, err)
	}
	*v.d = d
	return nil
}

func (v dayValue) String() string { return v.d.String() }

// validate checks what the flags cannot check alone.
func (f *ledgerFlags) validate() error {
	if strings.TrimSpace(f.conn.URLs) == "" {
		return errors.New("--nats.url is empty")
	}
	if err := checkNATSURLs(f.conn.URLs); err != nil {
		return err
	}
	if f.to < f.from {
		return fmt.Errorf("--to %s is before --from %s", f.to, f.from)
	}
	if err := checkJetStreamName("--jetstream.stream", f.stream); err != nil {
		return err
	}
	if err := checkJetStreamName("--jetstream.consumer", f.group); err != nil {
		return err
	}
	switch f.format {
	case "csv", "json", "table":
	default:
		return fmt.Errorf("--format %q: want csv, json or table", f.format)
	}
	if f.timeout <= 0 {
		return fmt.Errorf("--timeout %s: want more than 0", f.timeout)
	}
	return nil
}

// checkJetStreamName checks a stream or consumer name as JetStream does; it is
// also a token of the checkpoint keys.
func checkJetStreamName(flag, name string) error {
	if name == "" {
		return fmt.Errorf("%s is empty", flag)
	}
	if strings.ContainsAny(name, " \t\r\n.*>/\\") {
		return fmt.Errorf(`%s %q: a JetStream name has no white space, ".", "*", ">", "/" or "\"`, flag, name)
	}
	return nil
}

func runLedger(ctx context.Context, c *cli, f *ledgerFlags, read ledgerReader) error {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	rows, err := readLedger(ctx, f, read)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%w (--timeout %s)", err, f.timeout)
		}
		return err
	}
	ledger.SortRows(rows)
	var out bytes.Buffer
	switch f.format {
	case "csv":
		err = ledger.WriteCSV(&out, rows)
	case "json":
		err = ledger.WriteJSON(&out, ledger.Meta{Stream: f.stream, Group: f.group, From: f.from, To: f.to}, rows)
	default:
		err = ledger.WriteTable(&out, rows)
	}
	if err != nil {
		return err
	}
	_, err = c.stdout.Write(out.Bytes())
	return err
}

// readLedger connects, opens the checkpoint bucket and reads the group's rows.
func readLedger(ctx context.Context, f *ledgerFlags, read ledgerReader) ([]ledger.Row, error) {
	f.conn.ConnectTimeout = f.timeout
	nc, err := stream.Dial(f.conn, nil)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	kv, err := js.KeyValue(ctx, f.bucket)
	switch {
	case errors.Is(err, jetstream.ErrBucketNotFound):
		return nil, fmt.Errorf("no checkpoint bucket %q on this server: has an exporter run with --jetstream.stream %s?", f.bucket, f.stream)
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount), errors.Is(err, nats.ErrNoResponders):
		return nil, fmt.Errorf("open checkpoint bucket %q: %w: is JetStream enabled for this account on this server? the checkpoints live in JetStream", f.bucket, err)
	case err != nil:
		return nil, fmt.Errorf("open checkpoint bucket %q: %w", f.bucket, err)
	}
	rows, err := read(ctx, kv, f.stream, f.group, f.from, f.to)
	if errors.Is(err, ledger.ErrNoBooks) {
		hint := ""
		if groups, lerr := checkpointGroups(ctx, kv, f.stream); lerr == nil {
			hint = " (no group has one)"
			if len(groups) > 0 {
				hint = " (groups with one: " + strings.Join(groups, ", ") + ")"
			}
		}
		return nil, fmt.Errorf("no checkpoint of group %q on stream %q in bucket %q%s: has an exporter run with --jetstream.stream %s --jetstream.consumer %s?",
			f.group, f.stream, f.bucket, hint, f.stream, f.group)
	}
	if err != nil {
		return nil, fmt.Errorf("read the ledger of group %q on stream %q: %w", f.group, f.stream, err)
	}
	return rows, nil
}

// checkpointGroups returns, sorted, the groups of stream that have at least
// one partition checkpoint in kv: the hint when the group asked for has none.
func checkpointGroups(ctx context.Context, kv jetstream.KeyValue, stream string) ([]string, error) {
	lister, err := kv.ListKeysFiltered(ctx, stream+".*.*")
	if err != nil {
		return nil, err
	}
	defer lister.Stop()
	var groups []string
	for key := range lister.Keys() {
		tokens := strings.Split(key, ".")
		if len(tokens) != 3 || slices.Contains(groups, tokens[1]) {
			continue
		}
		if _, ok := checkpoint.NewStore(kv, stream, tokens[1]).PartitionOf(key); ok {
			groups = append(groups, tokens[1])
		}
	}
	if err := ctx.Err(); err != nil { // the lister stops early, silently, when ctx ends
		return nil, err
	}
	slices.Sort(groups)
	return groups, nil
}
