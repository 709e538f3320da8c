package main

import (
	"fmt"

	"github.com/alecthomas/kingpin/v2"

	"github.com/faceid-observability/faceid-exporter/pkg/api"
)

// webLimits are serve's bounds on concurrent HTTP work.
type webLimits struct {
	maxStreamClients int
	maxRequests      int
}

// addWebLimitFlags registers --web.max-stream-clients and --web.max-requests
// on cmd.
func addWebLimitFlags(cmd *kingpin.CmdClause) *webLimits {
	l := &webLimits{}
	cmd.Flag("web.max-stream-clients", "Most /api/v1/stream (server-sent events) clients connected at once; more get 429 and are counted in faceid_exporter_http_stream_rejected_total. 0: no limit.").
		Default(fmt.Sprint(api.DefaultMaxStreamClients)).IntVar(&l.maxStreamClients)
	cmd.Flag("web.max-requests", "Most requests in flight on /metrics, and separately on the rest of the API (health, readiness and the live stream aside); more get 503. 0: no limit.").
		Default(fmt.Sprint(api.DefaultMaxRequests)).IntVar(&l.maxRequests)
	return l
}

// options checks the flags and returns them as api.Options' MaxStreamClients
// and MaxRequests (where no limit is negative, not 0).
func (l *webLimits) options() (maxStreamClients, maxRequests int, err error) {
	if l.maxStreamClients < 0 {
		return 0, 0, fmt.Errorf("--web.max-stream-clients %d must not be negative", l.maxStreamClients)
	}
	if l.maxRequests < 0 {
		return 0, 0, fmt.Errorf("--web.max-requests %d must not be negative", l.maxRequests)
	}
	return noLimitIfZero(l.maxStreamClients), noLimitIfZero(l.maxRequests), nil
}

// noLimitIfZero maps a flag's 0 (no limit) to api.Options' negative value.
func noLimitIfZero(v int) int {
	if v == 0 {
		return -1
	}
	return v
}
