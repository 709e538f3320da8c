package plugin

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/faceid-observability/faceid-exporter/grafana-plugin/pkg/internal/fixture"
)

func callResource(t *testing.T, d *Datasource, method, path string) (int, []byte) {
	t.Helper()
	var got *backend.CallResourceResponse
	err := d.CallResource(context.Background(), &backend.CallResourceRequest{Method: method, Path: path, URL: path},
		backend.CallResourceResponseSenderFunc(func(r *backend.CallResourceResponse) error { got = r; return nil }))
	if err != nil {
		t.Fatal(err)
	}
	if got.Headers["Content-Type"][0] != "application/json" {
		t.Errorf("content type %v", got.Headers)
	}
	return got.Status, got.Body
}

func values(t *testing.T, body []byte) string {
	t.Helper()
	var opts []Option
	if err := json.Unmarshal(body, &opts); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	var v []string
	for _, o := range opts {
		v = append(v, o.Value)
	}
	return strings.Join(v, ",")
}

func TestCallResource(t *testing.T) {
	srv := fixture.New(fixture.Options{})
	defer srv.Close()
	d := newDS(t, backend.DataSourceInstanceSettings{URL: srv.URL})
	for _, tc := range []struct {
		path, want string
	}{
		{path: "channels", want: "wechat_h5,wechat_miniprogram,eid,app_sdk,standalone_h5,pc_h5,willingness,nfc_server,nfc_terminal"},
		{path: "families", want: "wechat,sdk,willingness,nfc_server,nfc_terminal"},
		{path: "categories", want: "compare,nfc_server,nfc_terminal,sdk,system,willingness"},
		{path: "kinds", want: "all,billable_failure,high_risk,unknown_code"},
		{path: "codes?channel=pc_h5", want: "0,66660004,66660010"},
		{path: "codes?family=willingness", want: "66666006,0"},
		{path: "/codes?channel=eid", want: "0,2006,2007,2016"},
		{path: "codes?channel=eid,willingness", want: "0,2006,2007,2016,66666006,0"},
		{path: "codes?family=nfc_server,nfc_terminal", want: "0,0"},
		{path: "codes?channel=*", want: "0,2006,2007,2016,0,66660004,66660010,66666006,0,0,0"},
		{path: "billable", want: "true,false,unknown"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			path, _, _ := strings.Cut(tc.path, "?")
			var got *backend.CallResourceResponse
			err := d.CallResource(context.Background(), &backend.CallResourceRequest{Method: "GET", Path: path, URL: tc.path},
				backend.CallResourceResponseSenderFunc(func(r *backend.CallResourceResponse) error { got = r; return nil }))
			if err != nil || got.Status != 200 {
				t.Fatalf("%v %+v", err, got)
			}
			if v := values(t, got.Body); v != tc.want {
				t.Fatalf("values = %s\nwant     %s", v, tc.want)
			}
		})
	}
	t.Run("code labels carry meaning and billing", func(t *testing.T) {
		_, body := callResource(t, d, "GET", "codes")
		if !strings.Contains(string(body), `"description":"willingness, willingness, billable unknown"`) {
			t.Fatalf("body %s", body)
		}
	})
	for _, tc := range []struct {
		method, path string
		status       int
		msg          string
	}{
		{method: "GET", path: "metrics", status: 404, msg: "unknown resource metrics; use channels, families, categories, codes, kinds or billable"},
		{method: "POST", path: "channels", status: 405, msg: "only GET is supported"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			status, body := callResource(t, d, tc.method, tc.path)
			var e map[string]string
			if status != tc.status || json.Unmarshal(body, &e) != nil || e["error"] != tc.msg {
				t.Fatalf("%d %s", status, body)
			}
		})
	}
	t.Run("unknown channel", func(t *testing.T) {
		var got *backend.CallResourceResponse
		_ = d.CallResource(context.Background(), &backend.CallResourceRequest{Method: "GET", Path: "codes", URL: "codes?channel=fax"},
			backend.CallResourceResponseSenderFunc(func(r *backend.CallResourceResponse) error { got = r; return nil }))
		if got.Status != 404 || !strings.Contains(string(got.Body), "channel fax is not in the exporter's catalog") {
			t.Fatalf("%d %s", got.Status, got.Body)
		}
	})
	t.Run("exporter down", func(t *testing.T) {
		down := fixture.New(fixture.Options{})
		url := down.URL
		down.Close()
		status, body := callResource(t, newDS(t, backend.DataSourceInstanceSettings{URL: url}), "GET", "channels")
		if status != 502 || !strings.Contains(string(body), "Cannot reach the exporter at") {
			t.Fatalf("%d %s", status, body)
		}
	})
}

// callResourceURL sends GET path?query and returns the status and body.
func callResourceURL(t *testing.T, d *Datasource, url string) (int, []byte) {
	t.Helper()
	path, _, _ := strings.Cut(url, "?")
	var got *backend.CallResourceResponse
	err := d.CallResource(context.Background(), &backend.CallResourceRequest{Method: "GET", Path: path, URL: url},
		backend.CallResourceResponseSenderFunc(func(r *backend.CallResourceResponse) error { got = r; return nil }))
	if err != nil {
		t.Fatal(err)
	}
	return got.Status, got.Body
}
