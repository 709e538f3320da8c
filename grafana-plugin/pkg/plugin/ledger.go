package plugin

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/faceid-observability/faceid-exporter/grafana-plugin/pkg/exporterapi"
)

// Beijing is the zone of the exporter's books (UTC+08:00 all year).
var Beijing = time.FixedZone("Asia/Shanghai", 8*3600)

// dayLayout is how the ledger writes a day.
const dayLayout = "2006-01-02"

// LedgerDays returns the Beijing days a time range covers, as the ledger
// names them: the day of From through the day of the range's last instant
// (To itself is excluded, so a range ending at a Beijing midnight does not
// reach into the next day).
func LedgerDays(tr backend.TimeRange) (from, to string, err error) {
	if tr.From.IsZero() || tr.To.IsZero() {
		return "", "", badQuery("a ledger query needs a time range")
	}
	if !tr.To.After(tr.From) {
		return "", "", badQuery("time range %s to %s is empty", tr.From.UTC().Format(time.RFC3339), tr.To.UTC().Format(time.RFC3339))
	}
	return tr.From.In(Beijing).Format(dayLayout), tr.To.Add(-time.Nanosecond).In(Beijing).Format(dayLayout), nil
}

func (d *Datasource) queryLedger(ctx context.Context, m Query, tr backend.TimeRange) (data.Frames, error) {
	from, to, err := LedgerDays(tr)
	if err != nil {
		return nil, err
	}
	c, err := d.ready()
	if err != nil {
		return nil, err
	}
	l, err := c.Ledger(ctx, from, to)
	if err != nil {
		return nil, err
	}
	frame, err := LedgerFrame(l, m)
	if err != nil {
		return nil, err
	}
	return data.Frames{frame}, nil
}

// billedKey is one output row of the ledger query.
type billedKey struct {
	day     time.Time
	channel string
}

// LedgerFrame sums the billable verifications of the ledger per Beijing day
// and channel (rows of the channel filter only). Format "table" is a long
// time series: time (the day's Beijing midnight), channel and billed, sorted
// by day and channel, for tables and stat panels; "timeseries" is the same
// data wide, one billed field per channel labelled with it (0 on the days a
// channel billed nothing while another did).
func LedgerFrame(l *exporterapi.Ledger, m Query) (*data.Frame, error) {
	sums := map[billedKey]int64{}
	for _, r := range l.Rows {
		if r.Billable != "true" || !m.Channel.Allows(r.Channel) {
			continue
		}
		day, err := time.ParseInLocation(dayLayout, r.Day, Beijing)
		if err != nil {
			return nil, fmt.Errorf("ledger row of channel %s: day %q is not YYYY-MM-DD", r.Channel, r.Day)
		}
		sums[billedKey{day: day, channel: r.Channel}] += int64(r.Count)
	}
	keys := make([]billedKey, 0, len(sums))
	for k := range sums {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b billedKey) int {
		return cmp.Or(a.day.Compare(b.day), cmp.Compare(a.channel, b.channel))
	})
	ts := make([]time.Time, len(keys))
	channel := make([]string, len(keys))
	billed := make([]int64, len(keys))
	for i, k := range keys {
		ts[i], channel[i], billed[i] = k.day, k.channel, sums[k]
	}
	frame := data.NewFrame("ledger",
		data.NewField("time", nil, ts),
		data.NewField("channel", nil, channel),
		data.NewField("billed", nil, billed),
	)
	meta := &data.FrameMeta{
		Type:        data.FrameTypeTimeSeriesLong,
		TypeVersion: data.FrameTypeVersion{0, 1},
		Custom:      map[string]any{"from": l.From, "to": l.To, "stream": l.Stream, "group": l.Group},
	}
	frame.SetMeta(meta)
	if m.Format != FormatTimeSeries {
		return frame, nil
	}
	meta.Type = data.FrameTypeTimeSeriesWide
	if len(keys) == 0 {
		wide := data.NewFrame("ledger", data.NewField("time", nil, []time.Time{}))
		wide.SetMeta(meta)
		return wide, nil
	}
	// A day without billed verifications of a channel billed 0.
	wide, err := data.LongToWide(frame, &data.FillMissing{Mode: data.FillModeValue, Value: 0})
	if err != nil {
		return nil, fmt.Errorf("ledger as a wide time series: %w", err)
	}
	wide.SetMeta(meta)
	return wide, nil
}
