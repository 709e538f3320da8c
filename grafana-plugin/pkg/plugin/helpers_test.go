package plugin

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
)

const testUID = "faceid-test"

// newDS returns an instance for the exporter at url with optional jsonData
// and secure data.
func newDS(t *testing.T, s backend.DataSourceInstanceSettings) *Datasource {
	t.Helper()
	if s.UID == "" {
		s.UID = testUID
	}
	inst, err := NewDatasource(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	d := inst.(*Datasource)
	t.Cleanup(d.Dispose)
	return d
}

// query runs one query of the given model and returns its response.
func query(t *testing.T, d *Datasource, model map[string]any, tr backend.TimeRange) backend.DataResponse {
	t.Helper()
	b, err := json.Marshal(model)
	if err != nil {
		t.Fatal(err)
	}
	qt, _ := model["queryType"].(string)
	resp, err := d.QueryData(context.Background(), &backend.QueryDataRequest{
		PluginContext: backend.PluginContext{DataSourceInstanceSettings: &backend.DataSourceInstanceSettings{UID: testUID}},
		Queries:       []backend.DataQuery{{RefID: "A", QueryType: qt, JSON: b, TimeRange: tr}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Responses["A"]
}

// column returns a field's values as strings (nil pointers as "null").
func column(t *testing.T, f *data.Frame, name string) []string {
	t.Helper()
	field, _ := f.FieldByName(name)
	if field == nil {
		t.Fatalf("frame %q has no field %q", f.Name, name)
	}
	out := make([]string, field.Len())
	for i := range out {
		v, ok := field.ConcreteAt(i)
		if !ok {
			out[i] = "null"
			continue
		}
		switch x := v.(type) {
		case time.Time:
			out[i] = x.UTC().Format("2006-01-02T15:04:05.000Z07:00") // fixed width: sorts as text
		case string:
			out[i] = x
		default:
			b, _ := json.Marshal(x)
			out[i] = string(b)
		}
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
