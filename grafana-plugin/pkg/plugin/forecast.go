package plugin

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/faceid-observability/faceid-exporter/grafana-plugin/pkg/exporterapi"
)

// Forecast query options.
const (
	ForecastDaily    = "daily"
	ForecastMonthEnd = "month_end"
	MeasureBilled    = "billed"
	MeasureCost      = "cost"
	// DefaultForecastDays is the exporter's default; maxForecastDays its limit.
	DefaultForecastDays = 35
	maxForecastDays     = 400
)

// AllChannels names the total of all channels in forecast frames.
const AllChannels = "all"

func (d *Datasource) queryForecast(ctx context.Context, m Query) (data.Frames, error) {
	c, err := d.ready()
	if err != nil {
		return nil, err
	}
	f, err := c.Forecast(ctx, m.Days)
	if err != nil {
		return nil, err
	}
	frame, err := ForecastFrame(f, m)
	if err != nil {
		return nil, err
	}
	return data.Frames{frame}, nil
}

// forecastSeries returns the series a query shows: the channels its filter
// allows, and the total (channel "all") when it filters no channel.
func forecastSeries(f *exporterapi.Forecast, m Query) []exporterapi.ForecastSeries {
	var out []exporterapi.ForecastSeries
	if len(m.Channel.Values()) == 0 {
		t := f.Total
		t.Channel = AllChannels
		out = append(out, t)
	}
	for _, s := range f.Channels {
		if m.Channel.Allows(s.Channel) {
			out = append(out, s)
		}
	}
	return out
}

// ForecastFrame turns the exporter's forecast into a frame. Daily: a long
// time series of time (each day's Beijing midnight), channel, point,
// low80, high80, low95, high95 of billed verifications or cost (channels
// without a price have no cost rows); "timeseries" makes it wide, one field
// per bound and channel, labelled with the channel. Month end: one row per
// channel (the total first) with its quality, history, month to date and
// the month-end bounds.
func ForecastFrame(f *exporterapi.Forecast, m Query) (*data.Frame, error) {
	series := forecastSeries(f, m)
	meta := &data.FrameMeta{Custom: map[string]any{"today": f.Today, "month_end": f.MonthEnd, "currency": f.Currency, "measure": m.Measure}}
	pick := func(billed exporterapi.Estimate, cost *exporterapi.Estimate) (exporterapi.Estimate, bool) {
		if m.Measure == MeasureCost {
			if cost == nil {
				return exporterapi.Estimate{}, false
			}
			return *cost, true
		}
		return billed, true
	}
	if m.ForecastOf == ForecastMonthEnd {
		var channel, quality []string
		var history []int64
		var mtd, point, low80, high80, low95, high95 []float64
		for _, s := range series {
			e, ok := pick(s.BilledMonthEnd, s.CostMonthEnd)
			if !ok {
				continue
			}
			td := s.BilledMonthToDate
			if m.Measure == MeasureCost {
				td = *s.CostMonthToDate
			}
			channel, quality, history = append(channel, s.Channel), append(quality, s.Quality), append(history, int64(s.HistoryDays))
			mtd, point, low80, high80, low95, high95 = append(mtd, td), append(point, e.Point), append(low80, e.Low80), append(high80, e.High80), append(low95, e.Low95), append(high95, e.High95)
		}
		frame := data.NewFrame("forecast_month_end",
			data.NewField("channel", nil, channel), data.NewField("quality", nil, quality), data.NewField("history_days", nil, history),
			data.NewField("month_to_date", nil, mtd), data.NewField("point", nil, point),
			data.NewField("low80", nil, low80), data.NewField("high80", nil, high80), data.NewField("low95", nil, low95), data.NewField("high95", nil, high95))
		frame.SetMeta(meta)
		return frame, nil
	}
	type rec struct {
		day     time.Time
		channel string
		e       exporterapi.Estimate
	}
	var recs []rec
	for _, s := range series {
		for _, dd := range s.Daily {
			e, ok := pick(dd.Billed, dd.Cost)
			if !ok {
				continue
			}
			day, err := time.ParseInLocation(dayLayout, dd.Day, Beijing)
			if err != nil {
				return nil, fmt.Errorf("forecast of channel %s: day %q is not YYYY-MM-DD", s.Channel, dd.Day)
			}
			recs = append(recs, rec{day, s.Channel, e})
		}
	}
	slices.SortStableFunc(recs, func(a, b rec) int { return cmp.Or(a.day.Compare(b.day), cmp.Compare(a.channel, b.channel)) })
	ts := make([]time.Time, len(recs))
	channel := make([]string, len(recs))
	point, low80, high80, low95, high95 := make([]float64, len(recs)), make([]float64, len(recs)), make([]float64, len(recs)), make([]float64, len(recs)), make([]float64, len(recs))
	for i, r := range recs {
		ts[i], channel[i] = r.day, r.channel
		point[i], low80[i], high80[i], low95[i], high95[i] = r.e.Point, r.e.Low80, r.e.High80, r.e.Low95, r.e.High95
	}
	frame := data.NewFrame("forecast",
		data.NewField("time", nil, ts), data.NewField("channel", nil, channel), data.NewField("point", nil, point),
		data.NewField("low80", nil, low80), data.NewField("high80", nil, high80), data.NewField("low95", nil, low95), data.NewField("high95", nil, high95))
	meta.Type, meta.TypeVersion = data.FrameTypeTimeSeriesLong, data.FrameTypeVersion{0, 1}
	frame.SetMeta(meta)
	if m.Format != FormatTimeSeries {
		return frame, nil
	}
	meta.Type = data.FrameTypeTimeSeriesWide
	if len(ts) == 0 {
		wide := data.NewFrame("forecast", data.NewField("time", nil, []time.Time{}))
		wide.SetMeta(meta)
		return wide, nil
	}
	wide, err := data.LongToWide(frame, nil)
	if err != nil {
		return nil, fmt.Errorf("forecast as a wide time series: %w", err)
	}
	wide.SetMeta(meta)
	return wide, nil
}
