package api

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/faceid-observability/faceid-exporter/pkg/metrics"
)

// Options configure the HTTP handler.
type Options struct {
	Events        *Events
	Gatherer      prometheus.Gatherer
	TelemetryPath string // default /metrics
	// CatalogJSON is the catalog as `exporter catalog --format json` prints it.
	CatalogJSON []byte
	// Summary returns counts since Since.
	Summary func() []metrics.SummaryRow
	Since   time.Time
	// Ledger is the books GET /api/v1/ledger serves (no reader: 501).
	Ledger LedgerSource
	// Forecast is what GET /api/v1/forecast forecasts from (no reader: 501).
	Forecast ForecastSource
	// Ready reports whether the exporter is connected (and bound to its
	// JetStream consumer); the string says why not.
	Ready     func() (bool, string)
	Version   string
	Logger    *slog.Logger
	KeepAlive time.Duration // SSE keepalive, default 15s

	// MaxStreamClients bounds the /api/v1/stream clients connected at once;
	// beyond it a client gets 429. 0: DefaultMaxStreamClients; negative: no
	// limit.
	MaxStreamClients int
	// MaxRequests bounds the requests in flight on /metrics and, separately,
	// on the rest of the API; beyond it a request gets 503, as with
	// promhttp's MaxRequestsInFlight. 0: DefaultMaxRequests; negative: no
	// limit.
	MaxRequests int
	// Registerer, when set, receives the handler's own metrics
	// (faceid_exporter_http_stream_rejected_total).
	Registerer prometheus.Registerer
	// Pprof serves net/http/pprof's profiles under /debug/pprof/ (off by
	// default: a profile exposes the process's code paths and costs CPU while
	// it runs).
	Pprof bool

	limits *limits
}

// DefaultLimit is the number of events returned without ?limit.
const DefaultLimit = 100

// NewHandler returns the exporter's HTTP handler.
func NewHandler(o Options) (http.Handler, error) {
	if o.TelemetryPath == "" {
		o.TelemetryPath = "/metrics"
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = 15 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	lim, err := newLimits(&o)
	if err != nil {
		return nil, err
	}
	o.limits = lim
	// The ledger link names today's Beijing day as of start; any day can be asked.
	today := time.Now().In(beijing).Format(time.DateOnly)
	landing, err := web.NewLandingPage(web.LandingConfig{
		Name:        "FaceID exporter",
		Description: "Tencent Cloud FaceID (慧眼人脸核身) verification results from NATS as Prometheus and OpenTelemetry metrics",
		Version:     o.Version,
		Profiling:   strconv.FormatBool(o.Pprof),
		Links: []web.LandingLinks{
			{Address: o.TelemetryPath, Text: "Metrics", Description: "Prometheus metrics"},
			{Address: "/api/v1/events?kind=billable_failure", Text: "Billable failures", Description: "Recent billed verifications that failed"},
			{Address: "/api/v1/events?kind=high_risk", Text: "High-risk events", Description: "Recent events with a high device or identity risk level"},
			{Address: "/api/v1/events?kind=unknown_code", Text: "Unknown codes", Description: "Recent events whose code is not in the catalog"},
			{Address: "/api/v1/stream", Text: "Live stream", Description: "Every classified event, as server-sent events"},
			{Address: "/api/v1/summary", Text: "Summary", Description: "Counts by channel, outcome and billability of this instance's counters (JetStream mode: committed totals of its partitions)"},
			{Address: "/api/v1/ledger?from=" + today + "&to=" + today + "&format=json", Text: "Ledger", Description: "The committed daily books per Beijing day (JetStream mode; format=json or csv, from/to YYYY-MM-DD)"},
			{Address: "/api/v1/forecast", Text: "Forecast", Description: "Month-end billed verifications and spend, and the next days' volume, from the ledger (JetStream mode)"},
			{Address: "/api/v1/catalog", Text: "Catalog", Description: "Return codes, meanings, billing and risk tags"},
			{Address: "/-/healthy", Text: "Health", Description: "200 while the process runs"},
			{Address: "/-/ready", Text: "Readiness", Description: "200 while connected to NATS (and bound to the JetStream consumer)"},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("landing page: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+o.TelemetryPath, promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(o.Logger.Handler(), slog.LevelError),
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: lim.maxRequests,
	}))
	mux.HandleFunc("GET /api/v1/events", o.events)
	mux.HandleFunc("GET /api/v1/catalog", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"success","data":%s}`+"\n", o.CatalogJSON)
	})
	mux.HandleFunc("GET /api/v1/summary", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "success", "data": o.summary()})
	})
	mux.HandleFunc("GET /api/v1/stream", o.stream)
	mux.Handle("GET /api/v1/ledger", NewLedgerHandler(o.Ledger, o.Logger))
	mux.Handle("GET /api/v1/forecast", NewForecastHandler(o.Forecast, o.Logger))
	mux.HandleFunc("GET /-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "Healthy")
	})
	mux.HandleFunc("GET /-/ready", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if ok, why := o.Ready(); !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "Not ready: %s\n", why)
			return
		}
		fmt.Fprintln(w, "Ready")
	})
	if o.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	mux.Handle("GET /{$}", landing)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		apiError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
	})
	return lim.wrapAPI(mux), nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func apiError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"status": "error", "error": msg})
}

func (o *Options) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	kind, ok := ParseKind(q.Get("kind"), false)
	if !ok {
		apiError(w, http.StatusBadRequest, fmt.Sprintf("kind %q: want billable_failure, high_risk or unknown_code", q.Get("kind")))
		return
	}
	size := o.Events.Size(kind)
	limit := min(DefaultLimit, size)
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > size {
			apiError(w, http.StatusBadRequest, fmt.Sprintf("limit %q: want an integer from 1 to %d", s, size))
			return
		}
		limit = n
	}
	recs := o.Events.Newest(kind, limit)
	buf := make([]byte, 0, 64+len(recs)*400)
	buf = append(buf, `{"status":"success","data":{"kind":"`...)
	buf = append(buf, kind.String()...)
	buf = append(buf, `","events":[`...)
	for i := range recs {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = recs[i].AppendJSON(buf)
	}
	buf = append(buf, "]}}\n"...)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(buf)
}

func (o *Options) stream(w http.ResponseWriter, r *http.Request) {
	kind := KindAll
	if s := r.URL.Query().Get("kind"); s != "" {
		k, ok := ParseKind(s, true)
		if !ok {
			apiError(w, http.StatusBadRequest, fmt.Sprintf("kind %q: want all, billable_failure, high_risk or unknown_code", s))
			return
		}
		kind = k
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		apiError(w, http.StatusInternalServerError, "streaming is not supported on this connection")
		return
	}
	release, ok := o.limits.acquireStream(w)
	if !ok {
		return
	}
	defer release()
	sub := o.Events.hub.subscribe(kind, 1024)
	defer o.Events.hub.unsubscribe(sub)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(": connected\n\n"))
	flusher.Flush()
	tick := time.NewTicker(o.KeepAlive)
	defer tick.Stop()
	var reported uint64
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
			if _, err := w.Write([]byte(": keepalive\n\n")); err != nil {
				return
			}
		case data := <-sub.ch:
			if d := sub.dropped.Load(); d != reported {
				fmt.Fprintf(w, ": dropped %d events, the client is too slow\n\n", d-reported)
				reported = d
			}
			if _, err := w.Write(append(append([]byte("data: "), data...), '\n', '\n')); err != nil {
				return
			}
		}
		flusher.Flush()
	}
}

// beijing is the zone of the ledger's days (UTC+8, no daylight saving).
var beijing = time.FixedZone("Asia/Shanghai", 8*60*60)

// summaryRow is a row of GET /api/v1/summary: billable is true, false or
// null (the catalog does not know).
type summaryRow struct {
	Channel  string `json:"channel"`
	Outcome  string `json:"outcome"`
	Billable *bool  `json:"billable"`
	Count    uint64 `json:"count"`
}

// summary is the data of GET /api/v1/summary: the rows and what they cover.
func (o *Options) summary() map[string]any {
	rows := o.Summary()
	out := make([]summaryRow, len(rows))
	for i, r := range rows {
		out[i] = summaryRow{Channel: r.Channel, Outcome: r.Outcome, Billable: billableJSON(r.Billable), Count: r.Count}
	}
	covers, what := "process", "faceid_verifications_total of this process, counted since it started (core NATS mode: not kept across restarts)"
	if o.Ledger.Read != nil {
		covers, what = "committed_totals", "faceid_verifications_total of the partitions this instance owns: the group's totals carried over restarts and takeovers from its checkpoints, not only since this process started; other replicas hold the other partitions"
	}
	return map[string]any{
		"since":  o.Since.UTC().Format(time.RFC3339),
		"covers": covers, "description": what,
		"rows": out,
	}
}
