package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
	"github.com/faceid-observability/faceid-exporter/internal/privacytest"
	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/service"
	"github.com/faceid-observability/faceid-exporter/pkg/stream"
)

// otlpBodies is an OTLP/HTTP receiver keeping every export's raw protobuf
// body (strings are stored in it as they are: a planted value would show).
type otlpBodies struct {
	mu     sync.Mutex
	bodies [][]byte
}

func (o *otlpBodies) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	o.mu.Lock()
	o.bodies = append(o.bodies, body)
	o.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
}

func (o *otlpBodies) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.bodies)
}

func (o *otlpBodies) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return string(bytes.Join(o.bodies, []byte("\n")))
}

// TestPersonalDataStaysOut is the scenario of the privacy contract
// (docs/service.md#privacy): rejected messages of every reason carry an ID
// number, a name and a Base64 photo; in JetStream and core mode, in each
// dead-letter mode, the test reads the dead-letter stream, the log at debug
// level, the API, /metrics and the OTLP export, and finds none of them
// except in the dead letters of the full mode. A dead letter by reference
// names the source stream and sequence: the test fetches the original by
// them.
func TestPersonalDataStaysOut(t *testing.T) {
	known := map[string]bool{}
	for _, r := range classify.Reasons() {
		known[r.String()] = true
	}
	// Over NATS every message has a fallback channel (the subject's last
	// token), so missing_channel cannot happen; a reason of a newer
	// classifier is left to its own test.
	var msgs []privacytest.Message
	for _, m := range privacytest.Messages() {
		if known[m.Reason] && m.Reason != "missing_channel" {
			msgs = append(msgs, m)
		}
	}
	// Rejections are logged at most once a second: each run publishes
	// first (and so logs) another of the messages whose rejected value is
	// the personal data.
	first := []string{"unknown_channel_is_a_name", "ts_is_the_id_number", "ts_is_the_id_number_as_integer", "channel_not_a_string"}
	run := 0
	for _, natsMode := range []string{"jetstream", "core"} {
		for _, dlMode := range []string{"", "reference", "redacted", "full"} {
			name := dlMode
			if name == "" {
				name = "default"
			}
			lead := first[run%len(first)]
			run++
			ordered := slices.Clone(msgs)
			i := slices.IndexFunc(ordered, func(m privacytest.Message) bool { return m.Name == lead })
			if i < 0 {
				t.Fatalf("no message %s", lead)
			}
			ordered = append(ordered[i:], ordered[:i]...)
			counted := privacytest.Counted()
			k := run % len(counted)
			counted = append(counted[k:], counted[:k]...)
			t.Run(natsMode+"/"+name, func(t *testing.T) {
				runPrivacyScenario(t, natsMode == "jetstream", dlMode, ordered, counted)
			})
		}
	}
}

func runPrivacyScenario(t *testing.T, jsMode bool, dlMode string, msgs, counted []privacytest.Message) {
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s.ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	dlStream := "FACEID_DEADLETTER" // created by the exporter in JetStream mode
	if !jsMode {
		// Core mode publishes dead letters on core NATS: a stream keeps them.
		dlStream = "DL"
		if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: dlStream, Subjects: []string{"faceid.deadletter"}}); err != nil {
			t.Fatal(err)
		}
	}
	otlp := &otlpBodies{}
	rcv := httptest.NewServer(otlp)
	defer rcv.Close()

	addr := "127.0.0.1:" + strconv.Itoa(natstest.FreePort(t))
	args := []string{"serve", "--nats.url=" + s.ClientURL(), "--web.listen-address=" + addr, "--shutdown.timeout=5s",
		"--log.level=debug", "--log.format=json",
		"--otlp.endpoint=" + rcv.Listener.Addr().String(), "--otlp.insecure", "--otlp.protocol=http", "--otlp.interval=100ms"}
	if jsMode {
		args = append(args, "--jetstream.stream=FACEID", "--jetstream.checkpoint-interval=100ms", "--jetstream.takeover-timeout=1s")
	} else {
		args = append(args, "--nats.core") // core NATS is an explicit choice
	}
	if dlMode != "" {
		args = append(args, "--nats.dead-letter-mode="+dlMode)
	}
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- runContext(ctx, args, env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr})
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("exit %d\n%s", code, stderr.String())
			}
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop within 20s of cancellation")
		}
	}
	defer stop()
	waitHTTP(t, "http://"+addr+"/-/ready", &stderr)

	// The live stream of counted events, read from before the first message.
	var live syncBuffer
	sctx, stopLive := context.WithCancel(ctx)
	defer stopLive()
	req, err := http.NewRequestWithContext(sctx, http.MethodGet, "http://"+addr+"/api/v1/stream?kind=all", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	liveDone := make(chan struct{})
	go func() {
		defer close(liveDone)
		defer resp.Body.Close()
		_, _ = io.Copy(&live, resp.Body)
	}()

	for _, m := range msgs {
		subject := "faceid.results." + m.Channel
		if jsMode {
			if _, err := js.Publish(t.Context(), subject, m.Data); err != nil {
				t.Fatal(err)
			}
		} else if err := nc.Publish(subject, m.Data); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range counted {
		if err := nc.Publish("faceid.results."+m.Channel, m.Data); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	var dls jetstream.Stream
	natstest.WaitFor(t, 20*time.Second, "every rejected message dead-lettered", func() bool {
		if dls == nil {
			if dls, err = js.Stream(t.Context(), dlStream); err != nil {
				dls = nil
				return false
			}
		}
		info, err := dls.Info(t.Context())
		return err == nil && info.State.Msgs == uint64(len(msgs))
	})
	natstest.WaitFor(t, 20*time.Second, "the accepted events counted", func() bool {
		return scrapeSum(t, "http://"+addr+"/metrics", "faceid_verifications_total") == float64(len(counted))
	})
	natstest.WaitFor(t, 20*time.Second, "every counted event on /api/v1/stream", func() bool {
		return strings.Count(live.String(), "data: ") >= len(counted)
	})
	stopLive()
	<-liveDone
	exports := otlp.count()
	natstest.WaitFor(t, 20*time.Second, "two more OTLP exports", func() bool { return otlp.count() >= exports+2 })

	// What the API shows.
	var api strings.Builder
	for _, path := range []string{"/api/v1/events?kind=unknown_code", "/api/v1/events?kind=billable_failure", "/api/v1/events?kind=high_risk",
		"/api/v1/summary", "/api/v1/catalog", "/api/v1/ledger?from=2026-01-01&to=2026-12-31", "/metrics"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		api.WriteString(path + ": " + string(body) + "\n")
	}
	api.WriteString("/api/v1/stream: " + live.String())
	stop()

	// The dead letters, in the order the messages were published.
	info, err := dls.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	src, err := js.Stream(t.Context(), "FACEID")
	if jsMode && err != nil {
		t.Fatal(err)
	}
	var full strings.Builder
	for i, m := range msgs {
		dl, err := dls.GetMsg(t.Context(), info.State.FirstSeq+uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		text := string(dl.Data) + "\n" + headerText(dl.Header)
		if got := dl.Header.Get(stream.HeaderReason); got != m.Reason {
			t.Errorf("%s: dead letter %d has reason %q, want %q", m.Name, i, got, m.Reason)
			continue
		}
		want := wantPayload(jsMode, dlMode, m)
		if got := dl.Header.Get(stream.HeaderPayload); got != want {
			t.Errorf("%s: payload %q, want %q", m.Name, got, want)
		}
		switch want {
		case "full":
			if !bytes.Equal(dl.Data, m.Data) {
				t.Errorf("%s: full payload of %d bytes, want the message's %d", m.Name, len(dl.Data), len(m.Data))
			}
			full.WriteString(text)
			continue
		case "reference":
			if len(dl.Data) != 0 {
				t.Errorf("%s: a reference with a %d-byte payload", m.Name, len(dl.Data))
			}
		}
		privacytest.AssertNoLeak(t, m.Name+": the dead letter", text)
		if len(dl.Data) > stream.DeadLetterMaxPayload {
			t.Errorf("%s: dead letter of %d bytes, over %d", m.Name, len(dl.Data), stream.DeadLetterMaxPayload)
		}
		// The reference finds the original.
		if jsMode {
			seq, err := strconv.ParseUint(dl.Header.Get(stream.HeaderSourceSequence), 10, 64)
			if err != nil || dl.Header.Get(stream.HeaderSourceStream) != "FACEID" || dl.Header.Get(stream.HeaderSourceCreated) == "" {
				t.Errorf("%s: no reference to the source: %v", m.Name, dl.Header)
				continue
			}
			orig, err := src.GetMsg(t.Context(), seq)
			if err != nil || !bytes.Equal(orig.Data, m.Data) {
				t.Errorf("%s: FACEID sequence %d is not the rejected message (%v)", m.Name, seq, err)
			}
		}
	}
	if dlMode == "full" {
		privacytest.AssertLeak(t, "the full-mode dead letters", full.String())
		if !strings.Contains(stderr.String(), "dead letters carry rejected messages in full") {
			t.Errorf("no warning at start in full mode:\n%s", stderr.String())
		}
	}
	privacytest.AssertNoLeak(t, "the log", stderr.String()+stdout.String())
	privacytest.AssertNoLeak(t, "the API and /metrics", api.String())
	privacytest.AssertNoLeak(t, "the OTLP export", otlp.String())
	if !strings.Contains(stderr.String(), `"msg":"unknown return code`) {
		t.Errorf("no unknown code logged: the log check would not see it\n%s", stderr.String())
	}
	if !strings.Contains(api.String(), `"raw_code":"`+classify.HiddenCode+`"`) {
		t.Errorf("/api/v1/events shows no hidden unknown code: the API check would not see it\n%.3000s", api.String())
	}
	if !strings.Contains(stderr.String(), `"msg":"rejected message`) || !strings.Contains(stderr.String(), `"reason":"`+msgs[0].Reason+`"`) {
		t.Errorf("the first rejection (%s) is not logged: the log check would not see it\n%s", msgs[0].Reason, stderr.String())
	}
}

// wantPayload is what a message's dead letter carries.
func wantPayload(jsMode bool, dlMode string, m privacytest.Message) string {
	if dlMode == "" {
		dlMode = "redacted"
		if jsMode {
			dlMode = "reference"
		}
	}
	switch {
	case len(m.Data) > stream.DeadLetterMaxPayload:
		return "reference"
	case dlMode == "redacted" && !m.Object:
		return "reference"
	}
	return dlMode
}

func headerText(h nats.Header) string {
	var b strings.Builder
	for k, vs := range h {
		b.WriteString(k + ": " + strings.Join(vs, ", ") + "\n")
	}
	return b.String()
}

// TestPrivacyDocs: docs/service.md states the dead-letter modes, headers,
// bound and defaults, the hidden unknown code and the personal-field kinds
// as the code has them.
func TestPrivacyDocs(t *testing.T) {
	doc, err := os.ReadFile("../../docs/service.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	want := []string{
		"## Privacy",
		"| `--nats.dead-letter-mode` | `" + service.DeadLetterAuto + "` |",
		"| `reference` (default in JetStream mode)",
		"| `redacted` (default in core mode",
		"| `full` |",
		fmt.Sprintf("at most %d KiB", stream.DeadLetterMaxPayload>>10),
		fmt.Sprintf("a message over %d KiB", stream.DeadLetterMaxPayload>>10),
		fmt.Sprintf("at\nmost %d KiB besides", stream.DeadLetterMaxHeaders>>10),
		"`" + classify.HiddenCode + "`",
		fmt.Sprintf("integer of at most %d digits", classify.MaxShownCodeDigits),
	}
	for _, h := range []string{stream.HeaderReason, stream.HeaderDetail, stream.HeaderOriginalSubject, stream.HeaderOriginalBytes,
		stream.HeaderPayload, stream.HeaderRedactedFields, stream.HeaderSourceStream, stream.HeaderSourceCreated, stream.HeaderSourceSequence} {
		want = append(want, "`"+h+"`")
	}
	for _, m := range stream.DeadLetterModes() {
		want = append(want, "| `"+m+"`")
	}
	for _, k := range classify.PersonalKinds() {
		want = append(want, k)
	}
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("docs/service.md does not say %q", w)
		}
	}
}
