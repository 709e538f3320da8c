// Package promtest reads metric families the way the tests compare them: one
// value per series, keyed by its sorted labels.
package promtest

import (
	"sort"
	"strings"

	dto "github.com/prometheus/client_model/go"
)

// Key returns a series' labels as sorted name=value pairs joined by commas.
func Key(m *dto.Metric) string {
	parts := make([]string, 0, len(m.Label))
	for _, l := range m.Label {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// Value returns a counter's, gauge's or untyped series' value, or a
// histogram's sample count.
func Value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

// Series returns one family's series by Key.
func Series(mf *dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	if mf == nil {
		return out
	}
	for _, m := range mf.Metric {
		out[Key(m)] = Value(m)
	}
	return out
}
