package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/faceid-observability/faceid-exporter/pkg/config"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
	"github.com/faceid-observability/faceid-exporter/pkg/metrics"
	"github.com/faceid-observability/faceid-exporter/pkg/reconcile"
	"github.com/faceid-observability/faceid-exporter/pkg/service"
	"github.com/faceid-observability/faceid-exporter/pkg/stream"
)

// DefaultListenAddress is the exporter's HTTP port.
const DefaultListenAddress = ":9479"

// addServe registers the default command, the exporter service.
func addServe(app *kingpin.Application, c *cli) (*kingpin.CmdClause, func(context.Context) error) {
	return addServeWith(app, c, nil)
}

// addServeWith is addServe with a hook called once the service is started
// (tests use it to learn the ports).
func addServeWith(app *kingpin.Application, c *cli, onReady func(service.Started)) (*kingpin.CmdClause, func(context.Context) error) {
	cmd := app.Command("serve", "Run the exporter service (the default command): consume verification results from NATS, serve /metrics and the API.").Default()
	webFlags := kingpinflag.AddFlags(cmd, DefaultListenAddress)
	telemetryPath := cmd.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").String()
	enablePprof := cmd.Flag("web.enable-pprof", "Serve Go's runtime profiles (net/http/pprof) under /debug/pprof/ on the web listener, behind --web.config.file like the rest; for measuring (docs/development.md), off in production.").Bool()

	var nats stream.ConnOptions
	cmd.Flag("nats.url", "NATS server URLs (nats://, tls://, ws:// or wss://, host and port), comma-separated. Empty: start an embedded NATS server (with JetStream) in the process, listening on --nats.embedded.listen.").Default("").StringVar(&nats.URLs)
	coreMode := cmd.Flag("nats.core", "Core NATS mode instead of the default checkpointed JetStream mode: a queue subscription (--nats.queue) whose counters start from zero in every process, with no checkpoint, no ledger (/api/v1/ledger answers 501) and no reconciliation; a message published while no replica runs is not counted.").Bool()
	subject := cmd.Flag("nats.subject", "Subject (wildcards allowed) the verification results are published on; an event without channel takes the subject's last token.").Default("faceid.results.>").String()
	queue := cmd.Flag("nats.queue", "Core NATS queue group, so that replicas share the messages. Empty: every replica gets every message.").Default("faceid-exporter").String()
	deadLetter := cmd.Flag("nats.dead-letter-subject", "Subject rejected messages are republished to, with the reason in the Faceid-Reject-Reason header.").Default("faceid.deadletter").String()
	deadLetterMode := cmd.Flag("nats.dead-letter-mode", "What a dead letter carries besides the reason: reference (no payload; in JetStream mode the source stream and sequence of the original), redacted (the JSON object without the catalog's personal fields; anything else by reference) or full (the message as received, personal data included; warned at start). auto: reference in JetStream mode, redacted in core mode. A payload over 64KiB always goes by reference.").Default(service.DeadLetterAuto).Enum(service.DeadLetterAuto, "reference", "redacted", "full")
	cmd.Flag("nats.name", "Connection name shown by the NATS server.").Default("faceid-exporter").StringVar(&nats.Name)
	addNATSSecurityFlags(cmd, &nats)
	embeddedListen := cmd.Flag("nats.embedded.listen", "Listen address of the embedded NATS server (loopback by default; port -1 picks a free one).").Default(stream.DefaultEmbeddedListen).String()
	var storeDirSet bool
	storeDir := cmd.Flag("nats.embedded.store-dir", "JetStream store directory of the embedded NATS server; its books persist there across restarts. --demo without this flag uses a fresh directory, removed when it stops.").Default(stream.DefaultStoreDir()).IsSetByUser(&storeDirSet).String()

	var js service.JetStream
	var streamSet bool
	cmd.Flag("jetstream.stream", "Consume this JetStream stream with checkpoints (the default mode): ack-free ordered consumers per partition, counts and ledger committed with the stream position to a KV bucket, exactly once across restarts and replicas. --nats.core chooses core NATS instead.").Default(service.DemoStream).IsSetByUser(&streamSet).StringVar(&js.Stream)
	cmd.Flag("jetstream.consumer", "Consumer group: replicas with the same group share the partitions; checkpoints are kept per stream and group, so two groups each count the whole stream.").Default("faceid-exporter").StringVar(&js.Consumer)
	cmd.Flag("jetstream.checkpoint-bucket", "KV bucket of the checkpoints (created when missing).").Default(service.DefaultCheckpointBucket).StringVar(&js.CheckpointBucket)
	cmd.Flag("jetstream.checkpoint-replicas", "Replicas of the checkpoint bucket when it is created (3 on a NATS cluster).").Default("1").IntVar(&js.CheckpointReplicas)
	cmd.Flag("jetstream.checkpoint-interval", "How often each owned partition commits its checkpoint (also its owner's heartbeat).").Default(service.DefaultCheckpointInterval.String()).DurationVar(&js.CheckpointInterval)
	cmd.Flag("jetstream.takeover-timeout", "A standby replica takes over a partition whose checkpoint has not changed for this long.").Default(service.DefaultTakeoverTimeout.String()).DurationVar(&js.TakeoverTimeout)
	cmd.Flag("jetstream.partitions", "Partitions of the group: 1 reads the whole --nats.subject; more split the catalog's channels over the subjects prefix.<channel> so replicas share the work. Every replica of a group must use the same value.").Default("1").IntVar(&js.Partitions)
	cmd.Flag("jetstream.instance", "This replica's name in the group, stable across its restarts (Kubernetes: the pod name): a restarted replica takes back the partitions its name holds at once, instead of after the takeover timeout. Unique per live process (a name used by two is reported: not ready, logged). Letters, digits, '-' and '_'. Empty: host, pid and a random suffix, new at every start.").Default("").StringVar(&js.Instance)
	cmd.Flag("jetstream.create-stream", "Create the stream on --nats.subject (with the limits below) and the dead-letter stream when they do not exist.").Default("true").BoolVar(&js.CreateStream)
	cmd.Flag("jetstream.stream-max-age", "MaxAge of a stream the exporter creates: older messages are removed (unread ones are counted as lost).").Default(service.DefaultStreamMaxAge.String()).DurationVar(&js.StreamMaxAge)
	maxBytes := cmd.Flag("jetstream.stream-max-bytes", "MaxBytes of a stream the exporter creates (the dead-letter stream gets an eighth, at least 64MiB).").Default("8GiB").Bytes()
	cmd.Flag("jetstream.stream-replicas", "Replicas of the streams the exporter creates.").Default("1").IntVar(&js.StreamReplicas)
	cmd.Flag("jetstream.dead-letter-stream", "Stream created on --nats.dead-letter-subject (duplicate window: 10m, or 10 takeover timeouts when longer), so that a dead letter published again by a replay is stored once. Empty: none.").Default(service.DefaultDeadLetterStream).StringVar(&js.DeadLetterStream)

	configFile := cmd.Flag("config.file", "YAML configuration file: catalog overrides, dedupe window, business-dimension allowlists, event buffer sizes, pricing (see docs/service.md).").PlaceHolder("FILE").String()
	var futureSet, retentionSet bool
	futureTolerance := cmd.Flag("events.future-tolerance", "An event whose ts is later than its message's time (the JetStream timestamp; on core NATS the time of receipt) by more than this is rejected as future_ts and dead-lettered, so that it cannot move the ledger's newest day or the duplicate and reqId windows; 0 turns the rule off. Overrides the config file's events.future_tolerance.").
		Default(config.DefaultFutureTolerance.String()).IsSetByUser(&futureSet).Duration()
	retentionDays := cmd.Flag("ledger.retention-days", "Days before the newest accepted day that each partition's ledger keeps; an older event is counted, not booked (faceid_exporter_ledger_too_old_events_total). Overrides the config file's ledger.retention_days.").
		Default(strconv.Itoa(ledger.DefaultRetentionDays)).IsSetByUser(&retentionSet).Int()
	configCheck := cmd.Flag("config.check", "Validate --config.file (and --catalog.file), print a summary and exit.").Bool()

	otlpEndpoint := cmd.Flag("otlp.endpoint", "OTLP receiver to push the metrics to (host:port, or a URL). Empty: no push.").String()
	otlpProtocol := cmd.Flag("otlp.protocol", "OTLP protocol: grpc or http (protobuf).").Default("grpc").Enum("grpc", "http")
	otlpHeaders := cmd.Flag("otlp.header", "Header sent with every OTLP export, KEY=VALUE; repeatable. Put secrets in --otlp.headers-file instead.").PlaceHolder("KEY=VALUE").Strings()
	otlpHeadersFile := cmd.Flag("otlp.headers-file", "File of KEY=VALUE lines (# comments), headers sent with every OTLP export: keeps secrets such as tokens off the command line.").PlaceHolder("FILE").String()
	otlpInsecure := cmd.Flag("otlp.insecure", "Push OTLP without TLS.").Bool()
	otlpInterval := cmd.Flag("otlp.interval", "Interval between OTLP pushes.").Default("15s").Duration()

	demo := cmd.Flag("demo", "Run the embedded NATS server, the exporter and the baseline traffic generator together.").Bool()
	demoRate := cmd.Flag("demo.rate", "Events per second published by --demo.").Default("50").Float64()
	shutdownTimeout := cmd.Flag("shutdown.timeout", "Longest time to stop: stop intake, commit every owned partition released, flush OTLP.").Default("10s").Duration()
	forecastInterval := cmd.Flag("forecast.interval", "How often the owner of partition 0 recomputes the month-end forecast its faceid_forecast_* gauges expose (JetStream mode; docs/forecast.md). 0: no gauges.").Default(service.DefaultForecastInterval.String()).Duration()
	calendarFile := cmd.Flag("forecast.calendar-file", "YAML calendar of your own days (holidays, make-up workdays, promotions, outages to ignore) on top of China's public holidays, for the forecast (docs/forecast.md).").PlaceHolder("FILE").String()
	webLimits := addWebLimitFlags(cmd)
	rec := addReconcileServeFlags(cmd)

	return cmd, func(ctx context.Context) error {
		log := c.logger()
		if err := checkNATSURLs(nats.URLs); err != nil {
			return err
		}
		cat, err := c.catalog()
		if err != nil {
			return err
		}
		cfg := config.Default(cat)
		if *configFile != "" {
			if cfg, err = config.LoadFile(*configFile, cat); err != nil {
				return err
			}
		}
		if futureSet {
			cfg.Events.FutureTolerance = *futureTolerance
		}
		if retentionSet {
			cfg.Ledger.RetentionDays = *retentionDays
		}
		var otlp *metrics.OTLP
		if *otlpEndpoint != "" || *otlpHeadersFile != "" {
			headers, err := metrics.ParseHeaders(*otlpHeaders)
			if err != nil {
				return err
			}
			if *otlpHeadersFile != "" {
				fromFile, err := metrics.ReadHeadersFile(*otlpHeadersFile)
				if err != nil {
					return err
				}
				for k, v := range fromFile {
					if _, dup := headers[k]; dup {
						return fmt.Errorf("otlp header %q is in --otlp.headers-file and in --otlp.header", k)
					}
					headers[k] = v
				}
			}
			if *otlpEndpoint == "" {
				return fmt.Errorf("--otlp.headers-file needs --otlp.endpoint")
			}
			otlp = &metrics.OTLP{Endpoint: *otlpEndpoint, Protocol: *otlpProtocol, Headers: headers, Insecure: *otlpInsecure, Interval: *otlpInterval}
		}
		var catJSON bytes.Buffer
		if err := cfg.Catalog.WriteJSON(&catJSON); err != nil {
			return fmt.Errorf("catalog json: %w", err)
		}
		js.StreamMaxBytes = int64(*maxBytes)
		if *coreMode {
			if streamSet {
				return fmt.Errorf("--nats.core and --jetstream.stream %q exclude each other: core NATS keeps no stream", js.Stream)
			}
			js.Stream = ""
		} else if js.Stream == "" {
			return errors.New("--jetstream.stream is empty: name the stream, or choose core NATS (no exact books) with --nats.core")
		}
		if *demo && cfg.Pricing == nil {
			// An example price list, so that the cost dashboard has data.
			if cfg.Pricing, err = config.DemoPricing(cfg.Catalog); err != nil {
				return err
			}
		}
		cal, err := loadCalendar(*calendarFile)
		if err != nil {
			return err
		}
		maxStreams, maxRequests, err := webLimits.options()
		if err != nil {
			return err
		}
		var reconcileFn func(func(context.Context, ledger.Day, ledger.Day) ([]ledger.Row, error), prometheus.Registerer) (func(context.Context) error, error)
		if _, err := rec.runner(cfg.Catalog, nil, cfg.Business.RuleID, prometheus.NewRegistry(), time.Now, log); err != nil {
			return err
		} else if rec.interval > 0 {
			reconcileFn = func(read func(context.Context, ledger.Day, ledger.Day) ([]ledger.Row, error), reg prometheus.Registerer) (func(context.Context) error, error) {
				r, err := rec.runner(cfg.Catalog, reconcile.LedgerFunc(read), cfg.Business.RuleID, reg, time.Now, log)
				if err != nil {
					return nil, err
				}
				return r.Run, nil
			}
		}
		scfg := service.Config{
			Web: webFlags, TelemetryPath: *telemetryPath,
			NATS: nats, Subject: *subject, Queue: *queue, DeadLetterSubject: *deadLetter, DeadLetterMode: *deadLetterMode,
			EmbeddedListen: *embeddedListen, EmbeddedStoreDir: *storeDir,
			JetStream: js, File: cfg, OTLP: otlp,
			Demo: *demo, DemoRate: *demoRate,
			ShutdownTimeout: *shutdownTimeout, Logger: log,
			CatalogJSON: catJSON.Bytes(), OnReady: onReady,
			MaxStreamClients: maxStreams, MaxRequests: maxRequests, Reconcile: reconcileFn,
			Pprof:    *enablePprof,
			Forecast: service.Forecast{Interval: *forecastInterval, Calendar: cal},
		}
		if *configCheck {
			// Everything serve would refuse at start, short of connecting.
			if err := scfg.Validate(); err != nil {
				return err
			}
			if err := nats.Check(); err != nil {
				return err
			}
			if f := *webFlags.WebConfigFile; f != "" {
				if err := web.Validate(f); err != nil {
					return fmt.Errorf("--web.config.file %s: %w", f, err)
				}
			}
			return printConfigCheck(c, *configFile, cfg)
		}
		if c.setMemoryLimit != nil && os.Getenv("GOMEMLIMIT") == "" {
			limit := service.MemoryLimit(cfg, js.Partitions)
			c.setMemoryLimit(limit)
			log.Debug("soft memory limit set from the configuration (GOMEMLIMIT overrides it)", "bytes", limit)
		}
		if *demo && !storeDirSet && scfg.NATS.URLs == "" {
			// A demo starts from zero: its own store, removed when it stops.
			dir, err := os.MkdirTemp("", "faceid-exporter-demo-")
			if err != nil {
				return fmt.Errorf("demo store: %w", err)
			}
			defer os.RemoveAll(dir)
			scfg.EmbeddedStoreDir = dir
			log.Info("demo: a fresh JetStream store, removed on exit (name one with --nats.embedded.store-dir to keep the books)", "store_dir", dir)
		}
		return service.Run(ctx, scfg)
	}
}

func printConfigCheck(c *cli, file string, cfg *config.Config) error {
	name := file
	if name == "" {
		name = "(no --config.file: defaults)"
	}
	events, business := metrics.SeriesBound(cfg.Catalog, len(cfg.Business.AppID), len(cfg.Business.RuleID), cfg.Business.Enabled())
	fmt.Fprintf(c.stdout, "%s: OK\n", name)
	fmt.Fprintf(c.stdout, "catalog: %d codes, %d device tags, %d identity tags, %d personal fields (overrides in config: %v)\n",
		len(cfg.Catalog.Codes), len(cfg.Catalog.DeviceTags), len(cfg.Catalog.IdentityTags), len(cfg.Catalog.PersonalFields), cfg.CatalogOverrides)
	fmt.Fprintf(c.stdout, "dedupe: window %s, capacity %d\n", cfg.Dedupe.Window, cfg.Dedupe.Capacity)
	fmt.Fprintf(c.stdout, "events: billable_failure %d, high_risk %d, unknown_code %d, future_tolerance %s\n",
		cfg.Events.BillableFailure, cfg.Events.HighRisk, cfg.Events.UnknownCode, cfg.Events.FutureTolerance)
	fmt.Fprintf(c.stdout, "ledger: retention_days %d\n", cfg.Ledger.RetentionDays)
	if cfg.Business.Enabled() {
		fmt.Fprintf(c.stdout, "business dimensions: %d app_id, %d rule_id values\n", len(cfg.Business.AppID), len(cfg.Business.RuleID))
	}
	if p := cfg.Pricing; p != nil {
		fmt.Fprintf(c.stdout, "pricing: %s, %d channels priced\n", p.Currency, len(p.UnitPrice))
	}
	fmt.Fprintf(c.stdout, "series bound: %d event series, %d business series\n", events, business)
	return nil
}
