package plugin

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/faceid-observability/faceid-exporter/grafana-plugin/pkg/exporterapi"
)

// kindTitles are the annotation titles of the event kinds.
var kindTitles = map[string]string{
	exporterapi.KindBillableFailure: "Billable failure",
	exporterapi.KindHighRisk:        "High risk",
	exporterapi.KindUnknownCode:     "Unknown code",
}

func (d *Datasource) queryAnnotations(ctx context.Context, m Query, tr backend.TimeRange) (data.Frames, error) {
	evs, err := d.events(ctx, m, tr, true)
	if err != nil {
		return nil, err
	}
	return data.Frames{AnnotationsFrame(evs, m.Kind)}, nil
}

// AnnotationsFrame turns events into annotations, one per event at its own
// time, with the field names Grafana maps to annotations: time, title, text
// and tags (comma-separated). The title names the event's kinds and channel;
// the text its code, meaning and risk. Kinds lists the kinds the query asked
// for that the event is (an event can be several); kind, channel, code, risk
// and id repeat what the text says for filtering and colouring.
func AnnotationsFrame(evs []exporterapi.Event, asked Filter) *data.Frame {
	n := len(evs)
	ts := make([]time.Time, n)
	title, text, tags := make([]string, n), make([]string, n), make([]string, n)
	kind, channel, code, risk, id := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i, e := range evs {
		var kinds, titles []string
		for _, k := range e.Kinds() {
			if asked.Allows(k) {
				kinds = append(kinds, k)
				titles = append(titles, kindTitles[k])
			}
		}
		if len(kinds) == 0 { // the exporter's ring says so even if the fields do not
			kinds = []string{asked[0]}
			titles = []string{kindTitles[asked[0]]}
		}
		c := e.Code
		if !e.Known && e.RawCode != "" {
			c = e.RawCode
		}
		ts[i], id[i], channel[i], code[i], risk[i] = e.TS, e.ID, e.Channel, c, e.Risk.Level
		kind[i] = strings.Join(kinds, ",")
		title[i] = fmt.Sprintf("%s on %s", strings.Join(titles, ", "), e.Channel)
		text[i] = annotationText(e)
		tags[i] = strings.Join(slices.Concat(kinds, []string{e.Channel, c}), ",")
	}
	frame := data.NewFrame("annotations",
		data.NewField("time", nil, ts),
		data.NewField("title", nil, title),
		data.NewField("text", nil, text),
		data.NewField("tags", nil, tags),
		data.NewField("kind", nil, kind),
		data.NewField("channel", nil, channel),
		data.NewField("code", nil, code),
		data.NewField("risk", nil, risk),
		data.NewField("id", nil, id),
	)
	frame.SetMeta(&data.FrameMeta{})
	return frame
}

// annotationText says what happened: the code and its meaning (or that the
// code is not in the catalog), the outcome and billing, and the risk.
func annotationText(e exporterapi.Event) string {
	var b strings.Builder
	if e.Known {
		fmt.Fprintf(&b, "%s %s (%s, %s, billable %s)", e.Code, e.Meaning, e.Category, e.Outcome, e.Billable)
	} else {
		raw := e.RawCode
		if raw == "" {
			raw = e.Code
		}
		fmt.Fprintf(&b, "code %s is not in the catalog (billable %s)", raw, e.Billable)
	}
	fmt.Fprintf(&b, "; risk %s", orUnknown(e.Risk.Level))
	if e.Risk.DeviceLevel != nil {
		fmt.Fprintf(&b, ", device level %d", *e.Risk.DeviceLevel)
	}
	if e.Risk.RiskLevel != nil {
		fmt.Fprintf(&b, ", risk level %d", *e.Risk.RiskLevel)
	}
	if len(e.Risk.DeviceTags) > 0 {
		fmt.Fprintf(&b, ", device tags %s", strings.Join(e.Risk.DeviceTags, " "))
	}
	if len(e.Risk.IdentityTags) > 0 {
		fmt.Fprintf(&b, ", identity tags %s", strings.Join(e.Risk.IdentityTags, " "))
	}
	if e.Risk.Platform != "" && e.Risk.Platform != "unknown" {
		fmt.Fprintf(&b, ", platform %s", e.Risk.Platform)
	}
	return b.String()
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
