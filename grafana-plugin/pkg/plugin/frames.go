package plugin

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/live"

	"github.com/faceid-observability/faceid-exporter/grafana-plugin/pkg/exporterapi"
)

func (d *Datasource) queryCatalog(ctx context.Context, m Query) (data.Frames, error) {
	cat, err := d.getCatalog(ctx)
	if err != nil {
		return nil, err
	}
	if err := knownChannels(cat, m.Channel); err != nil {
		return nil, err
	}
	return data.Frames{CatalogFrame(cat, m)}, nil
}

// knownChannels checks that every channel of a filter is in the catalog.
func knownChannels(cat *exporterapi.Catalog, channels Filter) error {
	for _, ch := range channels.Values() {
		if cat.FamilyOf(ch) == "" {
			return badQuery("channel %q is not in the exporter's catalog (channels: %s)", ch, strings.Join(cat.Channels(), ", "))
		}
	}
	return nil
}

// CatalogFrame is the catalog as a table, one row per channel and code of
// the channel's family, filtered by the query's family, channel, category,
// billable, code and search (substring of the code or its meaning, any case).
func CatalogFrame(cat *exporterapi.Catalog, m Query) *data.Frame {
	var family, channel, code, meaning, category, billable, billing []string
	search := strings.ToLower(m.Search)
	for _, f := range cat.Families {
		if !m.Family.Allows(f.Name) {
			continue
		}
		for _, ch := range f.Channels {
			if !m.Channel.Allows(ch) {
				continue
			}
			for _, c := range cat.Codes {
				if c.Family != f.Name || !m.Category.Allows(c.Category) || !m.Billable.Allows(string(c.Billable)) || !m.Code.Allows(c.Code) ||
					(search != "" && !strings.Contains(strings.ToLower(c.Code), search) && !strings.Contains(strings.ToLower(c.Meaning), search)) {
					continue
				}
				family = append(family, f.Name)
				channel = append(channel, ch)
				code = append(code, c.Code)
				meaning = append(meaning, c.Meaning)
				category = append(category, c.Category)
				billable = append(billable, string(c.Billable))
				billing = append(billing, c.Billing)
			}
		}
	}
	frame := data.NewFrame("catalog",
		data.NewField("family", nil, family),
		data.NewField("channel", nil, channel),
		data.NewField("code", nil, code),
		data.NewField("meaning", nil, meaning),
		data.NewField("category", nil, category),
		data.NewField("billable", nil, billable),
		data.NewField("billing", nil, billing),
	)
	frame.SetMeta(&data.FrameMeta{PreferredVisualization: data.VisTypeTable})
	return frame
}

func (d *Datasource) queryEvents(ctx context.Context, m Query, tr backend.TimeRange) (data.Frames, error) {
	kept, err := d.events(ctx, m, tr, !m.IgnoreTimeRange)
	if err != nil {
		return nil, err
	}
	name := "events"
	if len(m.Kind) == 1 {
		name += "_" + m.Kind[0]
	}
	frame := EventsFrame(name, kept)
	frame.Meta.PreferredVisualization = data.VisTypeTable
	return data.Frames{frame}, nil
}

// events fetches the recent events of every kind of the query, each event
// once, keeps those that pass the channel and code filters (and, when
// inRange, lie in the time range) and sorts them newest first.
func (d *Datasource) events(ctx context.Context, m Query, tr backend.TimeRange, inRange bool) ([]exporterapi.Event, error) {
	c, err := d.ready()
	if err != nil {
		return nil, err
	}
	var kept []exporterapi.Event
	seen := map[string]bool{}
	for _, kind := range m.Kind {
		evs, err := c.Events(ctx, kind, m.Limit)
		if err != nil {
			return nil, err
		}
		for _, e := range evs.Events {
			if seen[e.ID] || !m.Channel.Allows(e.Channel) || !(m.Code.Allows(e.Code) || (e.RawCode != "" && m.Code.Allows(e.RawCode))) {
				continue
			}
			if inRange && !tr.From.IsZero() && (e.TS.Before(tr.From) || e.TS.After(tr.To)) {
				continue
			}
			seen[e.ID] = true
			kept = append(kept, e)
		}
	}
	// Newest first by the time field; the exporter's order (receipt) breaks ties.
	sort.SliceStable(kept, func(i, j int) bool { return kept[i].TS.After(kept[j].TS) })
	return kept, nil
}

// EventsFrame turns events into a frame whose first field, "time", is the
// event's own timestamp. Absent risk levels are null.
func EventsFrame(name string, evs []exporterapi.Event) *data.Frame {
	n := len(evs)
	ts := make([]time.Time, n)
	received := make([]time.Time, n)
	id := make([]string, n)
	channel := make([]string, n)
	family := make([]string, n)
	code := make([]string, n)
	rawCode := make([]string, n)
	known := make([]bool, n)
	meaning := make([]string, n)
	category := make([]string, n)
	outcome := make([]string, n)
	billable := make([]string, n)
	risk := make([]string, n)
	deviceLevel := make([]*int64, n)
	riskLevel := make([]*int64, n)
	platform := make([]string, n)
	deviceTags := make([]string, n)
	identityTags := make([]string, n)
	for i, e := range evs {
		ts[i], received[i] = e.TS, e.Received
		id[i], channel[i], family[i], code[i], rawCode[i] = e.ID, e.Channel, e.Family, e.Code, e.RawCode
		known[i], meaning[i], category[i], outcome[i], billable[i] = e.Known, e.Meaning, e.Category, e.Outcome, string(e.Billable)
		risk[i], platform[i] = e.Risk.Level, e.Risk.Platform
		deviceLevel[i], riskLevel[i] = level(e.Risk.DeviceLevel), level(e.Risk.RiskLevel)
		deviceTags[i] = strings.Join(e.Risk.DeviceTags, ",")
		identityTags[i] = strings.Join(e.Risk.IdentityTags, ",")
	}
	frame := data.NewFrame(name,
		data.NewField("time", nil, ts),
		data.NewField("received", nil, received),
		data.NewField("id", nil, id),
		data.NewField("channel", nil, channel),
		data.NewField("family", nil, family),
		data.NewField("code", nil, code),
		data.NewField("raw_code", nil, rawCode),
		data.NewField("known", nil, known),
		data.NewField("meaning", nil, meaning),
		data.NewField("category", nil, category),
		data.NewField("outcome", nil, outcome),
		data.NewField("billable", nil, billable),
		data.NewField("risk", nil, risk),
		data.NewField("device_level", nil, deviceLevel),
		data.NewField("risk_level", nil, riskLevel),
		data.NewField("platform", nil, platform),
		data.NewField("device_tags", nil, deviceTags),
		data.NewField("identity_tags", nil, identityTags),
	)
	frame.SetMeta(&data.FrameMeta{})
	return frame
}

func level(p *int) *int64 {
	if p == nil {
		return nil
	}
	v := int64(*p)
	return &v
}

func (d *Datasource) querySummary(ctx context.Context, m Query) (data.Frames, error) {
	c, err := d.ready()
	if err != nil {
		return nil, err
	}
	s, err := c.Summary(ctx)
	if err != nil {
		return nil, err
	}
	return data.Frames{SummaryFrame(s, m, d.now())}, nil
}

// summaryGroup is one output row of the summary query.
type summaryGroup struct {
	key        []string // values of m.GroupBy, in order
	count, all float64
}

// SummaryFrame aggregates the exporter's summary rows: rows matching the
// channel, outcome and billable filters are summed per group of m.GroupBy
// values. Value "ratio" is the outcome's share: that sum divided by the
// group's verifications that pass the channel and billable filters, whatever
// their outcome (billable=true, outcome=failure gives the share of billed
// verifications that failed); a group without such verifications has no
// ratio (null). Format "table" is a numeric-long frame (string columns and
// one number column, which Grafana alerting reads as one series per row);
// "timeseries" is a wide frame with one point at now and one labelled number
// field per group.
func SummaryFrame(s *exporterapi.Summary, m Query, now time.Time) *data.Frame {
	dimValue := func(r exporterapi.SummaryRow, dim string) string {
		switch dim {
		case "channel":
			return r.Channel
		case "outcome":
			return r.Outcome
		default:
			return string(r.Billable)
		}
	}
	groups := map[string]*summaryGroup{}
	var order []string
	for _, r := range s.Rows {
		if !m.Channel.Allows(r.Channel) {
			continue
		}
		key := make([]string, len(m.GroupBy))
		for i, dim := range m.GroupBy {
			key[i] = dimValue(r, dim)
		}
		k := strings.Join(key, "\x00")
		g, ok := groups[k]
		if !ok {
			g = &summaryGroup{key: key}
			groups[k] = g
			order = append(order, k)
		}
		if !m.Billable.Allows(string(r.Billable)) {
			continue
		}
		g.all += r.Count
		if m.Outcome.Allows(r.Outcome) {
			g.count += r.Count
		}
	}
	// Groups whose own outcome/billable contradict the filter only ever hold zeros.
	var rows []*summaryGroup
	for _, k := range order {
		g := groups[k]
		if contradicts(g, m) {
			continue
		}
		rows = append(rows, g)
	}
	value := func(g *summaryGroup) *float64 {
		v := g.count
		if m.Value == ValueRatio {
			if g.all == 0 {
				return nil
			}
			v = g.count / g.all
		}
		return &v
	}
	meta := &data.FrameMeta{Custom: map[string]any{"since": s.Since.UTC().Format(time.RFC3339)}}

	if m.Format == FormatTimeSeries {
		frame := data.NewFrame("summary", data.NewField("time", nil, []time.Time{now.UTC()}))
		for _, g := range rows {
			labels := data.Labels{}
			for i, dim := range m.GroupBy {
				labels[dim] = g.key[i]
			}
			frame.Fields = append(frame.Fields, data.NewField(m.Value, labels, []*float64{value(g)}))
		}
		meta.Type, meta.TypeVersion = data.FrameTypeTimeSeriesWide, data.FrameTypeVersion{0, 1}
		frame.SetMeta(meta)
		return frame
	}

	frame := data.NewFrame("summary")
	for i, dim := range m.GroupBy {
		col := make([]string, len(rows))
		for j, g := range rows {
			col[j] = g.key[i]
		}
		frame.Fields = append(frame.Fields, data.NewField(dim, nil, col))
	}
	vals := make([]*float64, len(rows))
	for j, g := range rows {
		vals[j] = value(g)
	}
	frame.Fields = append(frame.Fields, data.NewField(m.Value, nil, vals))
	meta.Type, meta.TypeVersion = data.FrameTypeNumericLong, data.FrameTypeVersion{0, 1}
	frame.SetMeta(meta)
	return frame
}

// contradicts reports whether a group's own outcome or billable value rules
// it out under the query's filters.
func contradicts(g *summaryGroup, m Query) bool {
	for i, dim := range m.GroupBy {
		if (dim == "outcome" && !m.Outcome.Allows(g.key[i])) ||
			(dim == "billable" && !m.Billable.Allows(g.key[i])) {
			return true
		}
	}
	return false
}

// StreamPath is the Grafana Live path of the event stream of kind, limited
// to the channels when there are any.
func StreamPath(kind string, channels []string) string {
	if len(channels) == 0 {
		return "events/" + kind
	}
	return "events/" + kind + "/" + strings.Join(channels, channelSeparator)
}

func (d *Datasource) queryLive(pc backend.PluginContext, m Query) (data.Frames, error) {
	if _, err := d.ready(); err != nil {
		return nil, err
	}
	uid := d.uid
	if pc.DataSourceInstanceSettings != nil && pc.DataSourceInstanceSettings.UID != "" {
		uid = pc.DataSourceInstanceSettings.UID
	}
	ch := live.Channel{Scope: live.ScopeDatasource, Namespace: uid, Path: StreamPath(m.Kind[0], m.Channel)}
	if !ch.IsValid() {
		return nil, badQuery("cannot build a live channel for datasource %q and path %q", uid, ch.Path)
	}
	frame := EventsFrame("live_"+m.Kind[0], nil)
	frame.Meta.Channel = ch.String()
	return data.Frames{frame}, nil
}
