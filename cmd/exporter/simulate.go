package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/faceid-observability/faceid-exporter/pkg/simulate"
	"github.com/faceid-observability/faceid-exporter/pkg/stream"
)

// simulateFlags are the flags of the simulate subcommand.
type simulateFlags struct {
	nats          stream.ConnOptions
	stream        string
	subjectPrefix string
	scenario      string
	rate          float64
	duration      time.Duration
	seed          int64
	seedSet       bool
	reportFile    string
}

func addSimulate(app *kingpin.Application, c *cli) (*kingpin.CmdClause, func(context.Context) error) {
	cmd := app.Command("simulate", "Publish synthetic FaceID verification results to NATS at a steady rate and report what was sent (docs/simulate.md).")
	f := &simulateFlags{}
	cmd.Flag("nats.url", "NATS server URL (several: comma-separated). The default is the exporter's embedded server.").Default("nats://127.0.0.1:4222").StringVar(&f.nats.URLs)
	cmd.Flag("nats.name", "Connection name the NATS server shows.").Default("faceid-exporter-simulate").StringVar(&f.nats.Name)
	addNATSSecurityFlags(cmd, &f.nats)
	cmd.Flag("nats.subject-prefix", "Subject prefix: events go to <prefix>.<channel>.").Default(simulate.DefaultSubjectPrefix).StringVar(&f.subjectPrefix)
	cmd.Flag("jetstream.stream", "Publish with JetStream and count a message sent once this stream acknowledges it. Empty: core NATS.").PlaceHolder("NAME").StringVar(&f.stream)
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
	if strings.TrimSpace(f.nats.URLs) == "" {
		return errors.New("--nats.url is empty")
	}
	if err := checkNATSURLs(f.nats.URLs); err != nil {
		return err
	}
	nc, err := stream.Dial(f.nats, logger)
	if err != nil {
		return err
	}
	defer nc.Close()
	pub := simulate.NewCorePublisher(nc)
	if f.stream != "" {
		if pub, err = simulate.NewJetStreamPublisher(ctx, nc, f.stream); err != nil {
			return err
		}
	}
	logger.Info("publishing synthetic events", "url", stream.RedactURLs(nc.ConnectedUrl()), "transport", pub.Transport(),
		"stream", f.stream, "scenario", cfg.Scenario, "rate", cfg.Rate, "duration", cfg.Duration, "seed", cfg.Seed)
	rep, runErr := simulate.Run(ctx, cfg, pub)
	if err := simulateWriteReport(c, f.reportFile, rep); err != nil {
		return err
	}
	if runErr != nil {
		return runErr
	}
	if rep.Errors > 0 {
		return fmt.Errorf("%d of %d messages failed to publish; the last error: %s", rep.Errors, rep.Errors+rep.Sent, stream.RedactURLs(rep.LastError))
	}
	return nil
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
