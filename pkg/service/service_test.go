package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
	"github.com/faceid-observability/faceid-exporter/internal/promtest"
	"github.com/faceid-observability/faceid-exporter/internal/servicetest"
	"github.com/faceid-observability/faceid-exporter/pkg/api"
	"github.com/faceid-observability/faceid-exporter/pkg/books"
	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/config"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
	"github.com/faceid-observability/faceid-exporter/pkg/metrics"
	"github.com/faceid-observability/faceid-exporter/pkg/service"
	"github.com/faceid-observability/faceid-exporter/pkg/simulate"
	"github.com/faceid-observability/faceid-exporter/pkg/stream"
)

func catalog(t testing.TB) *classify.Catalog {
	t.Helper()
	cat, err := classify.Default()
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

func logger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.DiscardHandler)
}

// started runs the service in the background and returns where it listens
// and a stop function that reports how long the stop took and its error.
func started(t *testing.T, cfg service.Config) (service.Started, func() (time.Duration, error)) {
	t.Helper()
	if cfg.Subject == "" {
		cfg.Subject = "faceid.results.>"
	}
	if cfg.File == nil {
		cfg.File = config.Default(catalog(t))
	}
	if cfg.Logger == nil {
		cfg.Logger = logger()
	}
	return servicetest.Start(t, cfg)
}

// scrape reads /metrics over HTTP and returns the samples of one family as
// labels → value.
func scrape(t testing.TB, st service.Started, name string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + st.HTTP[0].String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return promtest.Series(mfs[name])
}

func total(m map[string]float64) float64 {
	var s float64
	for _, v := range m {
		s += v
	}
	return s
}

// byCode sums faceid_verifications_total over outcome: "billable,channel,code".
func byCode(samples map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range samples {
		if v == 0 {
			continue
		}
		var kept []string
		for _, p := range strings.Split(k, ",") {
			if !strings.HasPrefix(p, "outcome=") && !strings.HasPrefix(p, "partition=") {
				kept = append(kept, strings.SplitN(p, "=", 2)[1])
			}
		}
		out[strings.Join(kept, ",")] += v
	}
	return out
}

// byReason sums samples over partitions: "reason=x" → value.
func byReason(samples map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range samples {
		for _, p := range strings.Split(k, ",") {
			if strings.HasPrefix(p, "reason=") {
				out[p] += v
			}
		}
	}
	return out
}

func reportByCode(rep simulate.Report) map[string]float64 {
	out := map[string]float64{}
	for _, r := range rep.By {
		if r.Count > 0 {
			out[r.Billable+","+r.Channel+","+r.Code] += float64(r.Count)
		}
	}
	return out
}

func equalMaps(t *testing.T, got, want map[string]float64) {
	t.Helper()
	bad := 0
	for k, w := range want {
		if got[k] != w {
			bad++
			t.Errorf("%s: got %v, want %v", k, got[k], w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			bad++
			t.Errorf("%s: got %v, want nothing", k, g)
		}
		if bad > 10 {
			t.FailNow()
		}
	}
}

// TestServiceCountsWhatTheSimulatorReports publishes the same kind of traffic through core NATS
// and through JetStream with the simulator and finds on /metrics exactly what
// the simulator reports it sent, for every (channel, code, billable); the
// malformed share is counted by reason.
func jsConfig() service.JetStream {
	return service.JetStream{Stream: "FACEID", Consumer: "faceid-exporter", CheckpointBucket: "faceid-checkpoints",
		CheckpointInterval: 200 * time.Millisecond, TakeoverTimeout: 2 * time.Second, Partitions: 1,
		CreateStream: true, StreamMaxAge: time.Hour, StreamMaxBytes: 1 << 30, DeadLetterStream: "FACEID_DEADLETTER"}
}

func TestServiceCountsWhatTheSimulatorReports(t *testing.T) {
	for _, mode := range []string{"core", "jetstream", "jetstream_3_partitions"} {
		t.Run(mode, func(t *testing.T) {
			s := natstest.RunServer(t)
			cfg := service.Config{NATS: stream.ConnOptions{URLs: s.ClientURL()}}
			if mode != "core" {
				cfg.JetStream = jsConfig()
				if mode == "jetstream_3_partitions" {
					cfg.JetStream.Partitions = 3
				}
				mode = "jetstream"
			}
			st, stop := started(t, cfg)
			ready := func() bool {
				resp, err := http.Get("http://" + st.HTTP[0].String() + "/-/ready")
				if err != nil {
					return false
				}
				resp.Body.Close()
				return resp.StatusCode == 200
			}
			natstest.WaitFor(t, 10*time.Second, "ready", ready)

			nc, err := nats.Connect(s.ClientURL())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			var pub simulate.Publisher = simulate.NewCorePublisher(nc)
			if mode == "jetstream" {
				if pub, err = simulate.NewJetStreamPublisher(t.Context(), nc, "FACEID"); err != nil {
					t.Fatal(err)
				}
			}
			cat := catalog(t)
			rep, err := simulate.Run(t.Context(), simulate.Config{Catalog: cat, Scenario: simulate.Malformed, Rate: 4000, Duration: time.Second, Seed: 7}, pub)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Sent < 3000 || rep.Errors != 0 {
				t.Fatalf("simulator sent %d with %d errors", rep.Sent, rep.Errors)
			}
			// With partitions, a subject that is not a catalog channel's is
			// read by none: those messages are measured, not counted.
			unread := int64(0)
			if cfg.JetStream.Partitions > 1 {
				unread = rep.Malformed["unknown_channel"]
				natstest.WaitFor(t, 20*time.Second, "unpartitioned messages measured", func() bool {
					return total(scrape(t, st, "faceid_exporter_jetstream_unpartitioned_messages")) == float64(unread)
				})
				delete(rep.Malformed, "unknown_channel")
			}
			natstest.WaitFor(t, 20*time.Second, "every event received", func() bool {
				return total(scrape(t, st, "faceid_exporter_events_received_total")) == float64(rep.Sent-unread)
			})
			equalMaps(t, byCode(scrape(t, st, "faceid_verifications_total")), reportByCode(rep))
			rejected := byReason(scrape(t, st, "faceid_exporter_events_rejected_total"))
			dead := byReason(scrape(t, st, "faceid_exporter_dead_letters_total"))
			for reason, n := range rep.Malformed {
				if rejected["reason="+reason] != float64(n) || dead["reason="+reason] != float64(n) {
					t.Errorf("%s: rejected %v, dead-lettered %v, want %d", reason, rejected["reason="+reason], dead["reason="+reason], n)
				}
			}
			if rep.MalformedTotal() == 0 {
				t.Error("the malformed scenario sent nothing malformed")
			}
			if mode == "jetstream" {
				// The committed ledger, served over HTTP, holds every counted
				// verification on its Beijing day.
				counted := total(scrape(t, st, "faceid_verifications_total"))
				today := ledger.DayOf(time.Now())
				url := fmt.Sprintf("http://%s/api/v1/ledger?from=%s&to=%s&format=json", st.HTTP[0], today-2, today+1)
				natstest.WaitFor(t, 10*time.Second, "the ledger holds every counted verification", func() bool {
					resp, err := http.Get(url)
					if err != nil {
						return false
					}
					defer resp.Body.Close()
					var doc struct {
						Rows []ledger.Row `json:"rows"`
					}
					if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&doc) != nil {
						return false
					}
					n := 0.0
					for _, r := range doc.Rows {
						n += float64(r.Count)
					}
					return n == counted && counted > 0
				})
				// Every dead letter is stored once in the dead-letter stream.
				js, err := jetstream.New(nc)
				if err != nil {
					t.Fatal(err)
				}
				natstest.WaitFor(t, 10*time.Second, "dead letters stored", func() bool {
					dls, err := js.Stream(t.Context(), "FACEID_DEADLETTER")
					return err == nil && dls.CachedInfo().State.Msgs == uint64(rep.MalformedTotal())
				})
			}
			took, err := stop()
			if err != nil || took > 10*time.Second {
				t.Errorf("stop: %v after %s", err, took)
			}
		})
	}
}

// TestGracefulShutdownUnderLoad cancels the service while a producer keeps
// publishing into JetStream, checks it exits cleanly within 10 s, starts it
// again and finds every published event counted exactly once over the two
// runs, with the in-memory stores and with the JetStream KV stores.
func TestGracefulShutdownUnderLoad(t *testing.T) {
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s.ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "FACEID", Subjects: []string{"faceid.results.>"}}); err != nil {
		t.Fatal(err)
	}
	cfg := service.Config{
		NATS:      stream.ConnOptions{URLs: s.ClientURL()},
		JetStream: jsConfig(),
	}
	rate, firstRun := 20000.0, 5000.0
	cat := catalog(t)
	pub, err := simulate.NewJetStreamPublisher(t.Context(), nc, "FACEID")
	if err != nil {
		t.Fatal(err)
	}
	pubCtx, stopPub := context.WithCancel(t.Context())
	repCh := make(chan simulate.Report, 1)
	go func() {
		rep, err := simulate.Run(pubCtx, simulate.Config{Catalog: cat, Scenario: simulate.Baseline, Rate: rate, Seed: 9}, pub)
		if err != nil {
			t.Error(err)
		}
		repCh <- rep
	}()

	st1, stop1 := started(t, cfg)
	natstest.WaitFor(t, 20*time.Second, "first run counting", func() bool {
		return total(scrape(t, st1, "faceid_verifications_total")) > firstRun
	})
	took, err := stop1()
	if err != nil {
		t.Fatalf("first run stopped with %v", err)
	}
	if took > 10*time.Second {
		t.Errorf("first run took %s to stop, over 10s", took)
	}
	t.Logf("first run stopped in %s under load", took)
	// Keep publishing a little while nothing consumes, then stop the producer.
	time.Sleep(200 * time.Millisecond)
	stopPub()
	rep := <-repCh
	if rep.Errors != 0 {
		t.Fatalf("producer: %d errors (%s)", rep.Errors, rep.LastError)
	}

	st2, stop2 := started(t, cfg)
	stInfo, err := js.Stream(t.Context(), "FACEID")
	if err != nil {
		t.Fatal(err)
	}
	last := stInfo.CachedInfo().State.LastSeq
	natstest.WaitFor(t, 30*time.Second, "everything consumed and committed", func() bool {
		return total(scrape(t, st2, "faceid_exporter_checkpoint_sequence")) == float64(last)
	})
	got := map[string]float64{}
	// The second run's counters continue from the first run's commit: they
	// are the whole count.
	for _, reg := range []*prometheus.Registry{st2.Registry} {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "faceid_verifications_total" {
				for _, m := range mf.Metric {
					var parts []string
					for _, l := range m.Label {
						if l.GetName() != "outcome" && l.GetName() != "partition" {
							parts = append(parts, l.GetValue())
						}
					}
					if v := m.Counter.GetValue(); v > 0 {
						got[strings.Join(parts, ",")] += v
					}
				}
			}
		}
	}
	if _, err := stop2(); err != nil {
		t.Fatal(err)
	}
	want := reportByCode(rep)
	if want["true,nfc_server,0"] == 0 || want["false,nfc_server,0"] == 0 {
		t.Fatal("the traffic has no billed and repeated NFC reqIds: nothing tests the reqId rule across the restart")
	}
	// The duplicate window and the reqId anchors came with the checkpoint:
	// the second run decided as one process would, so every row is exact.
	equalMaps(t, got, want)
	t.Logf("%d events published under load, counted over two runs", rep.Sent)
}

// TestSeriesBoundMillion runs 1,000,000 events with random channels, codes,
// tags, levels, platforms and business values through the pipeline and checks
// that the faceid_* series stay under the documented bound.
func TestSeriesBoundMillion(t *testing.T) {
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	cat := catalog(t)
	reg := prometheus.NewRegistry()
	apps, rules := []string{"app-a", "app-b"}, []string{"r1"}
	m := metrics.New(reg, cat, metrics.Options{})
	l := books.NewLayout(cat, books.LayoutOptions{AppIDs: apps, RuleIDs: rules})
	b := books.New(l, books.RulesOptions{DedupeWindow: 10 * time.Minute, DedupeCapacity: 100000})
	metrics.NewBooks(reg, metrics.Source{Layout: l, Owned: func() []metrics.Partition { return []metrics.Partition{{ID: 0, Books: b}} }}, nil)
	p := service.NewPipeline(b, service.NewHooks(m, api.NewEvents(api.Sizes{BillableFailure: 100, HighRisk: 100, UnknownCode: 100}), false, nil), m, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	channels := append([]string{"bogus", ""}, func() []string {
		var out []string
		for _, c := range cat.Channels {
			out = append(out, c.Name)
		}
		return out
	}()...)
	pick := func(cands ...string) string { return cands[rng.IntN(len(cands))] }
	randTag := func() string {
		if rng.IntN(2) == 0 {
			return cat.DeviceTags[rng.IntN(len(cat.DeviceTags))].Tag
		}
		return strconv.Itoa(rng.IntN(1 << 30))
	}
	buf := make([]byte, 0, 512)
	rejected := 0
	for i := 0; i < n; i++ {
		buf = buf[:0]
		buf = append(buf, `{"id":"e`...)
		buf = strconv.AppendInt(buf, int64(i), 10)
		buf = append(buf, `","channel":"`...)
		buf = append(buf, pick(channels...)...)
		buf = append(buf, `","code":"`...)
		if rng.IntN(2) == 0 {
			buf = append(buf, cat.Codes[rng.IntN(len(cat.Codes))].Code...)
		} else {
			buf = strconv.AppendInt(buf, rng.Int64N(1<<40)-1<<39, 10)
		}
		buf = append(buf, `","app_id":"`...)
		buf = append(buf, pick("app-a", "app-b", "x"+strconv.Itoa(rng.IntN(1e6)), "")...)
		buf = append(buf, `","rule_id":"`...)
		buf = append(buf, pick("r1", "r"+strconv.Itoa(rng.IntN(1e6)), "")...)
		buf = append(buf, `","risk":{"device_level":`...)
		buf = strconv.AppendInt(buf, int64(rng.IntN(12)-3), 10)
		buf = append(buf, `,"risk_level":`...)
		buf = strconv.AppendInt(buf, int64(rng.IntN(12)-3), 10)
		buf = append(buf, `,"platform":"`...)
		buf = append(buf, pick("android", "iOS", "harmony", "", "x"+strconv.Itoa(rng.IntN(1000)))...)
		buf = append(buf, `","device_tags":["`...)
		buf = append(buf, randTag()...)
		buf = append(buf, `","`...)
		buf = append(buf, randTag()...)
		buf = append(buf, `"],"risk_tags":["`...)
		buf = append(buf, strconv.Itoa(rng.IntN(40))...)
		buf = append(buf, `"]}}`...)
		if err := p.Process(buf, "faceid.results."+pick(channels...)); err != nil {
			rejected++
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series, businessSeries := 0, 0
	for _, mf := range mfs {
		if mf.GetName() == "faceid_business_verifications_total" {
			businessSeries += len(mf.Metric)
		} else {
			series += len(mf.Metric)
		}
	}
	eventBound, businessBound := metrics.SeriesBound(cat, len(apps), len(rules), true)
	bound := eventBound + metrics.SelfSeriesBound(cat, 0)
	t.Logf("%d events (%d rejected): %d series (bound %d), %d business series (bound %d)", n, rejected, series, bound, businessSeries, businessBound)
	if series > bound {
		t.Errorf("%d series, over the documented bound %d", series, bound)
	}
	if businessSeries > businessBound {
		t.Errorf("%d business series, over the documented bound %d", businessSeries, businessBound)
	}
	if rejected == n || rejected == 0 {
		t.Errorf("%d of %d rejected: the input should mix valid and invalid events", rejected, n)
	}
}

// TestSubjectMatches covers the dead-letter loop check.
func TestSubjectMatches(t *testing.T) {
	for _, tc := range []struct {
		pattern, subject string
		want             bool
	}{
		{"faceid.results.>", "faceid.deadletter", false},
		{"faceid.>", "faceid.deadletter", true},
		{"faceid.*", "faceid.deadletter", true},
		{"faceid.*", "faceid.dead.letter", false},
		{"faceid.results.>", "faceid.results", false},
		{"a.b", "a.b", true},
	} {
		if got := stream.SubjectMatchesFilter(tc.subject, tc.pattern); got != tc.want {
			t.Errorf("SubjectMatches(%q, %q) = %v", tc.pattern, tc.subject, got)
		}
	}
	err := service.Run(context.Background(), service.Config{Subject: "faceid.>", DeadLetterSubject: "faceid.deadletter", File: config.Default(catalog(t))})
	if err == nil || !strings.Contains(err.Error(), "dead letters would be consumed again") {
		t.Errorf("Run with a looping dead-letter subject: %v", err)
	}
}
