package stream_test

import (
	"testing"

	"github.com/faceid-observability/faceid-exporter/pkg/stream"
)

func TestIsValidSubject(t *testing.T) {
	tests := []struct {
		name    string
		subject string
		valid   bool
		literal bool
	}{
		{"literal", "faceid.deadletter", true, true},
		{"one_token", "faceid", true, true},
		{"star", "faceid.*.x", true, false},
		{"full_wildcard", "faceid.results.>", true, false},
		{"star_inside_token_is_literal", "faceid.a*b", true, true},
		{"empty", "", false, false},
		{"empty_token", "faceid..x", false, false},
		{"leading_dot", ".faceid", false, false},
		{"trailing_dot", "faceid.", false, false},
		{"space", "faceid.dead letter", false, false},
		{"tab", "faceid.\t", false, false},
		{"full_wildcard_not_last", "faceid.>.x", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := stream.IsValidSubject(tc.subject); got != tc.valid {
				t.Errorf("IsValidSubject(%q) = %v, want %v", tc.subject, got, tc.valid)
			}
			if got := stream.IsValidLiteralSubject(tc.subject); got != tc.literal {
				t.Errorf("IsValidLiteralSubject(%q) = %v, want %v", tc.subject, got, tc.literal)
			}
		})
	}
}

func TestSubjectMatchesFilter(t *testing.T) {
	tests := []struct {
		name            string
		subject, filter string
		want            bool
	}{
		{"equal", "faceid.deadletter", "faceid.deadletter", true},
		{"full_wildcard", "faceid.results.app_sdk", "faceid.results.>", true},
		{"full_wildcard_needs_a_token", "faceid.results", "faceid.results.>", false},
		{"full_wildcard_many_tokens", "faceid.results.a.b.c", "faceid.>", true},
		{"star", "faceid.results.app_sdk", "faceid.*.app_sdk", true},
		{"star_one_token_only", "faceid.results.x.app_sdk", "faceid.*.app_sdk", false},
		{"outside", "faceid.deadletter", "faceid.results.>", false},
		{"shorter", "faceid", "faceid.results", false},
		{"longer", "faceid.results.x", "faceid.results", false},
		{"wildcard_subject_inside", "faceid.results.*", "faceid.results.>", true},
		{"wildcard_subject_wider", "faceid.>", "faceid.results.>", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := stream.SubjectMatchesFilter(tc.subject, tc.filter); got != tc.want {
				t.Errorf("SubjectMatchesFilter(%q, %q) = %v, want %v", tc.subject, tc.filter, got, tc.want)
			}
		})
	}
}
