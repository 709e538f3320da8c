package dashboards

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	grafana "github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// currentSchemaVersion is the dashboard schema version of the Grafana the
// plugin is built for (12.4): Grafana migrates older dashboards on load, and
// reads options it does not know for a panel type as nothing.
const currentSchemaVersion = 42

// strictErrors returns what a strict decode reported. In v0.0.22 the SDK's
// UnmarshalJSONStrict returns its cog.BuildErrors list as an error even when
// the list is empty (a typed nil that reads as non-nil), and a caller that
// trusts that error drops the value; so the list is what counts, never the
// error's nil-ness or the decoded result.
func strictErrors(err error) []string {
	if err == nil {
		return nil
	}
	var list cog.BuildErrors
	if errors.As(err, &list) {
		out := make([]string, 0, len(list))
		for _, e := range list {
			if e != nil {
				out = append(out, e.Error())
			}
		}
		return out
	}
	return []string{err.Error()}
}

// schemaProblems decodes one dashboard with the Grafana schema types of
// github.com/grafana/grafana-foundation-sdk/go: the dashboard, then every
// panel, its field config and its panel type's options (strictly, by the
// panel type's own options type), and returns every unknown or wrongly typed
// field and unknown panel type.
func schemaProblems(raw []byte) []string {
	plugins.RegisterDefaultPlugins()
	var problems []string
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return []string{err.Error()}
	}
	// The dashboard without its panels (decoded one by one below, so that a
	// panel's errors are not lost with the panels).
	withoutPanels := make(map[string]json.RawMessage, len(top))
	for k, v := range top {
		if k != "panels" {
			withoutPanels[k] = v
		}
	}
	b, _ := json.Marshal(withoutPanels)
	var d grafana.Dashboard
	problems = append(problems, strictErrors(d.UnmarshalJSONStrict(b))...)

	var panels []json.RawMessage
	if err := json.Unmarshal(top["panels"], &panels); err != nil {
		return append(problems, "panels: "+err.Error())
	}
	for i, p := range panels {
		var head struct {
			Type        string          `json:"type"`
			Title       string          `json:"title"`
			FieldConfig json.RawMessage `json:"fieldConfig"`
		}
		if err := json.Unmarshal(p, &head); err != nil {
			problems = append(problems, fmt.Sprintf("panels[%d]: %v", i, err))
			continue
		}
		where := fmt.Sprintf("panels[%d] (%s %q)", i, head.Type, head.Title)
		var errs []string
		if head.Type == "row" {
			var row grafana.RowPanel
			errs = strictErrors(row.UnmarshalJSONStrict(p))
		} else {
			if _, ok := cog.ConfigForPanelcfgVariant(head.Type); !ok {
				problems = append(problems, where+": unknown panel type")
			}
			var panel grafana.Panel
			errs = strictErrors(panel.UnmarshalJSONStrict(p))
			if head.FieldConfig != nil {
				// Panel decodes fieldConfig leniently; this is strict.
				var fc grafana.FieldConfigSource
				for _, e := range strictErrors(fc.UnmarshalJSONStrict(head.FieldConfig)) {
					errs = append(errs, "fieldConfig."+e)
				}
			}
		}
		for _, e := range errs {
			problems = append(problems, where+": "+e)
		}
	}
	// A field the schema marks required but the file leaves out gets
	// Grafana's default; what the test is after is fields Grafana does not
	// know and values of the wrong type.
	out := problems[:0]
	for _, p := range problems {
		if !strings.HasSuffix(p, "required field is missing from input") {
			out = append(out, p)
		}
	}
	return out
}

// TestDashboardsMatchGrafanaSchema decodes every dashboard of dashboards/
// with Grafana's schema types and fails on any unknown or wrongly typed
// field, any panel type Grafana does not have, and a schemaVersion that is
// not the current one.
func TestDashboardsMatchGrafanaSchema(t *testing.T) {
	files, err := filepath.Glob("*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards: %v", err)
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range schemaProblems(raw) {
				t.Errorf("%s: %s", f, p)
			}
			var v struct {
				SchemaVersion int `json:"schemaVersion"`
			}
			if err := json.Unmarshal(raw, &v); err != nil || v.SchemaVersion != currentSchemaVersion {
				t.Errorf("%s: schemaVersion %d, want %d", f, v.SchemaVersion, currentSchemaVersion)
			}
		})
	}
}

// TestSchemaCheckFindsProblems feeds the check dashboards it must refuse, so
// that a check that accepts everything (the SDK's typed-nil error read the
// wrong way, a panel type whose options are not checked) fails.
func TestSchemaCheckFindsProblems(t *testing.T) {
	panel := func(typ, options string) string {
		return `{"schemaVersion":42,"title":"t","panels":[{"id":1,"type":"` + typ + `","title":"p","gridPos":{"h":8,"w":8,"x":0,"y":0},"options":` + options + `}]}`
	}
	tests := []struct {
		name, dashboard, want string
	}{
		{"gauge_with_stat_options", panel("gauge", `{"colorMode":"value","graphMode":"area"}`), "colorMode"},
		{"bargauge_with_stat_options", panel("bargauge", `{"textMode":"auto"}`), "textMode"},
		{"stat_with_wrong_type", panel("stat", `{"colorMode":7}`), "colorMode"},
		{"timeseries_unknown_option", panel("timeseries", `{"legend":{"showLegend":true,"displayMode":"list","placement":"bottom","calcs":[]},"tooltip":{"mode":"single","sort":"none"},"nonsense":1}`), "nonsense"},
		{"unknown_panel_type", panel("nosuchpanel", `{}`), "unknown panel type"},
		{"unknown_panel_field", `{"schemaVersion":42,"title":"t","panels":[{"id":1,"type":"stat","title":"p","colour":"red"}]}`, "colour"},
		{"unknown_field_config", `{"schemaVersion":42,"title":"t","panels":[{"id":1,"type":"stat","title":"p","fieldConfig":{"defaults":{"unitt":"s"},"overrides":[]}}]}`, "unitt"},
		{"unknown_dashboard_field", `{"schemaVersion":42,"title":"t","panelz":[],"panels":[]}`, "panelz"},
		{"wrongly_typed_dashboard_field", `{"schemaVersion":"42","title":"t","panels":[]}`, "schemaVersion"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Join(schemaProblems([]byte(tc.dashboard)), "\n")
			if !strings.Contains(got, tc.want) {
				t.Errorf("the check does not report %q; it reports:\n%s", tc.want, got)
			}
		})
	}
	if got := schemaProblems([]byte(panel("stat", `{"colorMode":"value","graphMode":"area","justifyMode":"auto","textMode":"auto","orientation":"auto","reduceOptions":{"calcs":["lastNotNull"],"fields":"","values":false}}`))); len(got) != 0 {
		t.Errorf("a valid stat panel is refused: %v", got)
	}
}
