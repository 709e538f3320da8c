package plugin

import (
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/faceid-observability/faceid-exporter/grafana-plugin/pkg/internal/fixture"
)

func TestAnnotationsQuery(t *testing.T) {
	srv := fixture.New(fixture.Options{})
	defer srv.Close()
	d := newDS(t, backend.DataSourceInstanceSettings{URL: srv.URL})
	day := backend.TimeRange{From: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)}

	t.Run("every kind by default, each event once, with Grafana's annotation fields", func(t *testing.T) {
		r := query(t, d, map[string]any{"queryType": "annotations"}, day)
		if r.Error != nil {
			t.Fatal(r.Error)
		}
		f := r.Frames[0]
		var names []string
		for _, fl := range f.Fields {
			names = append(names, fl.Name)
		}
		if strings.Join(names, ",") != "time,title,text,tags,kind,channel,code,risk,id" || f.Fields[0].Type() != data.FieldTypeTime {
			t.Fatalf("fields %v", names)
		}
		if got := strings.Join(column(t, f, "id"), ","); got != "evt-bf-3,evt-bf-2,evt-hr-1,evt-uc-1,evt-bf-1" {
			t.Fatalf("ids %s", got)
		}
		if got := column(t, f, "time"); got[0] != "2026-11-26T02:15:31.500Z" || got[4] != "2026-11-26T02:10:00.000Z" {
			t.Errorf("times %v", got)
		}
		want := map[string][4]string{ // id -> title, text, tags, kind
			"evt-bf-2": {"Billable failure, High risk on wechat_h5",
				"2006 姓名和身份证号不一致，请核实后重试 (compare, failure, billable true); risk high, device level 3, risk level 1, device tags 202, identity tags 02, platform android",
				"billable_failure,high_risk,wechat_h5,2006", "billable_failure,high_risk"},
			"evt-uc-1": {"Unknown code on pc_h5",
				"code 99999999 is not in the catalog (billable unknown); risk low, device level 0, risk level 0, platform other",
				"unknown_code,pc_h5,99999999", "unknown_code"},
			"evt-bf-1": {"Billable failure on willingness",
				"66666006 意愿表达结果不正确 (willingness, failure, billable true); risk unknown",
				"billable_failure,willingness,66666006", "billable_failure"},
		}
		ids, titles, texts, tags, kinds := column(t, f, "id"), column(t, f, "title"), column(t, f, "text"), column(t, f, "tags"), column(t, f, "kind")
		for i, id := range ids {
			w, ok := want[id]
			if !ok {
				continue
			}
			if got := [4]string{titles[i], texts[i], tags[i], kinds[i]}; got != w {
				t.Errorf("%s:\n got  %q\n want %q", id, got, w)
			}
		}
	})
	t.Run("kind, channel and code filters", func(t *testing.T) {
		for _, tc := range []struct {
			model map[string]any
			ids   string
		}{
			{model: map[string]any{"kind": "high_risk"}, ids: "evt-bf-2,evt-hr-1"},
			{model: map[string]any{"kind": "billable_failure,unknown_code", "channel": "pc_h5,willingness"}, ids: "evt-uc-1,evt-bf-1"},
			{model: map[string]any{"code": "2006"}, ids: "evt-bf-2"},
			{model: map[string]any{"code": "99999999", "channel": "*"}, ids: "evt-uc-1"},
		} {
			tc.model["queryType"] = "annotations"
			r := query(t, d, tc.model, day)
			if r.Error != nil {
				t.Fatal(r.Error)
			}
			if got := strings.Join(column(t, r.Frames[0], "id"), ","); got != tc.ids {
				t.Errorf("%v: ids %s, want %s", tc.model, got, tc.ids)
			}
		}
		r := query(t, d, map[string]any{"queryType": "annotations", "kind": "high_risk"}, day)
		if got := strings.Join(column(t, r.Frames[0], "kind"), "|"); got != "high_risk|high_risk" {
			t.Errorf("kinds of a high-risk query: %s (only the kinds asked for)", got)
		}
	})
	t.Run("always within the time range", func(t *testing.T) {
		tr := backend.TimeRange{From: time.Date(2026, 11, 26, 2, 15, 0, 0, time.UTC), To: time.Date(2026, 11, 26, 2, 16, 0, 0, time.UTC)}
		r := query(t, d, map[string]any{"queryType": "annotations", "ignoreTimeRange": true}, tr)
		if got := strings.Join(column(t, r.Frames[0], "id"), ","); got != "evt-bf-3,evt-bf-2" {
			t.Fatalf("ids %s", got)
		}
	})
}
