package stream_test

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/simulate"
	"github.com/faceid-observability/faceid-exporter/pkg/stream"
)

// truth is the ground truth of what was published: "billable,channel,code".
type truth struct {
	byCode   map[string]float64
	accepted int
}

func publish(t testing.TB, cat *classify.Catalog, sc simulate.Scenario, seed int64, n int, pub func(subject string, msg []byte)) *truth {
	t.Helper()
	gen, err := simulate.NewGenerator(cat, sc, seed, simulate.WithRunID("t"+strings.ReplaceAll(string(sc), "-", "")))
	if err != nil {
		t.Fatal(err)
	}
	tr := &truth{byCode: map[string]float64{}}
	buf := make([]byte, 0, 1024)
	now := time.Now()
	for i := 0; i < n; i++ {
		msg, subj, x := gen.Next(buf, now.Add(time.Duration(i)*time.Millisecond))
		buf = msg[:0]
		pub(subj, append([]byte(nil), msg...))
		if x.Reject == classify.ReasonNone {
			tr.accepted++
			tr.byCode[fmt.Sprintf("%s,%s,%s", x.Billable, x.Channel.Name, x.CodeLabel())]++
		}
	}
	return tr
}

// verifications sums faceid_verifications_total over outcome and partition:
// "billable,channel,code".
func verifications(t testing.TB, r *rig) map[string]float64 {
	out := map[string]float64{}
	for k, v := range family(t, r.reg, "faceid_verifications_total") {
		if v == 0 {
			continue
		}
		l := map[string]string{}
		for _, p := range strings.Split(k, ",") {
			kv := strings.SplitN(p, "=", 2)
			l[kv[0]] = kv[1]
		}
		out[l["billable"]+","+l["channel"]+","+l["code"]] += v
	}
	return out
}

func TestCoreCountsMatchGenerator(t *testing.T) {
	cat := catalog(t)
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s.ClientURL())
	r := newRig(t, cat, nil)
	dl := stream.NewDeadLetter(nc, "faceid.deadletter", r.deadLetterObserver())
	core, err := stream.SubscribeCore(nc, stream.CoreOptions{Subject: subject, Queue: "faceid-exporter"}, r.pipe, dl, r.m, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if ok, why := core.Ready(); !ok {
		t.Fatalf("not ready: %s", why)
	}
	pubc := natstest.Connect(t, s.ClientURL())
	const n = 5000
	tr := publish(t, cat, simulate.Baseline, 1, n, func(subj string, msg []byte) {
		if err := pubc.Publish(subj, msg); err != nil {
			t.Fatal(err)
		}
	})
	if err := pubc.Flush(); err != nil {
		t.Fatal(err)
	}
	received := r.m.ReceivedCounter(false)
	natstest.WaitFor(t, 10*time.Second, "every event received", func() bool { return testutil.ToFloat64(received) == n })
	if err := core.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := verifications(t, r)
	for k, w := range tr.byCode {
		if got[k] != w {
			t.Errorf("%s: got %v, want %v", k, got[k], w)
		}
	}
	if len(got) != len(tr.byCode) {
		t.Errorf("%d rows counted, %d published", len(got), len(tr.byCode))
	}
	if tr.accepted < n*9/10 {
		t.Fatalf("only %d of %d events accepted: the baseline should be almost all valid", tr.accepted, n)
	}
}

var deadLetterCases = func() []struct {
	subject string
	msg     []byte
	reason  string
} {
	oversize := append([]byte(`{"id":"big","channel":"app_sdk","code":"0","pad":"`), bytes.Repeat([]byte("x"), classify.MaxMessageBytes)...)
	oversize = append(oversize, `"}`...)
	return []struct {
		subject string
		msg     []byte
		reason  string
	}{
		{"faceid.results.app_sdk", []byte(`{"id":"x1","code":`), "invalid_json"},
		{"faceid.results.app_sdk", []byte(`[1,2,3]`), "not_object"},
		{"faceid.results.telegram", []byte(`{"id":"x2","code":"0"}`), "unknown_channel"},
		{"faceid.results.app_sdk", []byte(`{"id":"x3","channel":"app_sdk"}`), "missing_code"},
		{"faceid.results.app_sdk", oversize, "oversize"},
	}
}()

// checkDeadLetters checks the dead letters of deadLetterCases, sent by
// reference: no payload; with fetch (JetStream mode) the headers name the
// source stream, its creation and the sequence, and the message fetched by
// them is the original.
func checkDeadLetters(t *testing.T, dead []*nats.Msg, fetch func(stream string, created time.Time, seq uint64) []byte) {
	t.Helper()
	if len(dead) != len(deadLetterCases) {
		t.Fatalf("%d dead letters, want %d", len(dead), len(deadLetterCases))
	}
	for i, c := range deadLetterCases {
		m := dead[i]
		if got := m.Header.Get(stream.HeaderReason); got != c.reason {
			t.Errorf("dead letter %d: reason %q, want %q", i, got, c.reason)
		}
		if m.Header.Get(stream.HeaderDetail) == "" {
			t.Errorf("dead letter %d: no detail", i)
		}
		if got := m.Header.Get(stream.HeaderOriginalSubject); got != c.subject {
			t.Errorf("dead letter %d: original subject %q, want %q", i, got, c.subject)
		}
		if got := m.Header.Get(stream.HeaderPayload); got != "reference" || len(m.Data) != 0 {
			t.Errorf("dead letter %d: payload %q of %d bytes, want a reference and none", i, got, len(m.Data))
		}
		if got := m.Header.Get(stream.HeaderOriginalBytes); got != strconv.Itoa(len(c.msg)) {
			t.Errorf("dead letter %d: original size %q, want %d", i, got, len(c.msg))
		}
		name, created, seq := m.Header.Get(stream.HeaderSourceStream), m.Header.Get(stream.HeaderSourceCreated), m.Header.Get(stream.HeaderSourceSequence)
		if fetch == nil {
			if name != "" || created != "" || seq != "" {
				t.Errorf("dead letter %d: core mode has no source stream, got %q %q %q", i, name, created, seq)
			}
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, created)
		if err != nil {
			t.Errorf("dead letter %d: source created %q: %v", i, created, err)
			continue
		}
		n, err := strconv.ParseUint(seq, 10, 64)
		if err != nil {
			t.Errorf("dead letter %d: source sequence %q: %v", i, seq, err)
			continue
		}
		if got := fetch(name, at, n); !bytes.Equal(got, c.msg) {
			t.Errorf("dead letter %d: %s sequence %d holds %d bytes, not the rejected %d-byte message", i, name, n, len(got), len(c.msg))
		}
	}
}

func TestCoreDeadLetters(t *testing.T) {
	cat := catalog(t)
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s.ClientURL())
	r := newRig(t, cat, nil)
	dl := stream.NewDeadLetter(nc, "faceid.deadletter", r.deadLetterObserver())
	obs := natstest.Connect(t, s.ClientURL())
	var mu sync.Mutex
	var dead []*nats.Msg
	if _, err := obs.Subscribe("faceid.deadletter", func(m *nats.Msg) { mu.Lock(); dead = append(dead, m); mu.Unlock() }); err != nil {
		t.Fatal(err)
	}
	if err := obs.Flush(); err != nil {
		t.Fatal(err)
	}
	core, err := stream.SubscribeCore(nc, stream.CoreOptions{Subject: subject, Queue: "q"}, r.pipe, dl, r.m, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, c := range deadLetterCases {
		if err := obs.Publish(c.subject, c.msg); err != nil {
			t.Fatal(err)
		}
	}
	// An event without channel takes the subject's last token.
	if err := obs.Publish("faceid.results.wechat_h5", []byte(`{"id":"g2","code":"0"}`)); err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, 10*time.Second, "dead letters", func() bool { mu.Lock(); defer mu.Unlock(); return len(dead) == len(deadLetterCases) })
	natstest.WaitFor(t, 10*time.Second, "the good event counted", func() bool { return verifications(t, r)["true,wechat_h5,0"] == 1 })
	mu.Lock()
	checkDeadLetters(t, dead, nil)
	mu.Unlock()
	rejected := family(t, r.reg, "faceid_exporter_events_rejected_total")
	dls := family(t, r.reg, "faceid_exporter_dead_letters_total")
	for _, c := range deadLetterCases {
		if rejected["partition=0,reason="+c.reason] != 1 || dls["partition=0,reason="+c.reason] != 1 {
			t.Errorf("%s: rejected %v, dead-lettered %v, want 1 and 1", c.reason, rejected, dls)
		}
	}
	_ = core.Stop(context.Background())
}

// TestJetStreamDeadLettersOnce: rejected messages go to the dead-letter
// stream once, even when the partition's owner loses its connection before
// committing and a new owner replays them.
func TestJetStreamDeadLettersOnce(t *testing.T) {
	cat := catalog(t)
	s := natstest.RunServer(t)
	js := newStream(t, s.ClientURL(), jetstream.StreamConfig{})
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "DL", Subjects: []string{"faceid.deadletter"}, Duplicates: 10 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	pub, wait := jsPublish(t, js)
	for _, c := range deadLetterCases {
		pub(c.subject, c.msg)
	}
	pub("faceid.results.wechat_h5", []byte(`{"id":"g2","code":"0"}`))
	wait()
	// a reads and dead-letters everything, but never commits (its interval
	// is long) before its connection is cut.
	a := startGroup(t, s.ClientURL(), cat, groupOpts{instance: "a", interval: time.Hour, takeover: 3 * time.Hour, deadLetterJS: true})
	dls, err := js.Stream(t.Context(), "DL")
	if err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, 10*time.Second, "a dead-letters every rejection", func() bool {
		info, err := dls.Info(t.Context())
		return err == nil && info.State.Msgs == uint64(len(deadLetterCases))
	})
	if rec, _, err := a.store.Load(t.Context(), 0); err != nil || rec.Seq != 0 {
		t.Fatalf("a committed (seq %v, %v) before its connection was cut", rec, err)
	}
	a.nc.Close()
	b := startGroup(t, s.ClientURL(), cat, groupOpts{instance: "b", takeover: 500 * time.Millisecond, deadLetterJS: true})
	natstest.WaitFor(t, 20*time.Second, "b takes over and commits", allCommitted(t, b.store, 1, lastSeq(t, js)))
	info, err := dls.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(len(deadLetterCases)) {
		t.Fatalf("%d dead letters stored after the replay, want %d (each once)", info.State.Msgs, len(deadLetterCases))
	}
	var dead []*nats.Msg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := dls.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		dead = append(dead, &nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data})
	}
	src, err := js.Stream(t.Context(), "FACEID")
	if err != nil {
		t.Fatal(err)
	}
	srcInfo, err := src.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	checkDeadLetters(t, dead, func(name string, created time.Time, seq uint64) []byte {
		if name != "FACEID" || !created.Equal(srcInfo.Created) {
			t.Errorf("source %s created %s, want FACEID created %s", name, created, srcInfo.Created)
		}
		m, err := src.GetMsg(t.Context(), seq)
		if err != nil {
			t.Errorf("get %s %d: %v", name, seq, err)
			return nil
		}
		return m.Data
	})
	c := committedCounters(t, b.store)
	for _, dc := range deadLetterCases {
		if c[fmt.Sprintf("faceid_exporter_dead_letters_total{reason=%q}", dc.reason)] != 1 || c[fmt.Sprintf("faceid_exporter_events_rejected_total{reason=%q}", dc.reason)] != 1 {
			t.Errorf("%s: committed counters %v", dc.reason, c)
		}
	}
	b.stop()
}
