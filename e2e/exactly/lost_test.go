package exactly

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
)

// events returns n valid events on channel with code at ts, ids prefix-1..n.
func events(prefix string, n int, channel, code string, ts time.Time) []msg {
	var out []msg
	for i := range n {
		e := event{id: fmt.Sprintf("%s-%d", prefix, i+1), channel: channel, code: code, ts: ts}
		out = append(out, msg{Subject: subjectPrefix + channel, Data: e.encode(), MsgID: e.id})
	}
	return out
}

// lostRig is one server, the stream and one replica of group "lost".
type lostRig struct {
	t   *testing.T
	srv *node
	js  jetstream.JetStream
	g   *group
	p   *proc
	// total is how many messages the replica must have counted; last the
	// stream's last sequence.
	total int
}

func newLostRig(t *testing.T, cfg jetstream.StreamConfig, partitions int) *lostRig {
	bin := exporterBinary(t)
	srv := newSingle(t)
	_, js := connect(t, srv.clientURL())
	createStream(t, js, cfg)
	g := newGroup(t, t.TempDir(), bin, srv.clientURL(), "lost", 1, partitions, chaosFlags...)
	g.start()
	return &lostRig{t: t, srv: srv, js: js, g: g, p: g.procs[0]}
}

func (r *lostRig) publish(msgs []msg) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := publish(ctx, r.js, msgs, 0); err != nil {
		r.t.Fatal(err)
	}
}

// settle waits until the replica counted and committed r.total messages.
func (r *lostRig) settle() scrape {
	r.t.Helper()
	st := streamState(r.t, r.js, streamName)
	return r.g.waitSettled(r.total, st.LastSeq, time.Minute)[r.p]
}

// stop stops the replica gracefully.
func (r *lostRig) stop() {
	r.t.Helper()
	start := time.Now()
	defer func() { r.t.Logf("stopped in %s", time.Since(start).Round(time.Millisecond)) }()
	if err := r.p.term(); err != nil {
		r.t.Fatal(err)
	}
}

// lostLogged checks that the replica logged the lost input as a warning or
// error.
func (r *lostRig) lostLogged(what string) {
	r.t.Helper()
	re := regexp.MustCompile(`(?i)level=(warn|error).*(lost|reset|re-?created)`)
	for _, l := range strings.Split(r.p.logText(), "\n") {
		if re.MatchString(l) {
			r.t.Logf("logged: %s", l)
			return
		}
	}
	r.t.Errorf("%s: no level=warn|error line mentioning lost input or a reset in %s's log", what, r.p.name)
}

// lostBy returns the lost-messages counter of the partition that counted
// channel's events and the sum over the others.
func lostBy(t *testing.T, s scrape, channel string) (own, others float64) {
	t.Helper()
	counted := s.byPartition("faceid_verifications_total")
	lost := s.byPartition("faceid_exporter_jetstream_lost_messages_total")
	var part string
	for _, p := range slices.Sorted(maps.Keys(counted)) {
		if s.sum("faceid_verifications_total", "partition", p, "channel", channel) > 0 {
			part = p
		}
	}
	if part == "" {
		t.Fatalf("no partition counted %s: %v", channel, counted)
	}
	for p, v := range lost {
		if p == part {
			own += v
		} else {
			others += v
		}
	}
	t.Logf("%s is partition %s's: lost by partition %v", channel, part, lost)
	return own, others
}

// removedLogged counts the replica's log lines about removed messages.
func (r *lostRig) removedLogged() int {
	return strings.Count(r.p.logText(), "removed before they were read")
}

// TestLostInput: messages removed from the stream before they were read
// (limits, purge) and a stream re-created under the same name are counted,
// not silent, and counting goes on from what is there, with one partition
// and with two (where a partition cannot tell which removed messages were
// its own: see docs/service.md).
func TestLostInput(t *testing.T) {
	now := time.Now()
	for _, parts := range []int{1, 3} {
		t.Run(fmt.Sprintf("nothing lost when the group starts on an empty stream, %d partitions", parts), func(t *testing.T) {
			r := newLostRig(t, streamConfig(1), parts)
			eventually(t, time.Minute, 50*time.Millisecond, "every partition acquired on the empty stream", func() (bool, string) {
				return allOwned(r.g, false)
			})
			var msgs []msg
			for _, ch := range channels {
				msgs = append(msgs, events("e-"+ch, 3, ch, "0", now)...)
			}
			r.publish(msgs)
			r.total = len(msgs)
			r.settle()
			// A replica that restores the checkpoint checks the stream's
			// first sequence at once (a running one only on its poll).
			r.p.kill()
			r.p.start()
			s := r.settle()
			if got := s.sum("faceid_exporter_jetstream_lost_messages_total"); got != 0 {
				t.Errorf("faceid_exporter_jetstream_lost_messages_total %v, want 0 (nothing was removed from the stream); by partition %v",
					got, s.byPartition("faceid_exporter_jetstream_lost_messages_total"))
			}
		})
	}
	for _, parts := range []int{1, 2} {
		t.Run(fmt.Sprintf("limits, %d partitions", parts), func(t *testing.T) {
			cfg := streamConfig(1)
			cfg.MaxMsgs, cfg.Discard = 50, jetstream.DiscardOld
			r := newLostRig(t, cfg, parts)
			r.countFirst(20, "wechat_h5", now)
			r.stop()
			// 100 more while stopped: the stream keeps the last 50 (71..120), so
			// 21..70 age out unread.
			r.publish(events("b", 100, "wechat_h5", "0", now))
			if st := streamState(t, r.js, streamName); st.FirstSeq != 71 || st.LastSeq != 120 {
				t.Fatalf("stream holds %d..%d, want 71..120", st.FirstSeq, st.LastSeq)
			}
			r.p.start()
			r.total = 20 + 50
			s := r.settle()
			own, others := lostBy(t, s, "wechat_h5")
			if own != 50 {
				t.Errorf("wechat_h5's partition counts %v lost, want 50 (sequences 21..70 removed by MaxMsgs before they were read)", own)
			}
			// The others cannot tell whose the removed messages were: at most
			// the removed sequences their consumer had not looked past (21..70
			// when it looked before the stop, 1..70 at most).
			if others > float64(70*(parts-1)) {
				t.Errorf("the other partitions count %v lost, more than the 70 removed sequences each", others)
			}
			if got := s.sum("faceid_exporter_jetstream_stream_resets_total"); got != 0 {
				t.Errorf("faceid_exporter_jetstream_stream_resets_total %v, want 0", got)
			}
			if got := s.sum("faceid_verifications_total"); got != 70 {
				t.Errorf("faceid_verifications_total %v, want 70 (20 before, 50 after, none lost twice)", got)
			}
			r.lostLogged("limits")
		})
		t.Run(fmt.Sprintf("purge, %d partitions", parts), func(t *testing.T) {
			r := newLostRig(t, streamConfig(1), parts)
			r.countFirst(20, "eid", now)
			r.stop()
			r.publish(events("b", 30, "eid", "0", now))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := r.js.Stream(ctx, streamName)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Purge(ctx); err != nil {
				t.Fatal(err)
			}
			r.publish(events("c", 10, "eid", "0", now))
			if st := streamState(t, r.js, streamName); st.FirstSeq != 51 || st.LastSeq != 60 {
				t.Fatalf("stream holds %d..%d after the purge, want 51..60", st.FirstSeq, st.LastSeq)
			}
			r.p.start()
			r.total = 20 + 10
			m := r.settle()
			own, others := lostBy(t, m, "eid")
			if own != 30 {
				t.Errorf("eid's partition counts %v lost, want 30 (sequences 21..50 purged before they were read)", own)
			}
			if others > float64(50*(parts-1)) {
				t.Errorf("the other partitions count %v lost, more than the 50 purged sequences each", others)
			}
			if got := m.sum("faceid_verifications_total"); got != 30 {
				t.Errorf("faceid_verifications_total %v, want 30", got)
			}
			r.lostLogged("purge")
		})
		t.Run(fmt.Sprintf("re-created stream, %d partitions", parts), func(t *testing.T) {
			r := newLostRig(t, streamConfig(1), parts)
			r.countFirst(20, "app_sdk", now)
			r.stop()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := r.js.DeleteStream(ctx, streamName); err != nil {
				t.Fatal(err)
			}
			createStream(t, r.js, streamConfig(1))
			r.publish(events("b", 10, "app_sdk", "0", now))
			r.p.start()
			r.total = 20 + 10
			m := r.settle()
			r.checkRecreated(m, 30, parts)
			r.lostLogged("re-created stream")
		})
		// The ordered consumer re-creates itself on the new stream at the old
		// sequence + 1: its messages must not be counted under the old
		// stream's identity and then again from the new stream's start (600
		// accounted, 250 of them as duplicates).
		t.Run(fmt.Sprintf("re-created stream while running, %d partitions", parts), func(t *testing.T) {
			r := newLostRig(t, streamConfig(1), parts)
			r.countFirst(50, "pc_h5", now)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := r.js.DeleteStream(ctx, streamName); err != nil {
				t.Fatal(err)
			}
			createStream(t, r.js, streamConfig(1))
			r.publish(events("b", 300, "pc_h5", "0", now))
			r.total = 50 + 300
			r.settle()
			// A partition with nothing to read notices the new stream on its
			// poll (every 5 s).
			var m scrape
			eventually(t, time.Minute, 200*time.Millisecond, "every partition reset", func() (bool, string) {
				var err error
				if m, err = getMetrics(r.p.url()); err != nil {
					return false, err.Error()
				}
				got := m.sum("faceid_exporter_jetstream_stream_resets_total")
				return got == float64(parts), fmt.Sprintf("%v resets", got)
			})
			r.checkRecreated(m, 350, parts)
		})
	}
	// A partition that reads none of the removed messages' subjects counts
	// none of them: two partitions, a stream of 20 messages, 60 messages of
	// one channel, all read.
	t.Run("quiet partition, 2 partitions", func(t *testing.T) {
		cfg := streamConfig(1)
		cfg.MaxMsgs, cfg.Discard = 20, jetstream.DiscardOld
		r := newLostRig(t, cfg, 2)
		eventually(t, time.Minute, 50*time.Millisecond, "every partition acquired", func() (bool, string) {
			return allOwned(r.g, false)
		})
		for i := range 3 {
			r.publish(events(fmt.Sprintf("q%d", i), 20, "wechat_h5", "0", now))
		}
		r.total = 60
		r.settle()
		// Both partitions poll (every 5 s) at least twice with the first 40
		// sequences gone: the count must stay 0 throughout.
		deadline := time.Now().Add(12 * time.Second)
		for time.Now().Before(deadline) {
			s, err := getMetrics(r.p.url())
			if err != nil {
				t.Fatal(err)
			}
			if got := s.sum("faceid_exporter_jetstream_lost_messages_total"); got != 0 {
				t.Fatalf("faceid_exporter_jetstream_lost_messages_total %v, want 0 (every message was read); by partition %v",
					got, s.byPartition("faceid_exporter_jetstream_lost_messages_total"))
			}
			<-time.After(250 * time.Millisecond)
		}
		if n := r.removedLogged(); n > 0 {
			t.Errorf("%d log lines report removed messages; none was lost", n)
		}
	})
}

// checkRecreated checks the books after the stream was re-created: every
// message of both streams counted once, one reset per partition, nothing lost.
func (r *lostRig) checkRecreated(m scrape, want float64, parts int) {
	r.t.Helper()
	if got := m.sum("faceid_exporter_jetstream_stream_resets_total"); got != float64(parts) {
		r.t.Errorf("faceid_exporter_jetstream_stream_resets_total %v, want %d (one per partition)", got, parts)
	}
	if got := m.sum("faceid_exporter_jetstream_lost_messages_total"); got != 0 {
		r.t.Errorf("faceid_exporter_jetstream_lost_messages_total %v, want 0 (every message of the new stream was read)", got)
	}
	if got := m.sum("faceid_exporter_duplicates_total"); got != 0 {
		r.t.Errorf("faceid_exporter_duplicates_total %v, want 0 (each message was read once)", got)
	}
	if got := m.sum("faceid_verifications_total"); got != want {
		r.t.Errorf("faceid_verifications_total %v, want %v (the counters continue across the reset)", got, want)
	}
}

// TestEverySubjectAccounted: a message on a subject of the stream that names
// no catalog channel is never silent: it is read once (rejected, or counted
// when its channel field names a catalog channel), or, when the partitions
// read only the catalog channels' subjects, reported by
// faceid_exporter_jetstream_unpartitioned_messages.
func TestEverySubjectAccounted(t *testing.T) {
	bin := exporterBinary(t)
	srv := newSingle(t)
	_, js := connect(t, srv.clientURL())
	createStream(t, js, streamConfig(1))
	now := time.Now()
	var msgs []msg
	for i := range 5 {
		msgs = append(msgs, msg{Subject: subjectPrefix + "bogus", Data: fmt.Appendf(nil, `{"id":"u%d","code":"0"}`, i), MsgID: fmt.Sprintf("u%d", i)})
	}
	for i := range 4 {
		e := event{id: fmt.Sprintf("o%d", i), channel: "wechat_h5", code: "0", ts: now}
		msgs = append(msgs, msg{Subject: subjectPrefix + "other.wechat", Data: e.encode(), MsgID: e.id})
	}
	const elsewhere = 9
	msgs = append(msgs, events("last", 1, "wechat_h5", "0", now)...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := publish(ctx, js, msgs, 0); err != nil {
		t.Fatal(err)
	}
	for _, parts := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d partitions", parts), func(t *testing.T) {
			g := newGroup(t, t.TempDir(), bin, srv.clientURL(), fmt.Sprintf("subjects%d", parts), 1, parts, chaosFlags...)
			g.start()
			var s scrape
			eventually(t, 30*time.Second, 100*time.Millisecond, "every message counted, or those on other subjects reported", func() (bool, string) {
				var err error
				if s, err = getMetrics(g.procs[0].url()); err != nil {
					return false, err.Error()
				}
				acc := s.accounted()
				un, ok := s.get("faceid_exporter_jetstream_unpartitioned_messages")
				return acc == float64(len(msgs)) || (acc == float64(len(msgs)-elsewhere) && ok && un == elsewhere),
					fmt.Sprintf("%v of %d accounted, faceid_exporter_jetstream_unpartitioned_messages %v (exposed %v)", acc, len(msgs), un, ok)
			})
			if s.accounted() != float64(len(msgs)) {
				if parts == 1 {
					t.Errorf("one partition reads the whole subject, yet %v of %d messages are accounted", s.accounted(), len(msgs))
				}
				t.Logf("the %d messages on faceid.results.bogus and faceid.results.other.wechat are not counted; faceid_exporter_jetstream_unpartitioned_messages reports them", elsewhere)
				return
			}
			if got := s.sum("faceid_exporter_events_rejected_total", "reason", "unknown_channel"); got != 5 {
				t.Errorf("faceid_exporter_events_rejected_total{reason=\"unknown_channel\"} %v, want 5 (faceid.results.bogus)", got)
			}
			if got := s.sum("faceid_verifications_total", "channel", "wechat_h5"); got != 5 {
				t.Errorf("faceid_verifications_total{channel=\"wechat_h5\"} %v, want 5 (4 on faceid.results.other.wechat)", got)
			}
		})
	}
}

// ledgerEvent is an event of TestLedgerDays with the row it must land on.
type ledgerEvent struct {
	channel, code, ts string // ts as sent: RFC 3339 or Unix ms
}

// TestLedgerDays: the ledger books an event on its own Beijing day, by event
// time: 23:59:59+08:00 and 00:00:00+08:00 (in every ts form) land on
// different days, a late event lands on its earlier day, the dated WeChat
// codes are billed before 2021-07-19 and not from it, and an event without
// ts lands on its stream timestamp's day.
func TestLedgerDays(t *testing.T) {
	bin := exporterBinary(t)
	cat := loadCatalog(t, bin)
	srv := newSingle(t)
	_, js := connect(t, srv.clientURL())
	createStream(t, js, streamConfig(1))

	evs := []ledgerEvent{
		{"wechat_h5", "2007", `"2021-07-18T23:59:59+08:00"`},
		{"wechat_h5", "2007", `"2021-07-18T15:59:59.999Z"`},
		{"wechat_h5", "2007", `"2021-07-19T00:00:00+08:00"`},
		{"wechat_h5", "2007", `"2021-07-18T16:00:00Z"`},
		{"eid", "2012", `1626623999999`},
		{"eid", "2012", `1626624000000`},
		{"app_sdk", "0", `"2021-07-25T23:59:59+08:00"`},
		{"app_sdk", "0", `"2021-07-25T23:59:59.999+08:00"`},
		{"app_sdk", "0", `"2021-07-26T00:00:00+08:00"`},
		{"app_sdk", "0", `"2021-07-25T16:00:00Z"`},
		{"app_sdk", "0", `"2021-07-25T15:59:59Z"`},
		{"nfc_terminal", "0", `"2021-07-28T09:00:00+08:00"`},
		{"nfc_terminal", "0", `"2021-07-28T09:01:00+08:00"`},
		{"nfc_terminal", "0", `"2021-07-28T09:02:00+08:00"`},
		// Late: published after 2021-07-28's events, booked on its own day.
		{"nfc_terminal", "0", `"2021-07-20T12:00:00+08:00"`},
		{"willingness", "66666006", `"2021-07-28T10:00:00+08:00"`},
		{"willingness", "66666006", `"2021-07-21T23:59:59+08:00"`},
	}
	want := ledger.Books{}
	var msgs []msg
	for i, e := range evs {
		id := fmt.Sprintf("day-%d", i)
		data := fmt.Sprintf(`{"id":%q,"ts":%s,"channel":%q,"code":%q}`, id, e.ts, e.channel, e.code)
		msgs = append(msgs, msg{Subject: subjectPrefix + e.channel, Data: []byte(data), MsgID: id})
		ts, err := parseTS(e.ts)
		if err != nil {
			t.Fatal(err)
		}
		code, billable := cat.label(e.channel, e.code, ts)
		want.Add(ledger.Key{Day: ledger.DayOf(ts), Channel: e.channel, Code: code, Billable: billable}, 1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := publish(ctx, js, msgs, 0); err != nil {
		t.Fatal(err)
	}
	g := newGroup(t, t.TempDir(), bin, srv.clientURL(), "days", 1, 3, "--jetstream.checkpoint-interval", "200ms")
	g.start()
	st := streamState(t, js, streamName)
	g.waitSettled(len(msgs), st.LastSeq, time.Minute)

	to := ledger.DayOf(time.Now().Add(72 * time.Hour))
	july, _ := ledger.ParseDay("2021-07-01")
	wantRows := want.Rows(july, to)
	t.Run("exporter ledger", func(t *testing.T) {
		out, err := ledgerCLI(bin, srv.clientURL(), streamName, "days", "2021-07-01", "2021-07-31", "csv")
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseLedgerCSV(out)
		if err != nil {
			t.Fatal(err)
		}
		if diff := diffLedgers(wantRows, got); len(diff) > 0 {
			t.Errorf("ledger of July 2021 differs (want = booked by event time):\n%s\n--- got:\n%s", strings.Join(diff, "\n"), out)
		}
	})
	t.Run("api serves the rows as csv", func(t *testing.T) {
		out, err := httpLedger(g.procs[0].url(), "2021-07-01", "2021-07-31")
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseLedgerCSV(out)
		if err != nil {
			t.Fatal(err)
		}
		if diff := diffLedgers(wantRows, got); len(diff) > 0 {
			t.Errorf("/api/v1/ledger of July 2021 differs (want = booked by event time):\n%s\n--- got:\n%s", strings.Join(diff, "\n"), out)
		}
	})
	t.Run("api serves the rows as json", func(t *testing.T) {
		resp, err := httpClient.Get(g.procs[0].url() + "/api/v1/ledger?from=2021-07-01&to=2021-07-31&format=json")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /api/v1/ledger: %s: %s", resp.Status, body)
		}
		var doc struct {
			Stream, Group, From, To string
			Rows                    []ledger.Row
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		if doc.Stream != streamName || doc.Group != "days" || doc.From != "2021-07-01" || doc.To != "2021-07-31" {
			t.Errorf("ledger json header stream %q group %q from %q to %q", doc.Stream, doc.Group, doc.From, doc.To)
		}
		if diff := diffLedgers(wantRows, doc.Rows); len(diff) > 0 {
			t.Errorf("/api/v1/ledger json differs:\n%s", strings.Join(diff, "\n"))
		}
	})
	t.Run("event without ts lands on its stream timestamp's day", func(t *testing.T) {
		m := msg{Subject: subjectPrefix + "willingness", Data: []byte(`{"id":"nots","channel":"willingness","code":"66666006"}`), MsgID: "nots"}
		if err := publish(ctx, js, []msg{m}, 0); err != nil {
			t.Fatal(err)
		}
		st := streamState(t, js, streamName)
		s, err := js.Stream(ctx, streamName)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := s.GetMsg(ctx, st.LastSeq)
		if err != nil {
			t.Fatal(err)
		}
		day := ledger.DayOf(raw.Time)
		g.waitSettled(len(msgs)+1, st.LastSeq, time.Minute)
		out, err := httpLedger(g.procs[0].url(), day.String(), day.String())
		if err != nil {
			t.Fatal(err)
		}
		rows, err := parseLedgerCSV(out)
		if err != nil {
			t.Fatal(err)
		}
		code, billable := cat.label("willingness", "66666006", raw.Time)
		wantRow := ledger.Row{Day: day.String(), Channel: "willingness", Code: code, Billable: billable, Count: 1}
		if diff := diffLedgers([]ledger.Row{wantRow}, rows); len(diff) > 0 {
			t.Errorf("ledger of %s (the stream timestamp %s) differs:\n%s\n--- got:\n%s", day, raw.Time.In(ledger.Beijing), strings.Join(diff, "\n"), out)
		}
	})
}

// parseTS reads a ts as the fixture sends it: a quoted RFC 3339 time or Unix
// milliseconds.
func parseTS(s string) (time.Time, error) {
	if strings.HasPrefix(s, `"`) {
		return time.Parse(time.RFC3339Nano, strings.Trim(s, `"`))
	}
	var ms int64
	if _, err := fmt.Sscan(s, &ms); err != nil {
		return time.Time{}, fmt.Errorf("ts %s: %w", s, err)
	}
	return time.UnixMilli(ms), nil
}

// countFirst publishes n events of channel ("a" ids) and waits until the
// group has counted and committed them.
func (r *lostRig) countFirst(n int, channel string, now time.Time) {
	r.publish(events("a", n, channel, "0", now))
	r.total = n
	r.settle()
}
