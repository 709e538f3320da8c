package plugin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/faceid-observability/faceid-exporter/grafana-plugin/pkg/internal/exportertest"
)

// TestRealExporter runs every query type, the resources and the stream
// against the exporter built from this repository, fed by `exporter
// simulate`, and checks the plugin's numbers against the simulator's ground
// truth and the exporter's own metrics.
func TestRealExporter(t *testing.T) {
	exp := exportertest.Start(t, exportertest.Options{})
	d := newDS(t, backend.DataSourceInstanceSettings{URL: exp.URL})
	ctx := context.Background()

	if res := health(t, d); res.Status != backend.HealthStatusOk || !strings.Contains(res.Message, ": 9 channels,") {
		t.Fatalf("health before traffic: %v %s", res.Status, res.Message)
	}

	// Streams opened before the traffic see every event.
	streamCtx, stopStreams := context.WithCancel(ctx)
	defer stopStreams()
	all, highRisk := &frameSink{}, &frameSink{}
	done := make(chan error, 2)
	for path, sink := range map[string]*frameSink{"events/all": all, "events/high_risk": highRisk} {
		go func() {
			done <- d.RunStream(streamCtx, &backend.RunStreamRequest{Path: path}, backend.NewStreamSender(sink))
		}()
	}
	waitFor(t, "two stream subscribers", func() bool {
		return d.openStreams.Load() == 2
	})

	reports := []exportertest.Report{
		exp.Simulate(t, "billable-failure-spike", 300, time.Second, 1),
		exp.Simulate(t, "high-risk-device-surge", 300, time.Second, 2),
		exp.Simulate(t, "unknown-codes", 300, time.Second, 3),
	}
	want := map[string]float64{} // channel/outcome/billable -> count
	var total, wantHigh float64
	for _, r := range reports {
		for _, b := range r.By {
			want[b.Channel+"/"+b.Outcome+"/"+b.Billable] += float64(b.Count)
			total += float64(b.Count)
		}
		for _, rr := range r.Risk {
			if rr.Risk == "high" {
				wantHigh += float64(rr.Count)
			}
		}
	}
	if total == 0 || wantHigh == 0 {
		t.Fatalf("simulator sent %v events, %v high risk", total, wantHigh)
	}

	t.Run("summary equals the simulator's ground truth", func(t *testing.T) {
		var got map[string]float64
		waitFor(t, "all events counted", func() bool {
			r := query(t, d, map[string]any{"queryType": "summary"}, allTime)
			if r.Error != nil {
				t.Fatal(r.Error)
			}
			got = map[string]float64{}
			var sum float64
			ch, oc, bi, n := column(t, r.Frames[0], "channel"), column(t, r.Frames[0], "outcome"), column(t, r.Frames[0], "billable"), column(t, r.Frames[0], "count")
			for i := range ch {
				v, _ := strconv.ParseFloat(n[i], 64)
				got[ch[i]+"/"+oc[i]+"/"+bi[i]] = v
				sum += v
			}
			return sum >= total
		})
		for k, v := range got {
			if v != want[k] {
				t.Errorf("%s: plugin %v, simulator %v", k, v, want[k])
			}
		}
		if len(got) != 54 {
			t.Errorf("%d summary rows, want 54", len(got))
		}
		r := query(t, d, map[string]any{"queryType": "summary", "format": "timeseries", "outcome": "failure", "billable": "true", "groupBy": []string{"channel"}}, allTime)
		var bf float64
		for _, f := range r.Frames[0].Fields[1:] {
			v, _ := f.ConcreteAt(0)
			bf += v.(float64)
		}
		var wantBF float64
		for k, v := range want {
			if strings.HasSuffix(k, "/failure/true") {
				wantBF += v
			}
		}
		if bf != wantBF || wantBF == 0 {
			t.Errorf("billable failures in the time series: %v, simulator %v", bf, wantBF)
		}
	})

	t.Run("events of each kind", func(t *testing.T) {
		for _, tc := range []struct {
			kind  string
			check func(f map[string]string) bool
		}{
			{kind: "billable_failure", check: func(f map[string]string) bool {
				return f["billable"] == "true" && f["outcome"] == "failure" && f["known"] == "true"
			}},
			{kind: "high_risk", check: func(f map[string]string) bool { return f["risk"] == "high" }},
			{kind: "unknown_code", check: func(f map[string]string) bool {
				return f["known"] == "false" && f["code"] == "unknown" && f["raw_code"] != "" && f["billable"] == "unknown"
			}},
		} {
			t.Run(tc.kind, func(t *testing.T) {
				tr := backend.TimeRange{From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Minute)}
				r := query(t, d, map[string]any{"queryType": "events", "kind": tc.kind, "limit": 50}, tr)
				if r.Error != nil {
					t.Fatal(r.Error)
				}
				f := r.Frames[0]
				n, _ := f.RowLen()
				if n == 0 || n > 50 {
					t.Fatalf("%d rows", n)
				}
				times := column(t, f, "time")
				if !sort.SliceIsSorted(times, func(i, j int) bool { return times[i] > times[j] }) {
					t.Errorf("not newest first: %v", times)
				}
				cols := map[string][]string{}
				for _, fl := range f.Fields {
					cols[fl.Name] = column(t, f, fl.Name)
				}
				for i := range n {
					row := map[string]string{}
					for k, v := range cols {
						row[k] = v[i]
					}
					if !tc.check(row) || row["id"] == "" || row["channel"] == "" {
						t.Fatalf("row %d does not belong to %s: %v", i, tc.kind, row)
					}
				}
			})
		}
	})

	t.Run("catalog matches the exporter's catalog", func(t *testing.T) {
		var raw struct {
			Data struct {
				Families []struct {
					Name     string   `json:"name"`
					Channels []string `json:"channels"`
				} `json:"families"`
				Codes []struct {
					Family string `json:"family"`
				} `json:"codes"`
			} `json:"data"`
		}
		if err := json.Unmarshal(exp.Get(t, "/api/v1/catalog"), &raw); err != nil {
			t.Fatal(err)
		}
		channels := map[string]int{}
		for _, f := range raw.Data.Families {
			channels[f.Name] = len(f.Channels)
		}
		wantRows, sdk := 0, 0
		for _, c := range raw.Data.Codes {
			wantRows += channels[c.Family]
			if c.Family == "sdk" {
				sdk++
			}
		}
		r := query(t, d, map[string]any{"queryType": "catalog"}, allTime)
		if n, _ := r.Frames[0].RowLen(); n != wantRows || n == 0 {
			t.Errorf("catalog rows %d, want %d", n, wantRows)
		}
		r = query(t, d, map[string]any{"queryType": "catalog", "channel": "app_sdk"}, allTime)
		if n, _ := r.Frames[0].RowLen(); n != sdk || sdk == 0 {
			t.Errorf("app_sdk rows %d, want %d", n, sdk)
		}
		_, body := callResource(t, d, "GET", "channels")
		if v := values(t, body); strings.Count(v, ",") != 8 {
			t.Errorf("channels resource: %s", v)
		}
	})

	t.Run("live query", func(t *testing.T) {
		r := query(t, d, map[string]any{"queryType": "live", "kind": "unknown_code"}, allTime)
		if r.Error != nil || r.Frames[0].Meta.Channel != "ds/"+testUID+"/events/unknown_code" {
			t.Fatalf("%v %+v", r.Error, r.Frames)
		}
	})

	t.Run("streams carried every event", func(t *testing.T) {
		waitFor(t, "all events streamed", func() bool { return float64(len(all.ids())) >= total })
		if n := float64(len(all.ids())); n != total {
			t.Errorf("events/all streamed %v events, exporter counted %v", n, total)
		}
		seen := map[string]bool{}
		for _, id := range all.ids() {
			if seen[id] {
				t.Fatalf("event %s streamed twice", id)
			}
			seen[id] = true
		}
		waitFor(t, "high-risk events streamed", func() bool { return float64(len(highRisk.ids())) >= wantHigh })
		if n := float64(len(highRisk.ids())); n != wantHigh {
			t.Errorf("events/high_risk streamed %v events, simulator sent %v", n, wantHigh)
		}
		if m := metricSum(t, exp.Get(t, "/metrics"), "faceid_risk_events_total", `risk="high"`); m != wantHigh {
			t.Errorf("exporter counted %v high-risk events, simulator sent %v", m, wantHigh)
		}
		for _, f := range highRisk.snapshot() {
			for _, risk := range column(t, f, "risk") {
				if risk != "high" {
					t.Fatalf("high_risk stream carried a %s event", risk)
				}
			}
		}
	})

	t.Run("streams end promptly on cancel", func(t *testing.T) {
		start := time.Now()
		stopStreams()
		for range 2 {
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("RunStream: %v", err)
				}
			case <-time.After(3 * time.Second):
				t.Fatal("RunStream did not return within 3s of cancel")
			}
		}
		t.Logf("both streams returned %v after cancel", time.Since(start))
	})

	if res := health(t, d); res.Status != backend.HealthStatusOk || !strings.Contains(res.Message, fmt.Sprintf(" %.0f verifications counted", total)) {
		t.Errorf("health after traffic: %s", res.Message)
	}
}

// metricSum adds the values of a metric's series whose labels contain match.
func metricSum(t *testing.T, metrics []byte, name, match string) float64 {
	t.Helper()
	var sum float64
	sc := bufio.NewScanner(bytes.NewReader(metrics))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") || !strings.Contains(line, match) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

func TestRealExporterBasicAuth(t *testing.T) {
	exp := exportertest.Start(t, exportertest.Options{WebConfig: exportertest.BasicAuthWebConfig, Demo: true, DemoRate: 50})
	res := health(t, newDS(t, backend.DataSourceInstanceSettings{URL: exp.URL}))
	if res.Status != backend.HealthStatusError || !strings.Contains(res.Message, "rejected the request as unauthenticated (HTTP 401)") {
		t.Errorf("without credentials: %s", res.Message)
	}
	res = health(t, newDS(t, backend.DataSourceInstanceSettings{URL: exp.URL, BasicAuthEnabled: true, BasicAuthUser: exportertest.TestUser,
		DecryptedSecureJSONData: map[string]string{"basicAuthPassword": "wrong"}}))
	if res.Status != backend.HealthStatusError || !strings.Contains(res.Message, "HTTP 401") {
		t.Errorf("wrong password: %s", res.Message)
	}
	d := newDS(t, backend.DataSourceInstanceSettings{URL: exp.URL, BasicAuthEnabled: true, BasicAuthUser: exportertest.TestUser,
		DecryptedSecureJSONData: map[string]string{"basicAuthPassword": exportertest.TestPassword}})
	if res := health(t, d); res.Status != backend.HealthStatusOk {
		t.Fatalf("with credentials: %s", res.Message)
	}
	sink := &frameSink{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- d.RunStream(ctx, &backend.RunStreamRequest{Path: "events/all"}, backend.NewStreamSender(sink))
	}()
	waitFor(t, "demo events through an authenticated stream", func() bool { return len(sink.ids()) > 0 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestRealExporterVariablesAndAnnotations proves the query variables and the
// annotations against the exporter built from this repository: the channels
// variable lists the catalog's channels, and an annotation query over a
// simulated billable-failure spike returns exactly those events at their
// own times.
func TestRealExporterVariablesAndAnnotations(t *testing.T) {
	exp := exportertest.Start(t, exportertest.Options{})
	d := newDS(t, backend.DataSourceInstanceSettings{URL: exp.URL})

	var cat struct {
		Data struct {
			Families []struct {
				Name     string   `json:"name"`
				Channels []string `json:"channels"`
			} `json:"families"`
			Codes []struct {
				Family  string `json:"family"`
				Code    string `json:"code"`
				Meaning string `json:"meaning"`
			} `json:"codes"`
		} `json:"data"`
	}
	if err := json.Unmarshal(exp.Get(t, "/api/v1/catalog"), &cat); err != nil {
		t.Fatal(err)
	}

	t.Run("the channels variable lists the catalog's channels", func(t *testing.T) {
		var want []string
		for _, f := range cat.Data.Families {
			want = append(want, f.Channels...)
		}
		status, body := callResource(t, d, "GET", "channels")
		if got := values(t, body); status != 200 || got != strings.Join(want, ",") || len(want) != 9 {
			t.Fatalf("%d channels %s\nwant %s", status, got, strings.Join(want, ","))
		}
	})
	t.Run("the codes variable of a channel lists its family's codes with their meanings", func(t *testing.T) {
		status, body := callResourceURL(t, d, "codes?channel=app_sdk")
		var opts []Option
		if err := json.Unmarshal(body, &opts); err != nil || status != 200 {
			t.Fatalf("%d %s %v", status, body, err)
		}
		var want []string
		for _, c := range cat.Data.Codes {
			if c.Family == "sdk" {
				want = append(want, c.Code+" "+c.Meaning)
			}
		}
		var got []string
		for _, o := range opts {
			got = append(got, o.Label)
		}
		if strings.Join(got, "|") != strings.Join(want, "|") || len(want) == 0 {
			t.Fatalf("labels %v\nwant   %v", got, want)
		}
	})

	start := time.Now()
	report := exp.Simulate(t, "billable-failure-spike", 300, time.Second, 5)
	end := time.Now()
	wantPerChannel := map[string]int{}
	want := 0
	for _, b := range report.By {
		if b.Outcome == "failure" && b.Billable == "true" {
			wantPerChannel[b.Channel] += b.Count
			want += b.Count
		}
	}
	if want < 20 || want > 1000 {
		t.Fatalf("the spike sent %d billable failures; the test needs 20 to 1000 (the exporter's ring)", want)
	}
	t.Logf("the spike sent %d billable failures on %d channels", want, len(wantPerChannel))
	// The exporter's own record of the events, once it has classified them all.
	var ring struct {
		Data struct {
			Events []struct {
				ID string    `json:"id"`
				TS time.Time `json:"ts"`
			} `json:"events"`
		} `json:"data"`
	}
	waitFor(t, "the exporter kept every billable failure", func() bool {
		if err := json.Unmarshal(exp.Get(t, "/api/v1/events?kind=billable_failure&limit=1000"), &ring); err != nil {
			t.Fatal(err)
		}
		return len(ring.Data.Events) >= want
	})
	wantTimes := map[string]time.Time{}
	for _, e := range ring.Data.Events {
		wantTimes[e.ID] = e.TS
	}
	dashboard := backend.TimeRange{From: start.Add(-time.Minute), To: end.Add(time.Minute)}

	t.Run("an annotation query returns the spike's billable failures at their times", func(t *testing.T) {
		r := query(t, d, map[string]any{"queryType": "annotations", "kind": "billable_failure", "limit": 1000}, dashboard)
		if r.Error != nil {
			t.Fatal(r.Error)
		}
		f := r.Frames[0]
		ids, titles, texts, tags := column(t, f, "id"), column(t, f, "title"), column(t, f, "text"), column(t, f, "tags")
		if len(ids) != want {
			t.Fatalf("%d annotations, the simulator sent %d billable failures", len(ids), want)
		}
		timeField, _ := f.FieldByName("time")
		perChannel := map[string]int{}
		for i, id := range ids {
			ts := timeField.At(i).(time.Time)
			wt, ok := wantTimes[id]
			if !ok || !ts.Equal(wt) {
				t.Fatalf("annotation %s at %v; the exporter has it at %v (known %v)", id, ts, wt, ok)
			}
			// Events are stamped a little before they are sent (at most 10 s).
			if ts.Before(start.Add(-11*time.Second)) || ts.After(end.Add(time.Second)) {
				t.Fatalf("annotation %s at %v, outside the spike %v..%v", id, ts, start, end)
			}
			channel := column(t, f, "channel")[i]
			perChannel[channel]++
			if !strings.HasPrefix(titles[i], "Billable failure") || !strings.HasSuffix(titles[i], " on "+channel) ||
				!strings.Contains(texts[i], ", failure, billable true); risk ") || !strings.HasPrefix(tags[i], "billable_failure,") {
				t.Fatalf("annotation %s: title %q text %q tags %q", id, titles[i], texts[i], tags[i])
			}
		}
		for ch, n := range wantPerChannel {
			if perChannel[ch] != n {
				t.Errorf("channel %s: %d annotations, the simulator sent %d billable failures", ch, perChannel[ch], n)
			}
		}
	})
	t.Run("filtered by a channel list, as a multi-value variable leaves it", func(t *testing.T) {
		var chans []string
		expected := 0
		for ch, n := range wantPerChannel {
			if len(chans) < 2 {
				chans = append(chans, ch)
				expected += n
			}
		}
		r := query(t, d, map[string]any{"queryType": "annotations", "kind": "billable_failure", "channel": strings.Join(chans, ","), "limit": 1000}, dashboard)
		if got := column(t, r.Frames[0], "channel"); len(got) != expected {
			t.Fatalf("%d annotations of %v, want %d", len(got), chans, expected)
		}
	})
	t.Run("a dashboard range before the spike shows none of it", func(t *testing.T) {
		// Every kind: the limit applies to each, and the unknown-code ring holds 200.
		r := query(t, d, map[string]any{"queryType": "annotations", "limit": 200}, backend.TimeRange{From: start.Add(-time.Hour), To: start.Add(-11 * time.Second)})
		if r.Error != nil {
			t.Fatal(r.Error)
		}
		if n, _ := r.Frames[0].RowLen(); n != 0 {
			t.Fatalf("%d annotations", n)
		}
	})
}

// TestRealExporterLedger runs the ledger query against the exporter's exact
// books in JetStream mode: the billed verifications per channel equal what
// the simulator sent; an exporter in core NATS mode says it keeps no books.
func TestRealExporterLedger(t *testing.T) {
	exp := exportertest.Start(t, exportertest.Options{JetStreamStream: "FACEID_PLUGIN_TEST"})
	d := newDS(t, backend.DataSourceInstanceSettings{URL: exp.URL})
	report := exp.Simulate(t, "baseline", 300, time.Second, 9)
	want := map[string]int64{}
	var total int64
	for _, b := range report.By {
		if b.Billable == "true" {
			want[b.Channel] += int64(b.Count)
			total += int64(b.Count)
		}
	}
	if total == 0 {
		t.Fatal("the simulator sent no billable verifications")
	}
	// Today and yesterday in Beijing: events are stamped up to 10 s before they are sent.
	tr := backend.TimeRange{From: time.Now().Add(-24 * time.Hour), To: time.Now().Add(time.Minute)}
	got := map[string]int64{}
	var sum int64
	waitFor(t, "the exporter's books hold every billable verification", func() bool {
		r := query(t, d, map[string]any{"queryType": "ledger"}, tr)
		if r.Error != nil {
			if strings.Contains(r.Error.Error(), "HTTP 503") { // no checkpoint committed yet
				return false
			}
			t.Fatal(r.Error)
		}
		got, sum = map[string]int64{}, 0
		ch, billed := column(t, r.Frames[0], "channel"), column(t, r.Frames[0], "billed")
		for i := range ch {
			n, _ := strconv.ParseInt(billed[i], 10, 64)
			got[ch[i]] += n
			sum += n
		}
		return sum >= total
	})
	for ch, n := range want {
		if got[ch] != n {
			t.Errorf("channel %s: the ledger billed %d, the simulator sent %d billable verifications", ch, got[ch], n)
		}
	}
	if sum != total {
		t.Errorf("the ledger billed %d in all, the simulator sent %d", sum, total)
	}
	t.Logf("ledger: %d billed verifications on %d channels", sum, len(got))

	core := exportertest.Start(t, exportertest.Options{})
	r := query(t, newDS(t, backend.DataSourceInstanceSettings{URL: core.URL}), map[string]any{"queryType": "ledger"}, tr)
	if r.Error == nil || r.Error.Error() != "GET /api/v1/ledger: HTTP 501: the ledger needs --jetstream.stream" || r.ErrorSource != backend.ErrorSourceDownstream {
		t.Fatalf("core mode: %v (%s)", r.Error, r.ErrorSource)
	}
}
