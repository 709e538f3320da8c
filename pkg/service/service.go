package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/faceid-observability/faceid-exporter/pkg/api"
	"github.com/faceid-observability/faceid-exporter/pkg/books"
	"github.com/faceid-observability/faceid-exporter/pkg/checkpoint"
	"github.com/faceid-observability/faceid-exporter/pkg/config"
	"github.com/faceid-observability/faceid-exporter/pkg/dedupe"
	"github.com/faceid-observability/faceid-exporter/pkg/forecast"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
	"github.com/faceid-observability/faceid-exporter/pkg/metrics"
	"github.com/faceid-observability/faceid-exporter/pkg/redact"
	"github.com/faceid-observability/faceid-exporter/pkg/simulate"
	"github.com/faceid-observability/faceid-exporter/pkg/stream"
)

// Config is everything the service needs; cmd/exporter fills it from flags.
type Config struct {
	Web           *web.FlagConfig
	TelemetryPath string

	NATS              stream.ConnOptions // URLs "" starts the embedded server
	Subject           string
	Queue             string
	DeadLetterSubject string
	// DeadLetterMode is what a dead letter carries: reference, redacted or
	// full; "" or auto: reference in JetStream mode, redacted in core mode.
	DeadLetterMode   string
	EmbeddedListen   string
	EmbeddedStoreDir string
	JetStream        JetStream // Stream "" means core NATS

	File *config.Config // the parsed --config.file (or its defaults)
	OTLP *metrics.OTLP  // nil: no OTLP push

	Demo     bool
	DemoRate float64

	ShutdownTimeout time.Duration
	PollInterval    time.Duration // lag, lost input and dropped messages; default 5s
	Logger          *slog.Logger
	// CatalogJSON is served at /api/v1/catalog.
	CatalogJSON []byte

	// MaxStreamClients and MaxRequests bound the HTTP API (see api.Options).
	MaxStreamClients, MaxRequests int
	// Pprof serves net/http/pprof under /debug/pprof/ (--web.enable-pprof).
	Pprof bool
	// Reconcile, when set, makes the periodic reconciliation with Tencent's
	// bill on the service's registry, reading the group's committed books
	// (JetStream mode); the service runs what it returns until it stops.
	Reconcile func(books func(ctx context.Context, from, to ledger.Day) ([]ledger.Row, error), reg prometheus.Registerer) (func(context.Context) error, error)

	// Forecast configures the forecast of the group's ledger (JetStream mode).
	Forecast Forecast

	// Registry, when set, receives the metrics instead of a fresh registry.
	Registry *prometheus.Registry
	// OnReady, when set, is called once the HTTP server and the consumer are started.
	OnReady func(Started)
}

// Started says where a started service can be reached.
type Started struct {
	HTTP     []net.Addr
	NATSURL  string
	Registry *prometheus.Registry
}

// Validate checks the parts of c flags cannot check.
func (c *Config) Validate() error {
	if c.Subject == "" {
		return errors.New("--nats.subject is empty")
	}
	if c.DeadLetterSubject == "" {
		return errors.New("--nats.dead-letter-subject is empty")
	}
	if !stream.IsValidSubject(c.Subject) {
		return fmt.Errorf("--nats.subject %q is not a valid NATS subject", c.Subject)
	}
	if !stream.IsValidLiteralSubject(c.DeadLetterSubject) {
		return fmt.Errorf("--nats.dead-letter-subject %q must be a literal subject", c.DeadLetterSubject)
	}
	if stream.SubjectMatchesFilter(c.DeadLetterSubject, c.Subject) {
		return fmt.Errorf("--nats.dead-letter-subject %q is inside --nats.subject %q: dead letters would be consumed again", c.DeadLetterSubject, c.Subject)
	}
	if _, err := c.deadLetterMode(); err != nil {
		return err
	}
	if c.Demo && c.NATS.URLs != "" {
		return errors.New("--demo runs its own embedded NATS server; leave --nats.url empty")
	}
	if c.Demo && !(c.DemoRate > 0 && c.DemoRate <= simulate.MaxRate) {
		return fmt.Errorf("--demo.rate %g must be above 0 and at most %d", c.DemoRate, simulate.MaxRate)
	}
	if c.File == nil {
		return errors.New("no configuration")
	}
	if c.Forecast.Interval < 0 {
		return fmt.Errorf("--forecast.interval %s: want 0 (no gauges) or more", c.Forecast.Interval)
	}
	if t := c.File.Events.FutureTolerance; t < 0 || t > config.MaxFutureTolerance {
		return fmt.Errorf("--events.future-tolerance %s is out of range 0s..%s", t, config.MaxFutureTolerance)
	}
	if d := c.File.Ledger.RetentionDays; d < 1 || d > ledger.MaxRetentionDays {
		return fmt.Errorf("--ledger.retention-days %d is out of range 1..%d", d, ledger.MaxRetentionDays)
	}
	if c.Reconcile != nil && c.JetStream.Stream == "" {
		return errors.New("--reconcile.interval reads the ledger, which is kept in JetStream mode: it needs --jetstream.stream, not --nats.core")
	}
	if j := c.JetStream; j.Stream != "" {
		switch {
		case j.Consumer == "":
			return errors.New("--jetstream.consumer is empty")
		case strings.ContainsAny(j.Stream, ". *>") || strings.ContainsAny(j.Consumer, ". *>"):
			return fmt.Errorf("--jetstream.stream %q and --jetstream.consumer %q may not contain '.', '*', '>' or spaces", j.Stream, j.Consumer)
		case j.CheckpointBucket == "":
			return errors.New("--jetstream.checkpoint-bucket is empty")
		case j.CheckpointInterval <= 0:
			return fmt.Errorf("--jetstream.checkpoint-interval %s must be positive", j.CheckpointInterval)
		case j.TakeoverTimeout < 2*j.CheckpointInterval:
			return fmt.Errorf("--jetstream.takeover-timeout %s must be at least twice --jetstream.checkpoint-interval %s (an owner commits, and so heartbeats, once an interval)", j.TakeoverTimeout, j.CheckpointInterval)
		case j.Partitions < 1:
			return fmt.Errorf("--jetstream.partitions %d must be at least 1", j.Partitions)
		case !validInstance(j.Instance):
			return fmt.Errorf("--jetstream.instance %q: use letters, digits, '-' and '_' only (at most 128)", j.Instance)
		}
		if _, _, err := Filters(c.Subject, j.Partitions, c.File.Catalog); err != nil {
			return err
		}
	}
	return nil
}

// deadLetterMode resolves --nats.dead-letter-mode.
func (c *Config) deadLetterMode() (stream.DeadLetterMode, error) {
	switch c.DeadLetterMode {
	case "", DeadLetterAuto:
		if c.JetStream.Stream != "" || c.Demo {
			return stream.DeadLetterReference, nil
		}
		return stream.DeadLetterRedacted, nil
	}
	m, err := stream.ParseDeadLetterMode(c.DeadLetterMode)
	if err != nil {
		return 0, fmt.Errorf("--nats.dead-letter-mode: %w", err)
	}
	return m, nil
}

// DeadLetterAuto is the default dead-letter mode: reference in JetStream
// mode (the source stream keeps the original), redacted in core mode.
const DeadLetterAuto = "auto"

// Run runs the exporter until ctx is cancelled, then stops intake, commits
// what was counted, flushes OTLP and returns, all within ShutdownTimeout.
func Run(ctx context.Context, c Config) (err error) {
	if err := c.Validate(); err != nil {
		return err
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 5 * time.Second
	}
	jsMode := c.JetStream.Stream != ""
	dlMode, _ := c.deadLetterMode()
	if dlMode == stream.DeadLetterFull {
		log.Warn("dead letters carry rejected messages in full (--nats.dead-letter-mode=full): names, ID numbers and photos in them are kept on the dead-letter subject", "subject", c.DeadLetterSubject)
	} else {
		log.Info("dead letters carry no personal data", "mode", dlMode.String(), "subject", c.DeadLetterSubject, "max_payload_bytes", stream.DeadLetterMaxPayload)
	}
	if jsMode && c.JetStream.Instance == "" {
		c.JetStream.Instance = NewInstanceID()
	}
	cat := c.File.Catalog
	reg := c.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(
			collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
			versioncollector.NewCollector("faceid_exporter"),
		)
	}
	var pricing *metrics.Pricing
	if p := c.File.Pricing; p != nil {
		pricing = &metrics.Pricing{Currency: p.Currency, MonthlyBudget: p.MonthlyBudget, HasBudget: p.HasBudget, UnitPrice: p.UnitPrice}
	}
	m := metrics.New(reg, cat, metrics.Options{Pricing: pricing, Partitions: c.JetStream.Partitions})
	var lopts books.LayoutOptions
	if b := c.File.Business; b.Enabled() {
		lopts.AppIDs, lopts.RuleIDs = b.AppID, b.RuleID
		if lopts.AppIDs == nil {
			lopts.AppIDs = []string{}
		}
	}
	layout := books.NewLayout(cat, lopts)
	ropts := books.RulesOptions{DedupeWindow: c.File.Dedupe.Window, DedupeCapacity: c.File.Dedupe.Capacity,
		FutureTolerance: c.File.Events.FutureTolerance, RetentionDays: c.File.Ledger.RetentionDays}
	events := api.NewEvents(api.Sizes{
		BillableFailure: c.File.Events.BillableFailure,
		HighRisk:        c.File.Events.HighRisk,
		UnknownCode:     c.File.Events.UnknownCode,
	})
	h := NewHooks(m, events, jsMode, log)

	// What the metrics and the API read, set once the consumer runs.
	var group atomic.Pointer[stream.Group]
	var store atomic.Pointer[checkpoint.Store]
	var coreBooks *books.Books
	src := metrics.Source{Layout: layout}
	if jsMode {
		src.Partitions = c.JetStream.Partitions
		src.Owned = func() []metrics.Partition {
			g := group.Load()
			if g == nil {
				return nil
			}
			var out []metrics.Partition
			for _, o := range g.Owned() {
				st := o.Status
				out = append(out, metrics.Partition{ID: st.Partition, Books: o.Books, Owns: o.Owns, Checkpointed: true,
					Seq: st.Seq, CommittedAt: st.CommittedAt, Lag: st.Lag, Replay: st.Replay, Bytes: st.Bytes})
			}
			return out
		}
		src.Unpartitioned = func() (uint64, bool) {
			if g := group.Load(); g != nil {
				return g.Unpartitioned()
			}
			return 0, false
		}
		src.Ages = func(now time.Time) []time.Duration {
			if g := group.Load(); g != nil {
				return g.CheckpointAges(now)
			}
			return make([]time.Duration, c.JetStream.Partitions)
		}
	} else {
		coreBooks = books.New(layout, ropts)
		src.Owned = func() []metrics.Partition { return []metrics.Partition{{ID: 0, Books: coreBooks}} }
	}
	booksCollector := metrics.NewBooks(reg, src, pricing)
	started := time.Now()

	// The committed books of the whole group, read from the checkpoints.
	var readLedger func(ctx context.Context, from, to ledger.Day) ([]ledger.Row, error)
	if jsMode {
		readLedger = func(ctx context.Context, from, to ledger.Day) ([]ledger.Row, error) {
			st := store.Load()
			if st == nil {
				return nil, fmt.Errorf("%w yet: the exporter has not joined its consumer group", ledger.ErrNoBooks)
			}
			return ledger.Read(ctx, st.KV(), c.JetStream.Stream, c.JetStream.Consumer, from, to)
		}
	}
	forecastOptions := func() forecast.Options {
		o := forecast.Options{Now: time.Now(), Calendar: c.Forecast.Calendar}
		if p := c.File.Pricing; p != nil {
			o.Currency, o.UnitPrice = p.Currency, p.UnitPrice
		}
		return o
	}
	var fc *forecaster
	if jsMode && c.Forecast.Interval > 0 {
		// Exposed by the owner of partition 0 alone: once per group.
		leader := func() bool {
			return slices.ContainsFunc(src.Owned(), func(p metrics.Partition) bool { return p.ID == 0 })
		}
		fc = &forecaster{read: readLedger, options: forecastOptions, interval: c.Forecast.Interval, leader: leader, log: log}
		metrics.NewForecast(reg, fc.latest.Load, leader)
	}
	var runReconcile func(context.Context) error
	if c.Reconcile != nil {
		if runReconcile, err = c.Reconcile(readLedger, reg); err != nil {
			return err
		}
	}

	// HTTP first: /-/healthy answers while NATS is still unreachable.
	var cons atomic.Pointer[consumer]
	ready := func() (bool, string) {
		cp := cons.Load()
		if cp == nil {
			return false, "starting: connecting to nats"
		}
		return (*cp).Ready()
	}
	var catalogJSON bytes.Buffer
	catalogJSON.Write(bytes.TrimSpace(c.CatalogJSON))
	if catalogJSON.Len() == 0 {
		if err := cat.WriteJSON(&catalogJSON); err != nil {
			return fmt.Errorf("catalog json: %w", err)
		}
	}
	handler, err := api.NewHandler(api.Options{
		Events: events, Gatherer: reg, TelemetryPath: c.TelemetryPath,
		CatalogJSON: bytes.TrimSpace(catalogJSON.Bytes()), Summary: booksCollector.Summary, Since: started,
		Ready: ready, Version: version.Info(), Logger: log,
		Ledger:           api.LedgerSource{Stream: c.JetStream.Stream, Group: c.JetStream.Consumer, Read: readLedger},
		Forecast:         api.ForecastSource{Read: readLedger, Options: forecastOptions},
		MaxStreamClients: c.MaxStreamClients, MaxRequests: c.MaxRequests, Registerer: reg,
		Pprof: c.Pprof,
	})
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	listeners, err := listen(c.Web)
	if err != nil {
		return err
	}
	httpErr := make(chan error, 1)
	go func() {
		if listeners == nil {
			httpErr <- web.ListenAndServe(srv, c.Web, log)
		} else {
			httpErr <- web.ServeMultiple(listeners, srv, c.Web, log)
		}
	}()
	defer func() {
		if err != nil {
			_ = srv.Close()
		}
	}()

	// NATS: the embedded server when no URL is given.
	natsOpts := c.NATS
	var embedded interface{ Shutdown() }
	if natsOpts.URLs == "" {
		listen := c.EmbeddedListen
		if listen == "" {
			listen = stream.DefaultEmbeddedListen
		}
		s, err := stream.StartEmbedded(stream.EmbeddedOptions{Listen: listen, StoreDir: c.EmbeddedStoreDir, Logger: log})
		if err != nil {
			return err
		}
		embedded = s
		defer func() {
			s.Shutdown()
			s.WaitForShutdown()
		}()
		natsOpts.URLs = s.ClientURL()
		log.Info("started embedded nats server", "url", natsOpts.URLs, "store_dir", s.StoreDir())
	}
	nc, err := stream.Connect(natsOpts, m, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	dl := stream.NewDeadLetterWith(nc, c.DeadLetterSubject, CoreObserver(m, coreBooks),
		stream.DeadLetterOptions{Mode: dlMode, Redactor: redact.New(cat.PersonalFieldNames())})

	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	consErr := make(chan error, 1)
	if !jsMode {
		clock := NewCoarseClock(time.Millisecond)
		defer clock.Stop()
		cc, err := stream.SubscribeCore(nc, stream.CoreOptions{Subject: c.Subject, Queue: c.Queue, PendingMsgs: CorePendingMsgs, PendingBytes: CorePendingBytes},
			NewPipeline(coreBooks, h, m, clock.Now), dl, m, log)
		if err != nil {
			return err
		}
		var cs consumer = cc
		cons.Store(&cs)
		log.Info("consuming core nats", "subject", c.Subject, "queue", c.Queue)
	} else {
		filters, owns, _ := Filters(c.Subject, c.JetStream.Partitions, cat)
		gopts := stream.GroupOptions{
			Stream: c.JetStream.Stream, Group: c.JetStream.Consumer, Filters: filters, Subject: c.Subject, Owns: owns, Instance: c.JetStream.Instance,
			CheckpointInterval: c.JetStream.CheckpointInterval, TakeoverTimeout: c.JetStream.TakeoverTimeout, PollInterval: c.PollInterval,
			Catalog: cat, Layout: layout, Rules: ropts, DeadLetter: dl, Hooks: h, Observer: m, Logger: log,
		}
		go func() {
			g, st, err := startGroup(runCtx, nc, &c, gopts, log)
			if err != nil {
				consErr <- err
				return
			}
			store.Store(st)
			group.Store(g)
			var cs consumer = groupConsumer{g}
			cons.Store(&cs)
			log.Info("consuming jetstream with checkpoints", "stream", c.JetStream.Stream, "group", c.JetStream.Consumer,
				"partitions", len(filters), "instance", c.JetStream.Instance, "bucket", c.JetStream.CheckpointBucket)
		}()
	}

	// OTLP.
	otlpShutdown := func(context.Context) error { return nil }
	if c.OTLP != nil {
		o := *c.OTLP
		if o.ServiceName == "" {
			o.ServiceName = "faceid-exporter"
		}
		if o.ServiceInstance == "" {
			o.ServiceInstance = c.JetStream.Instance
			if o.ServiceInstance == "" {
				o.ServiceInstance = NewInstanceID()
			}
		}
		if o.ServiceVersion == "" {
			o.ServiceVersion = version.Version
		}
		if otlpShutdown, err = metrics.StartOTLP(ctx, o, reg); err != nil {
			return err
		}
		log.Info("pushing metrics over otlp", "endpoint", o.Endpoint, "protocol", o.Protocol, "interval", o.Interval, "service_instance_id", o.ServiceInstance)
	}

	// Reconciliation with Tencent's bill.
	var bgWG sync.WaitGroup
	if runReconcile != nil {
		bgWG.Go(func() {
			if err := runReconcile(runCtx); err != nil && runCtx.Err() == nil {
				log.Error("reconciliation stopped", "err", err)
			}
		})
	}

	// The forecast gauges: leadership checked every 30s at most.
	if fc != nil {
		bgWG.Go(func() { fc.run(runCtx, min(c.Forecast.Interval, 30*time.Second)) })
	}

	// Demo traffic.
	demoCtx, stopDemo := context.WithCancel(ctx)
	var demoWG sync.WaitGroup
	if c.Demo {
		demoWG.Go(func() { runDemo(demoCtx, c, natsOpts.URLs, log) })
	}

	if c.OnReady != nil {
		info := Started{NATSURL: natsOpts.URLs, Registry: reg}
		for _, l := range listeners {
			info.HTTP = append(info.HTTP, l.Addr())
		}
		c.OnReady(info)
	}
	log.Info("exporter started", "embedded_nats", embedded != nil, "jetstream", jsMode)

	poll := time.NewTicker(c.PollInterval)
	defer poll.Stop()
	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-httpErr:
			runErr = fmt.Errorf("http server: %w", err)
			break loop
		case err := <-consErr:
			runErr = err
			break loop
		case <-poll.C:
			if cp := cons.Load(); cp != nil {
				(*cp).Poll(ctx)
			}
		}
	}

	// Shutdown, bounded.
	log.Info("shutting down", "timeout", c.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.ShutdownTimeout)
	defer cancel()
	stopDemo()
	demoWG.Wait()
	stopRun()
	bgWG.Wait()
	var errs []error
	if cp := cons.Load(); cp != nil {
		if err := (*cp).Stop(sctx); err != nil {
			errs = append(errs, fmt.Errorf("stop consumer: %w", err))
		}
	}
	if err := drainNATS(sctx, nc, log); err != nil {
		errs = append(errs, err)
	}
	if err := otlpShutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("flush otlp: %w", err))
	}
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if runErr != nil {
		errs = append([]error{runErr}, errs...)
	}
	if len(errs) == 0 {
		log.Info("stopped")
	}
	return errors.Join(errs...)
}

type consumer interface {
	Ready() (bool, string)
	Poll(ctx context.Context)
	Stop(ctx context.Context) error
}

// groupConsumer adapts a group to the service's consumer: partitions poll
// themselves.
type groupConsumer struct{ *stream.Group }

func (groupConsumer) Poll(context.Context) {}

// Memory sizing.
const (
	// BaseMemory is the Go-managed memory of the exporter with an empty
	// dedupe window and ring buffers, at 100 k events/s (measured by
	// cmd/exporter TestMemoryAt100k), with headroom.
	BaseMemory = 36 << 20
	// CorePendingMsgs and CorePendingBytes bound what the NATS client buffers
	// for the core subscription before it drops messages (and counts them in
	// faceid_exporter_nats_dropped_messages_total): about a second at
	// 100 k events/s, instead of the client's 64 MiB default.
	CorePendingMsgs  = 128 << 10
	CorePendingBytes = 32 << 20
)

// MemoryLimit is the soft memory limit (runtime/debug.SetMemoryLimit) that
// suits a configuration: BaseMemory plus the duplicate and reqId tables and
// the event ring buffers at their full size. cmd/exporter sets it when GOMEMLIMIT is unset.
//
// A replica may own every one of the group's partitions, each with its own
// duplicate window and reqId table, so those count once per partition.
func MemoryLimit(f *config.Config, partitions int) int64 {
	partitions = max(partitions, 1)
	rings := int64(f.Events.BillableFailure + f.Events.HighRisk + f.Events.UnknownCode)
	perPartition := int64(0)
	if f.Dedupe.Window > 0 && f.Dedupe.Capacity > 0 {
		perPartition += dedupe.TableBytes(f.Dedupe.Capacity)
	}
	if f.Catalog.ReqIDRule.Family != "" {
		perPartition += dedupe.TableBytes(books.DefaultReqIDCapacity)
	}
	return BaseMemory + int64(partitions)*perPartition + rings*api.RecordBytes
}

// drainNATS drains the connection, or closes it at once when it is not
// connected: a connection still (re)connecting has nothing in flight to
// drain, and waiting for it would only hold the shutdown for its whole
// timeout.
func drainNATS(ctx context.Context, nc *nats.Conn, log *slog.Logger) error {
	if !nc.IsConnected() {
		log.Info("nats not connected: closing the connection without draining")
		nc.Close()
		return nil
	}
	err := nc.Drain()
	switch {
	case errors.Is(err, nats.ErrConnectionReconnecting):
		log.Info("nats connection lost during shutdown: closing it without draining")
		nc.Close()
		return nil
	case err != nil && !errors.Is(err, nats.ErrConnectionClosed):
		nc.Close()
		return fmt.Errorf("drain nats connection: %w", err)
	}
	_ = waitClosed(ctx, nc)
	return nil
}

func waitClosed(ctx context.Context, nc *nats.Conn) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for !nc.IsClosed() {
		select {
		case <-ctx.Done():
			nc.Close()
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// listen opens the --web.listen-address listeners itself, so that their
// addresses are known; it returns nil when exporter-toolkit must (systemd
// socket activation, vsock).
func listen(f *web.FlagConfig) ([]net.Listener, error) {
	if f.WebSystemdSocket != nil && *f.WebSystemdSocket {
		return nil, nil
	}
	if len(*f.WebListenAddresses) == 0 {
		return nil, errors.New("no --web.listen-address")
	}
	var out []net.Listener
	for _, a := range *f.WebListenAddresses {
		if strings.HasPrefix(a, "vsock://") {
			for _, l := range out {
				l.Close()
			}
			return nil, nil
		}
		l, err := net.Listen("tcp", a)
		if err != nil {
			for _, l := range out {
				l.Close()
			}
			return nil, fmt.Errorf("listen on %s: %w", a, err)
		}
		out = append(out, l)
	}
	return out, nil
}

// runDemo publishes the baseline scenario to the embedded server until ctx ends.
func runDemo(ctx context.Context, c Config, url string, log *slog.Logger) {
	nc, err := nats.Connect(url, nats.Name("faceid-exporter-demo"))
	if err != nil {
		log.Error("demo traffic: connect", "err", err)
		return
	}
	defer nc.Close()
	pub := simulate.NewCorePublisher(nc)
	if c.JetStream.Stream != "" {
		// Wait for the consumer side to create the stream.
		for ctx.Err() == nil {
			if pub, err = simulate.NewJetStreamPublisher(ctx, nc, c.JetStream.Stream); err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	prefix := strings.TrimSuffix(strings.TrimSuffix(c.Subject, ".>"), ".*")
	log.Info("demo traffic: publishing the baseline scenario", "rate", c.DemoRate, "subject_prefix", prefix)
	rep, err := simulate.Run(ctx, simulate.Config{
		Catalog: c.File.Catalog, Scenario: simulate.Baseline, Rate: c.DemoRate,
		Seed: time.Now().UnixNano(), SubjectPrefix: prefix,
	}, pub)
	if err != nil {
		log.Error("demo traffic", "err", err)
		return
	}
	log.Info("demo traffic stopped", "sent", rep.Sent, "errors", rep.Errors)
}
