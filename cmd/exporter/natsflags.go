package main

import (
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
