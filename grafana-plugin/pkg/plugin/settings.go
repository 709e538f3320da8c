package plugin

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/faceid-observability/faceid-exporter/grafana-plugin/pkg/exporterapi"
)

// Auth types of the datasource settings (jsonData.authType).
const (
	AuthNone   = "none"
	AuthBasic  = "basic"
	AuthBearer = "bearer"
)

// DefaultTimeout bounds every request except the event stream.
const DefaultTimeout = 30 * time.Second

// Settings is what a datasource instance is configured with. Secrets come from
// secure JSON data only.
type Settings struct {
	URL      string
	AuthType string
	Auth     exporterapi.Auth
	Timeout  time.Duration

	TLSSkipVerify bool
	TLSServerName string
	CACert        string // PEM, set when jsonData.tlsAuthWithCACert
	ClientCert    string // PEM, set when jsonData.tlsAuth
	ClientKey     string // PEM, set when jsonData.tlsAuth
}

// jsonData is the non-secret part of the settings, as the config editor and
// provisioning files write it.
type jsonData struct {
	AuthType          string   `json:"authType"`
	Timeout           *float64 `json:"timeout"` // seconds
	TLSSkipVerify     bool     `json:"tlsSkipVerify"`
	TLSAuth           bool     `json:"tlsAuth"`
	TLSAuthWithCACert bool     `json:"tlsAuthWithCACert"`
	ServerName        string   `json:"serverName"`
}

// LoadSettings reads and checks instance settings. Basic auth uses Grafana's
// own fields (basicAuth, basicAuthUser, secure basicAuthPassword); a bearer
// token is secureJsonData.bearerToken; TLS follows Grafana's names
// (tlsSkipVerify, tlsAuthWithCACert + tlsCACert, tlsAuth + tlsClientCert/tlsClientKey).
func LoadSettings(s backend.DataSourceInstanceSettings) (Settings, error) {
	var jd jsonData
	if len(s.JSONData) > 0 && string(s.JSONData) != "null" {
		if err := json.Unmarshal(s.JSONData, &jd); err != nil {
			return Settings{}, fmt.Errorf("datasource settings: jsonData: %w", err)
		}
	}
	sec := s.DecryptedSecureJSONData
	out := Settings{
		URL:           s.URL,
		Timeout:       DefaultTimeout,
		TLSSkipVerify: jd.TLSSkipVerify,
		TLSServerName: jd.ServerName,
	}
	if _, err := exporterapi.ParseURL(s.URL); err != nil {
		return out, fmt.Errorf("datasource settings: %w; enter the exporter's address, for example http://faceid-exporter:9479", err)
	}
	if jd.Timeout != nil {
		if *jd.Timeout <= 0 || *jd.Timeout > 600 {
			return out, fmt.Errorf("datasource settings: timeout %v s is not between 0 and 600 seconds", *jd.Timeout)
		}
		out.Timeout = time.Duration(*jd.Timeout * float64(time.Second))
	}

	authType := jd.AuthType
	if authType == "" {
		switch {
		case s.BasicAuthEnabled:
			authType = AuthBasic
		case sec["bearerToken"] != "":
			authType = AuthBearer
		default:
			authType = AuthNone
		}
	}
	out.AuthType = authType
	switch authType {
	case AuthNone:
		if s.BasicAuthEnabled {
			return out, errors.New("datasource settings: basic auth is switched on but the auth type is \"none\"")
		}
	case AuthBasic:
		if s.BasicAuthUser == "" {
			return out, errors.New("datasource settings: basic auth needs a user")
		}
		out.Auth = exporterapi.Auth{User: s.BasicAuthUser, Password: sec["basicAuthPassword"]}
	case AuthBearer:
		if s.BasicAuthEnabled {
			return out, errors.New("datasource settings: choose either basic auth or a bearer token, not both")
		}
		if sec["bearerToken"] == "" {
			return out, errors.New("datasource settings: bearer token auth needs a token")
		}
		out.Auth = exporterapi.Auth{Token: sec["bearerToken"]}
	default:
		return out, fmt.Errorf("datasource settings: auth type %q is not none, basic or bearer", authType)
	}

	if jd.TLSAuthWithCACert {
		if sec["tlsCACert"] == "" {
			return out, errors.New("datasource settings: \"with CA cert\" is on but no CA certificate is set")
		}
		out.CACert = sec["tlsCACert"]
	}
	if jd.TLSAuth {
		if sec["tlsClientCert"] == "" || sec["tlsClientKey"] == "" {
			return out, errors.New("datasource settings: TLS client auth is on but the client certificate or key is missing")
		}
		out.ClientCert, out.ClientKey = sec["tlsClientCert"], sec["tlsClientKey"]
	}
	return out, nil
}

// TLSConfig builds the TLS configuration the settings describe.
func (s Settings) TLSConfig() (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: s.TLSSkipVerify, //nolint:gosec // an explicit, documented user choice
		ServerName:         s.TLSServerName,
	}
	if s.CACert != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(s.CACert)) {
			return nil, errors.New("datasource settings: the CA certificate is not valid PEM")
		}
		cfg.RootCAs = pool
	}
	if s.ClientCert != "" {
		cert, err := tls.X509KeyPair([]byte(s.ClientCert), []byte(s.ClientKey))
		if err != nil {
			return nil, fmt.Errorf("datasource settings: TLS client certificate and key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// NewClient builds the exporter client the settings describe.
func (s Settings) NewClient() (*exporterapi.Client, error) {
	tlsCfg, err := s.TLSConfig()
	if err != nil {
		return nil, err
	}
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: s.Timeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	requests := &http.Client{Transport: transport, Timeout: s.Timeout}
	stream := &http.Client{Transport: transport} // bounded by the stream's context
	return exporterapi.New(s.URL, s.Auth, requests, stream)
}
