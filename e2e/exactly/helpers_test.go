package exactly

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
)

// testCatalog is a small catalog in the CSV form of `exporter catalog`.
const testCatalog = `family,code,category,billable,billing_source,billable_before,billing_changed_at,meaning,action,note
wechat,0,system,true,seed,,,ok,,
wechat,2007,compare,false,seed,true,2021-07-19T00:00:00+08:00,x,,
nfc_server,0,nfc_server,true,no_column,,,ok,,
sdk,0,sdk,true,seed,,,ok,,
`

func mustCatalog(t *testing.T) catalog {
	t.Helper()
	c, err := parseCatalogCSV(strings.NewReader(testCatalog))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCatalogLabel(t *testing.T) {
	c := mustCatalog(t)
	for _, tc := range []struct {
		name, channel, code string
		ts                  time.Time
		wantCode, wantBill  string
	}{
		{"dated code before the change", "eid", "2007", billingChange.Add(-time.Millisecond), "2007", "true"},
		{"dated code at the change", "wechat_h5", "2007", billingChange, "2007", "false"},
		{"undated code", "wechat_h5", "0", billingChange.Add(-time.Hour), "0", "true"},
		{"code of another family", "app_sdk", "2007", billingChange, "unknown", "unknown"},
		{"unknown code", "wechat_h5", "99999", billingChange, "unknown", "unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, bill := c.label(tc.channel, tc.code, tc.ts)
			if code != tc.wantCode || bill != tc.wantBill {
				t.Errorf("label = %s/%s, want %s/%s", code, bill, tc.wantCode, tc.wantBill)
			}
		})
	}
}

func TestParseCatalogCSVErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "catalog csv: 0 records"},
		{"missing column", "family,code\nwechat,0\n", `catalog csv: no column "billable" in [family code]`},
		{"bad time", "family,code,billable,billable_before,billing_changed_at\nwechat,1,false,true,yesterday\n", "catalog csv: wechat/1: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseCatalogCSV(strings.NewReader(tc.in))
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error %v, want prefix %q", err, tc.want)
			}
		})
	}
}

var fixtureNow = time.Date(2026, 11, 30, 17, 30, 0, 0, ledger.Beijing)

func TestFixtureDeterministic(t *testing.T) {
	c := mustCatalog(t)
	a := newFixture(fixtureOptions{Seed: 1, N: 5000, Now: fixtureNow, Cat: c})
	b := newFixture(fixtureOptions{Seed: 1, N: 5000, Now: fixtureNow, Cat: c})
	d := newFixture(fixtureOptions{Seed: 2, N: 5000, Now: fixtureNow, Cat: c})
	if len(a.Msgs) != 5000 {
		t.Fatalf("%d messages, want 5000", len(a.Msgs))
	}
	same := func(x, y fixture) bool {
		for i := range x.Msgs {
			if x.Msgs[i].Subject != y.Msgs[i].Subject || !bytes.Equal(x.Msgs[i].Data, y.Msgs[i].Data) || x.Msgs[i].MsgID != y.Msgs[i].MsgID {
				return false
			}
		}
		return true
	}
	if !same(a, b) {
		t.Error("two fixtures of one seed differ")
	}
	if same(a, d) {
		t.Error("fixtures of seeds 1 and 2 are the same")
	}
}

func TestFixtureContents(t *testing.T) {
	c := mustCatalog(t)
	fx := newFixture(fixtureOptions{Seed: 7, N: 20000, Now: fixtureNow, Cat: c})
	x := fx.Expect
	ver := 0
	for _, n := range x.Verifications {
		ver += n
	}
	if x.Total != len(fx.Msgs) || ver+x.Duplicates+sumInts(x.Rejected) != x.Total {
		t.Errorf("total %d, messages %d, verifications %d + duplicates %d + rejected %d", x.Total, len(fx.Msgs), ver, x.Duplicates, sumInts(x.Rejected))
	}
	ids := map[string]bool{}
	for _, m := range fx.Msgs {
		if ids[m.MsgID] {
			t.Fatalf("Nats-Msg-Id %s repeated", m.MsgID)
		}
		ids[m.MsgID] = true
	}
	var last map[string]any
	if err := json.Unmarshal(fx.Msgs[len(fx.Msgs)-1].Data, &last); err != nil || last["code"] != "0" {
		t.Errorf("last message %s is not a valid event (%v)", fx.Msgs[len(fx.Msgs)-1].Data, err)
	}
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"duplicates", x.Duplicates > 100},
		{"events without ts", x.NoTS > 100},
		{"dated code billed before the change", x.Verifications[verKey{"wechat_h5", "2007", "true"}] > 0},
		{"dated code not billed after the change", x.Verifications[verKey{"wechat_h5", "2007", "false"}] > 0},
		{"NFC repeat within 5 minutes not billed", x.Verifications[verKey{"nfc_server", "0", "false"}] > 0},
		{"NFC successes billed", x.Verifications[verKey{"nfc_server", "0", "true"}] > x.Verifications[verKey{"nfc_server", "0", "false"}]},
		{"unknown codes", x.Verifications[verKey{"wechat_h5", "unknown", "unknown"}] > 0},
		{"every rejection reason", len(x.Rejected) == 6},
		{"Beijing 23:59:59", containsData(fx, `T23:59:59.000+08:00"`)},
		{"Beijing 00:00:00", containsData(fx, `T00:00:00.000+08:00"`)},
		{"billing change instant in UTC", containsData(fx, `"2021-07-18T16:00:00Z"`)},
		{"billing change instant in ms", containsData(fx, `"ts":1626624000000,`)},
		{"just before the change in ms", containsData(fx, `"ts":1626623999999,`)},
		{"ts null", containsData(fx, `"ts":null`)},
		{"integer codes", containsData(fx, `"code":0`)},
		{"risk", containsData(fx, `"risk":{`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.ok {
				t.Error("not in the fixture")
			}
		})
	}
}

func containsData(fx fixture, s string) bool {
	for _, m := range fx.Msgs {
		if bytes.Contains(m.Data, []byte(s)) {
			return true
		}
	}
	return false
}

func TestParseLedgerCSV(t *testing.T) {
	t.Run("rows with rule_id", func(t *testing.T) {
		rows, err := parseLedgerCSV("day,channel,code,billable,count,rule_id\n2021-07-18,wechat_h5,2007,true,2,\n2021-07-19,eid,0,true,1,r1\n")
		if err != nil {
			t.Fatal(err)
		}
		want := []ledger.Row{{Day: "2021-07-18", Channel: "wechat_h5", Code: "2007", Billable: "true", Count: 2}, {Day: "2021-07-19", Channel: "eid", Code: "0", Billable: "true", Count: 1, RuleID: "r1"}}
		if fmt.Sprint(rows) != fmt.Sprint(want) {
			t.Errorf("rows %v, want %v", rows, want)
		}
	})
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "ledger csv: no header"},
		{"wrong header", "day,code,channel,billable,count\n", `ledger csv header "day,code,channel,billable,count" does not start with "day,channel,code,billable,count"`},
		{"bad count", "day,channel,code,billable,count\n2021-07-18,eid,0,true,x\n", `ledger csv line 2: count "x": `},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseLedgerCSV(tc.in)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error %v, want prefix %q", err, tc.want)
			}
		})
	}
}

func TestDiffLedgers(t *testing.T) {
	a := []ledger.Row{{Day: "2021-07-18", Channel: "eid", Code: "0", Billable: "true", Count: 2}}
	b := []ledger.Row{{Day: "2021-07-18", Channel: "eid", Code: "0", Billable: "true", Count: 3}, {Day: "2021-07-19", Channel: "eid", Code: "0", Billable: "true", Count: 1}}
	got := strings.Join(diffLedgers(a, b), "\n")
	want := "2021-07-18,eid,0,true,: want 2, got 3\n2021-07-19,eid,0,true,: want 0, got 1"
	if got != want {
		t.Errorf("diff\n%s\nwant\n%s", got, want)
	}
}

const metricsPage = `# TYPE faceid_verifications_total counter
faceid_verifications_total{billable="true",channel="eid",code="0",outcome="success",partition="0"} 3
faceid_verifications_total{billable="true",channel="eid",code="0",outcome="success",partition="1"} 0
faceid_verifications_total{billable="false",channel="eid",code="2001",outcome="failure",partition="1"} 0
# TYPE faceid_exporter_duplicates_total counter
faceid_exporter_duplicates_total{partition="0"} 2
faceid_exporter_duplicates_total{partition="2"} 1
# TYPE faceid_exporter_checkpoint_sequence gauge
faceid_exporter_checkpoint_sequence{partition="0"} 17
faceid_exporter_checkpoint_sequence{partition="2"} 19
# TYPE faceid_exporter_partition_checkpoint_age_seconds gauge
faceid_exporter_partition_checkpoint_age_seconds{partition="1"} 4
# TYPE faceid_exporter_checkpoint_failures_total counter
faceid_exporter_checkpoint_failures_total{reason="error"} 0
faceid_exporter_checkpoint_failures_total{reason="fenced"} 1
`

func TestScrapeHelpers(t *testing.T) {
	s, err := parseMetrics(strings.NewReader(metricsPage))
	if err != nil {
		t.Fatal(err)
	}
	other, err := parseMetrics(strings.NewReader("# TYPE faceid_exporter_duplicates_total counter\nfaceid_exporter_duplicates_total{partition=\"1\"} 4\n"))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("sum over replicas ignores partition and zeros", func(t *testing.T) {
		got := sumSeries([]scrape{s, other})
		want := map[string]float64{
			`faceid_verifications_total{billable="true",channel="eid",code="0",outcome="success"}`: 3,
			`faceid_exporter_duplicates_total{}`:                                                   7,
		}
		if d := diffSeries(want, got); len(d) > 0 {
			t.Error(strings.Join(d, "\n"))
		}
	})
	t.Run("get", func(t *testing.T) {
		if v, ok := s.get("faceid_exporter_checkpoint_failures_total", "reason", "fenced"); !ok || v != 1 {
			t.Errorf("fenced %v %v", v, ok)
		}
		if _, ok := s.get("faceid_exporter_checkpoint_sequence", "partition", "1"); ok {
			t.Error("partition 1 has no sequence")
		}
	})
	t.Run("partition series leave out the every-replica gauges", func(t *testing.T) {
		if got := s.partitionSeries("1"); len(got) != 2 {
			t.Errorf("partition 1 series %v, want the two verifications series", got)
		}
		if got := s.partitionSeries("2"); len(got) != 2 {
			t.Errorf("partition 2 series %v, want duplicates and checkpoint sequence", got)
		}
	})
	t.Run("accounted", func(t *testing.T) {
		if got := s.accounted(); got != 6 {
			t.Errorf("accounted %v, want 6", got)
		}
	})
	t.Run("owners", func(t *testing.T) {
		a, b := &proc{name: "a"}, &proc{name: "b"}
		own := owners(map[*proc]scrape{a: s, b: other})
		if fmt.Sprint(names(own["0"]), names(own["2"]), len(own["1"])) != "[a] [a] 0" {
			t.Errorf("owners %v", own)
		}
	})
}

func TestListenRE(t *testing.T) {
	for _, tc := range []struct{ name, line, want string }{
		{"logfmt", `time=2026-12-01T09:40:04.123Z level=INFO source=tls_config.go:395 msg="Listening on" address=127.0.0.1:41234`, "127.0.0.1:41234"},
		{"ipv6", `level=INFO msg="Listening on" address=[::1]:9479 http2=false`, "[::1]:9479"},
		{"json", `{"level":"INFO","msg":"Listening on","address":"127.0.0.1:5"}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			if m := listenRE.FindStringSubmatch(tc.line); m != nil {
				got = m[1]
			}
			if got != tc.want {
				t.Errorf("address %q, want %q", got, tc.want)
			}
		})
	}
}

// TestHarnessFaults exercises the fault injection against the exporter as
// built: a replica frozen with SIGSTOP stops answering and answers again
// after SIGCONT, kill -9 ends it and a restart serves again, and a NATS
// server restarted on its port and store keeps the stream.
func TestHarnessFaults(t *testing.T) {
	bin := exporterBinary(t)
	srv := newSingle(t)
	_, js := connect(t, srv.clientURL())
	createStream(t, js, streamConfig(1))
	p := newProc(t, t.TempDir(), "harness", bin, "serve", "--nats.url", srv.clientURL(), "--jetstream.stream", streamName)
	p.start()
	ready := func() (bool, string) {
		resp, err := httpClient.Get(p.url() + "/-/ready")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	}
	eventually(t, 30*time.Second, 50*time.Millisecond, "the replica ready", ready)

	t.Run("SIGSTOP and SIGCONT", func(t *testing.T) {
		if err := p.freeze(); err != nil {
			t.Fatal(err)
		}
		short := *httpClient
		short.Timeout = 300 * time.Millisecond
		if resp, err := short.Get(p.url() + "/metrics"); err == nil {
			resp.Body.Close()
			t.Error("a frozen replica answered")
		}
		if err := p.thaw(); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, 50*time.Millisecond, "the thawed replica answering", ready)
	})
	t.Run("kill -9 and restart", func(t *testing.T) {
		pid, old := p.pid(), p.url()
		if err := p.restart(); err != nil {
			t.Fatal(err)
		}
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("pid %d still alive after kill -9", pid)
		}
		if p.pid() == pid {
			t.Error("restart kept the pid")
		}
		t.Logf("%s then %s", old, p.url())
		eventually(t, 30*time.Second, 50*time.Millisecond, "the restarted replica ready", ready)
	})
	t.Run("NATS restart keeps port and stream", func(t *testing.T) {
		before := srv.clientURL()
		if err := publish(t.Context(), js, events("h", 10, "eid", "0", time.Now()), 0); err != nil {
			t.Fatal(err)
		}
		if err := srv.restart(200 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if srv.clientURL() != before {
			t.Fatalf("restarted on %s, was %s", srv.clientURL(), before)
		}
		if err := publish(t.Context(), js, events("i", 5, "eid", "0", time.Now()), 0); err != nil {
			t.Fatal(err)
		}
		if st := streamState(t, js, streamName); st.Msgs != 15 {
			t.Errorf("stream holds %d messages after the restart, want 15", st.Msgs)
		}
		eventually(t, 30*time.Second, 50*time.Millisecond, "the replica ready after the NATS restart", ready)
	})
	if ok, state := p.exited(); ok {
		t.Fatalf("the replica exited: %s", state)
	}
}

// TestPublishAcrossRestart: the publisher rides out a server restart and
// stores every message exactly once (Nats-Msg-Id), in batch order.
func TestPublishAcrossRestart(t *testing.T) {
	srv := newSingle(t)
	_, js := connect(t, srv.clientURL())
	createStream(t, js, streamConfig(1))
	fx := newFixture(fixtureOptions{Seed: 3, N: 20000, Now: fixtureNow, Cat: mustCatalog(t)})
	done := make(chan error, 1)
	go func() { done <- publish(t.Context(), js, fx.Msgs, 3*time.Second) }()
	eventually(t, 30*time.Second, 10*time.Millisecond, "publishing under way", func() (bool, string) {
		st := streamState(t, js, streamName)
		return st.Msgs > 2000, fmt.Sprint(st.Msgs)
	})
	if err := srv.restart(300 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := streamState(t, js, streamName); st.Msgs != uint64(len(fx.Msgs)) || st.LastSeq != uint64(len(fx.Msgs)) {
		t.Errorf("stream holds %d messages, last sequence %d; want %d", st.Msgs, st.LastSeq, len(fx.Msgs))
	}
}

// TestHarnessCluster: the in-process cluster serves an R3 stream through a
// stream leader stepdown and the restart of the leader's node.
func TestHarnessCluster(t *testing.T) {
	cl := newCluster(t)
	nc, js := connect(t, cl.urls())
	createStream(t, js, streamConfig(3))
	if err := publish(t.Context(), js, events("c", 100, "eid", "0", time.Now()), 0); err != nil {
		t.Fatal(err)
	}
	leader := cl.streamLeader(streamName)
	if leader == nil {
		t.Fatal("no stream leader")
	}
	eventually(t, 30*time.Second, 200*time.Millisecond, "stepdown", func() (bool, string) {
		err := jsAPI(nc, "$JS.API.STREAM.LEADER.STEPDOWN."+streamName)
		return err == nil, fmt.Sprint(err)
	})
	eventually(t, 30*time.Second, 50*time.Millisecond, "a new stream leader", func() (bool, string) {
		l := cl.streamLeader(streamName)
		return l != nil && l != leader, nodeName(l)
	})
	leader = cl.streamLeader(streamName)
	port := leader.port
	if err := leader.restart(500 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if leader.port != port {
		t.Errorf("node %s restarted on port %d, was %d", leader.name, leader.port, port)
	}
	eventually(t, 60*time.Second, 50*time.Millisecond, "the meta group whole again", cl.metaReady)
	if err := publish(t.Context(), js, events("d", 50, "eid", "0", time.Now()), 0); err != nil {
		t.Fatal(err)
	}
	if st := streamState(t, js, streamName); st.Msgs != 150 {
		t.Errorf("stream holds %d messages, want 150", st.Msgs)
	}
	if err := jsAPI(nc, "$JS.API.STREAM.LEADER.STEPDOWN.NOPE"); err == nil {
		t.Error("stepdown of a missing stream succeeded")
	}
}
