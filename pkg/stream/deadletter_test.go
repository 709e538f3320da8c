package stream_test

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
	"github.com/faceid-observability/faceid-exporter/internal/privacytest"
	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/redact"
	"github.com/faceid-observability/faceid-exporter/pkg/stream"
)

// deadLetterOf publishes one dead letter of msg through core NATS (server
// max payload maxPayload, 0: the default) and returns it as received.
func deadLetterOf(t *testing.T, o stream.DeadLetterOptions, maxPayload int32, msg []byte, rej *classify.RejectError) *nats.Msg {
	t.Helper()
	s := natstest.RunServer(t, natstest.CoreOnly, func(so *server.Options) {
		if maxPayload > 0 {
			so.MaxPayload = maxPayload
		}
	})
	nc := natstest.Connect(t, s.ClientURL())
	var mu sync.Mutex
	var got *nats.Msg
	if _, err := nc.Subscribe("faceid.deadletter", func(m *nats.Msg) { mu.Lock(); got = m; mu.Unlock() }); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	dl := stream.NewDeadLetterWith(nc, "faceid.deadletter", nopObserver{}, o)
	if err := dl.Publish(msg, "faceid.results.app_sdk", rej); err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, 10*time.Second, "the dead letter", func() bool { mu.Lock(); defer mu.Unlock(); return got != nil })
	mu.Lock()
	defer mu.Unlock()
	return got
}

type nopObserver struct{ stream.Observer }

func (nopObserver) DeadLettered(classify.Reason) {}
func (nopObserver) DeadLetterError()             {}

// TestDeadLetterModes: what each mode carries for a JSON object with
// personal fields, a JSON array and a line that is not JSON; and that a
// payload over the bound goes by reference in every mode.
func TestDeadLetterModes(t *testing.T) {
	cat, err := classify.Default()
	if err != nil {
		t.Fatal(err)
	}
	red := redact.New(cat.PersonalFieldNames())
	object := []byte(`{"channel":"app_sdk","code":{"x":1},"IdCard":"` + privacytest.IDNumber + `","Text":{"Name":"` + privacytest.Name + `","LiveStatus":0},"BestFrame":"` + privacytest.Media + `"}`)
	// The personal fields are left out, and the code, whose value was rejected.
	redacted := `{"channel":"app_sdk","Text":{"LiveStatus":0}}`
	array := []byte(`["` + privacytest.IDNumber + `","` + privacytest.Name + `"]`)
	notJSON := []byte(`IdCard=` + privacytest.IDNumber)
	fits := []byte(`{"pad":"` + strings.Repeat("x", stream.DeadLetterMaxPayload-10) + `"}`)
	over := []byte(`{"pad":"` + strings.Repeat("x", stream.DeadLetterMaxPayload-9) + `"}`)
	rej := &classify.RejectError{Reason: classify.ReasonInvalidCode, Detail: "code must be a string or an integer"}
	tests := []struct {
		name        string
		mode        stream.DeadLetterMode
		redactor    *redact.Redactor
		maxPayload  int32
		msg         []byte
		wantPayload string // "": none
		wantMode    string
		wantFields  string
	}{
		{"reference/object", stream.DeadLetterReference, red, 0, object, "", "reference", ""},
		{"redacted/object", stream.DeadLetterRedacted, red, 0, object, redacted, "redacted", "4"},
		{"redacted/array", stream.DeadLetterRedacted, red, 0, array, "", "reference", ""},
		{"redacted/not_json", stream.DeadLetterRedacted, red, 0, notJSON, "", "reference", ""},
		{"redacted/no_redactor", stream.DeadLetterRedacted, nil, 0, object, "", "reference", ""},
		{"full/object", stream.DeadLetterFull, nil, 0, object, string(object), "full", ""},
		{"full/not_json", stream.DeadLetterFull, nil, 0, notJSON, string(notJSON), "full", ""},
		{"full/at_the_bound", stream.DeadLetterFull, nil, 0, fits, string(fits), "full", ""},
		{"full/over_the_bound", stream.DeadLetterFull, nil, 0, over, "", "reference", ""},
		{"redacted/over_the_bound", stream.DeadLetterRedacted, red, 0, over, "", "reference", ""},
		{"full/over_the_server_max_payload", stream.DeadLetterFull, nil, 16 << 10, []byte(`{"pad":"` + strings.Repeat("x", 15<<10) + `"}`), "", "reference", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := deadLetterOf(t, stream.DeadLetterOptions{Mode: tc.mode, Redactor: tc.redactor}, tc.maxPayload, tc.msg, rej)
			if string(m.Data) != tc.wantPayload {
				t.Errorf("payload %.200q, want %.200q", m.Data, tc.wantPayload)
			}
			if got := m.Header.Get(stream.HeaderPayload); got != tc.wantMode {
				t.Errorf("%s %q, want %q", stream.HeaderPayload, got, tc.wantMode)
			}
			if got := m.Header.Get(stream.HeaderRedactedFields); got != tc.wantFields {
				t.Errorf("%s %q, want %q", stream.HeaderRedactedFields, got, tc.wantFields)
			}
			if got := m.Header.Get(stream.HeaderOriginalBytes); got != strconv.Itoa(len(tc.msg)) {
				t.Errorf("%s %q, want %d", stream.HeaderOriginalBytes, got, len(tc.msg))
			}
			if m.Header.Get(stream.HeaderReason) != "invalid_code" || m.Header.Get(stream.HeaderOriginalSubject) != "faceid.results.app_sdk" {
				t.Errorf("headers %v", m.Header)
			}
			if tc.mode != stream.DeadLetterFull {
				privacytest.AssertNoLeak(t, "the dead letter", string(m.Data)+strings.Join(headerValues(m.Header), "\n"))
			}
			if size := len(m.Data); size > stream.DeadLetterMaxPayload {
				t.Errorf("payload of %d bytes, over %d", size, stream.DeadLetterMaxPayload)
			}
		})
	}
}

func headerValues(h nats.Header) []string {
	var out []string
	for k, vs := range h {
		out = append(out, k)
		out = append(out, vs...)
	}
	return out
}

func TestParseDeadLetterMode(t *testing.T) {
	for _, name := range stream.DeadLetterModes() {
		m, err := stream.ParseDeadLetterMode(name)
		if err != nil || m.String() != name {
			t.Errorf("%s: %v, %v", name, m, err)
		}
	}
	if _, err := stream.ParseDeadLetterMode("Full"); err == nil || err.Error() != `dead-letter mode "Full" is not one of reference, redacted, full` {
		t.Errorf("err = %v", err)
	}
}
