package stream

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/faceid-observability/faceid-exporter/pkg/classify"
)

// Observer receives the stream's events; *metrics.Metrics implements it.
type Observer interface {
	SetConnected(up bool)
	Reconnected()
	Disconnected()
	Dropped(n int)
	DeadLettered(r classify.Reason)
	DeadLetterError()
}

// ConnOptions configure the NATS connection. Secrets come from files so that
// nothing secret is on the command line.
type ConnOptions struct {
	URLs         string // comma-separated
	Name         string
	CredsFile    string // JWT + NKey seed (.creds)
	NKeySeedFile string
	User         string
	PasswordFile string
	TokenFile    string
	TLSCAFile    string
	TLSCertFile  string
	TLSKeyFile   string
	// MaxReconnectWait caps the reconnect backoff (default 5s).
	MaxReconnectWait time.Duration
}

func readSecret(path, what string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read nats %s file: %w", what, err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("nats %s file %s is empty", what, path)
	}
	return s, nil
}

// readable checks that path is a file the process can read.
func readable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.Read(b[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%s is empty", path)
		}
		return err
	}
	return nil
}

// natsOptions turns o into nats.go options, checking that at most one
// authentication method is given.
func (o ConnOptions) natsOptions() ([]nats.Option, error) {
	var opts []nats.Option
	methods := 0
	for _, set := range []bool{o.CredsFile != "", o.NKeySeedFile != "", o.User != "", o.TokenFile != ""} {
		if set {
			methods++
		}
	}
	if methods > 1 {
		return nil, errors.New("nats authentication: give only one of --nats.creds-file, --nats.nkey-seed-file, --nats.user, --nats.token-file")
	}
	if o.PasswordFile != "" && o.User == "" {
		return nil, errors.New("nats authentication: --nats.password-file needs --nats.user")
	}
	switch {
	case o.CredsFile != "":
		if err := readable(o.CredsFile); err != nil {
			return nil, fmt.Errorf("nats creds file: %w", err)
		}
		opts = append(opts, nats.UserCredentials(o.CredsFile))
	case o.NKeySeedFile != "":
		opt, err := nats.NkeyOptionFromSeed(o.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("nats nkey seed file: %w", err)
		}
		opts = append(opts, opt)
	case o.User != "":
		pw := ""
		if o.PasswordFile != "" {
			var err error
			if pw, err = readSecret(o.PasswordFile, "password"); err != nil {
				return nil, err
			}
		}
		opts = append(opts, nats.UserInfo(o.User, pw))
	case o.TokenFile != "":
		tok, err := readSecret(o.TokenFile, "token")
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.Token(tok))
	}
	if (o.TLSCertFile == "") != (o.TLSKeyFile == "") {
		return nil, errors.New("nats tls: --nats.tls.cert-file and --nats.tls.key-file go together")
	}
	if o.TLSCAFile != "" {
		if err := readable(o.TLSCAFile); err != nil {
			return nil, fmt.Errorf("nats tls ca file: %w", err)
		}
		opts = append(opts, nats.RootCAs(o.TLSCAFile))
	}
	if o.TLSCertFile != "" {
		for _, f := range []string{o.TLSCertFile, o.TLSKeyFile} {
			if err := readable(f); err != nil {
				return nil, fmt.Errorf("nats tls client certificate: %w", err)
			}
		}
		opts = append(opts, nats.ClientCert(o.TLSCertFile, o.TLSKeyFile))
	}
	return opts, nil
}

// Check reads and checks the secret and certificate files of o, as Connect
// would, without connecting.
func (o ConnOptions) Check() error {
	_, err := o.natsOptions()
	return err
}

// Backoff returns the reconnect delay for an attempt: exponential from 100ms,
// capped at max, with ±20% jitter.
func Backoff(attempt int, max time.Duration) time.Duration {
	d := 100 * time.Millisecond
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// Connect opens the NATS connection. It reconnects forever with backoff and
// returns even when the servers are not reachable yet (the connection keeps
// trying); obs sees every state change.
func Connect(o ConnOptions, obs Observer, logger *slog.Logger) (*nats.Conn, error) {
	opts, err := o.natsOptions()
	if err != nil {
		return nil, err
	}
	if o.MaxReconnectWait <= 0 {
		o.MaxReconnectWait = 5 * time.Second
	}
	name := o.Name
	if name == "" {
		name = "faceid-exporter"
	}
	opts = append(opts,
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.CustomReconnectDelay(func(attempts int) time.Duration { return Backoff(attempts, o.MaxReconnectWait) }),
		nats.PingInterval(10*time.Second),
		nats.MaxPingsOutstanding(3),
		nats.ConnectHandler(func(nc *nats.Conn) {
			obs.SetConnected(true)
			logger.Info("connected to nats", "url", nc.ConnectedUrlRedacted())
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			obs.SetConnected(false)
			obs.Disconnected()
			logger.Warn("disconnected from nats", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			obs.SetConnected(true)
			obs.Reconnected()
			logger.Info("reconnected to nats", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ClosedHandler(func(*nats.Conn) {
			obs.SetConnected(false)
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrSlowConsumer) {
				return // counted from the subscription's dropped count
			}
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			logger.Warn("nats error", "subject", subject, "err", err)
		}),
	)
	urls := o.URLs
	nc, err := nats.Connect(urls, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", urls, err)
	}
	if nc.IsConnected() {
		obs.SetConnected(true)
	} else {
		logger.Warn("nats not reachable yet, retrying in the background", "url", urls)
	}
	return nc, nil
}
