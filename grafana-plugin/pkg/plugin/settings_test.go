package plugin

import (
	"context"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

func TestLoadSettings(t *testing.T) {
	for _, tc := range []struct {
		name     string
		s        backend.DataSourceInstanceSettings
		err      string
		authType string
		user     string
		token    string
		timeout  time.Duration
	}{
		{name: "url only", s: backend.DataSourceInstanceSettings{URL: "http://exporter:9479"}, authType: AuthNone, timeout: DefaultTimeout},
		{name: "null jsonData", s: backend.DataSourceInstanceSettings{URL: "http://exporter:9479", JSONData: []byte("null")}, authType: AuthNone, timeout: DefaultTimeout},
		{name: "timeout", s: backend.DataSourceInstanceSettings{URL: "http://e:1", JSONData: []byte(`{"timeout":2.5}`)}, authType: AuthNone, timeout: 2500 * time.Millisecond},
		{name: "basic via Grafana fields", s: backend.DataSourceInstanceSettings{URL: "http://e:1", BasicAuthEnabled: true, BasicAuthUser: "u",
			DecryptedSecureJSONData: map[string]string{"basicAuthPassword": "p"}}, authType: AuthBasic, user: "u", timeout: DefaultTimeout},
		{name: "bearer inferred", s: backend.DataSourceInstanceSettings{URL: "http://e:1", DecryptedSecureJSONData: map[string]string{"bearerToken": "t"}},
			authType: AuthBearer, token: "t", timeout: DefaultTimeout},
		{name: "bearer explicit", s: backend.DataSourceInstanceSettings{URL: "http://e:1", JSONData: []byte(`{"authType":"bearer"}`),
			DecryptedSecureJSONData: map[string]string{"bearerToken": "t"}}, authType: AuthBearer, token: "t", timeout: DefaultTimeout},

		{name: "no url", s: backend.DataSourceInstanceSettings{},
			err: "datasource settings: exporter URL is empty; enter the exporter's address, for example http://faceid-exporter:9479"},
		{name: "bad scheme", s: backend.DataSourceInstanceSettings{URL: "exporter:9479"},
			err: `datasource settings: exporter URL "exporter:9479": scheme must be http or https; enter the exporter's address, for example http://faceid-exporter:9479`},
		{name: "bad json", s: backend.DataSourceInstanceSettings{URL: "http://e:1", JSONData: []byte(`{"timeout":"x"}`)},
			err: "datasource settings: jsonData: json: cannot unmarshal string into Go struct field jsonData.timeout of type float64"},
		{name: "bad timeout", s: backend.DataSourceInstanceSettings{URL: "http://e:1", JSONData: []byte(`{"timeout":0}`)},
			err: "datasource settings: timeout 0 s is not between 0 and 600 seconds"},
		{name: "basic without user", s: backend.DataSourceInstanceSettings{URL: "http://e:1", BasicAuthEnabled: true},
			err: "datasource settings: basic auth needs a user"},
		{name: "bearer without token", s: backend.DataSourceInstanceSettings{URL: "http://e:1", JSONData: []byte(`{"authType":"bearer"}`)},
			err: "datasource settings: bearer token auth needs a token"},
		{name: "basic and bearer", s: backend.DataSourceInstanceSettings{URL: "http://e:1", BasicAuthEnabled: true, BasicAuthUser: "u", JSONData: []byte(`{"authType":"bearer"}`),
			DecryptedSecureJSONData: map[string]string{"bearerToken": "t"}},
			err: "datasource settings: choose either basic auth or a bearer token, not both"},
		{name: "none but basic on", s: backend.DataSourceInstanceSettings{URL: "http://e:1", BasicAuthEnabled: true, JSONData: []byte(`{"authType":"none"}`)},
			err: `datasource settings: basic auth is switched on but the auth type is "none"`},
		{name: "unknown auth type", s: backend.DataSourceInstanceSettings{URL: "http://e:1", JSONData: []byte(`{"authType":"oauth"}`)},
			err: `datasource settings: auth type "oauth" is not none, basic or bearer`},
		{name: "ca flag without cert", s: backend.DataSourceInstanceSettings{URL: "https://e:1", JSONData: []byte(`{"tlsAuthWithCACert":true}`)},
			err: `datasource settings: "with CA cert" is on but no CA certificate is set`},
		{name: "client auth without key", s: backend.DataSourceInstanceSettings{URL: "https://e:1", JSONData: []byte(`{"tlsAuth":true}`),
			DecryptedSecureJSONData: map[string]string{"tlsClientCert": "x"}},
			err: "datasource settings: TLS client auth is on but the client certificate or key is missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := LoadSettings(tc.s)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error = %v\nwant    %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.AuthType != tc.authType || s.Auth.User != tc.user || s.Auth.Token != tc.token || s.Timeout != tc.timeout {
				t.Fatalf("settings = %+v", s)
			}
		})
	}
}

func TestTLSConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Settings
		err  string
	}{
		{name: "bad ca", s: Settings{CACert: "nope"}, err: "datasource settings: the CA certificate is not valid PEM"},
		{name: "bad pair", s: Settings{ClientCert: "a", ClientKey: "b"}, err: "datasource settings: TLS client certificate and key: tls: failed to find any PEM data in certificate input"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.s.TLSConfig(); err == nil || err.Error() != tc.err {
				t.Fatalf("error = %v, want %s", err, tc.err)
			}
		})
	}
}

// A broken configuration does not fail the factory: health and queries say what is wrong.
func TestBrokenSettingsAreReported(t *testing.T) {
	inst, err := NewDatasource(context.Background(), backend.DataSourceInstanceSettings{UID: "x"})
	if err != nil {
		t.Fatal(err)
	}
	d := inst.(*Datasource)
	defer d.Dispose()
	res, err := d.CheckHealth(context.Background(), &backend.CheckHealthRequest{})
	if err != nil || res.Status != backend.HealthStatusError ||
		res.Message != "The datasource settings are not usable: datasource settings: exporter URL is empty; enter the exporter's address, for example http://faceid-exporter:9479." {
		t.Fatalf("health = %+v, %v", res, err)
	}
	resp, _ := d.QueryData(context.Background(), &backend.QueryDataRequest{Queries: []backend.DataQuery{{RefID: "A", QueryType: QuerySummary}}})
	if r := resp.Responses["A"]; r.Error == nil || r.Status != backend.StatusBadRequest {
		t.Fatalf("response = %+v", r)
	}
}
