package plugin

import (
	"context"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/faceid-observability/faceid-exporter/grafana-plugin/pkg/internal/fixture"
)

func health(t *testing.T, d *Datasource) *backend.CheckHealthResult {
	t.Helper()
	res, err := d.CheckHealth(context.Background(), &backend.CheckHealthRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestCheckHealth(t *testing.T) {
	ok := fixture.New(fixture.Options{})
	defer ok.Close()
	notReady := fixture.New(fixture.Options{NotReady: true})
	defer notReady.Close()
	basic := fixture.New(fixture.Options{User: "grafana", Password: "pw"})
	defer basic.Close()
	tlsSrv := fixture.NewTLS(fixture.Options{})
	defer tlsSrv.Close()
	caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw}))
	grafana := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, "<!doctype html><title>Grafana</title>")
	}))
	defer grafana.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + l.Addr().String()
	l.Close()
	hostOfTLS := strings.TrimPrefix(tlsSrv.URL, "https://")

	for _, tc := range []struct {
		name   string
		s      backend.DataSourceInstanceSettings
		status backend.HealthStatus
		msg    string // substring
	}{
		{name: "ok", s: backend.DataSourceInstanceSettings{URL: ok.URL}, status: backend.HealthStatusOk,
			msg: "Connected to the FaceID exporter at " + ok.URL + ": 9 channels, 11 return codes in its catalog, 1608 verifications counted since 2026-11-26 01:00:00 UTC."},
		{name: "not ready", s: backend.DataSourceInstanceSettings{URL: notReady.URL}, status: backend.HealthStatusError,
			msg: "answers, but it is not ready (GET /-/ready returned 503): it is not connected to NATS"},
		{name: "unreachable", s: backend.DataSourceInstanceSettings{URL: closedURL}, status: backend.HealthStatusError,
			msg: "Cannot reach the exporter at " + closedURL + " ("},
		{name: "dns", s: backend.DataSourceInstanceSettings{URL: "http://no-such-host.invalid:9479"}, status: backend.HealthStatusError,
			msg: `host name "no-such-host.invalid" does not resolve`},
		{name: "no credentials", s: backend.DataSourceInstanceSettings{URL: basic.URL}, status: backend.HealthStatusError,
			msg: "rejected the request as unauthenticated (HTTP 401). Set basic auth"},
		{name: "basic auth", s: backend.DataSourceInstanceSettings{URL: basic.URL, BasicAuthEnabled: true, BasicAuthUser: "grafana",
			DecryptedSecureJSONData: map[string]string{"basicAuthPassword": "pw"}}, status: backend.HealthStatusOk, msg: "Connected"},
		{name: "not an exporter", s: backend.DataSourceInstanceSettings{URL: grafana.URL}, status: backend.HealthStatusError,
			msg: "answered, but not as a FaceID exporter (GET /api/v1/catalog: HTTP 404: not a FaceID exporter API response: \"<!doctype html><title>Grafana</title>\")"},
		{name: "tls unknown authority", s: backend.DataSourceInstanceSettings{URL: tlsSrv.URL}, status: backend.HealthStatusError,
			msg: "TLS: the certificate of " + tlsSrv.URL + " is signed by an authority Grafana does not trust"},
		{name: "tls with CA", s: backend.DataSourceInstanceSettings{URL: tlsSrv.URL, JSONData: []byte(`{"tlsAuthWithCACert":true}`),
			DecryptedSecureJSONData: map[string]string{"tlsCACert": caPEM}}, status: backend.HealthStatusOk, msg: "Connected"},
		{name: "tls skip verify", s: backend.DataSourceInstanceSettings{URL: tlsSrv.URL, JSONData: []byte(`{"tlsSkipVerify":true}`)},
			status: backend.HealthStatusOk, msg: "Connected"},
		{name: "tls wrong server name", s: backend.DataSourceInstanceSettings{URL: tlsSrv.URL, JSONData: []byte(`{"tlsAuthWithCACert":true,"serverName":"exporter.example"}`),
			DecryptedSecureJSONData: map[string]string{"tlsCACert": caPEM}}, status: backend.HealthStatusError, msg: "is not valid for this host name"},
		{name: "https to plain http", s: backend.DataSourceInstanceSettings{URL: strings.Replace(ok.URL, "http://", "https://", 1)}, status: backend.HealthStatusError,
			msg: "does not speak TLS"},
		{name: "http to https", s: backend.DataSourceInstanceSettings{URL: "http://" + hostOfTLS}, status: backend.HealthStatusError,
			msg: "serves HTTPS: change the URL to https://"},
		{name: "settings", s: backend.DataSourceInstanceSettings{URL: ok.URL, JSONData: []byte(`{"authType":"bearer"}`)}, status: backend.HealthStatusError,
			msg: "The datasource settings are not usable: datasource settings: bearer token auth needs a token."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := health(t, newDS(t, tc.s))
			if res.Status != tc.status || !strings.Contains(res.Message, tc.msg) {
				t.Fatalf("health = %v %q\nwant %v containing %q", res.Status, res.Message, tc.status, tc.msg)
			}
		})
	}
}
