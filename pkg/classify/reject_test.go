package classify

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/faceid-observability/faceid-exporter/internal/privacytest"
)

// TestRejectDetailsHoldNoValues: for every rejection reason, messages with an
// ID number and a name in them — as the channel, the ts, inside the code —
// are rejected for that reason with a Detail (and an Error) that holds
// neither: details reach dead letters, logs and the API.
func TestRejectDetailsHoldNoValues(t *testing.T) {
	c := New(mustDefault(t), Options{FutureTolerance: 5 * time.Minute})
	covered := map[string]bool{}
	known := map[string]bool{}
	for _, r := range Reasons() {
		known[r.String()] = true
	}
	for _, m := range privacytest.Messages() {
		if !known[m.Reason] {
			continue // a reason of a newer classifier
		}
		t.Run(m.Reason+"/"+m.Name, func(t *testing.T) {
			var fallback []byte
			if m.Channel != "" {
				fallback = []byte(m.Channel)
			}
			var r Result
			err := c.Classify(m.Data, fallback, receivedAt, &r)
			var rej *RejectError
			if !errors.As(err, &rej) {
				t.Fatalf("not rejected: %v", err)
			}
			if rej.Reason.String() != m.Reason {
				t.Fatalf("reason %s (%s), want %s", rej.Reason, rej.Detail, m.Reason)
			}
			if rej.Detail == "" {
				t.Error("empty detail")
			}
			privacytest.AssertNoLeak(t, "the detail", rej.Detail)
			privacytest.AssertNoLeak(t, "the error", err.Error())
			covered[m.Reason] = true
		})
	}
	for _, r := range Reasons() {
		if !covered[r.String()] {
			t.Errorf("no planted message is rejected for %s: add one to internal/privacytest", r)
		}
	}
	if !slices.ContainsFunc(privacytest.Messages(), func(m privacytest.Message) bool { return m.Reason == "missing_channel" && m.Channel == "" }) {
		t.Error("the missing_channel message must come without a fallback channel")
	}
}

func TestShownCode(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"0", "0"}, {"-1", "-1"}, {"66660099", "66660099"}, {"1234567890", "1234567890"}, {"-1234567890", "-1234567890"},
		{"12345678901", HiddenCode}, // a phone number's length
		{privacytest.IDNumberInt, HiddenCode}, {privacytest.IDNumber, HiddenCode}, {privacytest.Name, HiddenCode},
		{"E1", HiddenCode}, {"", HiddenCode}, {"-", HiddenCode}, {"1.5", HiddenCode},
	}
	for _, tc := range tests {
		t.Run(tc.raw, func(t *testing.T) {
			if got := string(ShownCode([]byte(tc.raw))); got != tc.want {
				t.Errorf("ShownCode(%q) = %q, want %q", tc.raw, got, tc.want)
			}
		})
	}
}
