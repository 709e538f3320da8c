package reconcile

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
)

// Ledger gives the rows of our books for a range of Beijing days.
type Ledger interface {
	Rows(ctx context.Context, from, to ledger.Day) ([]ledger.Row, error)
}

// LedgerFunc adapts a function to Ledger.
type LedgerFunc func(ctx context.Context, from, to ledger.Day) ([]ledger.Row, error)

// Rows implements Ledger.
func (f LedgerFunc) Rows(ctx context.Context, from, to ledger.Day) ([]ledger.Row, error) {
	return f(ctx, from, to)
}

// ReadFunc reads a group's committed books from its checkpoint bucket: the
// signature of ledger.Read.
type ReadFunc func(ctx context.Context, kv jetstream.KeyValue, stream, group string, from, to ledger.Day) ([]ledger.Row, error)

// KVLedger reads the committed books of a stream's consumer group from the
// checkpoint bucket.
type KVLedger struct {
	KV            jetstream.KeyValue
	Stream, Group string
	Read          ReadFunc
}

// Rows implements Ledger.
func (k KVLedger) Rows(ctx context.Context, from, to ledger.Day) ([]ledger.Row, error) {
	if k.Read == nil {
		return nil, errors.New("reading the ledger from the checkpoint bucket is not available in this build")
	}
	rows, err := k.Read(ctx, k.KV, k.Stream, k.Group, from, to)
	if err != nil {
		return nil, fmt.Errorf("read the ledger of stream %s, group %s: %w", k.Stream, k.Group, err)
	}
	return rows, nil
}

// LedgerFile reads a ledger CSV as `exporter ledger --format csv` writes it.
type LedgerFile struct{ Path string }

// Rows implements Ledger: the file's rows of days from..to.
func (l LedgerFile) Rows(_ context.Context, from, to ledger.Day) ([]ledger.Row, error) {
	f, err := os.Open(l.Path)
	if err != nil {
		return nil, fmt.Errorf("read ledger file: %w", err)
	}
	defer f.Close()
	rows, err := ReadLedgerCSV(l.Path, f)
	if err != nil {
		return nil, err
	}
	out := rows[:0]
	for _, r := range rows {
		d, _ := ledger.ParseDay(r.Day) // checked by ReadLedgerCSV
		if d >= from && d <= to {
			out = append(out, r)
		}
	}
	return out, nil
}

// ledgerCSVHeader is the header line of a ledger CSV.
var ledgerCSVHeader = []string{"day", "channel", "code", "billable", "count", "rule_id"}

// ReadLedgerCSV parses a ledger CSV strictly: the header
// day,channel,code,billable,count,rule_id, then one row per line; name
// prefixes errors.
func ReadLedgerCSV(name string, r io.Reader) ([]ledger.Row, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = len(ledgerCSVHeader)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: empty: want the header %s", name, strings.Join(ledgerCSVHeader, ","))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	for i, h := range ledgerCSVHeader {
		if header[i] != h {
			return nil, fmt.Errorf("%s:1: header %s, want %s", name, strings.Join(header, ","), strings.Join(ledgerCSVHeader, ","))
		}
	}
	var rows []ledger.Row
	seen := map[ledger.Row]int{} // row without count → line
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		line, _ := cr.FieldPos(0)
		fail := func(field, msg string) error { return fmt.Errorf("%s:%d: %s: %s", name, line, field, msg) }
		row := ledger.Row{Day: rec[0], Channel: rec[1], Code: rec[2], Billable: rec[3], RuleID: rec[5]}
		if d, err := ledger.ParseDay(row.Day); err != nil || d.String() != row.Day {
			return nil, fail("day", fmt.Sprintf("%q is not a YYYY-MM-DD day", row.Day))
		}
		if row.Channel == "" {
			return nil, fail("channel", "empty")
		}
		if row.Code == "" {
			return nil, fail("code", "empty")
		}
		switch row.Billable {
		case "true", "false", "unknown":
		default:
			return nil, fail("billable", fmt.Sprintf("%q is not true, false or unknown", row.Billable))
		}
		n, err := strconv.ParseUint(rec[4], 10, 64)
		if err != nil || n == 0 {
			return nil, fail("count", fmt.Sprintf("%q is not a positive integer", rec[4]))
		}
		if prev, dup := seen[row]; dup {
			return nil, fail("row", fmt.Sprintf("repeats line %d (same day, channel, code, billable and rule_id)", prev))
		}
		seen[row] = line
		row.Count = n
		rows = append(rows, row)
	}
}
