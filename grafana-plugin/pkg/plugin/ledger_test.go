package plugin

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/faceid-observability/faceid-exporter/grafana-plugin/pkg/internal/fixture"
)

func TestLedgerDays(t *testing.T) {
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name, from, to string
		want           string
		err            string
	}{
		{name: "one UTC day spans two Beijing days", from: "2026-11-25T00:00:00Z", to: "2026-11-25T23:59:59.999Z", want: "2026-11-25..2026-11-26"},
		{name: "16:00 UTC is Beijing midnight", from: "2026-11-24T16:00:00Z", to: "2026-11-25T15:59:59.999Z", want: "2026-11-25..2026-11-25"},
		{name: "a range ending at Beijing midnight stops the day before", from: "2026-11-24T16:00:00Z", to: "2026-11-26T16:00:00Z", want: "2026-11-25..2026-11-26"},
		{name: "last 15 minutes", from: "2026-11-26T01:45:00Z", to: "2026-11-26T02:00:00Z", want: "2026-11-26..2026-11-26"},
		{name: "across a year", from: "2026-12-31T15:59:00Z", to: "2026-12-31T16:01:00Z", want: "2026-12-31..2027-01-01"},
		{name: "no range", err: "a ledger query needs a time range"},
		{name: "empty range", from: "2026-11-26T02:00:00Z", to: "2026-11-26T02:00:00Z", err: "time range 2026-11-26T02:00:00Z to 2026-11-26T02:00:00Z is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tr backend.TimeRange
			if tc.from != "" {
				tr = backend.TimeRange{From: utc(tc.from), To: utc(tc.to)}
			}
			from, to, err := LedgerDays(tr)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error %v, want %s", err, tc.err)
				}
				return
			}
			if err != nil || from+".."+to != tc.want {
				t.Fatalf("%s..%s %v, want %s", from, to, err, tc.want)
			}
		})
	}
}

func TestLedgerQuery(t *testing.T) {
	srv := fixture.New(fixture.Options{})
	defer srv.Close()
	d := newDS(t, backend.DataSourceInstanceSettings{URL: srv.URL})
	// 2026-11-24 00:00 to 2026-11-26 24:00 Beijing.
	threeDays := backend.TimeRange{From: time.Date(2026, 11, 23, 16, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 26, 16, 0, 0, 0, time.UTC)}

	t.Run("billed per Beijing day and channel, long for tables and stats", func(t *testing.T) {
		r := query(t, d, map[string]any{"queryType": "ledger"}, threeDays)
		if r.Error != nil {
			t.Fatal(r.Error)
		}
		if got := srv.LedgerRequests(); strings.Join(got, " ") != "2026-11-24..2026-11-26" {
			t.Errorf("ledger requests %v", got)
		}
		f := r.Frames[0]
		if f.Meta.Type != data.FrameTypeTimeSeriesLong || f.Fields[0].Type() != data.FieldTypeTime || f.Fields[2].Type() != data.FieldTypeInt64 {
			t.Fatalf("frame type %s, fields %s %s", f.Meta.Type, f.Fields[0].Type(), f.Fields[2].Type())
		}
		var rows []string
		times, ch, billed := column(t, f, "time"), column(t, f, "channel"), column(t, f, "billed")
		for i := range times {
			rows = append(rows, times[i]+" "+ch[i]+" "+billed[i])
		}
		// Only billable=true rows count: app_sdk 120+7 on the 24th, 100+10 on
		// the 25th (not the unknown code), willingness 1 (not its unknown 0).
		want := []string{
			"2026-11-23T16:00:00.000Z app_sdk 127",
			"2026-11-23T16:00:00.000Z wechat_h5 45",
			"2026-11-24T16:00:00.000Z app_sdk 110",
			"2026-11-24T16:00:00.000Z willingness 1",
			"2026-11-25T16:00:00.000Z app_sdk 80",
			"2026-11-25T16:00:00.000Z wechat_h5 30",
		}
		if strings.Join(rows, "\n") != strings.Join(want, "\n") {
			t.Fatalf("rows:\n%s\nwant:\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
		}
		if day := f.Fields[0].At(0).(time.Time).In(Beijing); day.Hour() != 0 || day.Format(dayLayout) != "2026-11-24" {
			t.Errorf("first day %v is not a Beijing midnight of 2026-11-24", day)
		}
		if c := f.Meta.Custom.(map[string]any); c["from"] != "2026-11-24" || c["to"] != "2026-11-26" || c["stream"] != "FACEID" {
			t.Errorf("meta.custom %v", c)
		}
	})
	t.Run("channel filter and a range of one day", func(t *testing.T) {
		day := backend.TimeRange{From: time.Date(2026, 11, 24, 16, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 25, 16, 0, 0, 0, time.UTC)}
		r := query(t, d, map[string]any{"queryType": "ledger", "channel": "willingness,eid"}, day)
		if got := strings.Join(column(t, r.Frames[0], "channel"), ",") + " " + strings.Join(column(t, r.Frames[0], "billed"), ","); got != "willingness 1" {
			t.Fatalf("rows %s", got)
		}
	})
	t.Run("timeseries: wide, one field per channel, 0 where a channel billed nothing", func(t *testing.T) {
		r := query(t, d, map[string]any{"queryType": "ledger", "format": "timeseries", "channel": "app_sdk,wechat_h5"}, threeDays)
		if r.Error != nil {
			t.Fatal(r.Error)
		}
		f := r.Frames[0]
		if f.Meta.Type != data.FrameTypeTimeSeriesWide || len(f.Fields) != 3 {
			t.Fatalf("type %s, %d fields", f.Meta.Type, len(f.Fields))
		}
		got := map[string]string{}
		for _, fl := range f.Fields[1:] {
			var v []string
			for i := 0; i < fl.Len(); i++ {
				x, _ := fl.ConcreteAt(i)
				v = append(v, fmt.Sprint(x))
			}
			got[fl.Labels["channel"]] = strings.Join(v, ",")
		}
		if got["app_sdk"] != "127,110,80" || got["wechat_h5"] != "45,0,30" {
			t.Fatalf("wide values %v", got)
		}
	})
	t.Run("empty range of days", func(t *testing.T) {
		later := backend.TimeRange{From: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC)}
		for _, format := range []string{"table", "timeseries"} {
			r := query(t, d, map[string]any{"queryType": "ledger", "format": format}, later)
			if r.Error != nil || len(r.Frames) != 1 || r.Frames[0].Fields[0].Len() != 0 {
				t.Fatalf("%s: %v %v", format, r.Error, r.Frames)
			}
		}
	})
	t.Run("the envelope of the other endpoints is accepted too", func(t *testing.T) {
		env := fixture.New(fixture.Options{LedgerEnvelope: true})
		defer env.Close()
		r := query(t, newDS(t, backend.DataSourceInstanceSettings{URL: env.URL}), map[string]any{"queryType": "ledger"}, threeDays)
		if r.Error != nil || r.Frames[0].Fields[0].Len() != 6 {
			t.Fatalf("%v", r.Error)
		}
	})
	t.Run("an exporter without JetStream says so", func(t *testing.T) {
		core := fixture.New(fixture.Options{CoreMode: true})
		defer core.Close()
		r := query(t, newDS(t, backend.DataSourceInstanceSettings{URL: core.URL}), map[string]any{"queryType": "ledger"}, threeDays)
		if r.Error == nil || r.Error.Error() != "GET /api/v1/ledger: HTTP 501: the ledger needs --jetstream.stream" || r.ErrorSource != backend.ErrorSourceDownstream {
			t.Fatalf("%v (%s)", r.Error, r.ErrorSource)
		}
	})
	t.Run("no time range", func(t *testing.T) {
		r := query(t, d, map[string]any{"queryType": "ledger"}, allTime)
		if r.Error == nil || r.Error.Error() != "a ledger query needs a time range" || r.Status != backend.StatusBadRequest || r.ErrorSource != backend.ErrorSourceDownstream {
			t.Fatalf("%v %v %s", r.Error, r.Status, r.ErrorSource)
		}
	})
}
