package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/faceid-observability/faceid-exporter/pkg/books"
	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
)

// Partition is an owned partition as the books collector exposes it.
type Partition struct {
	ID    int
	Books *books.Books
	Owns  []bool // channels whose series are exported at zero (nil: all)
	// Checkpointed partitions (JetStream mode) also report their checkpoint.
	Checkpointed bool
	Seq          uint64
	CommittedAt  time.Time
	Lag, Replay  uint64
	Bytes        int
}

// Source says what the books collector exposes.
type Source struct {
	Layout *books.Layout
	// Owned lists the partitions this replica owns now.
	Owned func() []Partition
	// Partitions is the group's number of partitions (0: core mode), and Ages
	// the time since each partition's checkpoint last changed.
	Partitions int
	Ages       func(now time.Time) []time.Duration
	// Unpartitioned reports the messages no partition reads (false: not
	// measured by this replica).
	Unpartitioned func() (uint64, bool)
	Now           func() time.Time // nil: time.Now
}

// Books exposes the event counters of the owned partitions' books, the
// month-to-date gauges from their ledgers and the partitions' checkpoint
// state. It reads the books at each scrape, so a partition that is lost stops
// being exposed at the next one.
type Books struct {
	src     Source
	pricing *Pricing
	descs   []*prometheus.Desc // by family
	famOf   []int              // family of each slot
	billed  *prometheus.Desc
	cost    *prometheus.Desc

	partitions, owned, age, lastOK, seq, size, lag, replay, unpartitioned *prometheus.Desc
}

// NewBooks registers the books collector on reg.
func NewBooks(reg prometheus.Registerer, src Source, pricing *Pricing) *Books {
	if src.Now == nil {
		src.Now = time.Now
	}
	l := src.Layout
	b := &Books{src: src, pricing: pricing, famOf: make([]int, l.Slots())}
	for i, f := range l.Families() {
		labels := append(append([]string(nil), f.Labels...), "partition")
		b.descs = append(b.descs, prometheus.NewDesc(f.Name, f.Help, labels, nil))
		for s := f.Base; s < f.Base+f.N; s++ {
			b.famOf[s] = i
		}
	}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	b.billed = d("faceid_billed_month_to_date", "Billable verifications of the current Beijing calendar month so far, by channel, exactly as the ledger has them (event time, duplicates excluded).", "channel", "partition")
	b.cost = d("faceid_cost_month_to_date", "faceid_billed_month_to_date times the channel's unit price from the config's pricing.", "channel", "currency", "partition")
	b.partitions = d("faceid_exporter_partitions", "Partitions of the consumer group (--jetstream.partitions).")
	b.owned = d("faceid_exporter_partitions_owned", "Partitions this replica owns now.")
	b.age = d("faceid_exporter_partition_checkpoint_age_seconds", "Seconds since this replica saw the partition's checkpoint change; it grows while the partition has no live owner.", "partition")
	b.lastOK = d("faceid_exporter_checkpoint_last_success_timestamp_seconds", "Unix time of the owned partition's last committed checkpoint.", "partition")
	b.seq = d("faceid_exporter_checkpoint_sequence", "Last stream sequence the owned partition's committed checkpoint includes.", "partition")
	b.size = d("faceid_exporter_checkpoint_size_bytes", "Bytes the owned partition's last commit wrote (data keys; the record is small).", "partition")
	b.lag = d("faceid_exporter_jetstream_lag_messages", "Messages of the owned partition not yet processed (the ordered consumer's pending count).", "partition")
	b.replay = d("faceid_exporter_replay_messages", "Messages after the checkpoint when this replica acquired the partition: what it had to read (again) to catch up.", "partition")
	b.unpartitioned = d("faceid_exporter_jetstream_unpartitioned_messages", "Messages of the stream on subjects of --nats.subject that no partition reads (not a catalog channel's subject): not counted. Reported by the owner of partition 0 when there is more than one partition.")
	reg.MustRegister(b)
	return b
}

// Describe sends nothing: the collector is unchecked, its series follow the
// partitions owned.
func (b *Books) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (b *Books) Collect(ch chan<- prometheus.Metric) {
	l := b.src.Layout
	cat := l.Catalog()
	now := b.src.Now()
	owned := b.src.Owned()
	for _, p := range owned {
		part := strconv.Itoa(p.ID)
		for slot := 0; slot < l.Slots(); slot++ {
			v := p.Books.Value(slot)
			if v == 0 && !l.Preset(slot, p.Owns) {
				continue
			}
			values := append(append(make([]string, 0, 6), l.Values(slot)...), part)
			ch <- prometheus.MustNewConstMetric(b.descs[b.famOf[slot]], prometheus.CounterValue, float64(v), values...)
		}
		p.Books.Lock()
		billed := p.Books.BilledMonthToDate(now)
		p.Books.Unlock()
		for _, c := range cat.Channels {
			if billed[c.Index] == 0 && p.Owns != nil && !p.Owns[c.Index] {
				continue
			}
			ch <- prometheus.MustNewConstMetric(b.billed, prometheus.GaugeValue, float64(billed[c.Index]), c.Name, part)
			if b.pricing != nil {
				if price, ok := b.pricing.UnitPrice[c.Name]; ok {
					ch <- prometheus.MustNewConstMetric(b.cost, prometheus.GaugeValue, float64(billed[c.Index])*price, c.Name, b.pricing.Currency, part)
				}
			}
		}
		if p.Checkpointed {
			ch <- prometheus.MustNewConstMetric(b.lastOK, prometheus.GaugeValue, float64(p.CommittedAt.UnixNano())/1e9, part)
			ch <- prometheus.MustNewConstMetric(b.seq, prometheus.GaugeValue, float64(p.Seq), part)
			ch <- prometheus.MustNewConstMetric(b.size, prometheus.GaugeValue, float64(p.Bytes), part)
			ch <- prometheus.MustNewConstMetric(b.lag, prometheus.GaugeValue, float64(p.Lag), part)
			ch <- prometheus.MustNewConstMetric(b.replay, prometheus.GaugeValue, float64(p.Replay), part)
		}
	}
	if b.src.Partitions > 0 {
		ch <- prometheus.MustNewConstMetric(b.partitions, prometheus.GaugeValue, float64(b.src.Partitions))
		ch <- prometheus.MustNewConstMetric(b.owned, prometheus.GaugeValue, float64(len(owned)))
		for p, a := range b.src.Ages(now) {
			ch <- prometheus.MustNewConstMetric(b.age, prometheus.GaugeValue, a.Seconds(), strconv.Itoa(p))
		}
		if b.src.Unpartitioned != nil {
			if n, ok := b.src.Unpartitioned(); ok {
				ch <- prometheus.MustNewConstMetric(b.unpartitioned, prometheus.GaugeValue, float64(n))
			}
		}
	}
}

// Summary returns the counts of faceid_verifications_total of the owned
// partitions summed over codes, one row for every channel×outcome×billable,
// zeros included.
func (b *Books) Summary() []SummaryRow {
	l := b.src.Layout
	cat := l.Catalog()
	billable := classify.BillableLabels()
	rows := make([]SummaryRow, 0, len(cat.Channels)*2*len(billable))
	index := map[[3]string]int{}
	for _, ch := range cat.Channels {
		for _, o := range []classify.Outcome{classify.OutcomeSuccess, classify.OutcomeFailure} {
			for _, bl := range billable {
				index[[3]string{ch.Name, o.String(), bl}] = len(rows)
				rows = append(rows, SummaryRow{Channel: ch.Name, Outcome: o.String(), Billable: bl})
			}
		}
	}
	ver := l.Families()[0]
	for _, p := range b.src.Owned() {
		for slot := ver.Base; slot < ver.Base+ver.N; slot++ {
			v := p.Books.Value(slot)
			if v == 0 {
				continue
			}
			lv := l.Values(slot) // channel, code, outcome, billable
			if i, ok := index[[3]string{lv[0], lv[2], lv[3]}]; ok {
				rows[i].Count += v
			}
		}
	}
	return rows
}

// Ledger returns the owned partitions' rows of days from..to, summed (the
// live, uncommitted view; the committed books are read from the checkpoints).
func (b *Books) Ledger(from, to ledger.Day) []ledger.Row {
	sum := ledger.Books{}
	for _, p := range b.src.Owned() {
		p.Books.Lock()
		rows := p.Books.Rows(from, to)
		p.Books.Unlock()
		for _, r := range rows {
			d, _ := ledger.ParseDay(r.Day)
			sum.Add(ledger.Key{Day: d, Channel: r.Channel, Code: r.Code, Billable: r.Billable, RuleID: r.RuleID}, r.Count)
		}
	}
	return sum.Rows(from, to)
}

// SeriesBound returns the most series the event metrics of one partition can
// have for cat (verifications, risk, levels, tags, unknown codes, problems,
// the checkpointed self-counters, code info), and the most the business
// metric can have with the given allowlist lengths (0 when it is off).
func SeriesBound(cat *classify.Catalog, appIDs, ruleIDs int, businessOn bool) (events, businessSeries int) {
	var ao, ro []string
	if businessOn {
		ao, ro = make([]string, appIDs), make([]string, ruleIDs)
		for i := range ao {
			ao[i] = "a" + strconv.Itoa(i)
		}
		for i := range ro {
			ro[i] = "r" + strconv.Itoa(i)
		}
	}
	l := books.NewLayout(cat, books.LayoutOptions{AppIDs: ao, RuleIDs: ro})
	for _, f := range l.Families() {
		n := 0
		for s := f.Base; s < f.Base+f.N; s++ {
			if l.Values(s) != nil {
				n++
			}
		}
		if f.Name == "faceid_business_verifications_total" {
			businessSeries = n
		} else {
			events += n
		}
	}
	events += len(cat.Codes) + 2*len(cat.Channels) // code info; billed and cost month to date
	return events, businessSeries
}

// SelfSeriesBound returns the most series of the self-metrics and pricing
// gauges, counting each histogram bucket, _sum and _count as a series, for a
// group of the given number of partitions (0: core mode).
func SelfSeriesBound(cat *classify.Catalog, partitions int) int {
	return 2 + // events received by transport
		1 + // dead-letter errors
		len(ProcessingBuckets) + 3 + len(DelayBuckets) + 3 + 13 + 3 + // histograms with +Inf, _sum, _count
		1 + 1 + 1 + 1 + // nats connected, reconnects, disconnects, dropped
		2 + 1 + 1 + // checkpoint failures, takeovers, last event
		3 + partitions*6 + // partitions, owned, unpartitioned; per partition: age, last success, sequence, size, lag, replay
		len(cat.Channels) + 1 // pricing unit price per channel, monthly budget
}
