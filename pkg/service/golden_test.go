package service_test

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/faceid-observability/faceid-exporter/internal/golden"
	"github.com/faceid-observability/faceid-exporter/pkg/api"
	"github.com/faceid-observability/faceid-exporter/pkg/books"
	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/config"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
	"github.com/faceid-observability/faceid-exporter/pkg/metrics"
	"github.com/faceid-observability/faceid-exporter/pkg/service"
)

var update = flag.Bool("update", false, "rewrite testdata/metrics.golden")

const goldenMetrics = "testdata/metrics.golden"

// goldenExcluded are the families left out of the golden file, each because
// its value depends on the wall clock rather than on the input. Everything
// else the registry serves is compared, so a family that appears, disappears
// or changes its name, help, type, labels or values fails the test.
//
// The histograms are compared: faceid_exporter_event_delay_seconds observes
// the pipeline's fixed clock minus each event's fixed ts, and
// faceid_exporter_processing_seconds and
// faceid_exporter_checkpoint_duration_seconds hold only the fixed
// observations goldenRegistry records (the pipeline samples its wall-clock
// processing time once in metrics.ProcessingSampleEvery messages, more than
// goldenInput has). The Go, process and version collectors service.Run adds
// are not registered at all.
var goldenExcluded = []string{
	// Set from time.Now() when an event is counted (metrics.Counted), not
	// from the pipeline's clock.
	"faceid_exporter_last_event_timestamp_seconds",
}

// goldenNow is the fixed time of the golden input: the pipeline's clock (time
// of receipt) and the books collector's "now" (month to date).
var goldenNow = time.Date(2026, 12, 15, 12, 0, 0, 0, ledger.Beijing)

// goldenInput is the fixed input: subject and message. It stays below
// metrics.ProcessingSampleEvery messages, so the pipeline never samples its
// own (wall-clock) processing time.
var goldenInput = []struct{ subject, msg string }{
	// Valid events on every channel, ts in December 2026 (Beijing).
	{"faceid.results.wechat_h5", `{"id":"e01","channel":"wechat_h5","code":"0","ts":"2026-12-15T11:59:58+08:00","app_id":"app-a","rule_id":"r1"}`},
	{"faceid.results.wechat_h5", `{"id":"e02","channel":"wechat_h5","code":"2006","ts":"2026-12-14T09:00:00+08:00","app_id":"app-b","rule_id":"r1"}`},
	{"faceid.results.wechat_miniprogram", `{"id":"e03","channel":"wechat_miniprogram","code":0,"ts":"2026-12-01T00:00:00+08:00","app_id":"app-a","rule_id":"r2"}`},
	{"faceid.results.eid", `{"id":"e04","channel":"eid","code":"2007","ts":"2026-12-10T08:30:00+08:00"}`},
	// Last second of November: counted, but not in December's month to date.
	{"faceid.results.eid", `{"id":"e05","channel":"eid","code":"0","ts":"2026-11-30T23:59:59+08:00"}`},
	// Risk: high (device level 3, risk level 5), known tags.
	{"faceid.results.app_sdk", `{"id":"e06","channel":"app_sdk","code":"0","ts":"2026-12-15T11:00:00+08:00","app_id":"app-a",` +
		`"risk":{"device_level":3,"risk_level":5,"device_tags":["202","5012"],"risk_tags":["02"],"platform":"android"}}`},
	// Risk: low, an unknown device tag and an unknown identity tag; a tag
	// (205, android only) on ios.
	{"faceid.results.app_sdk", `{"id":"e07","channel":"app_sdk","code":"66660004","ts":"2026-12-15T10:30:00+08:00",` +
		`"risk":{"device_level":1,"risk_level":2,"device_tags":["9999","205"],"risk_tags":["99","19"],"platform":"ios"}}`},
	// No ts: booked at the time of receipt; no delay observed.
	{"faceid.results.standalone_h5", `{"id":"e08","channel":"standalone_h5","code":"0"}`},
	// ts in Unix milliseconds (2026-12-15T10:00:00+08:00).
	{"faceid.results.pc_h5", `{"id":"e09","channel":"pc_h5","code":"66660010","ts":1797300000000}`},
	{"faceid.results.willingness", `{"id":"e10","channel":"willingness","code":"0","ts":"2026-12-15T09:00:00+08:00"}`},
	{"faceid.results.willingness", `{"id":"e11","channel":"willingness","code":"66666006","ts":"2026-12-15T09:01:00+08:00"}`},
	// NFC: a billed success, then the same reqId within 5 minutes (not billed again).
	{"faceid.results.nfc_server", `{"id":"e12","channel":"nfc_server","code":"0","req_id":"q-1","ts":"2026-12-15T11:50:00+08:00"}`},
	{"faceid.results.nfc_server", `{"id":"e13","channel":"nfc_server","code":"0","req_id":"q-1","ts":"2026-12-15T11:52:00+08:00"}`},
	{"faceid.results.nfc_terminal", `{"id":"e14","channel":"nfc_terminal","code":"600101","ts":"2026-12-15T11:40:00+08:00"}`},
	// The channel from the subject; a ts after the time of receipt (delay 0).
	{"faceid.results.app_sdk", `{"id":"e15","code":"0","ts":"2026-12-15T12:00:30+08:00"}`},
	// A duplicate id.
	{"faceid.results.wechat_h5", `{"id":"e01","channel":"wechat_h5","code":"0","ts":"2026-12-15T11:59:58+08:00","app_id":"app-a","rule_id":"r1"}`},
	// A code the catalog does not have.
	{"faceid.results.app_sdk", `{"id":"e17","channel":"app_sdk","code":"12345","ts":"2026-12-15T11:30:00+08:00"}`},
	// Older than the books keep (ledger.DefaultRetentionDays days before the newest day).
	{"faceid.results.wechat_h5", `{"id":"e18","channel":"wechat_h5","code":"0","ts":"2025-01-01T00:00:00+08:00"}`},
	// Rejects.
	{"faceid.results.app_sdk", `{"id":"e19","channel":"app_sdk","code":`},
	{"faceid.results.fax", `{"id":"e20","channel":"fax","code":"0"}`},
	{"faceid.results.wechat_h5", `{"id":"e21","channel":"wechat_h5"}`},
	{"faceid.results.wechat_h5", `[1,2,3]`},
	{"faceid.results.wechat_h5", `{"id":"e23","channel":"wechat_h5","code":"0","ts":"yesterday"}`},
}

// goldenRegistry builds the registry as service.Run does, minus the Go,
// process and version collectors, and feeds it goldenInput.
func goldenRegistry(t *testing.T) *prometheus.Registry {
	t.Helper()
	if len(goldenInput) >= metrics.ProcessingSampleEvery {
		t.Fatalf("%d messages: the pipeline would sample its wall-clock processing time (one in %d)", len(goldenInput), metrics.ProcessingSampleEvery)
	}
	cat := catalog(t)
	p, err := config.DemoPricing(cat)
	if err != nil {
		t.Fatal(err)
	}
	file := config.Default(cat)
	file.Pricing = p
	file.Business = config.Business{AppID: []string{"app-a"}, RuleID: []string{"r1"}}

	reg := prometheus.NewRegistry()
	pricing := &metrics.Pricing{Currency: p.Currency, MonthlyBudget: p.MonthlyBudget, HasBudget: p.HasBudget, UnitPrice: p.UnitPrice}
	m := metrics.New(reg, cat, metrics.Options{Pricing: pricing})
	layout := books.NewLayout(cat, books.LayoutOptions{AppIDs: file.Business.AppID, RuleIDs: file.Business.RuleID})
	b := books.New(layout, books.RulesOptions{DedupeWindow: file.Dedupe.Window, DedupeCapacity: file.Dedupe.Capacity})
	events := api.NewEvents(api.Sizes{BillableFailure: file.Events.BillableFailure, HighRisk: file.Events.HighRisk, UnknownCode: file.Events.UnknownCode})
	h := service.NewHooks(m, events, false, nil)
	src := metrics.Source{
		Layout: layout, Partitions: 1,
		Owned: func() []metrics.Partition {
			return []metrics.Partition{{ID: 0, Books: b, Checkpointed: true, Seq: 1234,
				CommittedAt: time.Date(2026, 12, 15, 11, 59, 59, 0, ledger.Beijing), Lag: 5, Replay: 17, Bytes: 4096}}
		},
		Ages: func(time.Time) []time.Duration { return []time.Duration{1500 * time.Millisecond} },
		// As a group of one partition: not measured, so not served.
		Unpartitioned: func() (uint64, bool) { return 0, false },
		Now:           func() time.Time { return goldenNow },
	}
	summary := metrics.NewBooks(reg, src, pricing)
	if _, err := api.NewHandler(api.Options{Events: events, Gatherer: reg, Summary: summary.Summary, Since: goldenNow,
		Ready: func() (bool, string) { return true, "" }, Registerer: reg}); err != nil {
		t.Fatal(err)
	}

	pipe := service.NewPipeline(b, h, m, func() time.Time { return goldenNow })
	rejected := 0
	for _, in := range goldenInput {
		err := pipe.Process([]byte(in.msg), in.subject)
		var rej *classify.RejectError
		if errors.As(err, &rej) {
			// What the core consumer's dead-letter publisher records for
			// a rejected message it republished.
			b.Lock()
			b.DeadLettered(rej.Reason)
			b.Unlock()
			rejected++
		} else if err != nil {
			t.Fatalf("%s: %v", in.msg, err)
		}
	}
	if rejected != 5 {
		t.Fatalf("%d messages rejected, want the 5 written as rejects", rejected)
	}
	// Fixed values for what the NATS connection and the commits would record.
	m.SetConnected(true)
	m.ObserveProcessing(3 * time.Microsecond)
	m.CheckpointDone(4*time.Millisecond, 4096)
	return reg
}

// withoutExcluded gathers reg without the goldenExcluded families, and fails
// t when one of them is missing (an exclusion must name a served family).
func withoutExcluded(t *testing.T, reg prometheus.Gatherer) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		mfs, err := reg.Gather()
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		out := mfs[:0]
		for _, mf := range mfs {
			if slices.Contains(goldenExcluded, mf.GetName()) {
				seen[mf.GetName()] = true
				continue
			}
			out = append(out, mf)
		}
		for _, name := range goldenExcluded {
			if !seen[name] {
				t.Errorf("excluded family %s is not served: drop it from goldenExcluded", name)
			}
		}
		return out, nil
	})
}

// TestGoldenMetrics compares the full exposition of a fixed input with
// testdata/metrics.golden (go test ./pkg/service -run Golden -update rewrites
// it), with testutil.GatherAndCompare, and checks it with testutil's linter
// and the real promtool.
func TestGoldenMetrics(t *testing.T) {
	reg := goldenRegistry(t)
	g := withoutExcluded(t, reg)
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	enc := expfmt.NewEncoder(&text, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	if *update {
		if err := os.MkdirAll(filepath.Dir(goldenMetrics), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	golden.Check(t, goldenMetrics, text.Bytes(), *update, "go test ./pkg/service -run Golden -update")

	want, err := os.ReadFile(goldenMetrics)
	if err != nil {
		t.Fatal(err)
	}
	// No metric names: every family on either side is compared.
	if err := testutil.GatherAndCompare(g, bytes.NewReader(want)); err != nil {
		t.Errorf("GatherAndCompare with %s:\n%v", goldenMetrics, err)
	}

	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found (Debian package prometheus, /usr/bin/promtool): %v", err)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(want)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics %s: %v\n%s", goldenMetrics, err, out)
	}
}
