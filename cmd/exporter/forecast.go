package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/faceid-observability/faceid-exporter/pkg/config"
	"github.com/faceid-observability/faceid-exporter/pkg/forecast"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
)

// forecastFlags are the flags of the forecast subcommand.
type forecastFlags struct {
	ledger       ledgerFlags
	days         int
	at           string
	configFile   string
	calendarFile string
}

// addForecast registers the forecast subcommand, reading with ledger.Read.
func addForecast(app *kingpin.Application, c *cli) (*kingpin.CmdClause, func(context.Context) error) {
	return addForecastWith(app, c, ledger.Read)
}

// addForecastWith is addForecast with the ledger reader given.
func addForecastWith(app *kingpin.Application, c *cli, read ledgerReader) (*kingpin.CmdClause, func(context.Context) error) {
	cmd := app.Command("forecast", "Forecast billed verifications and cost: the rest of the current Beijing month and each of the next days, per channel and in total, with 80 % and 95 % intervals, from the ledger committed by the exporters of a JetStream stream and group (docs/forecast.md).")
	f := &forecastFlags{}
	l := &f.ledger
	cmd.Flag("nats.url", "NATS server URLs, comma-separated.").Required().PlaceHolder("URL").StringVar(&l.conn.URLs)
	cmd.Flag("nats.name", "Connection name shown by the NATS server.").Default("faceid-exporter-forecast").StringVar(&l.conn.Name)
	addNATSSecurityFlags(cmd, &l.conn)
	cmd.Flag("timeout", "Longest time to connect to NATS and read the ledger.").Default("30s").DurationVar(&l.timeout)
	cmd.Flag("jetstream.stream", "Stream the exporters consume (their --jetstream.stream).").Required().PlaceHolder("NAME").StringVar(&l.stream)
	cmd.Flag("jetstream.consumer", "Group whose books to read (the exporters' --jetstream.consumer).").Default("faceid-exporter").StringVar(&l.group)
	cmd.Flag("jetstream.checkpoint-bucket", "KV bucket holding the checkpoints (the exporters' --jetstream.checkpoint-bucket).").Default("faceid-checkpoints").StringVar(&l.bucket)
	cmd.Flag("days", fmt.Sprintf("Days of the daily forecast, today first (1 to %d).", forecast.MaxDays)).Default(fmt.Sprint(forecast.DefaultDays)).IntVar(&f.days)
	cmd.Flag("at", "Forecast as at this time (RFC 3339), from the ledger days before it. Default: now.").PlaceHolder("TIME").StringVar(&f.at)
	cmd.Flag("config.file", "The exporters' configuration file: its pricing turns counts into cost.").PlaceHolder("FILE").StringVar(&f.configFile)
	cmd.Flag("forecast.calendar-file", "YAML calendar of your own days (holidays, make-up workdays, promotions, outages to ignore) on top of China's public holidays (docs/forecast.md).").PlaceHolder("FILE").StringVar(&f.calendarFile)
	cmd.Flag("format", "Output format: csv, json or table.").Default("table").StringVar(&l.format)
	cmd.Validate(func(*kingpin.CmdClause) error { return f.validate() })
	return cmd, func(ctx context.Context) error { return runForecast(ctx, c, f, read) }
}

func (f *forecastFlags) validate() error {
	l := &f.ledger
	if strings.TrimSpace(l.conn.URLs) == "" {
		return errors.New("--nats.url is empty")
	}
	if err := checkJetStreamName("--jetstream.stream", l.stream); err != nil {
		return err
	}
	if err := checkJetStreamName("--jetstream.consumer", l.group); err != nil {
		return err
	}
	switch l.format {
	case "csv", "json", "table":
	default:
		return fmt.Errorf("--format %q: want csv, json or table", l.format)
	}
	if l.timeout <= 0 {
		return fmt.Errorf("--timeout %s: want more than 0", l.timeout)
	}
	if f.days < 1 || f.days > forecast.MaxDays {
		return fmt.Errorf("--days %d: want 1 to %d", f.days, forecast.MaxDays)
	}
	if f.at != "" {
		if _, err := time.Parse(time.RFC3339, f.at); err != nil {
			return fmt.Errorf("--at %q: want an RFC 3339 time such as 2026-11-25T10:00:00+08:00", f.at)
		}
	}
	return nil
}

// loadCalendar reads a --forecast.calendar-file ("" : China's public
// calendar alone).
func loadCalendar(file string) (*forecast.Calendar, error) {
	if file == "" {
		return forecast.ChinaCalendar(), nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read --forecast.calendar-file: %w", err)
	}
	return forecast.ParseCalendar(file, data)
}

func runForecast(ctx context.Context, c *cli, f *forecastFlags, read ledgerReader) error {
	now := c.now()
	if f.at != "" {
		now, _ = time.Parse(time.RFC3339, f.at)
	}
	cal, err := loadCalendar(f.calendarFile)
	if err != nil {
		return err
	}
	opts := forecast.Options{Now: now, Days: f.days, Calendar: cal}
	if f.configFile != "" {
		cat, err := c.catalog()
		if err != nil {
			return err
		}
		cfg, err := config.LoadFile(f.configFile, cat)
		if err != nil {
			return err
		}
		if p := cfg.Pricing; p != nil {
			opts.Currency, opts.UnitPrice = p.Currency, p.UnitPrice
		}
	}
	l := &f.ledger
	today := ledger.DayOf(now)
	l.from, l.to = today-forecast.HistoryDays+1, today
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	rows, err := readLedger(ctx, l, read)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%w (--timeout %s)", err, l.timeout)
		}
		return err
	}
	res, err := forecast.FromRows(rows, opts)
	if err != nil {
		return fmt.Errorf("forecast the ledger of group %q on stream %q: %w", l.group, l.stream, err)
	}
	var out bytes.Buffer
	switch l.format {
	case "csv":
		err = forecast.WriteCSV(&out, res)
	case "json":
		err = forecast.WriteJSON(&out, res)
	default:
		err = forecast.WriteTable(&out, res)
	}
	if err != nil {
		return err
	}
	_, err = c.stdout.Write(out.Bytes())
	return err
}
