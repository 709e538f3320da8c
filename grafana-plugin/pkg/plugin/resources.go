package plugin

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/faceid-observability/faceid-exporter/grafana-plugin/pkg/exporterapi"
)

// Option is one entry of a query-editor dropdown.
type Option struct {
	Value       string `json:"value"`
	Label       string `json:"label"`
	Description string `json:"description,omitempty"`
}

// kindDescriptions explain the event kinds in the editors.
var kindDescriptions = map[string]string{
	exporterapi.KindAll:             "every kind (live: every classified verification)",
	exporterapi.KindBillableFailure: "billed verifications that failed",
	exporterapi.KindHighRisk:        "verifications with risk level high",
	exporterapi.KindUnknownCode:     "return codes the catalog does not know",
}

// billableOptions are the values of the billable filter.
var billableOptions = []Option{
	{Value: "true", Label: "true", Description: "Tencent charges for the verification"},
	{Value: "false", Label: "false", Description: "Tencent does not charge for it"},
	{Value: "unknown", Label: "unknown", Description: "the catalog cannot say (unknown code, or undocumented billing)"},
}

// CallResource serves the editors' dropdowns and the query variables from
// the exporter's catalog: GET channels, families, categories, codes
// (?channel= or ?family= narrows the codes; either takes a comma-separated
// list), and the fixed kinds and billable.
func (d *Datasource) CallResource(ctx context.Context, req *backend.CallResourceRequest, sender backend.CallResourceResponseSender) error {
	if req.Method != http.MethodGet {
		return sendJSON(sender, http.StatusMethodNotAllowed, map[string]string{"error": "only GET is supported"})
	}
	u, err := url.Parse(req.URL)
	if err != nil {
		return sendJSON(sender, http.StatusBadRequest, map[string]string{"error": "bad resource URL: " + err.Error()})
	}
	path := strings.Trim(req.Path, "/")
	if path == "kinds" {
		var opts []Option
		for _, k := range exporterapi.StreamKinds() {
			opts = append(opts, Option{Value: k, Label: k, Description: kindDescriptions[k]})
		}
		return sendJSON(sender, http.StatusOK, opts)
	}
	if path == "billable" {
		return sendJSON(sender, http.StatusOK, billableOptions)
	}
	if path != "channels" && path != "families" && path != "categories" && path != "codes" {
		return sendJSON(sender, http.StatusNotFound, map[string]string{"error": "unknown resource " + strings.TrimSpace(req.Path) + "; use channels, families, categories, codes, kinds or billable"})
	}
	cat, err := d.getCatalog(ctx)
	if err != nil {
		c := d.client
		msg := err.Error()
		if c != nil {
			msg = Explain(err, c.URL())
		}
		return sendJSON(sender, http.StatusBadGateway, map[string]string{"error": msg})
	}
	q := u.Query()
	var opts []Option
	switch path {
	case "channels":
		for _, f := range cat.Families {
			for _, ch := range f.Channels {
				opts = append(opts, Option{Value: ch, Label: ch, Description: f.Name + " — " + f.Title})
			}
		}
	case "families":
		for _, f := range cat.Families {
			opts = append(opts, Option{Value: f.Name, Label: f.Name, Description: f.Title + " (" + strings.Join(f.Channels, ", ") + ")"})
		}
	case "categories":
		seen := map[string]bool{}
		for _, c := range cat.Codes {
			if !seen[c.Category] {
				seen[c.Category] = true
				opts = append(opts, Option{Value: c.Category, Label: c.Category})
			}
		}
		sort.Slice(opts, func(i, j int) bool { return opts[i].Value < opts[j].Value })
	case "codes":
		families := ParseFilter(q.Get("family"))
		if channels := ParseFilter(q.Get("channel")).Values(); len(channels) > 0 {
			families = nil
			for _, ch := range channels {
				f := cat.FamilyOf(ch)
				if f == "" {
					return sendJSON(sender, http.StatusNotFound, map[string]string{"error": "channel " + ch + " is not in the exporter's catalog"})
				}
				families = append(families, f)
			}
		}
		for _, c := range cat.Codes {
			if !families.Allows(c.Family) {
				continue
			}
			opts = append(opts, Option{Value: c.Code, Label: c.Code + " " + c.Meaning, Description: c.Family + ", " + c.Category + ", billable " + string(c.Billable)})
		}
	}
	if opts == nil {
		opts = []Option{}
	}
	return sendJSON(sender, http.StatusOK, opts)
}

func sendJSON(sender backend.CallResourceResponseSender, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return sender.Send(&backend.CallResourceResponse{
		Status:  status,
		Headers: map[string][]string{"Content-Type": {"application/json"}},
		Body:    body,
	})
}
