// Package metrics defines the exporter's Prometheus metrics. Every series of
// the verification, risk and tag metrics is created when the exporter starts,
// from the catalog and closed enums only, and kept in tables indexed by the
// catalog's indexes: counting an event is a handful of atomic adds, with no
// label lookup and no allocation.
package metrics

import (
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/faceid-observability/faceid-exporter/pkg/classify"
)

// Namespace prefixes every metric name.
const Namespace = "faceid"

// Label values used besides the catalog's.
const (
	Unknown = "unknown"
	Absent  = "absent"
	Other   = "other"
	None    = "none"
)

// Transports label faceid_exporter_events_received_total.
const (
	TransportCore      = "core"
	TransportJetStream = "jetstream"
)

// Options configure the optional metrics.
type Options struct {
	// AppIDs and RuleIDs allowlist the business dimensions; when both are nil
	// faceid_business_verifications_total is not exported.
	AppIDs, RuleIDs []string
	// Pricing, when set, exports the pricing gauges.
	Pricing *Pricing
	// DedupeEvicted reports ids dropped from the dedupe window for room (nil: none).
	DedupeEvicted func() uint64
	// DedupeStoreErrors reports ids the shared dedupe store could not check
	// (nil: none, the in-memory store never fails).
	DedupeStoreErrors func() uint64
}

// Pricing is the price list exported as gauges.
type Pricing struct {
	Currency      string
	MonthlyBudget float64
	HasBudget     bool
	UnitPrice     map[string]float64
}

// Metrics holds every collector of the exporter. Its methods are safe for
// concurrent use.
type Metrics struct {
	cat       *classify.Catalog
	codeSlots int // len(cat.Codes)+1: slot 0 is "unknown"
	dlSlots   int // device levels 0..max plus absent
	ilSlots   int // identity levels 0..max plus absent
	dtSlots   int // device tags plus unknown
	itSlots   int // identity tags plus unknown

	verVec *prometheus.CounterVec
	ver    []prometheus.Counter // [channel][code slot][outcome][billable]
	risk   []prometheus.Counter // [channel][risk]
	dl     []prometheus.Counter // [channel][device level+1]
	il     []prometheus.Counter // [channel][identity level+1]
	dt     []prometheus.Counter // [channel][tag slot][platform]
	it     []prometheus.Counter // [channel][tag slot]
	unk    []prometheus.Counter // [channel]
	prob   [16]prometheus.Counter

	business *business

	received    [2]prometheus.Counter
	rejected    [16]prometheus.Counter
	deadLetters [16]prometheus.Counter
	dlErrors    prometheus.Counter
	duplicates  prometheus.Counter
	processing  prometheus.Histogram
	delay       prometheus.Histogram

	connected    prometheus.Gauge
	reconnects   prometheus.Counter
	disconnects  prometheus.Counter
	dropped      prometheus.Counter
	jsPending    prometheus.Gauge
	jsAckPending prometheus.Gauge

	lastEvent     atomic.Int64 // Unix nanoseconds of receipt
	reqIDEvicted  atomic.Uint64
	problemLabels []string
}

// Buckets of the histograms.
var (
	ProcessingBuckets = []float64{250e-9, 500e-9, 1e-6, 2.5e-6, 5e-6, 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 1e-3, 10e-3}
	DelayBuckets      = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}
)

// New registers every metric on reg and returns the Metrics.
func New(reg prometheus.Registerer, cat *classify.Catalog, opts Options) *Metrics {
	m := &Metrics{
		cat:       cat,
		codeSlots: len(cat.Codes) + 1,
		dlSlots:   cat.DeviceLevel.Max + 2,
		ilSlots:   cat.RiskLevel.Max + 2,
		dtSlots:   len(cat.DeviceTags) + 1,
		itSlots:   len(cat.IdentityTags) + 1,
	}
	nch := len(cat.Channels)
	billable := classify.BillableLabels()
	platforms := classify.PlatformLabels()

	m.verVec = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "verifications_total",
		Help: "Verification results that are not duplicates, by channel, return code (\"unknown\" when not in the catalog for the channel's family), outcome and billability.",
	}, []string{"channel", "code", "outcome", "billable"})
	m.ver = make([]prometheus.Counter, nch*m.codeSlots*2*3)
	for _, ch := range cat.Channels {
		for _, code := range cat.Codes {
			if code.Family != ch.Family.Name {
				continue
			}
			outcome := classify.OutcomeFailure
			if code.Code == "0" {
				outcome = classify.OutcomeSuccess
			}
			for _, b := range possibleBillable(cat, code) {
				m.ver[m.verIndex(ch.Index, code.Index+1, outcome, b)] = m.verVec.WithLabelValues(ch.Name, code.Code, outcome.String(), billable[b])
			}
		}
		m.ver[m.verIndex(ch.Index, 0, classify.OutcomeFailure, classify.BillableUnknown)] = m.verVec.WithLabelValues(ch.Name, Unknown, classify.OutcomeFailure.String(), billable[classify.BillableUnknown])
	}

	riskVec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "risk_events_total",
		Help: "Verification results by channel and combined risk (high when the device or the identity level reaches the catalog's high mark; unknown when the event has neither level).",
	}, []string{"channel", "risk"})
	dlVec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "device_level_events_total",
		Help: "Verification results by channel and device risk level (deviceInfoLevel; \"absent\" when missing or invalid).",
	}, []string{"channel", "level"})
	ilVec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "identity_level_events_total",
		Help: "Verification results by channel and identity risk level (riskInfoLevel; \"absent\" when missing or invalid).",
	}, []string{"channel", "level"})
	dtVec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "device_tags_total",
		Help: "Device risk tags (deviceInfoTag) reported, by channel, catalog tag (\"unknown\" when not in the catalog), tag name and platform.",
	}, []string{"channel", "tag", "name", "platform"})
	itVec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "identity_tags_total",
		Help: "Identity risk tags (riskInfoTag) reported, by channel, catalog tag (\"unknown\" when not in the catalog) and type (attack or business).",
	}, []string{"channel", "tag", "type"})
	unkVec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "exporter", Name: "unknown_codes_total",
		Help: "Verification results whose return code is not in the catalog for the channel's family.",
	}, []string{"channel"})
	m.risk = make([]prometheus.Counter, nch*3)
	m.dl = make([]prometheus.Counter, nch*m.dlSlots)
	m.il = make([]prometheus.Counter, nch*m.ilSlots)
	m.dt = make([]prometheus.Counter, nch*m.dtSlots*len(platforms))
	m.it = make([]prometheus.Counter, nch*m.itSlots)
	m.unk = make([]prometheus.Counter, nch)
	for _, ch := range cat.Channels {
		c := ch.Index
		for r, name := range classify.RiskLabels() {
			m.risk[c*3+r] = riskVec.WithLabelValues(ch.Name, name)
		}
		for l := -1; l <= cat.DeviceLevel.Max; l++ {
			m.dl[c*m.dlSlots+l+1] = dlVec.WithLabelValues(ch.Name, levelLabel(l))
		}
		for l := -1; l <= cat.RiskLevel.Max; l++ {
			m.il[c*m.ilSlots+l+1] = ilVec.WithLabelValues(ch.Name, levelLabel(l))
		}
		for p, pname := range platforms {
			m.dt[(c*m.dtSlots)*len(platforms)+p] = dtVec.WithLabelValues(ch.Name, Unknown, Unknown, pname)
			for _, t := range cat.DeviceTags {
				m.dt[(c*m.dtSlots+t.Index+1)*len(platforms)+p] = dtVec.WithLabelValues(ch.Name, t.Tag, t.Name, pname)
			}
		}
		m.it[c*m.itSlots] = itVec.WithLabelValues(ch.Name, Unknown, Unknown)
		for _, t := range cat.IdentityTags {
			m.it[c*m.itSlots+t.Index+1] = itVec.WithLabelValues(ch.Name, t.Tag, t.Type)
		}
		m.unk[c] = unkVec.WithLabelValues(ch.Name)
	}

	probVec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "exporter", Name: "event_problems_total",
		Help: "Accepted events with a problem that was ignored (out-of-range level, unknown tag, too many tags, ...), by problem.",
	}, []string{"problem"})
	for i := range m.prob {
		if names := classify.Problem(1 << i).Names(); len(names) == 1 {
			m.prob[i] = probVec.WithLabelValues(names[0])
			m.problemLabels = append(m.problemLabels, names[0])
		}
	}

	codeInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "code_info",
		Help: "Catalog return codes with their category, billability as of now and Chinese meaning; always 1.",
	}, []string{"family", "code", "category", "billable", "meaning"})
	now := time.Now()
	for _, c := range cat.Codes {
		codeInfo.WithLabelValues(c.Family, c.Code, c.Category, c.BillableAt(now).String(), c.Meaning).Set(1)
	}

	recVec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "exporter", Name: "events_received_total",
		Help: "Messages received from NATS, before any check, by transport.",
	}, []string{"transport"})
	m.received[0] = recVec.WithLabelValues(TransportCore)
	m.received[1] = recVec.WithLabelValues(TransportJetStream)
	rejVec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "exporter", Name: "events_rejected_total",
		Help: "Messages rejected as bad input, by reason.",
	}, []string{"reason"})
	dlVec2 := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "exporter", Name: "dead_letters_total",
		Help: "Rejected messages republished to the dead-letter subject, by reason.",
	}, []string{"reason"})
	for _, r := range classify.Reasons() {
		m.rejected[r] = rejVec.WithLabelValues(r.String())
		m.deadLetters[r] = dlVec2.WithLabelValues(r.String())
	}
	m.dlErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "exporter", Name: "dead_letter_errors_total",
		Help: "Rejected messages that could not be republished to the dead-letter subject.",
	})
	m.duplicates = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "exporter", Name: "duplicates_total",
		Help: "Events not counted because their id was seen within the dedupe window (redeliveries, producer retries).",
	})
	m.processing = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "exporter", Name: "processing_seconds",
		Help:    "Time to decode, classify and count one message; sampled, one message in " + strconv.Itoa(ProcessingSampleEvery) + " per consumer.",
		Buckets: ProcessingBuckets,
	})
	m.delay = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "exporter", Name: "event_delay_seconds",
		Help:    "Time of receipt minus the event's ts, for events that carry a ts (negative delays count as 0).",
		Buckets: DelayBuckets,
	})
	m.connected = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Subsystem: "exporter", Name: "nats_connected",
		Help: "1 while connected to NATS, else 0.",
	})
	m.reconnects = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "exporter", Name: "nats_reconnects_total",
		Help: "Reconnections to NATS.",
	})
	m.disconnects = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "exporter", Name: "nats_disconnects_total",
		Help: "Losses of the NATS connection.",
	})
	m.dropped = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "exporter", Name: "nats_dropped_messages_total",
		Help: "Core NATS messages dropped by the client because the exporter fell behind (slow consumer); JetStream redelivers instead.",
	})
	m.jsPending = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Subsystem: "exporter", Name: "jetstream_pending_messages",
		Help: "Messages of the stream not yet delivered to the exporter's consumer (JetStream mode).",
	})
	m.jsAckPending = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Subsystem: "exporter", Name: "jetstream_ack_pending_messages",
		Help: "Messages delivered to the exporter's consumer and not yet acknowledged (JetStream mode).",
	})
	lastEvent := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: Namespace, Subsystem: "exporter", Name: "last_event_timestamp_seconds",
		Help: "Unix time of receipt of the last counted event (0 before the first).",
	}, func() float64 { return float64(m.lastEvent.Load()) / 1e9 })
	reqID := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "exporter", Name: "reqid_evictions_total",
		Help: "ReqIds forgotten for room inside their billing window; a repeat of one would be billed again.",
	}, func() float64 { return float64(m.reqIDEvicted.Load()) })
	evicted := opts.DedupeEvicted
	if evicted == nil {
		evicted = func() uint64 { return 0 }
	}
	dedupeEv := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "exporter", Name: "dedupe_evictions_total",
		Help: "Event ids forgotten for room inside the dedupe window; a redelivery of one would be counted again.",
	}, func() float64 { return float64(evicted()) })
	storeErrs := opts.DedupeStoreErrors
	if storeErrs == nil {
		storeErrs = func() uint64 { return 0 }
	}
	dedupeErrs := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "exporter", Name: "dedupe_store_errors_total",
		Help: "Event ids the shared dedupe store (JetStream KV) could not check in time; those events were counted without a duplicate check.",
	}, func() float64 { return float64(storeErrs()) })

	reg.MustRegister(m.verVec, riskVec, dlVec, ilVec, dtVec, itVec, unkVec, probVec, codeInfo,
		recVec, rejVec, dlVec2, m.dlErrors, m.duplicates, m.processing, m.delay,
		m.connected, m.reconnects, m.disconnects, m.dropped, m.jsPending, m.jsAckPending,
		lastEvent, reqID, dedupeEv, dedupeErrs)

	if opts.AppIDs != nil || opts.RuleIDs != nil {
		m.business = newBusiness(reg, cat, opts.AppIDs, opts.RuleIDs)
	}
	if p := opts.Pricing; p != nil {
		price := prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Subsystem: "pricing", Name: "unit_price",
			Help: "Price of one billed verification on a channel, from the config file.",
		}, []string{"channel", "currency"})
		for _, ch := range cat.Channels {
			if v, ok := p.UnitPrice[ch.Name]; ok {
				price.WithLabelValues(ch.Name, p.Currency).Set(v)
			}
		}
		reg.MustRegister(price)
		if p.HasBudget {
			budget := prometheus.NewGaugeVec(prometheus.GaugeOpts{
				Namespace: Namespace, Subsystem: "pricing", Name: "monthly_budget",
				Help: "Monthly budget for billed verifications, from the config file.",
			}, []string{"currency"})
			budget.WithLabelValues(p.Currency).Set(p.MonthlyBudget)
			reg.MustRegister(budget)
		}
	}
	return m
}

// ProcessingSampleEvery is how many messages a consumer handles per sample of
// faceid_exporter_processing_seconds.
const ProcessingSampleEvery = 32

// possibleBillable lists the billable values an event with code can get:
// the code's own, the one before a dated billing change, and false for
// repeats under the reqId rule.
func possibleBillable(cat *classify.Catalog, code *classify.Code) []classify.Billable {
	out := []classify.Billable{code.Billable}
	add := func(b classify.Billable) {
		for _, o := range out {
			if o == b {
				return
			}
		}
		out = append(out, b)
	}
	if !code.ChangedAt.IsZero() {
		add(code.BillableBefore)
	}
	if r := cat.ReqIDRule; r.Family == code.Family && r.Code == code.Code {
		add(classify.BillableFalse)
	}
	return out
}

func levelLabel(l int) string {
	if l < 0 {
		return Absent
	}
	return strconv.Itoa(l)
}

func (m *Metrics) verIndex(ch, codeSlot int, o classify.Outcome, b classify.Billable) int {
	return ((ch*m.codeSlots+codeSlot)*2+int(o))*3 + int(b)
}

// Catalog returns the catalog the metrics were built from.
func (m *Metrics) Catalog() *classify.Catalog { return m.cat }

// Count counts one classified event that is not a duplicate; received is its
// time of receipt in Unix nanoseconds.
func (m *Metrics) Count(r *classify.Result, received int64) {
	ch := r.Channel.Index
	slot := 0
	if r.Code != nil {
		slot = r.Code.Index + 1
	} else {
		m.unk[ch].Inc()
	}
	c := m.ver[m.verIndex(ch, slot, r.Outcome, r.Billable)]
	if c == nil {
		c = m.verSlow(r)
	}
	c.Inc()
	m.risk[ch*3+int(r.Risk)].Inc()
	m.dl[ch*m.dlSlots+r.DeviceLevel+1].Inc()
	m.il[ch*m.ilSlots+r.RiskLevel+1].Inc()
	const nPlat = 4
	p := int(r.Platform)
	for _, t := range r.DeviceTags[:r.NDeviceTags] {
		m.dt[(ch*m.dtSlots+t.Index+1)*nPlat+p].Inc()
	}
	if r.UnknownDeviceTags > 0 {
		m.dt[(ch*m.dtSlots)*nPlat+p].Add(float64(r.UnknownDeviceTags))
	}
	for _, t := range r.IdentityTags[:r.NIdentityTags] {
		m.it[ch*m.itSlots+t.Index+1].Inc()
	}
	if r.UnknownIdentityTags > 0 {
		m.it[ch*m.itSlots].Add(float64(r.UnknownIdentityTags))
	}
	if r.Problems != 0 {
		for i := range m.prob {
			if r.Problems&(1<<i) != 0 && m.prob[i] != nil {
				m.prob[i].Inc()
			}
		}
	}
	if m.business != nil {
		m.business.count(r)
	}
	if r.TSFromEvent {
		d := float64(received-r.TS.UnixNano()) / 1e9
		if d < 0 {
			d = 0
		}
		m.delay.Observe(d)
	}
	if received > m.lastEvent.Load() {
		m.lastEvent.Store(received)
	}
}

// verSlow returns the counter of a combination not created at start (it
// cannot happen with the current classifier; kept so that counting never
// fails). Label values still come from the catalog and closed enums only.
func (m *Metrics) verSlow(r *classify.Result) prometheus.Counter {
	code := Unknown
	if r.Code != nil {
		code = r.Code.Code
	}
	return m.verVec.WithLabelValues(r.Channel.Name, code, r.Outcome.String(), r.Billable.String())
}

// Received counts a message received on a transport (TransportCore or TransportJetStream).
func (m *Metrics) Received(jetstream bool) {
	if jetstream {
		m.received[1].Inc()
	} else {
		m.received[0].Inc()
	}
}

// ReceivedCounter returns the counter of messages received on a transport.
func (m *Metrics) ReceivedCounter(jetstream bool) prometheus.Counter {
	if jetstream {
		return m.received[1]
	}
	return m.received[0]
}

// Duplicate counts an event not counted because its id was seen.
func (m *Metrics) Duplicate() { m.duplicates.Inc() }

// Rejected counts a rejected message.
func (m *Metrics) Rejected(r classify.Reason) {
	if c := m.rejected[r&15]; c != nil {
		c.Inc()
	}
}

// DeadLettered counts a rejected message republished to the dead-letter subject.
func (m *Metrics) DeadLettered(r classify.Reason) {
	if c := m.deadLetters[r&15]; c != nil {
		c.Inc()
	}
}

// DeadLetterError counts a rejected message that could not be republished.
func (m *Metrics) DeadLetterError() { m.dlErrors.Inc() }

// ObserveProcessing records the processing time of one sampled message.
func (m *Metrics) ObserveProcessing(d time.Duration) { m.processing.Observe(d.Seconds()) }

// SetConnected sets faceid_exporter_nats_connected.
func (m *Metrics) SetConnected(up bool) {
	if up {
		m.connected.Set(1)
	} else {
		m.connected.Set(0)
	}
}

// Reconnected counts a reconnection to NATS.
func (m *Metrics) Reconnected() { m.reconnects.Inc() }

// Disconnected counts a loss of the NATS connection.
func (m *Metrics) Disconnected() { m.disconnects.Inc() }

// Dropped counts core NATS messages dropped by the client.
func (m *Metrics) Dropped(n int) {
	if n > 0 {
		m.dropped.Add(float64(n))
	}
}

// SetJetStreamPending sets the consumer's pending and ack-pending gauges.
func (m *Metrics) SetJetStreamPending(pending, ackPending uint64) {
	m.jsPending.Set(float64(pending))
	m.jsAckPending.Set(float64(ackPending))
}

// AddReqIDEvicted adds reqIds forgotten by a classifier.
func (m *Metrics) AddReqIDEvicted(n uint64) { m.reqIDEvicted.Add(n) }

// LastEvent returns the time of receipt of the last counted event (zero before the first).
func (m *Metrics) LastEvent() time.Time {
	ns := m.lastEvent.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// SummaryRow is one channel×outcome×billable total.
type SummaryRow struct {
	Channel  string `json:"channel"`
	Outcome  string `json:"outcome"`
	Billable string `json:"billable"`
	Count    uint64 `json:"count"`
}

// Summary returns the counts of faceid_verifications_total summed over codes,
// one row for every channel×outcome×billable, zeros included.
func (m *Metrics) Summary() []SummaryRow {
	billable := classify.BillableLabels()
	rows := make([]SummaryRow, 0, len(m.cat.Channels)*2*len(billable))
	index := map[[3]string]int{}
	for _, ch := range m.cat.Channels {
		for _, o := range []classify.Outcome{classify.OutcomeSuccess, classify.OutcomeFailure} {
			for _, b := range billable {
				index[[3]string{ch.Name, o.String(), b}] = len(rows)
				rows = append(rows, SummaryRow{Channel: ch.Name, Outcome: o.String(), Billable: b})
			}
		}
	}
	ch := make(chan prometheus.Metric, 64)
	var wg sync.WaitGroup
	wg.Go(func() {
		m.verVec.Collect(ch)
		close(ch)
	})
	for metric := range ch {
		var key [3]string
		v, labels := counterValue(metric)
		key[0], key[1], key[2] = labels["channel"], labels["outcome"], labels["billable"]
		if i, ok := index[key]; ok {
			rows[i].Count += uint64(math.Round(v))
		}
	}
	wg.Wait()
	return rows
}
