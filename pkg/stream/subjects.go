package stream

import "github.com/nats-io/nats-server/v2/server"

// The subject rules below are nats-server's own, so that the exporter accepts
// and refuses exactly the subjects the server does.

// IsValidSubject reports whether s is a valid NATS subject or subscription
// filter: non-empty tokens, no whitespace, '>' only as the last token.
func IsValidSubject(s string) bool { return server.IsValidSubject(s) }

// IsValidLiteralSubject reports whether s is a valid subject without
// wildcards, one a message can be published on.
func IsValidLiteralSubject(s string) bool {
	return server.IsValidSubject(s) && server.IsValidLiteralSubject(s)
}

// SubjectMatchesFilter reports whether every message on subject is delivered
// to a subscription on filter (both may hold the wildcards * and >).
func SubjectMatchesFilter(subject, filter string) bool {
	return server.SubjectMatchesFilter(subject, filter)
}
