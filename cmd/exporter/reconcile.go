package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/alecthomas/kingpin/v2"

	"github.com/faceid-observability/faceid-exporter/pkg/config"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
	"github.com/faceid-observability/faceid-exporter/pkg/reconcile"
)

// exitError is an error that asks for a given process exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// ExitCode returns the exit code the error asks for.
func (e *exitError) ExitCode() int { return e.code }

// usage marks err as a usage or I/O error of reconcile: exit status 2.
func usage(err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: 2, err: err}
}

func addReconcile(app *kingpin.Application, c *cli) (*kingpin.CmdClause, func(context.Context) error) {
	return addReconcileWith(app, c, ledger.Read)
}

// addReconcileWith is addReconcile with the function that reads the
// committed books from the checkpoint bucket.
func addReconcileWith(app *kingpin.Application, c *cli, read reconcile.ReadFunc) (*kingpin.CmdClause, func(context.Context) error) {
	cmd := app.Command("reconcile", "Compare the exact books of the WeChat family (wechat_h5, wechat_miniprogram, eid) with Tencent's charge details (GetWeChatBillDetails) per Beijing day and rule id, and Tencent's charging of every code with the catalog (docs/reconcile.md). Exit status 0: every complete day matches; 1: a mismatch or a missing day; 2: a usage or I/O error.")
	from := cmd.Flag("from", "First Beijing day, YYYY-MM-DD.").Required().PlaceHolder("YYYY-MM-DD").String()
	to := cmd.Flag("to", "Last Beijing day, YYYY-MM-DD (inclusive).").Required().PlaceHolder("YYYY-MM-DD").String()
	format := cmd.Flag("format", "Output: table, csv (the catalog drift goes to standard error) or json.").Default("table").Enum("table", "csv", "json")
	ledgerFile := cmd.Flag("ledger.file", "Our books as a CSV of `exporter ledger --format csv` (header day,channel,code,billable,count,rule_id), instead of --nats.url.").PlaceHolder("FILE").String()
	natsFlags := addNATSLedgerFlags(cmd)
	configFile := cmd.Flag("config.file", "serve's YAML configuration: its catalog overrides apply, and its business_dimensions rule_id allowlist names the rule ids the books were kept with.").PlaceHolder("FILE").String()
	tolerance := addToleranceFlag(cmd)
	tencent := addTencentFlags(cmd)
	return cmd, func(ctx context.Context) error {
		fromDay, toDay, err := ledger.ParseRange(*from, *to)
		if err != nil {
			return usage(err)
		}
		cat, err := c.catalog()
		if err != nil {
			return usage(err)
		}
		var ruleIDs []string
		if *configFile != "" {
			cfg, err := config.LoadFile(*configFile, cat)
			if err != nil {
				return usage(err)
			}
			cat, ruleIDs = cfg.Catalog, cfg.Business.RuleID
		}
		var books reconcile.Ledger
		switch {
		case *ledgerFile != "" && natsFlags.conn.URLs != "":
			return usage(errors.New("give --ledger.file or --nats.url, not both"))
		case *ledgerFile != "":
			books = reconcile.LedgerFile{Path: *ledgerFile}
		case natsFlags.conn.URLs != "":
			l, done, err := natsFlags.open(ctx, read)
			if err != nil {
				return usage(err)
			}
			defer done()
			books = l
		default:
			return usage(errors.New("no ledger: give --ledger.file, or --nats.url and --jetstream.stream"))
		}
		src, err := tencent.source(c.logger())
		if err != nil {
			return usage(err)
		}
		rep, err := reconcile.Run(ctx, reconcile.Options{Catalog: cat, From: fromDay, To: toDay, Now: c.now(),
			Tolerance: *tolerance, RuleIDs: ruleIDs}, books, src)
		if err != nil {
			return usage(err)
		}
		if err := writeReport(rep, *format, c.stdout, c.stderr); err != nil {
			return usage(fmt.Errorf("write the report: %w", err))
		}
		if !rep.OK {
			return &exitError{code: 1, err: errors.New(rep.Summary())}
		}
		return nil
	}
}

func writeReport(rep *reconcile.Report, format string, stdout, stderr io.Writer) error {
	switch format {
	case "csv":
		if err := rep.WriteCSV(stdout); err != nil {
			return err
		}
		return rep.WriteDrift(stderr)
	case "json":
		return rep.WriteJSON(stdout)
	}
	return rep.WriteTable(stdout)
}
