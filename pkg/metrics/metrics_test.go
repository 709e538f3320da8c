package metrics_test

import (
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/faceid-observability/faceid-exporter/pkg/books"
	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/metrics"
)

func catalog(t testing.TB) *classify.Catalog {
	t.Helper()
	cat, err := classify.Default()
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// populate counts one event for every series of the event metrics.
func populate(m *metrics.Metrics, b *books.Books, cat *classify.Catalog) {
	now := time.Now().UnixNano()
	var r classify.Result
	for _, ch := range cat.Channels {
		r = classify.Result{Channel: ch, Family: ch.Family, DeviceLevel: -1, RiskLevel: -1, TS: time.Unix(0, now-1e9), TSFromEvent: true}
		for _, code := range cat.Codes {
			if code.Family != ch.Family.Name {
				continue
			}
			r.Code = code
			r.Outcome = classify.OutcomeFailure
			if code.Code == "0" {
				r.Outcome = classify.OutcomeSuccess
			}
			for _, bl := range []classify.Billable{classify.BillableFalse, classify.BillableTrue, classify.BillableUnknown} {
				r.Billable = bl
				b.Apply(&r)
			}
		}
		r.Code, r.Billable = nil, classify.BillableUnknown
		for _, o := range []classify.Outcome{classify.OutcomeFailure, classify.OutcomeSuccess} {
			r.Outcome = o
			b.Apply(&r)
		}
		r.Outcome = classify.OutcomeFailure
		for rk := classify.RiskUnknown; rk <= classify.RiskHigh; rk++ {
			r.Risk = rk
			b.Apply(&r)
		}
		for l := 0; l <= max(cat.DeviceLevel.Max, cat.RiskLevel.Max); l++ {
			r.DeviceLevel, r.RiskLevel = min(l, cat.DeviceLevel.Max), min(l, cat.RiskLevel.Max)
			b.Apply(&r)
		}
		r.DeviceLevel, r.RiskLevel = -1, -1
		for p := classify.PlatformUnknown; p <= classify.PlatformOther; p++ {
			r.Platform = p
			for _, t := range cat.DeviceTags {
				r.DeviceTags[0], r.NDeviceTags = t, 1
				b.Apply(&r)
			}
			r.NDeviceTags, r.UnknownDeviceTags = 0, 1
			b.Apply(&r)
			r.UnknownDeviceTags = 0
		}
		for _, t := range cat.IdentityTags {
			r.IdentityTags[0], r.NIdentityTags = t, 1
			b.Apply(&r)
		}
		r.NIdentityTags, r.UnknownIdentityTags = 0, 2
		r.Problems = ^classify.Problem(0)
		b.Apply(&r)
	}
	for _, reason := range classify.Reasons() {
		b.Reject(reason)
		b.DeadLettered(reason)
	}
	b.AddLost(1)
	b.StreamReset()
	m.Counted(&r, now)
	m.CountedAt(time.Unix(0, now))
	m.DeadLetterError()
	m.ObserveProcessing(3 * time.Microsecond)
	m.SetConnected(true)
	m.Reconnected()
	m.Disconnected()
	m.Dropped(2)
	m.CheckpointDone(time.Millisecond, 100)
	m.CheckpointFailed(true)
	m.CheckpointFailed(false)
	m.Takeover(0)
	m.ReceivedCounter(true).Inc()
	m.ReceivedCounter(false).Inc()
}

// partitionSource exposes one checkpointed partition of a group of two.
func partitionSource(l *books.Layout, b *books.Books) metrics.Source {
	return metrics.Source{
		Layout: l, Partitions: 2,
		Owned: func() []metrics.Partition {
			return []metrics.Partition{{ID: 0, Books: b, Checkpointed: true, Seq: 42, CommittedAt: time.Unix(1764547200, 0), Lag: 3, Replay: 7, Bytes: 1234}}
		},
		Ages: func(time.Time) []time.Duration { return []time.Duration{time.Second, time.Minute} },
	}
}

func fullRegistry(t testing.TB, business bool) (*prometheus.Registry, *metrics.Metrics, *classify.Catalog) {
	cat := catalog(t)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	opts := metrics.Options{
		Pricing: &metrics.Pricing{Currency: "CNY", MonthlyBudget: 50000, HasBudget: true, UnitPrice: map[string]float64{"wechat_h5": 1, "app_sdk": 1.5}},
	}
	var lo books.LayoutOptions
	if business {
		lo.AppIDs, lo.RuleIDs = []string{"app-a", "app-b"}, []string{"r1"}
	}
	m := metrics.New(reg, cat, opts)
	l := books.NewLayout(cat, lo)
	b := books.New(l, books.RulesOptions{})
	metrics.NewBooks(reg, partitionSource(l, b), opts.Pricing)
	populate(m, b, cat)
	return reg, m, cat
}

func exposition(t testing.TB, reg *prometheus.Registry) []byte {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.Bytes()
}

// TestLint runs client_golang's linter and the real promtool on the output
// with every series populated.
func TestLint(t *testing.T) {
	reg, _, _ := fullRegistry(t, true)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found (Debian package prometheus): %v", err)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(exposition(t, reg))
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestSeriesBound checks that with every series populated the event metrics
// hold exactly as many series as SeriesBound documents, at most.
func TestSeriesBound(t *testing.T) {
	reg, _, cat := fullRegistry(t, false)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	eventFamilies := map[string]bool{
		"faceid_verifications_total": true, "faceid_risk_events_total": true, "faceid_device_level_events_total": true,
		"faceid_identity_level_events_total": true, "faceid_device_tags_total": true, "faceid_identity_tags_total": true,
		"faceid_exporter_unknown_codes_total": true, "faceid_exporter_event_problems_total": true, "faceid_code_info": true,
		"faceid_exporter_duplicates_total": true, "faceid_exporter_events_rejected_total": true, "faceid_exporter_dead_letters_total": true,
		"faceid_exporter_dedupe_evictions_total": true, "faceid_exporter_reqid_evictions_total": true,
		"faceid_exporter_jetstream_lost_messages_total": true, "faceid_exporter_jetstream_stream_resets_total": true,
		"faceid_exporter_ledger_too_old_events_total": true, "faceid_billed_month_to_date": true, "faceid_cost_month_to_date": true,
	}
	n := 0
	for _, mf := range mfs {
		if eventFamilies[mf.GetName()] {
			n += len(mf.Metric)
		}
	}
	bound, _ := metrics.SeriesBound(cat, 0, 0, false)
	if n > bound {
		t.Errorf("%d event series, over the documented bound %d", n, bound)
	}
	if n < bound*8/10 {
		t.Errorf("%d event series populated of a bound of %d: the bound is loose or populate misses series", n, bound)
	}
	t.Logf("%d event series populated, bound %d", n, bound)
}

func TestCountsAndLabels(t *testing.T) {
	cat := catalog(t)
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, cat, metrics.Options{})
	l := books.NewLayout(cat, books.LayoutOptions{AppIDs: []string{"app-a"}, RuleIDs: []string{}})
	b := books.New(l, books.RulesOptions{})
	bc := metrics.NewBooks(reg, metrics.Source{Layout: l, Owned: func() []metrics.Partition { return []metrics.Partition{{ID: 0, Books: b}} }}, nil)
	c := classify.New(cat, classify.Options{})
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	msgs := []string{
		`{"id":"1","channel":"wechat_h5","code":"2006","app_id":"app-a","rule_id":"r9","ts":"2026-11-26T17:59:58+08:00","risk":{"device_level":3,"risk_level":1,"device_tags":["202","99999"],"risk_tags":["02"],"platform":"android"}}`,
		`{"id":"2","channel":"wechat_h5","code":"0","app_id":"app-z"}`,
		`{"id":"3","channel":"app_sdk","code":"123456789"}`,
	}
	var r classify.Result
	for _, msg := range msgs {
		if err := c.Classify([]byte(msg), nil, now, &r); err != nil {
			t.Fatal(err)
		}
		b.Apply(&r)
		m.Counted(&r, now.UnixNano())
	}
	m.CountedAt(time.Now())
	want := `
# HELP faceid_business_verifications_total Verification results that are not duplicates by channel and the allowlisted business dimensions app_id and rule_id ("other" when not allowlisted, "none" when absent), outcome and billability.
# TYPE faceid_business_verifications_total counter
faceid_business_verifications_total{app_id="app-a",billable="true",channel="wechat_h5",outcome="failure",partition="0",rule_id="other"} 1
faceid_business_verifications_total{app_id="none",billable="unknown",channel="app_sdk",outcome="failure",partition="0",rule_id="none"} 1
faceid_business_verifications_total{app_id="other",billable="true",channel="wechat_h5",outcome="success",partition="0",rule_id="none"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "faceid_business_verifications_total"); err != nil {
		t.Error(err)
	}
	v := func(name string, labels ...string) float64 {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
		next:
			for _, met := range mf.Metric {
				for i := 0; i+1 < len(labels); i += 2 {
					found := false
					for _, l := range met.Label {
						found = found || (l.GetName() == labels[i] && l.GetValue() == labels[i+1])
					}
					if !found {
						continue next
					}
				}
				if met.Counter != nil {
					return met.Counter.GetValue()
				}
				return met.Gauge.GetValue()
			}
		}
		return -1
	}
	checks := []struct {
		name   string
		got    float64
		expect float64
	}{
		{"billable failure", v("faceid_verifications_total", "channel", "wechat_h5", "code", "2006", "outcome", "failure", "billable", "true"), 1},
		{"unknown code", v("faceid_verifications_total", "channel", "app_sdk", "code", "unknown", "billable", "unknown"), 1},
		{"unknown per channel", v("faceid_exporter_unknown_codes_total", "channel", "app_sdk"), 1},
		{"high risk", v("faceid_risk_events_total", "channel", "wechat_h5", "risk", "high"), 1},
		{"device level 3", v("faceid_device_level_events_total", "channel", "wechat_h5", "level", "3"), 1},
		{"device level absent", v("faceid_device_level_events_total", "channel", "wechat_h5", "level", "absent"), 1},
		{"identity level 1", v("faceid_identity_level_events_total", "channel", "wechat_h5", "level", "1"), 1},
		{"device tag 202", v("faceid_device_tags_total", "channel", "wechat_h5", "tag", "202", "platform", "android"), 1},
		{"unknown device tag", v("faceid_device_tags_total", "channel", "wechat_h5", "tag", "unknown", "name", "unknown", "platform", "android"), 1},
		{"identity tag 02", v("faceid_identity_tags_total", "channel", "wechat_h5", "tag", "02"), 1},
		{"problem", v("faceid_exporter_event_problems_total", "problem", "unknown_device_tag"), 1},
		{"code info", v("faceid_code_info", "family", "wechat", "code", "2006"), 1},
		{"delay observed once", histCount(t, reg, "faceid_exporter_event_delay_seconds"), 1},
	}
	for _, c := range checks {
		if c.got != c.expect {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.expect)
		}
	}
	if got := m.LastEvent(); time.Since(got) > time.Minute {
		t.Errorf("last event %v, want about now", got)
	}
	// The Chinese meaning is a label value of faceid_code_info.
	if !bytes.Contains(exposition(t, reg), []byte(`code="2006",family="wechat",meaning="姓名和身份证号不一致，请核实后重试"`)) {
		t.Error("faceid_code_info does not carry the meaning of 2006")
	}
	rows := bc.Summary()
	if len(rows) != len(cat.Channels)*2*3 {
		t.Errorf("%d summary rows, want %d", len(rows), len(cat.Channels)*2*3)
	}
	for _, row := range rows {
		want := uint64(0)
		if row.Channel == "wechat_h5" && row.Billable == "true" || row.Channel == "app_sdk" && row.Billable == "unknown" && row.Outcome == "failure" {
			want = 1
		}
		if row.Count != want {
			t.Errorf("summary %+v, want count %d", row, want)
		}
	}
}

func histCount(t testing.TB, reg *prometheus.Registry, name string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return float64(mf.Metric[0].GetHistogram().GetSampleCount())
		}
	}
	return -1
}

// BenchmarkScrape measures a /metrics scrape with every catalog series
// populated (target ≤ 10 ms), beside the Go runtime collectors alone.
func BenchmarkScrape(b *testing.B) {
	full, _, _ := fullRegistry(b, false)
	base := prometheus.NewRegistry()
	base.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, bc := range []struct {
		name string
		reg  *prometheus.Registry
	}{{"runtime_only", base}, {"all_series", full}} {
		b.Run(bc.name, func(b *testing.B) {
			h := promhttp.HandlerFor(bc.reg, promhttp.HandlerOpts{})
			req := httptest.NewRequest("GET", "/metrics", nil).WithContext(context.Background())
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				_, _ = io.Copy(io.Discard, rec.Body)
			}
		})
	}
}
