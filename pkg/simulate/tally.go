package simulate

import (
	"sort"

	"github.com/faceid-observability/faceid-exporter/pkg/classify"
)

// tally counts the messages the server took, by their ground truth.
type tally struct {
	cat       *classify.Catalog
	by        map[rowKey]int64
	risk      map[riskKey]int64
	rejected  map[classify.Reason]int64
	sent      int64
	errors    int64
	lastError string
}

type rowKey struct {
	channel  int
	code     int // catalog index; -1 for unknown
	billable classify.Billable
	outcome  classify.Outcome
}

type riskKey struct {
	channel int
	risk    classify.Risk
}

func newTally(cat *classify.Catalog) *tally {
	return &tally{cat: cat, by: map[rowKey]int64{}, risk: map[riskKey]int64{}, rejected: map[classify.Reason]int64{}}
}

func (t *tally) add(tr Truth) {
	t.sent++
	if tr.Reject != classify.ReasonNone {
		t.rejected[tr.Reject]++
		return
	}
	code := -1
	if tr.Code != nil {
		code = tr.Code.Index
	}
	t.by[rowKey{channel: tr.Channel.Index, code: code, billable: tr.Billable, outcome: tr.Outcome}]++
	t.risk[riskKey{channel: tr.Channel.Index, risk: tr.Risk}]++
}

func (t *tally) fail(err error) {
	t.errors++
	t.lastError = err.Error()
}

func (t *tally) malformed() int64 {
	var n int64
	for _, v := range t.rejected {
		n += v
	}
	return n
}

// fill writes the counts into r, rows in catalog order.
func (t *tally) fill(r *Report) {
	r.Sent, r.Errors, r.LastError = t.sent, t.errors, t.lastError
	r.Malformed = map[string]int64{}
	for _, reason := range classify.Reasons() {
		r.Malformed[reason.String()] = t.rejected[reason]
	}
	keys := make([]rowKey, 0, len(t.by))
	for k := range t.by {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.channel != b.channel {
			return a.channel < b.channel
		}
		if a.code != b.code {
			return uint(a.code) < uint(b.code) // unknown (-1) last
		}
		if a.billable != b.billable {
			return a.billable < b.billable
		}
		return a.outcome < b.outcome
	})
	r.By = make([]Row, 0, len(keys))
	for _, k := range keys {
		row := Row{Channel: t.cat.Channels[k.channel].Name, Code: "unknown", Outcome: k.outcome.String(), Billable: k.billable.String(), Count: t.by[k]}
		if k.code >= 0 {
			row.Code = t.cat.Codes[k.code].Code
		}
		r.By = append(r.By, row)
	}
	rkeys := make([]riskKey, 0, len(t.risk))
	for k := range t.risk {
		rkeys = append(rkeys, k)
	}
	sort.Slice(rkeys, func(i, j int) bool {
		if rkeys[i].channel != rkeys[j].channel {
			return rkeys[i].channel < rkeys[j].channel
		}
		return rkeys[i].risk < rkeys[j].risk
	})
	r.Risk = make([]RiskRow, 0, len(rkeys))
	for _, k := range rkeys {
		r.Risk = append(r.Risk, RiskRow{Channel: t.cat.Channels[k.channel].Name, Risk: k.risk.String(), Count: t.risk[k]})
	}
}
