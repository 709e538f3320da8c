package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/common/promslog"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
	"github.com/faceid-observability/faceid-exporter/pkg/checkpoint"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
)

// runLedgerWith runs `exporter ledger args...` as runContext does, with read
// behind the command's reader seam.
func runLedgerWith(t *testing.T, read ledgerReader, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	app := kingpin.New("exporter", "")
	c := &cli{env: env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, now: time.Now}, logConfig: &promslog.Config{}}
	c.catalogFile = app.Flag("catalog.file", "").String()
	_, action := addLedgerWith(app, c, read)
	if _, err := app.Parse(append([]string{"ledger"}, args...)); err != nil {
		fmt.Fprintf(&errb, "exporter: %v\n", err)
		return 2, out.String(), errb.String()
	}
	if err := action(context.Background()); err != nil {
		fmt.Fprintf(&errb, "exporter ledger: %v\n", err)
		return 1, out.String(), errb.String()
	}
	return 0, out.String(), errb.String()
}

// checkpointServer runs a JetStream server whose bucket faceid-checkpoints
// holds real checkpoints (as pkg/checkpoint writes them) of groups
// faceid-exporter (partitions 0 and 1) and billing (partition 0) on stream
// FACEID, and keys of other kinds that are no checkpoint.
func checkpointServer(t *testing.T) *server.Server {
	t.Helper()
	s := natstest.RunServer(t)
	js, err := jetstream.New(natstest.Connect(t, s.ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "faceid-checkpoints"})
	if err != nil {
		t.Fatal(err)
	}
	row := func(day, channel, code, billable, ruleID string, n uint64) ledger.Row {
		return ledger.Row{Day: day, Channel: channel, Code: code, Billable: billable, RuleID: ruleID, Count: n}
	}
	commitDays(t, kv, "FACEID", "faceid-exporter", 0, 2, []ledger.Row{
		row("2026-11-24", "app_sdk", "0", "true", "", 1000),
		row("2026-11-24", "app_sdk", "66660004", "true", "", 17),
		row("2026-11-26", "app_sdk", "0", "true", "", 5),
	})
	commitDays(t, kv, "FACEID", "faceid-exporter", 1, 2, []ledger.Row{
		row("2026-11-23", "pc_h5", "0", "true", "", 8),
		row("2026-11-24", "app_sdk", "0", "true", "", 523),
		row("2026-11-25", "wechat_h5", "0", "true", "1", 980),
	})
	commitDays(t, kv, "FACEID", "billing", 0, 1, []ledger.Row{row("2026-11-25", "pc_h5", "unknown", "unknown", "", 2)})
	for _, key := range []string{"FACEID.standby.m.pod-2", "FACEID.odd.px", "FACEID.odd.p", "OTHER.elsewhere.x"} {
		if _, err := kv.PutString(ctx, key, "{}"); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// commitDays writes partition p's checkpoint record holding rows.
func commitDays(t *testing.T, kv jetstream.KeyValue, stream, group string, p, partitions int, rows []ledger.Row) {
	t.Helper()
	ctx := context.Background()
	st := checkpoint.NewStore(kv, stream, group)
	byDay := map[string][]ledger.Row{}
	for _, r := range rows {
		byDay[r.Day] = append(byDay[r.Day], r)
	}
	rec := &checkpoint.Record{Version: checkpoint.Version, Stream: stream, Group: group, Partition: p, Partitions: partitions, Epoch: 1, Days: map[string]checkpoint.Ref{}}
	for day, rows := range byDay {
		data, err := json.Marshal(ledger.DayFile{Day: day, Rows: rows})
		if err != nil {
			t.Fatal(err)
		}
		ref, _, err := st.Put(ctx, st.DataKey(p, 1, checkpoint.DayKind(day), 0), data)
		if err != nil {
			t.Fatal(err)
		}
		rec.Days[day] = ref
	}
	if _, err := st.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
}

var ledgerRows = []ledger.Row{ // unsorted, as a reader may return them
	{Day: "2026-11-25", Channel: "wechat_h5", Code: "0", Billable: "true", RuleID: "1", Count: 980},
	{Day: "2026-11-24", Channel: "app_sdk", Code: "66660004", Billable: "true", Count: 17},
	{Day: "2026-11-24", Channel: "app_sdk", Code: "0", Billable: "true", Count: 1523},
	{Day: "2026-11-25", Channel: "pc_h5", Code: "unknown", Billable: "unknown", Count: 2},
}

// readCall is what a fake reader was asked for.
type readCall struct {
	bucket, stream, group string
	from, to              ledger.Day
}

func fakeReader(calls *[]readCall, rows []ledger.Row, err error) ledgerReader {
	return func(_ context.Context, kv jetstream.KeyValue, stream, group string, from, to ledger.Day) ([]ledger.Row, error) {
		*calls = append(*calls, readCall{kv.Bucket(), stream, group, from, to})
		return append([]ledger.Row(nil), rows...), err
	}
}

func day(t *testing.T, s string) ledger.Day {
	t.Helper()
	d, err := ledger.ParseDay(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestLedgerFlags checks that every flag of the contract exists with its default.
func TestLedgerFlags(t *testing.T) {
	app := kingpin.New("exporter", "")
	c := &cli{env: env{stdin: strings.NewReader(""), stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}, logConfig: &promslog.Config{}}
	cmd, _ := addLedger(app, c)
	flags := map[string]*kingpin.FlagModel{}
	for _, f := range cmd.Model().Flags {
		flags[f.Name] = f
	}
	want := map[string]string{
		"nats.url": "", "nats.name": "faceid-exporter-ledger", "nats.creds-file": "", "nats.nkey-seed-file": "",
		"nats.user": "", "nats.password-file": "", "nats.token-file": "",
		"nats.tls.ca-file": "", "nats.tls.cert-file": "", "nats.tls.key-file": "", "timeout": "30s",
		"jetstream.stream": "", "jetstream.consumer": "faceid-exporter", "jetstream.checkpoint-bucket": "faceid-checkpoints",
		"from": "", "to": "", "format": "table",
	}
	required := []string{"nats.url", "jetstream.stream", "from", "to"}
	for name, def := range want {
		f, ok := flags[name]
		if !ok {
			t.Errorf("no --%s", name)
			continue
		}
		if got := strings.Join(f.Default, ","); got != def {
			t.Errorf("--%s defaults to %q, want %q", name, got, def)
		}
		if isReq := slices.Contains(required, name); f.Required != isReq {
			t.Errorf("--%s required: %v, want %v", name, f.Required, isReq)
		}
	}
	for name := range flags {
		if _, ok := want[name]; !ok {
			t.Errorf("--%s is not in the contract", name)
		}
	}
}

// TestLedgerArgs runs the registered command with arguments it must refuse
// before reading anything.
func TestLedgerArgs(t *testing.T) {
	dir := t.TempDir()
	base := []string{"ledger", "--nats.url=nats://127.0.0.1:1", "--jetstream.stream=FACEID"}
	days := []string{"--from=2026-11-01", "--to=2026-11-30"}
	args := func(extra ...string) []string { return append(append(append([]string{}, base...), days...), extra...) }
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no_nats_url", []string{"ledger", "--jetstream.stream=FACEID", "--from=2026-11-01", "--to=2026-11-30"}, 2, "exporter: required flag(s) '--nats.url' not provided\n"},
		{"empty_nats_url", []string{"ledger", "--nats.url=", "--jetstream.stream=FACEID", "--from=2026-11-01", "--to=2026-11-30"}, 2, "exporter: --nats.url is empty\n"},
		{"no_stream", []string{"ledger", "--nats.url=nats://127.0.0.1:1", "--from=2026-11-01", "--to=2026-11-30"}, 2, "exporter: required flag(s) '--jetstream.stream' not provided\n"},
		{"no_from", append(append([]string{}, base...), "--to=2026-11-30"), 2, "exporter: required flag(s) '--from' not provided\n"},
		{"no_to", append(append([]string{}, base...), "--from=2026-11-01"), 2, "exporter: required flag(s) '--to' not provided\n"},
		{"from_not_a_day", append(append([]string{}, base...), "--from=2026-11-31", "--to=2026-11-30"), 2,
			`exporter: --from: day "2026-11-31" is not YYYY-MM-DD: parsing time "2026-11-31": day out of range` + "\n"},
		{"to_not_a_day", append(append([]string{}, base...), "--from=2026-11-01", "--to=30.11.2026"), 2,
			`exporter: --to: day "30.11.2026" is not YYYY-MM-DD: parsing time "30.11.2026" as "2006-01-02": cannot parse "30.11.2026" as "2006"` + "\n"},
		{"to_before_from", append(append([]string{}, base...), "--from=2026-11-02", "--to=2026-11-01"), 2, "exporter: --to 2026-11-01 is before --from 2026-11-02\n"},
		{"bad_format", args("--format=xlsx"), 2, `exporter: --format "xlsx": want csv, json or table` + "\n"},
		{"stream_with_dot", []string{"ledger", "--nats.url=nats://127.0.0.1:1", "--jetstream.stream=FACE.ID", "--from=2026-11-01", "--to=2026-11-30"}, 2,
			`exporter: --jetstream.stream "FACE.ID": a JetStream name has no white space, ".", "*", ">", "/" or "\"` + "\n"},
		{"empty_consumer", args("--jetstream.consumer="), 2, "exporter: --jetstream.consumer is empty\n"},
		{"zero_timeout", args("--timeout=0s"), 2, "exporter: --timeout 0s: want more than 0\n"},
		{"two_auth_methods", args("--nats.user=u", "--nats.token-file="+filepath.Join(dir, "tok")), 1,
			"exporter ledger: nats authentication: give only one of --nats.creds-file, --nats.nkey-seed-file, --nats.user, --nats.token-file\n"},
		{"no_server", args(), 1, "exporter ledger: connect to nats nats://127.0.0.1:1: nats: no servers available for connection\n"},
		{"credentials_redacted", []string{"ledger", "--nats.url=nats://me:s3cret@127.0.0.1:1", "--jetstream.stream=FACEID", "--from=2026-11-01", "--to=2026-11-01"}, 1,
			"exporter ledger: connect to nats nats://REDACTED@127.0.0.1:1: nats: no servers available for connection\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, "", tc.args...)
			if code != tc.code || stderr != tc.want {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d, stderr:\n%s", code, stderr, tc.code, tc.want)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}
}

// TestLedgerOutputs reads through the seam from a real bucket and checks
// every format against its golden file and what the reader was asked.
func TestLedgerOutputs(t *testing.T) {
	s := checkpointServer(t)
	tests := []struct {
		name, golden string
		args         []string
		rows         []ledger.Row
	}{
		{"table_default", "table.golden.txt", nil, ledgerRows},
		{"csv", "csv.golden.csv", []string{"--format=csv"}, ledgerRows},
		{"json", "json.golden.json", []string{"--format=json"}, ledgerRows},
		{"json_empty", "json_empty.golden.json", []string{"--format=json"}, nil},
		{"csv_empty", "csv_empty.golden.csv", []string{"--format=csv"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls []readCall
			args := append([]string{"--nats.url=" + s.ClientURL(), "--jetstream.stream=FACEID", "--from=2026-11-24", "--to=2026-11-25"}, tc.args...)
			code, stdout, stderr := runLedgerWith(t, fakeReader(&calls, tc.rows, nil), args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			checkGolden(t, filepath.Join("testdata/ledger", tc.golden), stdout)
			want := readCall{"faceid-checkpoints", "FACEID", "faceid-exporter", day(t, "2026-11-24"), day(t, "2026-11-25")}
			if len(calls) != 1 || calls[0] != want {
				t.Errorf("reader calls %+v, want one %+v", calls, want)
			}
		})
	}
	t.Run("csv_reads_back", func(t *testing.T) {
		var calls []readCall
		code, stdout, stderr := runLedgerWith(t, fakeReader(&calls, ledgerRows, nil),
			"--nats.url="+s.ClientURL(), "--jetstream.stream=FACEID", "--from=2026-11-24", "--to=2026-11-25", "--format=csv")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		got, err := ledger.ReadCSV(strings.NewReader(stdout))
		if err != nil {
			t.Fatal(err)
		}
		want := append([]ledger.Row(nil), ledgerRows...)
		ledger.SortRows(want)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("read back %v, want %v", got, want)
		}
	})
	t.Run("other_group_and_bucket_flags", func(t *testing.T) {
		var calls []readCall
		code, _, stderr := runLedgerWith(t, fakeReader(&calls, nil, nil), "--nats.url="+s.ClientURL(), "--jetstream.stream=FACEID",
			"--jetstream.consumer=billing", "--jetstream.checkpoint-bucket=faceid-checkpoints", "--from=2026-11-25", "--to=2026-11-25")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		want := readCall{"faceid-checkpoints", "FACEID", "billing", day(t, "2026-11-25"), day(t, "2026-11-25")}
		if len(calls) != 1 || calls[0] != want {
			t.Errorf("reader calls %+v, want one %+v", calls, want)
		}
	})
}

// TestLedgerReadsCheckpoints runs the registered command, with ledger.Read,
// on real checkpoints: the rows of the days asked for, summed over the
// group's partitions, and nothing of another group.
func TestLedgerReadsCheckpoints(t *testing.T) {
	s := checkpointServer(t)
	tests := []struct {
		name, golden string
		args         []string
	}{
		{"csv", "checkpoints.golden.csv", []string{"--format=csv"}},
		{"json", "checkpoints.golden.json", []string{"--format=json"}},
		{"table", "checkpoints.golden.txt", nil},
		{"billing_group", "checkpoints_billing.golden.csv", []string{"--format=csv", "--jetstream.consumer=billing"}},
		{"one_day", "checkpoints_one_day.golden.csv", []string{"--format=csv", "--to=2026-11-24"}},
		{"no_rows_in_range", "checkpoints_none.golden.csv", []string{"--format=csv", "--from=2026-12-01", "--to=2026-12-31"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"ledger", "--nats.url=" + s.ClientURL(), "--jetstream.stream=FACEID"}
			if !slices.ContainsFunc(tc.args, func(a string) bool { return strings.HasPrefix(a, "--from=") }) {
				args = append(args, "--from=2026-11-24")
			}
			if !slices.ContainsFunc(tc.args, func(a string) bool { return strings.HasPrefix(a, "--to=") }) {
				args = append(args, "--to=2026-11-25")
			}
			args = append(args, tc.args...)
			code, stdout, stderr := runCLI(t, "", args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			checkGolden(t, filepath.Join("testdata/ledger", tc.golden), stdout)
		})
	}
}

// TestLedgerNoBooks runs the registered command where there is nothing to
// read.
func TestLedgerNoBooks(t *testing.T) {
	s := checkpointServer(t)
	empty := natstest.RunServer(t)
	core := natstest.RunServer(t, natstest.CoreOnly)
	days := []string{"--from=2026-11-24", "--to=2026-11-25"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bucket_missing", []string{"--nats.url=" + empty.ClientURL(), "--jetstream.stream=FACEID"},
			`no checkpoint bucket "faceid-checkpoints" on this server: has an exporter run with --jetstream.stream FACEID?`},
		{"named_bucket_missing", []string{"--nats.url=" + s.ClientURL(), "--jetstream.stream=FACEID", "--jetstream.checkpoint-bucket=books"},
			`no checkpoint bucket "books" on this server: has an exporter run with --jetstream.stream FACEID?`},
		{"group_without_checkpoint", []string{"--nats.url=" + s.ClientURL(), "--jetstream.stream=FACEID", "--jetstream.consumer=standby"},
			`no checkpoint of group "standby" on stream "FACEID" in bucket "faceid-checkpoints" (groups with one: billing, faceid-exporter): has an exporter run with --jetstream.stream FACEID --jetstream.consumer standby?`},
		{"stream_without_checkpoint", []string{"--nats.url=" + s.ClientURL(), "--jetstream.stream=ELSEWHERE"},
			`no checkpoint of group "faceid-exporter" on stream "ELSEWHERE" in bucket "faceid-checkpoints" (no group has one): has an exporter run with --jetstream.stream ELSEWHERE --jetstream.consumer faceid-exporter?`},
		{"no_jetstream", []string{"--nats.url=" + core.ClientURL(), "--jetstream.stream=FACEID"},
			`open checkpoint bucket "faceid-checkpoints": nats: no responders available for request: is JetStream enabled for this account on this server? the checkpoints live in JetStream`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, "", append(append([]string{"ledger"}, tc.args...), days...)...)
			if want := "exporter ledger: " + tc.want + "\n"; code != 1 || stderr != want {
				t.Errorf("exit %d, stderr:\n%s\nwant exit 1, stderr:\n%s", code, stderr, want)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}
}

// TestLedgerReadFails checks that a failed or slow read exits 1 and prints
// no partial books.
func TestLedgerReadFails(t *testing.T) {
	s := checkpointServer(t)
	args := []string{"--nats.url=" + s.ClientURL(), "--jetstream.stream=FACEID", "--from=2026-11-24", "--to=2026-11-25"}
	t.Run("error", func(t *testing.T) {
		var calls []readCall
		code, stdout, stderr := runLedgerWith(t, fakeReader(&calls, ledgerRows, errors.New("blob 0f3a: not found")), args...)
		want := `exporter ledger: read the ledger of group "faceid-exporter" on stream "FACEID": blob 0f3a: not found` + "\n"
		if code != 1 || stderr != want || stdout != "" {
			t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant exit 1, no stdout, stderr:\n%s", code, stdout, stderr, want)
		}
	})
	t.Run("no_books", func(t *testing.T) {
		none := func(context.Context, jetstream.KeyValue, string, string, ledger.Day, ledger.Day) ([]ledger.Row, error) {
			return nil, fmt.Errorf("%w for stream FACEID and group faceid-exporter", ledger.ErrNoBooks)
		}
		code, stdout, stderr := runLedgerWith(t, none, args...)
		want := `exporter ledger: no checkpoint of group "faceid-exporter" on stream "FACEID" in bucket "faceid-checkpoints" (groups with one: billing, faceid-exporter): has an exporter run with --jetstream.stream FACEID --jetstream.consumer faceid-exporter?` + "\n"
		if code != 1 || stderr != want || stdout != "" {
			t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant exit 1, no stdout, stderr:\n%s", code, stdout, stderr, want)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		slow := func(ctx context.Context, _ jetstream.KeyValue, _, _ string, _, _ ledger.Day) ([]ledger.Row, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		start := time.Now()
		code, stdout, stderr := runLedgerWith(t, slow, append(args, "--timeout=300ms")...)
		want := `exporter ledger: read the ledger of group "faceid-exporter" on stream "FACEID": context deadline exceeded (--timeout 300ms)` + "\n"
		if code != 1 || stderr != want || stdout != "" {
			t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant exit 1, no stdout, stderr:\n%s", code, stdout, stderr, want)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %s with --timeout 300ms", d)
		}
	})
	t.Run("invalid_rows", func(t *testing.T) {
		var calls []readCall
		bad := []ledger.Row{{Day: "2026-11-24", Channel: "app_sdk", Code: "0", Billable: "maybe", Count: 1}}
		code, stdout, stderr := runLedgerWith(t, fakeReader(&calls, bad, nil), append(args, "--format=csv")...)
		want := `exporter ledger: write ledger csv: row 1: billable "maybe": want true, false or unknown` + "\n"
		if code != 1 || stderr != want || stdout != "" {
			t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant exit 1, no stdout, stderr:\n%s", code, stdout, stderr, want)
		}
	})
}
