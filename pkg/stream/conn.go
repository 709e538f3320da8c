package stream

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/url"
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
	// ConnectTimeout bounds each connection attempt (0: nats.go's default, 2s).
	ConnectTimeout time.Duration
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

// securityOptions checks o's URLs and secret files and returns its
// authentication and TLS options; at most one authentication method may be
// given.
func (o ConnOptions) securityOptions() ([]nats.Option, error) {
	if err := checkURLs(o.URLs); err != nil {
		return nil, err
	}
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

// checkURLs parses each URL of a comma-separated list as nats.go does (no
// scheme means nats://), so that a malformed one is refused before
// connecting, with its credentials redacted. An empty list is the embedded
// server's business.
func checkURLs(list string) error {
	if strings.TrimSpace(list) == "" {
		return nil
	}
	for _, raw := range strings.Split(list, ",") {
		raw = strings.TrimSuffix(strings.TrimSpace(raw), "/")
		if raw == "" {
			return fmt.Errorf("--nats.url %q: empty url in the list", RedactURLs(list))
		}
		if !strings.Contains(raw, "://") {
			raw = "nats://" + raw
		}
		u, err := url.Parse(raw)
		if err != nil {
			return fmt.Errorf("--nats.url: %w", redactErr(err))
		}
		if u.Hostname() == "" {
			return fmt.Errorf("--nats.url %q: no host", RedactURLs(raw))
		}
	}
	return nil
}

// Check reads and checks the URLs, secret and certificate files of o, as
// Connect would, without connecting.
func (o ConnOptions) Check() error {
	_, err := o.securityOptions()
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

// NATSOptions returns the nats.go options of o: authentication, TLS,
// connection name, the reconnect policy (forever, with Backoff) and handlers
// that log each connection event with credentials redacted and report it to
// obs (nil: nobody). Every command that connects to NATS builds its options
// here, so the same flags follow the same rules everywhere.
func (o ConnOptions) NATSOptions(obs ConnObserver, logger *slog.Logger) ([]nats.Option, error) {
	opts, err := o.securityOptions()
	if err != nil {
		return nil, err
	}
	if obs == nil {
		obs = nopObserver{}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if o.ConnectTimeout > 0 {
		opts = append(opts, nats.Timeout(o.ConnectTimeout))
	}
	maxWait := o.MaxReconnectWait
	if maxWait <= 0 {
		maxWait = 5 * time.Second
	}
	name := o.Name
	if name == "" {
		name = "faceid-exporter"
	}
	return append(opts,
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(func(attempts int) time.Duration { return Backoff(attempts, maxWait) }),
		nats.PingInterval(10*time.Second),
		nats.MaxPingsOutstanding(3),
		nats.ConnectHandler(func(nc *nats.Conn) {
			obs.SetConnected(true)
			logger.Info("connected to nats", "url", RedactURLs(nc.ConnectedUrl()))
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			obs.SetConnected(false)
			obs.Disconnected()
			if err != nil { // nil: closed on purpose
				logger.Warn("disconnected from nats", "err", redactErr(err))
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			obs.SetConnected(true)
			obs.Reconnected()
			logger.Info("reconnected to nats", "url", RedactURLs(nc.ConnectedUrl()))
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			logger.Warn("nats connection attempt failed", "err", redactErr(err))
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			obs.SetConnected(false)
			if err := nc.LastError(); err != nil {
				logger.Warn("nats connection closed", "err", redactErr(err))
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrSlowConsumer) {
				return // counted from the subscription's dropped count
			}
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			logger.Warn("nats error", "subject", subject, "err", redactErr(err))
		}),
	), nil
}

// Connect opens the service's NATS connection. It returns even when no
// server is reachable yet and then keeps trying forever with backoff, through
// authorization errors too (credentials may be fixed on the server side); obs
// sees every state change.
func Connect(o ConnOptions, obs ConnObserver, logger *slog.Logger) (*nats.Conn, error) {
	opts, err := o.NATSOptions(obs, logger)
	if err != nil {
		return nil, err
	}
	if obs == nil {
		obs = nopObserver{}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts = append(opts, nats.RetryOnFailedConnect(true), nats.IgnoreAuthErrorAbort())
	nc, err := nats.Connect(o.URLs, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", RedactURLs(o.URLs), redactErr(err))
	}
	if nc.IsConnected() {
		obs.SetConnected(true)
	} else {
		logger.Warn("nats not reachable yet, retrying in the background", "url", RedactURLs(o.URLs))
	}
	return nc, nil
}

// Dial opens a NATS connection for a command that needs the server now
// (simulate, ledger, reconcile): it fails when no server can be reached or
// the server refuses the credentials, and once connected it reconnects like
// Connect.
func Dial(o ConnOptions, logger *slog.Logger) (*nats.Conn, error) {
	opts, err := o.NATSOptions(nil, logger)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(o.URLs, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", RedactURLs(o.URLs), redactErr(err))
	}
	return nc, nil
}

// ConnObserver receives a connection's state changes; Observer (and so
// *metrics.Metrics) implements it.
type ConnObserver interface {
	SetConnected(up bool)
	Reconnected()
	Disconnected()
}

// nopObserver is the ConnObserver of a connection nobody watches.
type nopObserver struct{}

func (nopObserver) SetConnected(bool) {}
func (nopObserver) Reconnected()      {}
func (nopObserver) Disconnected()     {}
