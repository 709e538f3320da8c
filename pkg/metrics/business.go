package metrics

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/faceid-observability/faceid-exporter/pkg/classify"
)

// business counts faceid_business_verifications_total. Its label values come
// from the config's allowlists only: any other value is "other", a missing
// one "none". Series are created on first use.
type business struct {
	vec       *prometheus.CounterVec
	apps      map[string]int // allowlisted value → slot (2..)
	rules     map[string]int
	appNames  []string // by slot: none, other, allowlisted...
	ruleNames []string
	cat       *classify.Catalog
	counters  []atomic.Pointer[prometheus.Counter]
}

func newBusiness(reg prometheus.Registerer, cat *classify.Catalog, appIDs, ruleIDs []string) *business {
	b := &business{
		vec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "business_verifications_total",
			Help: "Verification results that are not duplicates by channel and the allowlisted business dimensions app_id and rule_id (\"other\" when not allowlisted, \"none\" when absent), outcome and billability.",
		}, []string{"channel", "app_id", "rule_id", "outcome", "billable"}),
		apps: map[string]int{}, rules: map[string]int{},
		appNames: []string{None, Other}, ruleNames: []string{None, Other},
		cat: cat,
	}
	for _, a := range appIDs {
		b.apps[a] = len(b.appNames)
		b.appNames = append(b.appNames, a)
	}
	for _, r := range ruleIDs {
		b.rules[r] = len(b.ruleNames)
		b.ruleNames = append(b.ruleNames, r)
	}
	b.counters = make([]atomic.Pointer[prometheus.Counter], len(cat.Channels)*len(b.appNames)*len(b.ruleNames)*2*3)
	reg.MustRegister(b.vec)
	return b
}

func slot(allow map[string]int, v []byte) int {
	if len(v) == 0 {
		return 0
	}
	if i, ok := allow[string(v)]; ok {
		return i
	}
	return 1
}

func (b *business) count(r *classify.Result) {
	a, ru := slot(b.apps, r.Event.AppID), slot(b.rules, r.Event.RuleID)
	i := (((r.Channel.Index*len(b.appNames)+a)*len(b.ruleNames)+ru)*2+int(r.Outcome))*3 + int(r.Billable)
	p := b.counters[i].Load()
	if p == nil {
		c := b.vec.WithLabelValues(r.Channel.Name, b.appNames[a], b.ruleNames[ru], r.Outcome.String(), r.Billable.String())
		b.counters[i].CompareAndSwap(nil, &c)
		p = b.counters[i].Load()
	}
	(*p).Inc()
}

// counterValue returns a counter's value and labels.
func counterValue(m prometheus.Metric) (float64, map[string]string) {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		return 0, nil
	}
	labels := make(map[string]string, len(d.Label))
	for _, l := range d.Label {
		labels[l.GetName()] = l.GetValue()
	}
	return d.GetCounter().GetValue(), labels
}

// SeriesBound returns the most series the event metrics (verifications, risk,
// levels, tags, unknown codes, problems and code info) can have for cat, and
// the most the business metric can have with the given allowlist lengths
// (0 when it is off).
func SeriesBound(cat *classify.Catalog, appIDs, ruleIDs int, businessOn bool) (events, businessSeries int) {
	nch := len(cat.Channels)
	ver := 0
	for _, ch := range cat.Channels {
		for _, code := range cat.Codes {
			if code.Family == ch.Family.Name {
				ver += 3 // a code has one outcome and at most three billable values
			}
		}
		ver += 2 * 3 // "unknown": either outcome, any billable value
	}
	nProblems := 0
	for i := 0; i < 16; i++ {
		if len(classify.Problem(1<<i).Names()) == 1 {
			nProblems++
		}
	}
	events = ver +
		nch*len(classify.RiskLabels()) +
		nch*(cat.DeviceLevel.Max+2) +
		nch*(cat.RiskLevel.Max+2) +
		nch*(len(cat.DeviceTags)+1)*len(classify.PlatformLabels()) +
		nch*(len(cat.IdentityTags)+1) +
		nch + // unknown codes
		nProblems +
		len(cat.Codes) // code_info
	if businessOn {
		businessSeries = nch * (appIDs + 2) * (ruleIDs + 2) * 2 * 3
	}
	return events, businessSeries
}

// SelfSeriesBound returns the most series of the self-metrics and pricing
// gauges, counting each histogram bucket, _sum and _count as a series.
func SelfSeriesBound(cat *classify.Catalog) int {
	reasons := len(classify.Reasons())
	return 2 + // events received by transport
		2*reasons + // rejected, dead-lettered by reason
		1 + 1 + // dead-letter errors, duplicates
		len(ProcessingBuckets) + 3 + len(DelayBuckets) + 3 + // histograms with +Inf, _sum, _count
		1 + 1 + 1 + 1 + // nats connected, reconnects, disconnects, dropped
		2 + // jetstream pending, ack pending
		1 + 1 + 1 + 1 + // last event, reqid and dedupe evictions, dedupe store errors
		len(cat.Channels) + 1 // pricing unit price per channel, monthly budget
}
