package exporterapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/faceid-observability/faceid-exporter/grafana-plugin/pkg/exporterapi"
	"github.com/faceid-observability/faceid-exporter/grafana-plugin/pkg/internal/fixture"
)

func newClient(t *testing.T, url string, auth exporterapi.Auth) *exporterapi.Client {
	t.Helper()
	c, err := exporterapi.New(url, auth, &http.Client{Timeout: 5 * time.Second}, &http.Client{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		name, in, want, err string
	}{
		{name: "plain", in: "http://exporter:9479", want: "http://exporter:9479"},
		{name: "trailing slash and path", in: " https://proxy/faceid/ ", want: "https://proxy/faceid"},
		{name: "empty", in: "", err: "exporter URL is empty"},
		{name: "no scheme", in: "exporter:9479", err: `exporter URL "exporter:9479": scheme must be http or https`},
		{name: "ftp", in: "ftp://exporter", err: `exporter URL "ftp://exporter": scheme must be http or https`},
		{name: "no host", in: "http:///x", err: `exporter URL "http:///x" has no host`},
		{name: "query", in: "http://e:9479/?a=b", err: `exporter URL "http://e:9479/?a=b" must not have a query or fragment`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := exporterapi.ParseURL(tc.in)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || u.String() != tc.want {
				t.Fatalf("ParseURL(%q) = %v, %v; want %s", tc.in, u, err, tc.want)
			}
		})
	}
}

func TestBillableDecoding(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: `true`, want: "true"},
		{in: `false`, want: "false"},
		{in: `null`, want: "unknown"},
		{in: `"unknown"`, want: "unknown"},
		{in: `"true"`, want: "true"},
		{in: `"maybe"`, err: `billable: "maybe" is not true, false or unknown`},
		{in: `1`, err: `billable: 1 is not a string or boolean`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			var c exporterapi.Code
			err := json.Unmarshal([]byte(`{"billable":`+tc.in+`}`), &c)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || string(c.Billable) != tc.want {
				t.Fatalf("billable %s decoded to %q, %v; want %q", tc.in, c.Billable, err, tc.want)
			}
		})
	}
}

func TestEndpoints(t *testing.T) {
	srv := fixture.New(fixture.Options{})
	defer srv.Close()
	c := newClient(t, srv.URL, exporterapi.Auth{})
	ctx := context.Background()

	t.Run("catalog", func(t *testing.T) {
		cat, err := c.Catalog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(cat.Channels(), ","); got != "wechat_h5,wechat_miniprogram,eid,app_sdk,standalone_h5,pc_h5,willingness,nfc_server,nfc_terminal" {
			t.Errorf("channels = %s", got)
		}
		if len(cat.Codes) != 11 {
			t.Errorf("codes = %d, want 11", len(cat.Codes))
		}
		byKey := map[string]exporterapi.Code{}
		for _, k := range cat.Codes {
			byKey[k.Family+"/"+k.Code] = k
		}
		if k := byKey["willingness/0"]; k.Billable != "unknown" || k.Billing != "not_in_seed" {
			t.Errorf("willingness/0 = %+v, want billable unknown from billing source not_in_seed", k)
		}
		if k := byKey["sdk/66660004"]; k.Billable != "true" || k.Category != "sdk" || k.Meaning == "" {
			t.Errorf("sdk/66660004 = %+v", k)
		}
		if f := cat.FamilyOf("pc_h5"); f != "sdk" {
			t.Errorf("FamilyOf(pc_h5) = %q", f)
		}
	})
	t.Run("summary", func(t *testing.T) {
		s, err := c.Summary(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var total float64
		for _, r := range s.Rows {
			total += r.Count
		}
		if len(s.Rows) != 54 || total != 1608 || !s.Since.Equal(time.Date(2026, 11, 26, 1, 0, 0, 0, time.UTC)) {
			t.Errorf("summary: %d rows, total %v, since %v", len(s.Rows), total, s.Since)
		}
	})
	t.Run("events", func(t *testing.T) {
		evs, err := c.Events(ctx, exporterapi.KindHighRisk, 0)
		if err != nil {
			t.Fatal(err)
		}
		if evs.Kind != "high_risk" || len(evs.Events) != 2 {
			t.Fatalf("events = %+v", evs)
		}
		e := evs.Events[1]
		if e.ID != "evt-hr-1" || *e.Risk.DeviceLevel != 4 || *e.Risk.RiskLevel != 5 || strings.Join(e.Risk.DeviceTags, ",") != "5012,5007" ||
			!e.TS.Equal(time.Date(2026, 11, 26, 2, 14, 0, 0, time.UTC)) {
			t.Errorf("event = %+v", e)
		}
		evs, err = c.Events(ctx, exporterapi.KindBillableFailure, 1)
		if err != nil || len(evs.Events) != 1 || evs.Events[0].ID != "evt-bf-3" {
			t.Fatalf("limit 1: %+v, %v", evs, err)
		}
		u, err := c.Events(ctx, exporterapi.KindUnknownCode, 0)
		if err != nil || u.Events[0].Known || u.Events[0].RawCode != "99999999" || u.Events[0].Code != "unknown" {
			t.Fatalf("unknown code: %+v, %v", u, err)
		}
		bf, _ := c.Events(ctx, exporterapi.KindBillableFailure, 0)
		if last := bf.Events[2]; last.Risk.DeviceLevel != nil || last.Risk.RiskLevel != nil {
			t.Errorf("absent levels decoded as %v, %v", last.Risk.DeviceLevel, last.Risk.RiskLevel)
		}
	})
	t.Run("bad limit is the exporter's error", func(t *testing.T) {
		_, err := c.Events(ctx, exporterapi.KindHighRisk, fixture.RingSize+1)
		var ae *exporterapi.APIError
		if !errors.As(err, &ae) || ae.StatusCode != 400 || ae.NotAPI || ae.Message != `limit "1001": want an integer from 1 to 1000` {
			t.Fatalf("error = %#v", err)
		}
	})
	t.Run("bad kind is refused before the request", func(t *testing.T) {
		before := srv.Requests("/api/v1/events")
		_, err := c.Events(ctx, "everything", 0)
		if err == nil || err.Error() != `event kind "everything" is not one of billable_failure, high_risk, unknown_code` {
			t.Fatalf("error = %v", err)
		}
		if srv.Requests("/api/v1/events") != before {
			t.Error("a request was sent")
		}
	})
	t.Run("ready", func(t *testing.T) {
		if err := c.Ready(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func TestNotReady(t *testing.T) {
	srv := fixture.New(fixture.Options{NotReady: true})
	defer srv.Close()
	err := newClient(t, srv.URL, exporterapi.Auth{}).Ready(context.Background())
	var ae *exporterapi.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 503 {
		t.Fatalf("error = %v", err)
	}
}

func TestAuth(t *testing.T) {
	for _, tc := range []struct {
		name   string
		server fixture.Options
		auth   exporterapi.Auth
		ok     bool
	}{
		{name: "basic", server: fixture.Options{User: "grafana", Password: "s3cret"}, auth: exporterapi.Auth{User: "grafana", Password: "s3cret"}, ok: true},
		{name: "basic wrong password", server: fixture.Options{User: "grafana", Password: "s3cret"}, auth: exporterapi.Auth{User: "grafana", Password: "nope"}},
		{name: "basic missing", server: fixture.Options{User: "grafana", Password: "s3cret"}},
		{name: "bearer", server: fixture.Options{Token: "tok"}, auth: exporterapi.Auth{Token: "tok"}, ok: true},
		{name: "bearer wrong", server: fixture.Options{Token: "tok"}, auth: exporterapi.Auth{Token: "other"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := fixture.New(tc.server)
			defer srv.Close()
			_, err := newClient(t, srv.URL, tc.auth).Summary(context.Background())
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ae *exporterapi.APIError
			if !errors.As(err, &ae) || ae.StatusCode != http.StatusUnauthorized {
				t.Fatalf("error = %v, want HTTP 401", err)
			}
		})
	}
}

func TestNotAnExporter(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		status  int
		notAPI  bool
	}{
		{name: "html page", status: 200, notAPI: true, handler: func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprint(w, "<html><body>Grafana</body></html>")
		}},
		{name: "other json", status: 200, notAPI: true, handler: func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprint(w, `{"hello":"world"}`)
		}},
		{name: "plain 404", status: 404, notAPI: true, handler: http.NotFound},
		{name: "api error 500", status: 500, handler: func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(500)
			fmt.Fprint(w, `{"status":"error","error":"boom"}`)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			_, err := newClient(t, srv.URL, exporterapi.Auth{}).Catalog(context.Background())
			var ae *exporterapi.APIError
			if !errors.As(err, &ae) || ae.StatusCode != tc.status || ae.NotAPI != tc.notAPI {
				t.Fatalf("error = %#v", err)
			}
		})
	}
}

func TestReadEvents(t *testing.T) {
	t.Run("fixture", func(t *testing.T) {
		var ids []string
		err := exporterapi.ReadEvents(strings.NewReader(string(fixture.File("stream.txt"))), func(e exporterapi.Event) error {
			ids = append(ids, e.ID)
			return nil
		}, func(err error) { t.Errorf("bad event: %v", err) })
		if err != io.EOF {
			t.Fatalf("err = %v, want io.EOF", err)
		}
		if got := strings.Join(ids, ","); got != "evt-uc-1,evt-bf-3,evt-hr-1,evt-bf-2" {
			t.Errorf("ids = %s", got)
		}
	})
	t.Run("multi-line data, bad events skipped, no final blank line", func(t *testing.T) {
		body := ": hi\n\ndata: {\"id\":\ndata: \"a\"}\n\ndata: not json\n\nevent: x\nid: 7\ndata: {\"id\":\"b\"}"
		var ids []string
		var bad []error
		err := exporterapi.ReadEvents(strings.NewReader(body), func(e exporterapi.Event) error {
			ids = append(ids, e.ID)
			return nil
		}, func(err error) { bad = append(bad, err) })
		if err != io.EOF || strings.Join(ids, ",") != "a,b" || len(bad) != 1 || !strings.Contains(bad[0].Error(), `decode stream event "not json"`) {
			t.Fatalf("err %v, ids %v, bad %v", err, ids, bad)
		}
	})
	t.Run("callback error stops", func(t *testing.T) {
		stop := errors.New("stop")
		err := exporterapi.ReadEvents(strings.NewReader(string(fixture.File("stream.txt"))), func(exporterapi.Event) error { return stop }, nil)
		if err != stop {
			t.Fatalf("err = %v", err)
		}
	})
}

func FuzzReadEvents(f *testing.F) {
	f.Add(fixture.File("stream.txt"))
	f.Add([]byte("data: {\"risk\":{\"device_level\":null}}\n\n"))
	f.Add([]byte("data: \xff\n\n:\n\ndata:"))
	f.Fuzz(func(t *testing.T, body []byte) {
		n := 0
		err := exporterapi.ReadEvents(strings.NewReader(string(body)), func(exporterapi.Event) error { n++; return nil }, func(error) {})
		if err == nil {
			t.Fatal("ReadEvents returned nil; it must end with io.EOF or an error")
		}
		if n > len(body) {
			t.Fatalf("%d events from %d bytes", n, len(body))
		}
	})
}

func TestStream(t *testing.T) {
	srv := fixture.New(fixture.Options{})
	defer srv.Close()
	c := newClient(t, srv.URL, exporterapi.Auth{})

	t.Run("kind filter, push, cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		before := srv.Connects.Load()
		got := make(chan exporterapi.Event, 16)
		opened := make(chan struct{}, 1)
		done := make(chan error, 1)
		go func() {
			done <- c.Stream(ctx, exporterapi.KindBillableFailure, exporterapi.StreamHandlers{
				Open:  func() { opened <- struct{}{} },
				Event: func(e exporterapi.Event) error { got <- e; return nil },
			})
		}()
		select {
		case <-opened:
		case <-time.After(5 * time.Second):
			t.Fatal("Open not called")
		}
		for _, want := range []string{"evt-bf-3", "evt-bf-2"} {
			select {
			case e := <-got:
				if e.ID != want {
					t.Fatalf("got %s, want %s", e.ID, want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no event")
			}
		}
		waitFor(t, func() bool { return srv.Connects.Load() == before+1 })
		srv.Push([]byte(`{"id":"pushed-low","outcome":"success","billable":true,"known":true,"risk":{"level":"low"}}`))
		srv.Push([]byte(`{"id":"pushed-bf","outcome":"failure","billable":true,"known":true,"risk":{"level":"low"}}`))
		select {
		case e := <-got:
			if e.ID != "pushed-bf" {
				t.Fatalf("got %s, want pushed-bf (the exporter filters by kind)", e.ID)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("pushed event not received")
		}
		start := time.Now()
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("Stream took %v to return after cancel", d)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Stream did not return after cancel")
		}
	})
	t.Run("server closes", func(t *testing.T) {
		done := make(chan error, 1)
		before := srv.Connects.Load()
		go func() {
			done <- c.Stream(context.Background(), exporterapi.KindAll, exporterapi.StreamHandlers{Event: func(exporterapi.Event) error { return nil }})
		}()
		waitFor(t, func() bool { return srv.Connects.Load() == before+1 })
		srv.DropStreams()
		select {
		case err := <-done:
			if err != io.EOF {
				t.Fatalf("err = %v, want io.EOF", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Stream did not return")
		}
	})
	t.Run("not an event stream", func(t *testing.T) {
		other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "hello") }))
		defer other.Close()
		err := newClient(t, other.URL, exporterapi.Auth{}).Stream(context.Background(), exporterapi.KindAll, exporterapi.StreamHandlers{
			Open:  func() { t.Error("Open called for a non-stream answer") },
			Event: func(exporterapi.Event) error { return nil },
		})
		var ae *exporterapi.APIError
		if !errors.As(err, &ae) || !ae.NotAPI {
			t.Fatalf("err = %v", err)
		}
	})
}

// waitFor polls cond until it holds or 5 s pass.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLedger reads /api/v1/ledger as the contract describes it: a bare JSON
// document (or the API envelope), errors in the envelope or as plain text.
func TestLedger(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		rows   int
		err    string
	}{
		{name: "bare document", status: 200, body: `{"stream":"S","group":"G","from":"2026-11-24","to":"2026-11-24","rows":[{"day":"2026-11-24","channel":"app_sdk","code":"0","billable":"true","rule_id":"","count":3}]}`, rows: 1},
		{name: "no rows", status: 200, body: `{"stream":"S","group":"G","from":"2026-11-24","to":"2026-11-24","rows":[]}`, rows: 0},
		{name: "envelope", status: 200, body: `{"status":"success","data":{"from":"2026-11-24","to":"2026-11-24","rows":[]}}`, rows: 0},
		{name: "envelope error", status: 400, body: `{"status":"error","error":"from: day \"2026-13-01\" is not YYYY-MM-DD"}`,
			err: `GET /api/v1/ledger: HTTP 400: from: day "2026-13-01" is not YYYY-MM-DD`},
		{name: "plain text error", status: 501, body: "the ledger needs --jetstream.stream\n",
			err: "GET /api/v1/ledger: HTTP 501: the ledger needs --jetstream.stream"},
		{name: "empty error", status: 404, body: "", err: "GET /api/v1/ledger: HTTP 404: Not Found"},
		{name: "not a ledger", status: 200, body: `{"hello":"world"}`,
			err: `GET /api/v1/ledger: HTTP 200: not a FaceID exporter API response: "{\"hello\":\"world\"}"`},
		{name: "not JSON", status: 200, body: `<html>`, err: `GET /api/v1/ledger: HTTP 200: not a FaceID exporter API response: "<html>"`},
		{name: "bad row", status: 200, body: `{"rows":[{"count":"x"}]}`,
			err: "GET /api/v1/ledger: decode ledger: json: cannot unmarshal string into Go struct field LedgerRow.rows.count of type uint64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var query string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				query = r.URL.Path + "?" + r.URL.RawQuery
				w.WriteHeader(tc.status)
				fmt.Fprint(w, tc.body)
			}))
			defer srv.Close()
			l, err := newClient(t, srv.URL, exporterapi.Auth{}).Ledger(context.Background(), "2026-11-24", "2026-11-24")
			if query != "/api/v1/ledger?format=json&from=2026-11-24&to=2026-11-24" {
				t.Errorf("request %s", query)
			}
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error = %v\nwant    %s", err, tc.err)
				}
				return
			}
			if err != nil || len(l.Rows) != tc.rows {
				t.Fatalf("%v %+v", err, l)
			}
		})
	}
}

func TestEventKinds(t *testing.T) {
	for _, tc := range []struct {
		name string
		e    exporterapi.Event
		want string
	}{
		{name: "billed failure", e: exporterapi.Event{Known: true, Outcome: "failure", Billable: "true"}, want: "billable_failure"},
		{name: "unbilled failure", e: exporterapi.Event{Known: true, Outcome: "failure", Billable: "false"}, want: ""},
		{name: "high risk success", e: exporterapi.Event{Known: true, Outcome: "success", Billable: "true", Risk: exporterapi.Risk{Level: "high"}}, want: "high_risk"},
		{name: "all three", e: exporterapi.Event{Outcome: "failure", Billable: "true", Risk: exporterapi.Risk{Level: "high"}}, want: "billable_failure,high_risk,unknown_code"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(tc.e.Kinds(), ","); got != tc.want {
				t.Fatalf("kinds %q, want %q", got, tc.want)
			}
		})
	}
}
