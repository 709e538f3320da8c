package plugin

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

func TestFilterJSON(t *testing.T) {
	for _, tc := range []struct {
		name, json string
		want       string // values joined by |, "" = keeps everything
		err        string
	}{
		{name: "absent", json: `null`},
		{name: "empty string", json: `""`},
		{name: "one value", json: `"app_sdk"`, want: "app_sdk"},
		{name: "csv of a multi-value variable", json: `"app_sdk,wechat_h5"`, want: "app_sdk|wechat_h5"},
		{name: "spaces and empties dropped", json: `" app_sdk , ,wechat_h5,"`, want: "app_sdk|wechat_h5"},
		{name: "repeats dropped", json: `"app_sdk,app_sdk"`, want: "app_sdk"},
		{name: "array", json: `["app_sdk","eid,pc_h5"]`, want: "app_sdk|eid|pc_h5"},
		{name: "custom all value", json: `"*"`, want: "*"},
		{name: "custom all value in a list", json: `["app_sdk","*"]`, want: "*"},
		{name: "number", json: `5`, err: "want a string or an array of strings, got 5"},
		{name: "array of numbers", json: `[5]`, err: "want a string or an array of strings: json: cannot unmarshal number into Go value of type string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f Filter
			err := json.Unmarshal([]byte(tc.json), &f)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error = %v, want %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(f, "|"); got != tc.want {
				t.Fatalf("filter = %q, want %q", got, tc.want)
			}
			if (len(f) == 0 || f.IsAny()) != f.Allows("anything") {
				t.Errorf("Allows(anything) = %v for %v", f.Allows("anything"), f)
			}
		})
	}
}

// TestFilterChecks covers the checks ParseQuery makes on every filter field,
// one case per invalid value.
func TestFilterChecks(t *testing.T) {
	for _, tc := range []struct {
		name  string
		model string
		err   string
	}{
		{name: "billable list", model: `{"queryType":"summary","billable":"true,false"}`},
		{name: "outcome list", model: `{"queryType":"summary","outcome":["success","failure"]}`},
		{name: "bad billable in a list", model: `{"queryType":"catalog","billable":"true,maybe"}`,
			err: `billable "maybe" is not one of true, false, unknown`},
		{name: "bad outcome", model: `{"queryType":"events","outcome":"ok"}`,
			err: `outcome "ok" is not one of success, failure`},
		{name: "variable not replaced", model: `{"queryType":"events","channel":"$channel"}`,
			err: `channel "$channel" is a dashboard variable Grafana did not replace (alert rules and queries outside dashboards have no variables)`},
		{name: "braced variable not replaced", model: `{"queryType":"catalog","code":"${code}"}`,
			err: `code "${code}" is a dashboard variable Grafana did not replace (alert rules and queries outside dashboards have no variables)`},
		{name: "kind variable not replaced", model: `{"queryType":"annotations","kind":"$kind"}`,
			err: `event kind "$kind" is a dashboard variable Grafana did not replace (alert rules and queries outside dashboards have no variables)`},
		{name: "bad kind in a list", model: `{"queryType":"events","kind":"high_risk,nope"}`,
			err: `event kind "nope" is not one of all, billable_failure, high_risk, unknown_code`},
		{name: "live with two kinds", model: `{"queryType":"live","kind":"high_risk,unknown_code"}`,
			err: `a live query follows one kind of event, not high_risk,unknown_code`},
		{name: "live with two channels", model: `{"queryType":"live","channel":"app_sdk,eid"}`},
		{name: "live with a bad channel", model: `{"queryType":"live","channel":"app_sdk,App-SDK"}`,
			err: `channel "App-SDK" is not a channel name`},
		{name: "ledger format", model: `{"queryType":"ledger","format":"csv"}`,
			err: `format "csv" is not one of table, timeseries`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseQuery(backend.DataQuery{RefID: "A", JSON: []byte(tc.model)})
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || err.Error() != tc.err {
				t.Fatalf("error = %v\nwant    %s", err, tc.err)
			}
		})
	}
}

func TestParseQueryDefaults(t *testing.T) {
	for _, tc := range []struct {
		model, kind, format string
	}{
		{model: `{"queryType":"events"}`, kind: "billable_failure"},
		{model: `{"queryType":"events","kind":"all"}`, kind: "billable_failure,high_risk,unknown_code"},
		{model: `{"queryType":"events","kind":"unknown_code,high_risk"}`, kind: "unknown_code,high_risk"},
		{model: `{"queryType":"annotations"}`, kind: "billable_failure,high_risk,unknown_code"},
		{model: `{"queryType":"annotations","kind":"*"}`, kind: "billable_failure,high_risk,unknown_code"},
		{model: `{"queryType":"events","kind":"*"}`, kind: "billable_failure,high_risk,unknown_code"},
		{model: `{"queryType":"live"}`, kind: "billable_failure"},
		{model: `{"queryType":"live","kind":"*"}`, kind: "all"},
		{model: `{"queryType":"ledger"}`, format: "table"},
		{model: `{"queryType":"summary"}`, format: "table"},
	} {
		t.Run(tc.model, func(t *testing.T) {
			m, err := ParseQuery(backend.DataQuery{RefID: "A", JSON: []byte(tc.model)})
			if err != nil {
				t.Fatal(err)
			}
			if m.Kind.String() != tc.kind || m.Format != tc.format {
				t.Fatalf("kind %q format %q, want %q %q", m.Kind, m.Format, tc.kind, tc.format)
			}
		})
	}
}
