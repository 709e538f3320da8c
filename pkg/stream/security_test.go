package stream_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
	"github.com/faceid-observability/faceid-exporter/pkg/stream"
)

func writeFile(p, content string) error { return os.WriteFile(p, []byte(content), 0o600) }

// waitAuthError waits until nc has been refused with an authorization
// error. The service's connection keeps retrying, so the error comes and goes
// between attempts: poll for it.
func waitAuthError(t *testing.T, nc *nats.Conn) {
	t.Helper()
	natstest.WaitFor(t, 5*time.Second, "an authorization error", func() bool {
		return errors.Is(nc.LastError(), nats.ErrAuthorization)
	})
}

// testNKey authenticates with an NKey seed file.
func testNKey(t *testing.T) {
	t.Run("nkey", func(t *testing.T) {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := kp.PublicKey()
		seed, _ := kp.Seed()
		seedFile := filepath.Join(t.TempDir(), "user.nk")
		if err := writeFile(seedFile, string(seed)); err != nil {
			t.Fatal(err)
		}
		s := natstest.RunServer(t, func(o *server.Options) { o.Nkeys = []*server.NkeyUser{{Nkey: pub}} })
		r := newRig(t, catalog(t), nil)
		nc, err := stream.Connect(stream.ConnOptions{URLs: s.ClientURL(), NKeySeedFile: seedFile}, r.m, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		natstest.WaitFor(t, 5*time.Second, "connected with the nkey", nc.IsConnected)
	})
}

// testTLS connects over mutual TLS with a CA and client certificate made here.
func testTLS(t *testing.T) {
	t.Run("mutual_tls", func(t *testing.T) {
		dir := t.TempDir()
		caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		caTmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		}
		caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		caCert, _ := x509.ParseCertificate(caDER)
		issue := func(name string, serial int64, server bool) (string, string) {
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			tmpl := &x509.Certificate{
				SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
				NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
				KeyUsage: x509.KeyUsageDigitalSignature,
			}
			if server {
				tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
				tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
			} else {
				tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
			}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
			if err != nil {
				t.Fatal(err)
			}
			kd, _ := x509.MarshalECPrivateKey(key)
			cf, kf := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
			_ = writeFile(cf, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
			_ = writeFile(kf, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})))
			return cf, kf
		}
		caFile := filepath.Join(dir, "ca.crt")
		_ = writeFile(caFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})))
		srvCert, srvKey := issue("server", 2, true)
		cliCert, cliKey := issue("client", 3, false)
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: srvCert, KeyFile: srvKey, CaFile: caFile, Verify: true})
		if err != nil {
			t.Fatal(err)
		}
		s := natstest.RunServer(t, func(o *server.Options) { o.TLSConfig = tc; o.TLSVerify = true; o.TLS = true })
		r := newRig(t, catalog(t), nil)
		nc, err := stream.Connect(stream.ConnOptions{URLs: s.ClientURL(), TLSCAFile: caFile, TLSCertFile: cliCert, TLSKeyFile: cliKey}, r.m, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		natstest.WaitFor(t, 5*time.Second, "connected over mutual TLS", nc.IsConnected)
		if !nc.TLSRequired() {
			t.Error("connection is not TLS")
		}
		// Without the client certificate the server refuses.
		nc2, err := stream.Connect(stream.ConnOptions{URLs: s.ClientURL(), TLSCAFile: caFile}, r.m, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		defer nc2.Close()
		natstest.WaitFor(t, 5*time.Second, "the server to refuse the connection without a client certificate", func() bool {
			err := nc2.LastError()
			return err != nil && strings.Contains(err.Error(), "certificate required")
		})
		if nc2.IsConnected() {
			t.Error("connected without a client certificate")
		}
	})
}

// connState is a ConnObserver that remembers whether the connection is up.
type connState struct{ up atomic.Bool }

func (c *connState) SetConnected(up bool) { c.up.Store(up) }
func (c *connState) Reconnected()         {}
func (c *connState) Disconnected()        {}

func TestConnectSecurity(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := dir + "/" + name
		if err := writeFile(p, content); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pw := write("password", "s3cret\n")
	tok := write("token", "tok-123\n")
	bad := write("bad-password", "nope\n")
	tests := []struct {
		name    string
		server  func(*server.Options)
		opts    stream.ConnOptions
		wantErr string // from option checks, before connecting
		connect bool
	}{
		{"user_password", func(o *server.Options) { o.Username, o.Password = "exporter", "s3cret" }, stream.ConnOptions{User: "exporter", PasswordFile: pw}, "", true},
		{"wrong_password", func(o *server.Options) { o.Username, o.Password = "exporter", "s3cret" }, stream.ConnOptions{User: "exporter", PasswordFile: bad}, "", false},
		{"token", func(o *server.Options) { o.Authorization = "tok-123" }, stream.ConnOptions{TokenFile: tok}, "", true},
		{"two_methods", nil, stream.ConnOptions{User: "u", TokenFile: tok}, "give only one of", false},
		{"password_without_user", nil, stream.ConnOptions{PasswordFile: pw}, "needs --nats.user", false},
		{"cert_without_key", nil, stream.ConnOptions{TLSCertFile: pw}, "go together", false},
		{"missing_token_file", nil, stream.ConnOptions{TokenFile: dir + "/none"}, "no such file", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := natstest.RunServer(t, tc.server)
			o := tc.opts
			o.URLs = s.ClientURL()
			obs := &connState{}
			nc, err := stream.Connect(o, obs, testLogger(t))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if tc.connect {
				natstest.WaitFor(t, 5*time.Second, "connected", nc.IsConnected)
				if !obs.up.Load() {
					t.Error("the observer was not told the connection is up")
				}
				return
			}
			waitAuthError(t, nc)
			if nc.IsConnected() || obs.up.Load() {
				t.Fatal("connected with the wrong password")
			}
		})
	}
}

func TestNKeyAndTLS(t *testing.T) {
	testNKey(t)
	testTLS(t)
}
