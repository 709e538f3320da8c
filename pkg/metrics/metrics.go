// Package metrics defines the exporter's Prometheus metrics: the event
// counters of the books of the partitions a replica owns (exposed by a
// collector straight from the books, with a partition label, so that a lost
// partition's series disappear at once), month-to-date gauges from the
// ledger, and the process's own metrics.
package metrics

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/faceid-observability/faceid-exporter/pkg/classify"
)

// Namespace prefixes every metric name.
const Namespace = "faceid"

// Transports label faceid_exporter_events_received_total.
const (
	TransportCore      = "core"
	TransportJetStream = "jetstream"
)

// Options configure the optional metrics.
type Options struct {
	// Partitions is the consumer group's number of partitions, whose
	// takeover series are created at zero (at least one).
	Partitions int
	// Pricing, when set, exports the pricing gauges and the month-to-date cost.
	Pricing *Pricing
}

// Pricing is the price list exported as gauges.
type Pricing struct {
	Currency      string
	MonthlyBudget float64
	HasBudget     bool
	UnitPrice     map[string]float64
}

// Metrics holds the process's own collectors. Its methods are safe for
// concurrent use.
type Metrics struct {
	cat     *classify.Catalog
	pricing *Pricing

	received    [2]prometheus.Counter
	dlErrors    prometheus.Counter
	processing  prometheus.Histogram
	delay       prometheus.Histogram
	connected   prometheus.Gauge
	reconnects  prometheus.Counter
	disconnects prometheus.Counter
	dropped     prometheus.Counter

	ckptDuration prometheus.Histogram
	ckptFailures [2]prometheus.Counter // error, fenced
	takeovers    *prometheus.CounterVec

	lastEvent atomic.Int64 // Unix nanoseconds of receipt
}

// Buckets of the histograms.
var (
	ProcessingBuckets = []float64{250e-9, 500e-9, 1e-6, 2.5e-6, 5e-6, 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 1e-3, 10e-3}
	DelayBuckets      = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}
)

// New registers the process's metrics on reg and returns them.
func New(reg prometheus.Registerer, cat *classify.Catalog, opts Options) *Metrics {
	m := &Metrics{cat: cat, pricing: opts.Pricing}
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
		Help: "Messages received from NATS by this process, before any check, by transport (process-local: a replay after a restart receives messages again).",
	}, []string{"transport"})
	m.received[0] = recVec.WithLabelValues(TransportCore)
	m.received[1] = recVec.WithLabelValues(TransportJetStream)
	m.dlErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "exporter", Name: "dead_letter_errors_total",
		Help: "Rejected messages whose dead letter could not be published (core mode: lost; JetStream mode: the partition restarts from its checkpoint and publishes again).",
	})
	m.processing = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "exporter", Name: "processing_seconds",
		Help:    "Time to decode, classify and count one message; sampled, one message in " + strconv.Itoa(ProcessingSampleEvery) + " per consumer.",
		Buckets: ProcessingBuckets,
	})
	m.delay = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "exporter", Name: "event_delay_seconds",
		Help:    "Time of receipt (JetStream: the message's stream timestamp) minus the event's ts, for events that carry a ts (negative delays count as 0).",
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
		Help: "Core NATS messages dropped by the client because the exporter fell behind (slow consumer); JetStream mode reads at its own pace instead.",
	})
	m.ckptDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "exporter", Name: "checkpoint_duration_seconds",
		Help:    "Time to commit one partition checkpoint (snapshot, data keys, record).",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	})
	failVec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "exporter", Name: "checkpoint_failures_total",
		Help: "Checkpoint commits that failed, by reason: fenced (another owner committed: this replica lost the partition) or error (retried).",
	}, []string{"reason"})
	m.ckptFailures[0] = failVec.WithLabelValues("error")
	m.ckptFailures[1] = failVec.WithLabelValues("fenced")
	m.takeovers = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "exporter", Name: "takeovers_total",
		Help: "Partitions this process took over from an owner that had gone silent for the takeover timeout, by partition.",
	}, []string{"partition"})
	for p := 0; p < max(opts.Partitions, 1); p++ {
		m.takeovers.WithLabelValues(strconv.Itoa(p))
	}
	lastEvent := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: Namespace, Subsystem: "exporter", Name: "last_event_timestamp_seconds",
		Help: "Unix time of receipt of the last counted event (0 before the first).",
	}, func() float64 { return float64(m.lastEvent.Load()) / 1e9 })
	reg.MustRegister(codeInfo, recVec, m.dlErrors, m.processing, m.delay,
		m.connected, m.reconnects, m.disconnects, m.dropped, m.ckptDuration, failVec, m.takeovers, lastEvent)
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

// Catalog returns the catalog the metrics were built from.
func (m *Metrics) Catalog() *classify.Catalog { return m.cat }

// Counted records the process-local side of a counted event: its delay;
// received is its time of receipt (JetStream: the message's stream timestamp)
// in Unix nanoseconds. CountedAt records when.
func (m *Metrics) Counted(r *classify.Result, received int64) {
	if r.TSFromEvent {
		d := float64(received-r.TS.UnixNano()) / 1e9
		if d < 0 {
			d = 0
		}
		m.delay.Observe(d)
	}
}

// CountedAt records that events were counted at now (a consumer reports it
// once per batch, not per event): faceid_exporter_last_event_timestamp_seconds.
func (m *Metrics) CountedAt(now time.Time) {
	ns := now.UnixNano()
	for {
		old := m.lastEvent.Load()
		if ns <= old || m.lastEvent.CompareAndSwap(old, ns) {
			return
		}
	}
}

// ReceivedCounter returns the counter of messages received on a transport.
func (m *Metrics) ReceivedCounter(jetstream bool) prometheus.Counter {
	if jetstream {
		return m.received[1]
	}
	return m.received[0]
}

// DeadLettered is counted in the books; it is here for the core Observer.
func (m *Metrics) DeadLettered(classify.Reason) {}

// DeadLetterError counts a dead letter that could not be published.
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

// CheckpointDone records a successful commit.
func (m *Metrics) CheckpointDone(d time.Duration, _ int) { m.ckptDuration.Observe(d.Seconds()) }

// CheckpointFailed counts a failed commit.
func (m *Metrics) CheckpointFailed(fenced bool) {
	if fenced {
		m.ckptFailures[1].Inc()
	} else {
		m.ckptFailures[0].Inc()
	}
}

// Takeover counts a partition taken over from a silent owner.
func (m *Metrics) Takeover(partition int) { m.takeovers.WithLabelValues(strconv.Itoa(partition)).Inc() }

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
