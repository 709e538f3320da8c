package refmodel

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// ExactFamilies are the checkpointed ("exact") counter families of
// docs/metrics.md that the books keep: the ones Expected.Counters holds.
var ExactFamilies = []string{
	"faceid_verifications_total",
	"faceid_risk_events_total",
	"faceid_device_level_events_total",
	"faceid_identity_level_events_total",
	"faceid_device_tags_total",
	"faceid_identity_tags_total",
	"faceid_business_verifications_total",
	"faceid_exporter_events_rejected_total",
	"faceid_exporter_dead_letters_total",
	"faceid_exporter_duplicates_total",
	"faceid_exporter_unknown_codes_total",
	"faceid_exporter_event_problems_total",
	"faceid_exporter_dedupe_evictions_total",
	"faceid_exporter_reqid_evictions_total",
	"faceid_exporter_ledger_too_old_events_total",
	"faceid_exporter_jetstream_lost_messages_total",
	"faceid_exporter_jetstream_stream_resets_total",
}

// summedAway are the labels a comparison sums over: the partition and what a
// scrape of several replicas adds.
var summedAway = map[string]bool{"partition": true, "instance": true, "pod": true, "job": true}

// ParseScrape reads Prometheus text scrapes (one per replica) into the form of
// Expected.Counters: the ExactFamilies' series, summed over partition (and
// instance, pod, job), zero series left out.
func ParseScrape(scrapes ...[]byte) (map[string]uint64, error) {
	exact := map[string]bool{}
	for _, f := range ExactFamilies {
		exact[f] = true
	}
	out := map[string]uint64{}
	for i, s := range scrapes {
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(bytes.NewReader(s))
		if err != nil {
			return nil, fmt.Errorf("scrape %d: %w", i, err)
		}
		for name, f := range fams {
			if !exact[name] {
				continue
			}
			for _, m := range f.GetMetric() {
				var pairs []string
				for _, l := range m.GetLabel() {
					if !summedAway[l.GetName()] {
						pairs = append(pairs, l.GetName(), l.GetValue())
					}
				}
				var v float64
				switch {
				case m.GetCounter() != nil:
					v = m.GetCounter().GetValue()
				case m.GetUntyped() != nil:
					v = m.GetUntyped().GetValue()
				case m.GetGauge() != nil:
					v = m.GetGauge().GetValue()
				}
				if v < 0 || v != math.Trunc(v) || v > 1<<53 {
					return nil, fmt.Errorf("scrape %d: %s: value %v is not a count", i, name, v)
				}
				if v > 0 {
					out[CounterKey(name, pairs...)] += uint64(v)
				}
			}
		}
	}
	return out, nil
}

// ParseLedgerCSV reads `exporter ledger --format csv` (or the API's CSV) into
// the form of Expected.Ledger.
func ParseLedgerCSV(r io.Reader) (map[LedgerKey]uint64, error) {
	recs, err := csv.NewReader(r).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("ledger csv: %w", err)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("ledger csv: no header")
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	for _, h := range []string{"day", "channel", "code", "billable", "count"} {
		if _, ok := col[h]; !ok {
			return nil, fmt.Errorf("ledger csv: no column %q in %v", h, recs[0])
		}
	}
	out := map[LedgerKey]uint64{}
	for i, rec := range recs[1:] {
		n, err := strconv.ParseUint(rec[col["count"]], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("ledger csv: line %d: %w", i+2, err)
		}
		k := LedgerKey{Day: rec[col["day"]], Channel: rec[col["channel"]], Code: rec[col["code"]], Billable: rec[col["billable"]]}
		if c, ok := col["rule_id"]; ok {
			k.RuleID = rec[c]
		}
		if n > 0 {
			out[k] += n
		}
	}
	return out, nil
}

// Diff describes how got differs from want, one line per series or row,
// sorted; "" when they are equal. Counters and ledger rows missing from a map
// count as zero.
func Diff(want, got Expected) string {
	var lines []string
	keys := map[string]bool{}
	for k := range want.Counters {
		keys[k] = true
	}
	for k := range got.Counters {
		keys[k] = true
	}
	for k := range keys {
		if w, g := want.Counters[k], got.Counters[k]; w != g {
			lines = append(lines, fmt.Sprintf("counter %s: want %d, got %d (%+d)", k, w, g, int64(g)-int64(w)))
		}
	}
	rows := map[LedgerKey]bool{}
	for k := range want.Ledger {
		rows[k] = true
	}
	for k := range got.Ledger {
		rows[k] = true
	}
	for k := range rows {
		if w, g := want.Ledger[k], got.Ledger[k]; w != g {
			lines = append(lines, fmt.Sprintf("ledger %s %s %s billable=%s rule_id=%q: want %d, got %d (%+d)", k.Day, k.Channel, k.Code, k.Billable, k.RuleID, w, g, int64(g)-int64(w)))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
