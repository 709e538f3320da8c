package stream_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
	"github.com/faceid-observability/faceid-exporter/pkg/stream"
)

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
			r := newRig(t, catalog(t), nil)
			nc, err := stream.Connect(o, r.m, testLogger(t))
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
				if sum(family(t, r.reg, "faceid_exporter_nats_connected")) != 1 {
					t.Error("faceid_exporter_nats_connected is not 1")
				}
				return
			}
			time.Sleep(300 * time.Millisecond)
			if nc.IsConnected() {
				t.Fatal("connected with the wrong password")
			}
		})
	}
}

func TestNKeyAndTLS(t *testing.T) {
	testNKey(t)
	testTLS(t)
}
