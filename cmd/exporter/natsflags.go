package main

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/alecthomas/kingpin/v2"

	"github.com/faceid-observability/faceid-exporter/pkg/stream"
)

// addNATSSecurityFlags registers on cmd the NATS authentication and TLS
// flags, into o. Every subcommand that connects to NATS (serve, simulate,
// ledger, reconcile) registers them here, and stream.ConnOptions applies the
// same rules to all of them. Secrets come from files, never from the command
// line.
func addNATSSecurityFlags(cmd *kingpin.CmdClause, o *stream.ConnOptions) {
	cmd.Flag("nats.creds-file", "NATS credentials file (user JWT and NKey seed).").PlaceHolder("FILE").StringVar(&o.CredsFile)
	cmd.Flag("nats.nkey-seed-file", "File holding an NKey seed to authenticate with.").PlaceHolder("FILE").StringVar(&o.NKeySeedFile)
	cmd.Flag("nats.user", "NATS user name (the password is read from --nats.password-file).").PlaceHolder("USER").StringVar(&o.User)
	cmd.Flag("nats.password-file", "File holding the password of --nats.user.").PlaceHolder("FILE").StringVar(&o.PasswordFile)
	cmd.Flag("nats.token-file", "File holding a NATS authentication token.").PlaceHolder("FILE").StringVar(&o.TokenFile)
	cmd.Flag("nats.tls.ca-file", "CA certificate(s) (PEM) to verify the NATS server with; turns TLS on.").PlaceHolder("FILE").StringVar(&o.TLSCAFile)
	cmd.Flag("nats.tls.cert-file", "Client certificate (PEM) for NATS mutual TLS (with --nats.tls.key-file).").PlaceHolder("FILE").StringVar(&o.TLSCertFile)
	cmd.Flag("nats.tls.key-file", "Client key (PEM) for NATS mutual TLS.").PlaceHolder("FILE").StringVar(&o.TLSKeyFile)
}

// natsSchemes are the URL schemes nats.go connects with.
var natsSchemes = map[string]bool{"nats": true, "tls": true, "ws": true, "wss": true}

// checkNATSURLs refuses a --nats.url list with an entry that is not a NATS
// URL: a scheme nats.go knows (nats, tls, ws, wss), a host, and a port (when
// given) from 1 to 65535. Without it nats.go would retry an impossible
// address forever. Credentials in a URL are redacted from the error.
func checkNATSURLs(list string) error {
	if strings.TrimSpace(list) == "" {
		return nil
	}
	for _, raw := range strings.Split(list, ",") {
		raw = strings.TrimSpace(raw)
		shown := stream.RedactURLs(raw)
		scheme, _, ok := strings.Cut(raw, "://")
		if !ok {
			return fmt.Errorf("--nats.url %q is not a NATS URL: want nats://host:port (or tls://, ws://, wss://)", shown)
		}
		if !natsSchemes[strings.ToLower(scheme)] {
			return fmt.Errorf("--nats.url %q: scheme %q is not nats, tls, ws or wss", shown, scheme)
		}
		u, err := url.Parse(raw)
		if err != nil {
			return fmt.Errorf("--nats.url: %w", errors.New(stream.RedactURLs(err.Error())))
		}
		if u.Hostname() == "" {
			return fmt.Errorf("--nats.url %q: no host", shown)
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				return fmt.Errorf("--nats.url %q: port %s is not between 1 and 65535", shown, p)
			}
		}
		if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
			return fmt.Errorf("--nats.url %q: a NATS URL has no path or query", shown)
		}
	}
	return nil
}
