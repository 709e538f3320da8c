package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/faceid-observability/faceid-exporter/pkg/api"
	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/config"
	"github.com/faceid-observability/faceid-exporter/pkg/dedupe"
	"github.com/faceid-observability/faceid-exporter/pkg/dedupekv"
	"github.com/faceid-observability/faceid-exporter/pkg/metrics"
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
	EmbeddedListen    string
	EmbeddedStoreDir  string
	JetStream         stream.JetStreamOptions // Stream "" means core NATS

	File *config.Config // the parsed --config.file (or its defaults)
	OTLP *metrics.OTLP  // nil: no OTLP push

	Demo     bool
	DemoRate float64

	ShutdownTimeout time.Duration
	PollInterval    time.Duration // consumer stats and dropped messages; default 5s
	Logger          *slog.Logger
	// CatalogJSON is served at /api/v1/catalog.
	CatalogJSON []byte

	// Registry, when set, receives the metrics instead of a fresh registry.
	Registry *prometheus.Registry
	// OnReady, when set, is called once everything is started.
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
	if strings.ContainsAny(c.DeadLetterSubject, "*> ") {
		return fmt.Errorf("--nats.dead-letter-subject %q must be a literal subject", c.DeadLetterSubject)
	}
	if SubjectMatches(c.Subject, c.DeadLetterSubject) {
		return fmt.Errorf("--nats.dead-letter-subject %q is inside --nats.subject %q: dead letters would be consumed again", c.DeadLetterSubject, c.Subject)
	}
	if c.Demo && c.NATS.URLs != "" {
		return errors.New("--demo runs its own embedded NATS server; leave --nats.url empty")
	}
	if c.Demo && !(c.DemoRate > 0 && c.DemoRate <= simulate.MaxRate) {
		return fmt.Errorf("--demo.rate %g must be above 0 and at most %d", c.DemoRate, simulate.MaxRate)
	}
	if c.JetStream.Stream != "" && c.JetStream.Consumer == "" {
		return errors.New("--jetstream.consumer is empty")
	}
	if c.File == nil {
		return errors.New("no configuration")
	}
	return nil
}

// SubjectMatches reports whether the literal subject matches pattern (with
// NATS wildcards * and >).
func SubjectMatches(pattern, subject string) bool {
	pt, st := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, p := range pt {
		if p == ">" {
			return len(st) > i
		}
		if i >= len(st) || (p != "*" && p != st[i]) {
			return false
		}
	}
	return len(pt) == len(st)
}

type consumer interface {
	Ready() (bool, string)
	Poll(ctx context.Context)
	Stop(ctx context.Context) error
}

// Run runs the exporter until ctx is cancelled, then stops intake, finishes
// and acknowledges the messages in flight, flushes OTLP and returns, all
// within ShutdownTimeout.
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
	// The dedupe store: the in-memory window, or the JetStream KV store once
	// connected (its local front's evictions and its errors are reported).
	var kvStore atomic.Pointer[dedupekv.Store]
	window := dedupe.NewWindow(c.File.Dedupe.Window, c.File.Dedupe.Capacity)
	useKV := c.File.Dedupe.Store == config.DedupeJetStream && c.File.Dedupe.Window > 0
	mopts := metrics.Options{
		DedupeEvicted: func() uint64 {
			if s := kvStore.Load(); s != nil {
				return s.Evicted()
			}
			return window.Evicted()
		},
		DedupeStoreErrors: func() uint64 {
			if s := kvStore.Load(); s != nil {
				return s.Errors()
			}
			return 0
		},
	}
	if b := c.File.Business; b.Enabled() {
		mopts.AppIDs, mopts.RuleIDs = b.AppID, b.RuleID
		if mopts.AppIDs == nil {
			mopts.AppIDs = []string{}
		}
		if mopts.RuleIDs == nil {
			mopts.RuleIDs = []string{}
		}
	}
	if p := c.File.Pricing; p != nil {
		mopts.Pricing = &metrics.Pricing{Currency: p.Currency, MonthlyBudget: p.MonthlyBudget, HasBudget: p.HasBudget, UnitPrice: p.UnitPrice}
	}
	m := metrics.New(reg, cat, mopts)
	events := api.NewEvents(api.Sizes{
		BillableFailure: c.File.Events.BillableFailure,
		HighRisk:        c.File.Events.HighRisk,
		UnknownCode:     c.File.Events.UnknownCode,
	})
	clock := NewCoarseClock(time.Millisecond)
	defer clock.Stop()
	started := time.Now()

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
	dl := stream.NewDeadLetter(nc, c.DeadLetterSubject, m)

	var store dedupe.Store = window
	if useKV {
		s, err := openKVStore(ctx, nc, c.File.Dedupe, log)
		if err != nil {
			return err
		}
		kvStore.Store(s)
		store = s
		log.Info("dedupe through jetstream kv", "bucket", c.File.Dedupe.Bucket, "window", c.File.Dedupe.Window)
	}
	// With the shared dedupe store the reqId billing rule shares its state
	// too, so that replicas and restarts bill each reqId window once.
	var reqIDs classify.ReqIDStore
	if useKV && cat.ReqIDRule.Family != "" {
		bucket := ReqIDBucket(c.File.Dedupe.Bucket)
		s, err := openReqIDStore(ctx, nc, bucket, cat.ReqIDRule.Window, log)
		if err != nil {
			return err
		}
		reqIDs = s
		log.Info("reqid billing rule through jetstream kv", "bucket", bucket, "window", cat.ReqIDRule.Window)
	}
	pipes := NewPipelines(PipelineConfig{
		Catalog: cat, Metrics: m, Events: events, Dedupe: store, ReqIDStore: reqIDs, Logger: log, Clock: clock.Now,
	})

	var cons consumer
	if c.JetStream.Stream == "" {
		cons, err = stream.SubscribeCore(nc, stream.CoreOptions{Subject: c.Subject, Queue: c.Queue, PendingMsgs: CorePendingMsgs, PendingBytes: CorePendingBytes}, pipes.New(false), dl, m, log)
		log.Info("consuming core nats", "subject", c.Subject, "queue", c.Queue)
	} else {
		jo := c.JetStream
		jo.Subject = c.Subject
		cons, err = stream.ConsumeJetStream(ctx, nc, jo, pipes.New(true), dl, m, log)
	}
	if err != nil {
		return err
	}

	// HTTP.
	var catalogJSON bytes.Buffer
	catalogJSON.Write(bytes.TrimSpace(c.CatalogJSON))
	if catalogJSON.Len() == 0 {
		if err := cat.WriteJSON(&catalogJSON); err != nil {
			return fmt.Errorf("catalog json: %w", err)
		}
	}
	handler, err := api.NewHandler(api.Options{
		Events: events, Gatherer: reg, TelemetryPath: c.TelemetryPath,
		CatalogJSON: bytes.TrimSpace(catalogJSON.Bytes()), Summary: m.Summary, Since: started,
		Ready: cons.Ready, Version: version.Info(), Logger: log,
	})
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	listeners, err := listen(c.Web)
	if err != nil {
		_ = cons.Stop(ctx)
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

	// OTLP.
	otlpShutdown := func(context.Context) error { return nil }
	if c.OTLP != nil {
		o := *c.OTLP
		if o.ServiceName == "" {
			o.ServiceName = "faceid-exporter"
		}
		if o.ServiceInstance == "" {
			o.ServiceInstance, _ = os.Hostname()
		}
		if o.ServiceVersion == "" {
			o.ServiceVersion = version.Version
		}
		if otlpShutdown, err = metrics.StartOTLP(ctx, o, reg); err != nil {
			_ = cons.Stop(ctx)
			_ = srv.Close()
			return err
		}
		log.Info("pushing metrics over otlp", "endpoint", o.Endpoint, "protocol", o.Protocol, "interval", o.Interval)
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
	log.Info("exporter started", "embedded_nats", embedded != nil, "jetstream", c.JetStream.Stream != "")

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
		case <-poll.C:
			cons.Poll(ctx)
		}
	}

	// Shutdown, bounded.
	log.Info("shutting down", "timeout", c.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.ShutdownTimeout)
	defer cancel()
	stopDemo()
	demoWG.Wait()
	var errs []error
	if err := cons.Stop(sctx); err != nil {
		errs = append(errs, fmt.Errorf("stop consumer: %w", err))
	}
	if err := nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		errs = append(errs, fmt.Errorf("drain nats connection: %w", err))
	}
	_ = waitClosed(sctx, nc)
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
// suits a configuration: BaseMemory plus the dedupe window and the event ring
// buffers at their full size. cmd/exporter sets it when GOMEMLIMIT is unset.
func MemoryLimit(f *config.Config) int64 {
	const idBytes, eventBytes = 48, 320 // dedupe table+fifo per id; ring slot
	rings := f.Events.BillableFailure + f.Events.HighRisk + f.Events.UnknownCode
	return BaseMemory + int64(f.Dedupe.Capacity)*idBytes + int64(rings)*eventBytes
}

// openKVStore binds the JetStream KV dedupe store, retrying with backoff
// while NATS is not reachable, until ctx ends.
func openKVStore(ctx context.Context, nc *nats.Conn, d config.Dedupe, log *slog.Logger) (*dedupekv.Store, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	for attempt := 1; ; attempt++ {
		s, err := dedupekv.New(ctx, js, dedupekv.Options{Bucket: d.Bucket, Window: d.Window, Capacity: d.Capacity, Logger: log})
		if err == nil {
			return s, nil
		}
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return nil, fmt.Errorf("dedupe.store jetstream needs JetStream on the NATS server: %w", err)
		}
		log.Warn("dedupe kv bucket not ready, retrying", "bucket", d.Bucket, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("dedupe store: %w", err)
		case <-time.After(stream.Backoff(attempt, 5*time.Second)):
		}
	}
}

// ReqIDBucket is the KV bucket of the reqId billing rule's anchors that goes
// with the dedupe bucket of the jetstream store.
func ReqIDBucket(dedupeBucket string) string { return dedupeBucket + "-reqid" }

// openReqIDStore binds the JetStream KV store of the reqId billing rule,
// retrying with backoff while NATS is not reachable, until ctx ends.
func openReqIDStore(ctx context.Context, nc *nats.Conn, bucket string, window time.Duration, log *slog.Logger) (*dedupekv.ReqIDs, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	for attempt := 1; ; attempt++ {
		s, err := dedupekv.NewReqIDs(ctx, js, dedupekv.ReqIDOptions{Bucket: bucket, Window: window, Logger: log})
		if err == nil {
			return s, nil
		}
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return nil, fmt.Errorf("dedupe.store jetstream needs JetStream on the NATS server: %w", err)
		}
		log.Warn("reqid kv bucket not ready, retrying", "bucket", bucket, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("reqid store: %w", err)
		case <-time.After(stream.Backoff(attempt, 5*time.Second)):
		}
	}
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
