package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of the HTTP limits.
const (
	// DefaultMaxStreamClients is how many /api/v1/stream clients may be
	// connected at once.
	DefaultMaxStreamClients = 64
	// DefaultMaxRequests is how many requests /metrics, and separately the
	// rest of the API, serve at once; promhttp's MaxRequestsInFlight.
	DefaultMaxRequests = 40
)

// limits bounds concurrent work: live-stream clients, and requests in flight
// on /metrics (through promhttp) and on the API. Health, readiness and the
// landing page are never limited, so probes answer under load.
type limits struct {
	maxStreams, maxRequests int // 0: no limit
	streams, api            chan struct{}
	streamRejected          prometheus.Counter
}

func newLimits(o *Options) (*limits, error) {
	l := &limits{
		maxStreams:  limitOf(o.MaxStreamClients, DefaultMaxStreamClients),
		maxRequests: limitOf(o.MaxRequests, DefaultMaxRequests),
		streamRejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "faceid_exporter_http_stream_rejected_total",
			Help: "Live-stream (/api/v1/stream) clients refused with 429 because --web.max-stream-clients were connected.",
		}),
	}
	if l.maxStreams > 0 {
		l.streams = make(chan struct{}, l.maxStreams)
	}
	if l.maxRequests > 0 {
		l.api = make(chan struct{}, l.maxRequests)
	}
	if o.Registerer != nil {
		if err := o.Registerer.Register(l.streamRejected); err != nil {
			return nil, fmt.Errorf("register http metrics: %w", err)
		}
	}
	return l, nil
}

// limitOf maps an Options limit to a channel size: 0 is the default, a
// negative value no limit (0).
func limitOf(v, def int) int {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

// acquireStream takes a live-stream slot, or answers 429 and returns false.
// Call release when the client is gone.
func (l *limits) acquireStream(w http.ResponseWriter) (release func(), ok bool) {
	if l.streams == nil {
		return func() {}, true
	}
	select {
	case l.streams <- struct{}{}:
		return func() { <-l.streams }, true
	default:
		l.streamRejected.Inc()
		w.Header().Set("Retry-After", "10")
		apiError(w, http.StatusTooManyRequests, fmt.Sprintf(
			"too many live-stream clients: %d are connected, the most --web.max-stream-clients allows; try again later", l.maxStreams))
		return nil, false
	}
}

// wrapAPI limits the requests in flight under /api/ (the live stream has its
// own bound) to maxRequests, answering 503 beyond it as promhttp does for
// /metrics.
func (l *limits) wrapAPI(next http.Handler) http.Handler {
	if l.api == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/api/v1/stream" {
			next.ServeHTTP(w, r)
			return
		}
		select {
		case l.api <- struct{}{}:
			defer func() { <-l.api }()
			next.ServeHTTP(w, r)
		default:
			apiError(w, http.StatusServiceUnavailable, fmt.Sprintf(
				"limit of concurrent API requests reached (%d, --web.max-requests), try again later", l.maxRequests))
		}
	})
}
