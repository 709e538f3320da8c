package exactly

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
)

// checkpointedFamilies are the counters committed with the stream position
// (issue 9 contract): exact across restarts and takeovers, exposed only by a
// partition's owner, with a partition label.
var checkpointedFamilies = []string{
	"faceid_verifications_total",
	"faceid_risk_events_total",
	"faceid_device_level_events_total",
	"faceid_identity_level_events_total",
	"faceid_device_tags_total",
	"faceid_identity_tags_total",
	"faceid_business_verifications_total",
	"faceid_exporter_unknown_codes_total",
	"faceid_exporter_event_problems_total",
	"faceid_exporter_duplicates_total",
	"faceid_exporter_events_rejected_total",
	"faceid_exporter_dead_letters_total",
	"faceid_exporter_dedupe_evictions_total",
	"faceid_exporter_reqid_evictions_total",
	"faceid_exporter_jetstream_lost_messages_total",
	"faceid_exporter_jetstream_stream_resets_total",
}

// ownedFamilies are every family a replica exposes only for the partitions
// it owns: the checkpointed counters, the month-to-date gauges from the
// books, and the owner's checkpoint and lag gauges.
var ownedFamilies = append(append([]string(nil), checkpointedFamilies...),
	"faceid_billed_month_to_date",
	"faceid_cost_month_to_date",
	"faceid_exporter_checkpoint_last_success_timestamp_seconds",
	"faceid_exporter_checkpoint_sequence",
	"faceid_exporter_jetstream_lag_messages",
)

// monthToDate are the gauges a partition's owner computes from its books.
var monthToDate = []string{"faceid_billed_month_to_date", "faceid_cost_month_to_date"}

// processCounters carry a partition label but count what this process did
// (not the stream's content): not checkpointed, not compared.
var processCounters = map[string]bool{"faceid_exporter_takeovers_total": true}

// partitionCounters returns the counter families of s that carry a partition
// label: checkpointed by the contract, whether or not checkpointedFamilies
// names them yet.
func (s scrape) partitionCounters() []string {
	var out []string
	for f, mf := range s {
		if mf.GetType() != dto.MetricType_COUNTER || processCounters[f] {
			continue
		}
		for _, m := range mf.Metric {
			if _, ok := label(m, "partition"); ok {
				out = append(out, f)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// compared returns the families of s summed over live replicas and compared
// with the reference: the checkpointed counters and the month-to-date gauges.
func (s scrape) compared() []string {
	seen := map[string]bool{}
	var out []string
	for _, f := range append(append(append([]string(nil), checkpointedFamilies...), s.partitionCounters()...), monthToDate...) {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out
}

// scrape is one /metrics page, by family name.
type scrape map[string]*dto.MetricFamily

var httpClient = &http.Client{Timeout: 5 * time.Second}

// getMetrics scrapes base+"/metrics".
func getMetrics(base string) (scrape, error) {
	raw, err := rawMetrics(base)
	if err != nil {
		return nil, err
	}
	return parseMetrics(bytes.NewReader(raw))
}

// parseMetrics parses the Prometheus text format.
func parseMetrics(r io.Reader) (scrape, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	return scrape(mfs), nil
}

func label(m *dto.Metric, name string) (string, bool) {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue(), true
		}
	}
	return "", false
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return 0
}

// seriesKey names a series by family and its labels but drop, sorted.
func seriesKey(family string, m *dto.Metric, drop ...string) string {
	var parts []string
outer:
	for _, l := range m.Label {
		for _, d := range drop {
			if l.GetName() == d {
				continue outer
			}
		}
		parts = append(parts, l.GetName()+"="+strconv.Quote(l.GetValue()))
	}
	sort.Strings(parts)
	return family + "{" + strings.Join(parts, ",") + "}"
}

// get returns the value of the first series of family whose labels include
// want, and whether there is one.
func (s scrape) get(family string, want ...string) (float64, bool) {
	mf := s[family]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.Metric {
		for i := 0; i+1 < len(want); i += 2 {
			if v, ok := label(m, want[i]); !ok || v != want[i+1] {
				continue next
			}
		}
		return value(m), true
	}
	return 0, false
}

// sum returns the sum of family's series whose labels include want.
func (s scrape) sum(family string, want ...string) float64 {
	mf := s[family]
	if mf == nil {
		return 0
	}
	total := 0.0
next:
	for _, m := range mf.Metric {
		for i := 0; i+1 < len(want); i += 2 {
			if v, ok := label(m, want[i]); !ok || v != want[i+1] {
				continue next
			}
		}
		total += value(m)
	}
	return total
}

// byPartition returns family's values by partition label.
func (s scrape) byPartition(family string) map[string]float64 {
	out := map[string]float64{}
	if mf := s[family]; mf != nil {
		for _, m := range mf.Metric {
			if p, ok := label(m, "partition"); ok {
				out[p] += value(m)
			}
		}
	}
	return out
}

// partitionSeries returns the series of the owned-only families that carry
// partition p.
func (s scrape) partitionSeries(p string) []string {
	var out []string
	seen := map[string]bool{}
	for _, f := range append(append([]string(nil), ownedFamilies...), s.partitionCounters()...) {
		if seen[f] {
			continue
		}
		seen[f] = true
		mf := s[f]
		if mf == nil {
			continue
		}
		for _, m := range mf.Metric {
			if v, ok := label(m, "partition"); ok && v == p {
				out = append(out, seriesKey(f, m))
			}
		}
	}
	sort.Strings(out)
	return out
}

// accounted returns how many messages the scraped counters account for:
// every message is a verification, a duplicate or a rejection.
func (s scrape) accounted() float64 {
	return s.sum("faceid_verifications_total") + s.sum("faceid_exporter_duplicates_total") + s.sum("faceid_exporter_events_rejected_total")
}

// sumSeries sums the compared families over scrapes, ignoring the partition
// and instance labels; zero sums are left out (an absent counter is zero).
func sumSeries(scrapes []scrape) map[string]float64 {
	out := map[string]float64{}
	for _, s := range scrapes {
		for _, f := range s.compared() {
			mf := s[f]
			if mf == nil {
				continue
			}
			for _, m := range mf.Metric {
				out[seriesKey(f, m, "partition", "instance")] += value(m)
			}
		}
	}
	for k, v := range out {
		if v == 0 {
			delete(out, k)
		}
	}
	return out
}

// diffSeries lists the keys whose values differ, sorted, as "key: want W, got G".
func diffSeries(want, got map[string]float64) []string {
	keys := map[string]bool{}
	for k := range want {
		keys[k] = true
	}
	for k := range got {
		keys[k] = true
	}
	var out []string
	for k := range keys {
		if want[k] != got[k] {
			out = append(out, fmt.Sprintf("%s: want %v, got %v", k, want[k], got[k]))
		}
	}
	sort.Strings(out)
	return out
}

// ledgerCLI runs `exporter ledger` against natsURL and returns its output.
func ledgerCLI(bin, natsURL, stream, group, from, to, format string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "ledger", "--nats.url", natsURL, "--jetstream.stream", stream,
		"--jetstream.consumer", group, "--from", from, "--to", to, "--format", format)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("exporter ledger --jetstream.consumer %s: %w: %s", group, err, stderr.String())
	}
	return stdout.String(), nil
}

// httpLedger fetches /api/v1/ledger as CSV from a replica.
func httpLedger(base, from, to string) (string, error) {
	resp, err := httpClient.Get(base + "/api/v1/ledger?from=" + from + "&to=" + to + "&format=csv")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /api/v1/ledger: %s: %s", resp.Status, body)
	}
	return string(body), nil
}

// parseLedgerCSV reads the ledger's CSV: the header starts with
// day,channel,code,billable,count; a rule_id column may follow.
func parseLedgerCSV(text string) ([]ledger.Row, error) {
	recs, err := csv.NewReader(strings.NewReader(text)).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("ledger csv: %w", err)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("ledger csv: no header")
	}
	head := recs[0]
	want := []string{"day", "channel", "code", "billable", "count"}
	if len(head) < len(want) || strings.Join(head[:len(want)], ",") != strings.Join(want, ",") {
		return nil, fmt.Errorf("ledger csv header %q does not start with %q", strings.Join(head, ","), strings.Join(want, ","))
	}
	ruleCol := -1
	for i, h := range head {
		if h == "rule_id" {
			ruleCol = i
		}
	}
	rows := []ledger.Row{}
	for i, r := range recs[1:] {
		n, err := strconv.ParseUint(r[4], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("ledger csv line %d: count %q: %w", i+2, r[4], err)
		}
		row := ledger.Row{Day: r[0], Channel: r[1], Code: r[2], Billable: r[3], Count: n}
		if ruleCol >= 0 {
			row.RuleID = r[ruleCol]
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// ledgerKey is a row without its count.
func ledgerKey(r ledger.Row) string {
	return strings.Join([]string{r.Day, r.Channel, r.Code, r.Billable, r.RuleID}, ",")
}

// diffLedgers lists the rows whose counts differ, sorted.
func diffLedgers(want, got []ledger.Row) []string {
	w, g := map[string]uint64{}, map[string]uint64{}
	for _, r := range want {
		w[ledgerKey(r)] += r.Count
	}
	for _, r := range got {
		g[ledgerKey(r)] += r.Count
	}
	keys := map[string]bool{}
	for k := range w {
		keys[k] = true
	}
	for k := range g {
		keys[k] = true
	}
	var out []string
	for k := range keys {
		if w[k] != g[k] {
			out = append(out, fmt.Sprintf("%s: want %d, got %d", k, w[k], g[k]))
		}
	}
	sort.Strings(out)
	return out
}

// firstN returns at most n lines of lines, noting how many were left out.
func firstN(lines []string, n int) string {
	if len(lines) <= n {
		return strings.Join(lines, "\n")
	}
	return strings.Join(lines[:n], "\n") + fmt.Sprintf("\n... and %d more", len(lines)-n)
}
