package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/promslog"

	"github.com/faceid-observability/faceid-exporter/internal/golden"
	"github.com/faceid-observability/faceid-exporter/internal/natstest"
	"github.com/faceid-observability/faceid-exporter/internal/promtest"
	"github.com/faceid-observability/faceid-exporter/internal/tencenttest"
	"github.com/faceid-observability/faceid-exporter/pkg/checkpoint"
	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
	"github.com/faceid-observability/faceid-exporter/pkg/reconcile"
)

// The hand-built scenario of pkg/reconcile (its README says what each day holds).
const (
	scenarioDir    = "../../pkg/reconcile/testdata/scenario"
	scenarioLedger = scenarioDir + "/ledger.csv"
	scenarioBills  = scenarioDir + "/bills"
	reconcileCfg   = "testdata/reconcile/config.yml"
)

// reconcileNow: 2024-03-06 is not complete at Tencent yet.
var reconcileNow = time.Date(2024, 3, 7, 5, 0, 0, 0, ledger.Beijing)

func runReconcile(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = runContext(context.Background(), append([]string{"reconcile"}, args...),
		env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, now: func() time.Time { return reconcileNow }})
	return code, out.String(), errb.String()
}

var personalData = []string{"Idcard", "Name\"", "1101**********", "*三"}

func TestReconcileGolden(t *testing.T) {
	for _, format := range []string{"table", "csv", "json"} {
		t.Run(format, func(t *testing.T) {
			code, out, errOut := runReconcile(t, "--from=2024-03-01", "--to=2024-03-06", "--format="+format,
				"--ledger.file="+scenarioLedger, "--tencent.bill-dir="+scenarioBills, "--config.file="+reconcileCfg)
			if code != 1 {
				t.Fatalf("exit %d, want 1 (mismatch and missing days)\n%s", code, errOut)
			}
			ext := map[string]string{"table": "txt", "csv": "csv", "json": "json"}[format]
			checkGolden(t, "testdata/reconcile/report.golden."+ext, out)
			checkGolden(t, "testdata/reconcile/report.golden."+ext+".stderr", errOut)
			for _, p := range personalData {
				if strings.Contains(out+errOut, p) {
					t.Errorf("the report shows %q", p)
				}
			}
		})
	}
	code, out, _ := runReconcile(t, "--from=2024-03-01", "--to=2024-03-06", "--format=csv",
		"--ledger.file="+scenarioLedger, "--tencent.bill-dir="+scenarioBills)
	if code != 1 || !strings.HasPrefix(out, "day,rule_id,ours_billable,tencent_charged,difference,status") {
		t.Errorf("exit %d, CSV starts %q", code, strings.SplitN(out, "\n", 2)[0])
	}
}

func TestReconcileExit(t *testing.T) {
	src := []string{"--ledger.file=" + scenarioLedger, "--tencent.bill-dir=" + scenarioBills}
	dir := t.TempDir()
	idFile, keyFile := filepath.Join(dir, "id"), filepath.Join(dir, "key")
	for _, f := range []string{idFile, keyFile} {
		if err := os.WriteFile(f, []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string // the last line of standard error
	}{
		{"match", append([]string{"--from=2024-03-01", "--to=2024-03-01"}, src...), 0, ""},
		{"pending_only", append([]string{"--from=2024-03-06", "--to=2024-03-06"}, src...), 0, ""},
		{"mismatch", append([]string{"--from=2024-03-01", "--to=2024-03-02"}, src...), 1,
			"exporter reconcile: 2 days: 1 match, 1 mismatch, 0 missing, 0 pending: the books and the bill disagree"},
		{"within_tolerance", append([]string{"--from=2024-03-02", "--to=2024-03-02", "--reconcile.tolerance=0.5"}, src...), 0, ""},
		{"missing", append([]string{"--from=2024-03-03", "--to=2024-03-03"}, src...), 1,
			"exporter reconcile: 1 days: 0 match, 0 mismatch, 1 missing, 0 pending: the books and the bill disagree"},
		{"bad_day", append([]string{"--from=2024-3-1", "--to=2024-03-01"}, src...), 2,
			`exporter reconcile: from: day "2024-3-1" is not YYYY-MM-DD: parsing time "2024-3-1" as "2006-01-02": cannot parse "3-1" as "01"`},
		{"reversed", append([]string{"--from=2024-03-02", "--to=2024-03-01"}, src...), 2, "exporter reconcile: to 2024-03-01 is before from 2024-03-02"},
		{"no_from", append([]string{"--to=2024-03-01"}, src...), 2, "exporter: required flag(s) '--from' not provided"},
		{"bad_format", append([]string{"--from=2024-03-01", "--to=2024-03-01", "--format=xml"}, src...), 2,
			"exporter: --format: enum value must be one of table,csv,json, got 'xml'"},
		{"no_ledger", []string{"--from=2024-03-01", "--to=2024-03-01", "--tencent.bill-dir=" + scenarioBills}, 2,
			"exporter reconcile: no ledger: give --ledger.file, or --nats.url and --jetstream.stream"},
		{"two_ledgers", append([]string{"--from=2024-03-01", "--to=2024-03-01", "--nats.url=nats://127.0.0.1:1"}, src...), 2,
			"exporter reconcile: give --ledger.file or --nats.url, not both"},
		{"nats_without_stream", []string{"--from=2024-03-01", "--to=2024-03-01", "--nats.url=nats://127.0.0.1:1", "--tencent.bill-dir=" + scenarioBills}, 2,
			"exporter reconcile: --nats.url needs --jetstream.stream: the books are kept in JetStream mode"},
		{"ledger_file_missing", []string{"--from=2024-03-01", "--to=2024-03-01", "--ledger.file=" + filepath.Join(dir, "none.csv"), "--tencent.bill-dir=" + scenarioBills}, 2,
			"exporter reconcile: read ledger file: open " + filepath.Join(dir, "none.csv") + ": no such file or directory"},
		{"no_bill_source", []string{"--from=2024-03-01", "--to=2024-03-01", "--ledger.file=" + scenarioLedger}, 2,
			"exporter reconcile: no bill source: give --tencent.bill-dir, or --tencent.secret-id-file and --tencent.secret-key-file for the live API"},
		{"two_bill_sources", append([]string{"--from=2024-03-01", "--to=2024-03-01", "--tencent.secret-id-file=" + idFile, "--tencent.secret-key-file=" + keyFile}, src...), 2,
			"exporter reconcile: give --tencent.bill-dir or the live API's --tencent.secret-id-file and --tencent.secret-key-file, not both"},
		{"one_secret_file", []string{"--from=2024-03-01", "--to=2024-03-01", "--ledger.file=" + scenarioLedger, "--tencent.secret-id-file=" + idFile}, 2,
			"exporter reconcile: the live API needs both --tencent.secret-id-file and --tencent.secret-key-file"},
		{"save_dir_offline", append([]string{"--from=2024-03-01", "--to=2024-03-01", "--tencent.save-dir=" + dir}, src...), 2,
			"exporter reconcile: --tencent.save-dir keeps what the live API returns: it needs --tencent.secret-id-file and --tencent.secret-key-file, not --tencent.bill-dir"},
		{"bill_dir_missing", []string{"--from=2024-03-01", "--to=2024-03-01", "--ledger.file=" + scenarioLedger, "--tencent.bill-dir=" + filepath.Join(dir, "none")}, 2,
			"exporter reconcile: bill dir: open " + filepath.Join(dir, "none") + ": no such file or directory"},
		{"bad_tolerance", append([]string{"--from=2024-03-01", "--to=2024-03-01", "--reconcile.tolerance=1.5"}, src...), 2,
			"exporter reconcile: reconcile: tolerance 1.5 is not a fraction from 0 to 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runReconcile(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			lines := strings.Split(strings.TrimRight(errOut, "\n"), "\n")
			if last := lines[len(lines)-1]; last != tc.stderr {
				t.Errorf("stderr ends\n%s\nwant\n%s", last, tc.stderr)
			}
			if tc.code != 2 && !strings.Contains(out, "days: ") {
				t.Errorf("no report on stdout:\n%s", out)
			}
		})
	}
}

// TestReconcileLive runs the command against the in-process Tencent
// stand-in serving the scenario's pages: the report is the offline one, and
// --tencent.save-dir keeps pages the offline reader reads the same.
func TestReconcileLive(t *testing.T) {
	pages := map[string][]string{}
	for _, name := range []string{"2024-03-01.1.json", "2024-03-02.1.json", "2024-03-02.2.json"} {
		b, err := os.ReadFile(filepath.Join(scenarioBills, name))
		if err != nil {
			t.Fatal(err)
		}
		date := name[:10]
		pages[date] = append(pages[date], string(b))
	}
	f := &tencenttest.Server{Pages: pages, Fail: map[string][]string{"2024-03-02/2": {"RequestLimitExceeded"}}}
	srv := tencenttest.Start(t, f)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ca := write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	id := write("id", []byte(tencenttest.SecretID+"\n"))
	key := write("key", []byte(tencenttest.SecretKey+"\n"))
	save := filepath.Join(dir, "saved")
	common := []string{"--from=2024-03-01", "--to=2024-03-02", "--format=csv", "--ledger.file=" + scenarioLedger, "--config.file=" + reconcileCfg}
	code, live, errOut := runReconcile(t, append(common, "--tencent.secret-id-file="+id, "--tencent.secret-key-file="+key,
		"--tencent.endpoint="+srv.Listener.Addr().String(), "--tencent.ca-file="+ca, "--tencent.save-dir="+save)...)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, errOut)
	}
	_, offline, _ := runReconcile(t, append(common, "--tencent.bill-dir="+scenarioBills)...)
	if live != offline {
		t.Errorf("live report\n%s\ndiffers from the offline one\n%s", live, offline)
	}
	var seen []string
	for _, r := range f.Requests() {
		seen = append(seen, fmt.Sprintf("%s/%d:%s", r.Date, r.Cursor, r.Answer))
	}
	want := []string{"2024-02-29/0:empty", "2024-03-01/0:page 1", "2024-03-02/0:page 1", "2024-03-02/2:RequestLimitExceeded", "2024-03-02/2:page 2"}
	if !reflect.DeepEqual(seen, want) {
		t.Errorf("requests %q, want %q", seen, want)
	}
	names := tencenttest.SavedPages(t, save, personalData)
	if want := []string{"2024-02-29.1.json", "2024-03-01.1.json", "2024-03-02.1.json", "2024-03-02.2.json"}; !reflect.DeepEqual(names, want) {
		t.Errorf("saved %q, want %q", names, want)
	}
	_, fromSaved, _ := runReconcile(t, append(common, "--tencent.bill-dir="+save)...)
	if fromSaved != offline {
		t.Errorf("report from the saved pages\n%s\ndiffers from the offline one\n%s", fromSaved, offline)
	}

	// A wrong key: Tencent's refusal, exit 2.
	wrong := write("wrong", []byte("not-the-key\n"))
	code, _, errOut = runReconcile(t, append(common, "--tencent.secret-id-file="+id, "--tencent.secret-key-file="+wrong,
		"--tencent.endpoint="+srv.Listener.Addr().String(), "--tencent.ca-file="+ca)...)
	if code != 2 || !strings.Contains(errOut, "tencent cloud error AuthFailure.SignatureFailure") {
		t.Errorf("wrong key: exit %d\n%s", code, errOut)
	}
	if strings.Contains(errOut, "not-the-key") {
		t.Error("the secret key was printed")
	}
}

// commitBooks commits rows as the checkpoints of two partitions of a group,
// the way serve does: one day file per day and partition, and a record.
func commitBooks(t *testing.T, kv jetstream.KeyValue, stream, group string, rows []ledger.Row) {
	t.Helper()
	ctx := context.Background()
	st := checkpoint.NewStore(kv, stream, group)
	days := [2]map[string][]ledger.Row{{}, {}}
	for i, r := range rows {
		days[i%2][r.Day] = append(days[i%2][r.Day], r)
	}
	for p, byDay := range days {
		rec := &checkpoint.Record{Version: checkpoint.Version, Stream: stream, Group: group, Partition: p, Partitions: 2,
			Owner: "test", Epoch: 1, Days: map[string]checkpoint.Ref{}}
		for d, rs := range byDay {
			data, err := json.Marshal(ledger.DayFile{Day: d, Rows: rs})
			if err != nil {
				t.Fatal(err)
			}
			ref, _, err := st.Put(ctx, st.DataKey(p, 1, checkpoint.DayKind(d), 0), data)
			if err != nil {
				t.Fatal(err)
			}
			rec.Days[d] = ref
		}
		if _, err := st.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReconcileNATS reads the committed books of a group from the checkpoint
// bucket of an in-process NATS server (ledger.Read): the report is the one
// of the ledger file.
func TestReconcileNATS(t *testing.T) {
	s := natstest.RunServer(t)
	args := []string{"--from=2024-03-01", "--to=2024-03-06", "--nats.url=" + s.ClientURL(), "--jetstream.stream=FACEID",
		"--tencent.bill-dir=" + scenarioBills, "--config.file=" + reconcileCfg}
	code, _, errOut := runReconcile(t, args...)
	if want := "exporter reconcile: checkpoint bucket faceid-checkpoints not found: no exporter has kept books in JetStream mode on this server (--jetstream.checkpoint-bucket)\n"; code != 2 || errOut != want {
		t.Errorf("no bucket: exit %d, stderr %q, want 2, %q", code, errOut, want)
	}

	nc := natstest.Connect(t, s.ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := checkpoint.OpenBucket(context.Background(), js, checkpoint.BucketOptions{Bucket: "faceid-checkpoints", Create: true})
	if err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runReconcile(t, args...)
	if want := "exporter reconcile: read the ledger of stream FACEID, group faceid-exporter: no checkpoint for stream FACEID and group faceid-exporter in bucket faceid-checkpoints\n"; code != 2 || errOut != want {
		t.Errorf("no checkpoint: exit %d, stderr %q, want 2, %q", code, errOut, want)
	}

	rows, err := reconcile.LedgerFile{Path: scenarioLedger}.Rows(context.Background(), 0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	commitBooks(t, kv, "FACEID", "g1", rows)
	code, out, errOut := runReconcile(t, append(args, "--jetstream.consumer=g1")...)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, errOut)
	}
	want, err := os.ReadFile("testdata/reconcile/report.golden.txt")
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Errorf("report from NATS differs from the ledger file's:\n%s", golden.LineDiff(string(want), out))
	}
}

// TestReconcileServeFlags: the flags serve gets build a Runner that exports
// faceid_reconcile_* on the registry given.
func TestReconcileServeFlags(t *testing.T) {
	cat, err := classify.Default()
	if err != nil {
		t.Fatal(err)
	}
	parse := func(t *testing.T, args ...string) *reconcileServeFlags {
		t.Helper()
		app := kingpin.New("exporter", "")
		cmd := app.Command("serve", "")
		f := addReconcileServeFlags(cmd)
		if _, err := app.Parse(append([]string{"serve"}, args...)); err != nil {
			t.Fatal(err)
		}
		return f
	}
	defaults := map[string]string{}
	{
		app := kingpin.New("exporter", "")
		cmd := app.Command("serve", "")
		addReconcileServeFlags(cmd)
		for _, fl := range cmd.Model().Flags {
			defaults[fl.Name] = strings.Join(fl.Default, ",")
		}
	}
	wantDefaults := map[string]string{"reconcile.interval": "0", "reconcile.tolerance": "0", "tencent.bill-dir": "", "tencent.secret-id-file": "",
		"tencent.secret-key-file": "", "tencent.region": "", "tencent.endpoint": "faceid.tencentcloudapi.com", "tencent.ca-file": "", "tencent.save-dir": ""}
	if !reflect.DeepEqual(defaults, wantDefaults) {
		t.Errorf("flags and defaults %v, want %v", defaults, wantDefaults)
	}
	books := reconcile.LedgerFile{Path: scenarioLedger}
	now := func() time.Time { return time.Date(2024, 3, 3, 6, 0, 0, 0, ledger.Beijing) }
	log := promslog.NewNopLogger()

	if r, err := parse(t).runner(cat, books, nil, prometheus.NewRegistry(), now, log); r != nil || err != nil {
		t.Errorf("off by default: runner %v, error %v", r, err)
	}
	if _, err := parse(t, "--tencent.bill-dir="+scenarioBills).runner(cat, books, nil, prometheus.NewRegistry(), now, log); err == nil ||
		err.Error() != "the --tencent.* flags need --reconcile.interval" {
		t.Errorf("tencent flags without interval: %v", err)
	}
	reg := prometheus.NewRegistry()
	r, err := parse(t, "--reconcile.interval=1h", "--reconcile.tolerance=0.25", "--tencent.bill-dir="+scenarioBills).runner(cat, books, []string{"1", "2"}, reg, now, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]float64{}
	for _, mf := range mfs {
		got[mf.GetName()] = promtest.Series(mf)
	}
	// 2024-03-02: 4 ours, 7 charged; |−3| > 0.25 × 7.
	k := "day_offset=1,family=wechat"
	for name, v := range map[string]float64{"faceid_reconcile_ours_billable": 4, "faceid_reconcile_tencent_charged": 7, "faceid_reconcile_mismatch": 1} {
		if got[name][k] != v {
			t.Errorf("%s = %v, want %v", name, got[name], v)
		}
	}
}
