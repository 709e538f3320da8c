package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/nats-io/nats.go"

	"github.com/faceid-observability/faceid-exporter/pkg/simulate"
)

// simulateFlags are the flags of the simulate subcommand.
type simulateFlags struct {
	url, name                     string
	credsFile, nkeySeedFile       string
	user, passwordFile, tokenFile string
	tlsCA, tlsCert, tlsKey        string
	stream, subjectPrefix         string
	scenario                      string
	rate                          float64
	duration                      time.Duration
	seed                          int64
	seedSet                       bool
	reportFile                    string
}

func addSimulate(app *kingpin.Application, c *cli) (*kingpin.CmdClause, func(context.Context) error) {
	cmd := app.Command("simulate", "Publish synthetic FaceID verification results to NATS at a steady rate and report what was sent (docs/simulate.md).")
	f := &simulateFlags{}
	cmd.Flag("nats.url", "NATS server URL (several: comma-separated). The default is the exporter's embedded server.").Default("nats://127.0.0.1:4222").StringVar(&f.url)
	cmd.Flag("nats.name", "Connection name the NATS server shows.").Default("faceid-exporter-simulate").StringVar(&f.name)
	cmd.Flag("nats.creds-file", "NATS credentials file (user JWT and NKey seed).").PlaceHolder("FILE").StringVar(&f.credsFile)
	cmd.Flag("nats.nkey-seed-file", "File holding an NKey seed to authenticate with.").PlaceHolder("FILE").StringVar(&f.nkeySeedFile)
	cmd.Flag("nats.user", "NATS user; the password is read from --nats.password-file.").PlaceHolder("USER").StringVar(&f.user)
	cmd.Flag("nats.password-file", "File holding the password of --nats.user.").PlaceHolder("FILE").StringVar(&f.passwordFile)
	cmd.Flag("nats.token-file", "File holding a NATS authentication token.").PlaceHolder("FILE").StringVar(&f.tokenFile)
	cmd.Flag("nats.tls.ca-file", "CA certificates (PEM) to verify the NATS server with.").PlaceHolder("FILE").StringVar(&f.tlsCA)
	cmd.Flag("nats.tls.cert-file", "Client certificate (PEM) for mutual TLS; needs --nats.tls.key-file.").PlaceHolder("FILE").StringVar(&f.tlsCert)
	cmd.Flag("nats.tls.key-file", "Key (PEM) of --nats.tls.cert-file.").PlaceHolder("FILE").StringVar(&f.tlsKey)
	cmd.Flag("jetstream.stream", "Publish with JetStream and count a message sent once this stream acknowledges it. Empty: core NATS.").PlaceHolder("NAME").StringVar(&f.stream)
	cmd.Flag("subject-prefix", "Subject prefix: events go to <prefix>.<channel>.").Default(simulate.DefaultSubjectPrefix).StringVar(&f.subjectPrefix)
	cmd.Flag("scenario", "Traffic mix: "+strings.Join(simulate.ScenarioNames(), ", ")+".").Default(string(simulate.Baseline)).EnumVar(&f.scenario, simulate.ScenarioNames()...)
	cmd.Flag("rate", "Events per second.").Default("100").Float64Var(&f.rate)
	cmd.Flag("duration", "How long to publish; 0 publishes until interrupted (SIGINT/SIGTERM).").Default("30s").DurationVar(&f.duration)
	cmd.Flag("seed", "Random seed: the same seed gives the same events (ids and times aside). Default: taken from the clock and shown in the report.").PlaceHolder("N").IsSetByUser(&f.seedSet).Int64Var(&f.seed)
	cmd.Flag("report.file", "Write the JSON report to FILE instead of standard output.").PlaceHolder("FILE").StringVar(&f.reportFile)
	return cmd, func(ctx context.Context) error { return runSimulate(ctx, c, f) }
}

func runSimulate(ctx context.Context, c *cli, f *simulateFlags) error {
	logger := c.logger()
	cat, err := c.catalog()
	if err != nil {
		return err
	}
	if !f.seedSet {
		f.seed = time.Now().UnixNano()
	}
	cfg := simulate.Config{
		Catalog: cat, Scenario: simulate.Scenario(f.scenario), Rate: f.rate, Duration: f.duration,
		Seed: f.seed, SubjectPrefix: f.subjectPrefix, Progress: c.stderr,
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if f.url == "" {
		return errors.New("--nats.url is empty")
	}
	opts, err := f.natsOptions(logger)
	if err != nil {
		return err
	}
	nc, err := nats.Connect(f.url, opts...)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", simulateRedactURLs(f.url), err)
	}
	defer nc.Close()
	pub := simulate.NewCorePublisher(nc)
	if f.stream != "" {
		if pub, err = simulate.NewJetStreamPublisher(ctx, nc, f.stream); err != nil {
			return err
		}
	}
	logger.Info("publishing synthetic events", "url", nc.ConnectedUrlRedacted(), "transport", pub.Transport(),
		"stream", f.stream, "scenario", cfg.Scenario, "rate", cfg.Rate, "duration", cfg.Duration, "seed", cfg.Seed)
	rep, runErr := simulate.Run(ctx, cfg, pub)
	if err := simulateWriteReport(c, f.reportFile, rep); err != nil {
		return err
	}
	if runErr != nil {
		return runErr
	}
	if rep.Errors > 0 {
		return fmt.Errorf("%d of %d messages failed to publish; the last error: %s", rep.Errors, rep.Errors+rep.Sent, rep.LastError)
	}
	return nil
}

// natsOptions turns the connection flags into NATS options. Secrets come
// from files so that none is on the command line.
func (f *simulateFlags) natsOptions(logger *slog.Logger) ([]nats.Option, error) {
	opts := []nats.Option{
		nats.Name(f.name),
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: closed by us
				logger.Warn("disconnected from nats", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			logger.Info("reconnected to nats", "url", nc.ConnectedUrlRedacted())
		}),
	}
	methods := 0
	for _, set := range []bool{f.credsFile != "", f.nkeySeedFile != "", f.user != "" || f.passwordFile != "", f.tokenFile != ""} {
		if set {
			methods++
		}
	}
	if methods > 1 {
		return nil, errors.New("use only one of --nats.creds-file, --nats.nkey-seed-file, --nats.user/--nats.password-file and --nats.token-file")
	}
	switch {
	case f.credsFile != "":
		if _, err := os.Stat(f.credsFile); err != nil {
			return nil, fmt.Errorf("nats credentials: %w", err)
		}
		opts = append(opts, nats.UserCredentials(f.credsFile))
	case f.nkeySeedFile != "":
		o, err := nats.NkeyOptionFromSeed(f.nkeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("nats nkey seed: %w", err)
		}
		opts = append(opts, o)
	case f.user != "" || f.passwordFile != "":
		if f.user == "" || f.passwordFile == "" {
			return nil, errors.New("--nats.user and --nats.password-file go together")
		}
		pw, err := simulateReadSecret(f.passwordFile)
		if err != nil {
			return nil, fmt.Errorf("nats password: %w", err)
		}
		opts = append(opts, nats.UserInfo(f.user, pw))
	case f.tokenFile != "":
		tok, err := simulateReadSecret(f.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("nats token: %w", err)
		}
		opts = append(opts, nats.Token(tok))
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return nil, errors.New("--nats.tls.cert-file and --nats.tls.key-file go together")
	}
	if f.tlsCA != "" {
		opts = append(opts, nats.RootCAs(f.tlsCA))
	}
	if f.tlsCert != "" {
		opts = append(opts, nats.ClientCert(f.tlsCert, f.tlsKey))
	}
	return opts, nil
}

// simulateReadSecret reads a secret file, without its trailing newline.
func simulateReadSecret(name string) (string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return "", err
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s is empty", name)
	}
	return s, nil
}

// simulateRedactURLs hides the credentials in a comma-separated list of URLs.
func simulateRedactURLs(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			u.User = url.User("REDACTED") // a user name alone may be a token
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}

func simulateWriteReport(c *cli, file string, rep simulate.Report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	b = append(b, '\n')
	if file == "" {
		_, err = c.stdout.Write(b)
		return err
	}
	if err := os.WriteFile(file, b, 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}
