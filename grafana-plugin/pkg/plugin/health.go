package plugin

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/faceid-observability/faceid-exporter/grafana-plugin/pkg/exporterapi"
)

// CheckHealth reaches the exporter's catalog, summary and readiness endpoints
// and says in words what is wrong: settings, unreachable, TLS, auth, not an
// exporter, not connected to NATS.
func (d *Datasource) CheckHealth(ctx context.Context, _ *backend.CheckHealthRequest) (*backend.CheckHealthResult, error) {
	c, err := d.ready()
	if err != nil {
		return healthError("The datasource settings are not usable: %v.", err), nil
	}
	cat, err := c.Catalog(ctx)
	if err != nil {
		return healthError("%s", Explain(err, c.URL())), nil
	}
	d.mu.Lock()
	d.catalog, d.catalogTime = cat, d.now()
	d.mu.Unlock()
	sum, err := c.Summary(ctx)
	if err != nil {
		return healthError("%s", Explain(err, c.URL())), nil
	}
	if err := c.Ready(ctx); err != nil {
		var ae *exporterapi.APIError
		if errors.As(err, &ae) && ae.StatusCode == http.StatusServiceUnavailable {
			return healthError("The FaceID exporter at %s answers, but it is not ready (GET /-/ready returned 503): it is not connected to NATS, or in JetStream mode not bound to its consumer, so no new events arrive. Check the exporter's log and its --nats.url / --jetstream.* flags.", c.URL()), nil
		}
		return healthError("%s", Explain(err, c.URL())), nil
	}
	var total float64
	for _, r := range sum.Rows {
		total += r.Count
	}
	return &backend.CheckHealthResult{
		Status: backend.HealthStatusOk,
		Message: fmt.Sprintf("Connected to the FaceID exporter at %s: %d channels, %d return codes in its catalog, %.0f verifications counted since %s.",
			c.URL(), len(cat.Channels()), len(cat.Codes), total, sum.Since.UTC().Format("2006-01-02 15:04:05 MST")),
	}, nil
}

func healthError(format string, args ...any) *backend.CheckHealthResult {
	return &backend.CheckHealthResult{Status: backend.HealthStatusError, Message: fmt.Sprintf(format, args...)}
}

// Explain turns an error of a call to the exporter at url into a sentence a
// user can act on.
func Explain(err error, url string) string {
	var (
		ae       *exporterapi.APIError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
		record   tls.RecordHeaderError
		alert    tls.AlertError
		dns      *net.DNSError
		op       *net.OpError
	)
	switch {
	case errors.As(err, &ae):
		switch {
		case ae.StatusCode == http.StatusUnauthorized:
			return fmt.Sprintf("The exporter at %s rejected the request as unauthenticated (HTTP 401). Set basic auth (user and password) or a bearer token in the datasource settings, as its --web.config.file requires.", url)
		case ae.StatusCode == http.StatusForbidden:
			return fmt.Sprintf("The exporter at %s refused access (HTTP 403). Check the user or token in the datasource settings.", url)
		case ae.NotAPI && strings.Contains(ae.Message, "HTTP request to an HTTPS server"):
			return fmt.Sprintf("The exporter at %s serves HTTPS: change the URL to https://.", url)
		case ae.NotAPI || ae.StatusCode == http.StatusNotFound:
			return fmt.Sprintf("%s answered, but not as a FaceID exporter (%v). Check that the URL points at the faceid-exporter (default port 9479) and not at Prometheus, Grafana or a proxy page.", url, ae)
		default:
			return fmt.Sprintf("The FaceID exporter at %s answered with an error: %v.", url, ae)
		}
	case errors.As(err, &unknown):
		return fmt.Sprintf("TLS: the certificate of %s is signed by an authority Grafana does not trust (%v). Add the exporter's CA certificate in the datasource's TLS settings (\"With CA cert\"), or skip verification for testing only.", url, err)
	case errors.As(err, &hostname):
		return fmt.Sprintf("TLS: the certificate of %s is not valid for this host name (%v). Use the host name the certificate names, or set \"TLS server name\".", url, err)
	case errors.As(err, &invalid), errors.As(err, &verify):
		return fmt.Sprintf("TLS: the certificate of %s is not valid (%v).", url, err)
	case errors.As(err, &record) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return fmt.Sprintf("TLS: %s does not speak TLS (%v). Use http:// in the URL, or enable TLS on the exporter with --web.config.file.", url, err)
	case errors.As(err, &alert) || strings.Contains(err.Error(), "tls: "):
		return fmt.Sprintf("TLS: the handshake with %s failed (%v). If the exporter requires client certificates, set them in the TLS settings.", url, err)
	case errors.As(err, &dns):
		return fmt.Sprintf("Cannot reach the exporter at %s: host name %q does not resolve (%v). Check the URL.", url, dns.Name, err)
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return fmt.Sprintf("The exporter at %s did not answer in time (%v). Check the URL, network policies and firewalls between Grafana and the exporter.", url, err)
	case errors.As(err, &op) && op.Op == "dial":
		return fmt.Sprintf("Cannot reach the exporter at %s (%v). Check that the exporter is running, that the URL and port (default 9479) are right, and that Grafana's server can connect to it.", url, err)
	default:
		return fmt.Sprintf("Calling the exporter at %s failed: %v.", url, err)
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
