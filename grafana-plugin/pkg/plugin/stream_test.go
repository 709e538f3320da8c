package plugin

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/datasource"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/faceid-observability/faceid-exporter/grafana-plugin/pkg/internal/fixture"
)

// frameSink collects the frames a RunStream sends.
type frameSink struct {
	mu     sync.Mutex
	frames []*data.Frame
	err    error
}

func (s *frameSink) Send(p *backend.StreamPacket) error {
	var f data.Frame
	if err := f.UnmarshalJSON(p.Data); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.frames = append(s.frames, &f)
	return s.err
}

// snapshot returns the frames received so far.
func (s *frameSink) snapshot() []*data.Frame {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*data.Frame(nil), s.frames...)
}

// ids returns the event ids received so far, in order.
func (s *frameSink) ids() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, f := range s.frames {
		field, _ := f.FieldByName("id")
		for i := 0; i < field.Len(); i++ {
			out = append(out, field.At(i).(string))
		}
	}
	return out
}

func TestParseStreamPath(t *testing.T) {
	for _, tc := range []struct{ path, kind, channel, err string }{
		{path: "events/all", kind: "all"},
		{path: "events/high_risk/app_sdk", kind: "high_risk", channel: "app_sdk"},
		{path: "events/high_risk/app_sdk.wechat_h5", kind: "high_risk", channel: "app_sdk,wechat_h5"},
		{path: "events", err: `stream path "events" is not events/<kind> or events/<kind>/<channel>[.<channel>...]`},
		{path: "metrics/all", err: `stream path "metrics/all" is not events/<kind> or events/<kind>/<channel>[.<channel>...]`},
		{path: "events/all/a/b", err: `stream path "events/all/a/b" is not events/<kind> or events/<kind>/<channel>[.<channel>...]`},
		{path: "events/all/app_sdk.", err: `stream path "events/all/app_sdk.": "" is not a channel name`},
		{path: "events/everything", err: `stream path "events/everything": kind "everything" is not one of all, billable_failure, high_risk, unknown_code`},
		{path: "events/all/App-SDK", err: `stream path "events/all/App-SDK": "App-SDK" is not a channel name`},
	} {
		t.Run(tc.path, func(t *testing.T) {
			kind, channels, err := ParseStreamPath(tc.path)
			channel := strings.Join(channels, ",")
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error %v, want %s", err, tc.err)
				}
				return
			}
			if err != nil || kind != tc.kind || channel != tc.channel {
				t.Fatalf("%q %q %v", kind, channel, err)
			}
		})
	}
}

func TestSubscribeAndPublish(t *testing.T) {
	srv := fixture.New(fixture.Options{})
	defer srv.Close()
	d := newDS(t, backend.DataSourceInstanceSettings{URL: srv.URL})
	for path, want := range map[string]backend.SubscribeStreamStatus{
		"events/all":                        backend.SubscribeStreamStatusOK,
		"events/billable_failure/wechat_h5": backend.SubscribeStreamStatusOK,
		"events/all/fax":                    backend.SubscribeStreamStatusNotFound,
		"events/all/eid.pc_h5":              backend.SubscribeStreamStatusOK,
		"events/all/eid.fax":                backend.SubscribeStreamStatusNotFound,
		"events/nope":                       backend.SubscribeStreamStatusNotFound,
		"other":                             backend.SubscribeStreamStatusNotFound,
	} {
		res, err := d.SubscribeStream(context.Background(), &backend.SubscribeStreamRequest{Path: path})
		if err != nil || res.Status != want {
			t.Errorf("subscribe %s: %+v %v, want %v", path, res, err, want)
		}
	}
	res, err := d.PublishStream(context.Background(), &backend.PublishStreamRequest{Path: "events/all", Data: []byte(`{}`)})
	if err != nil || res.Status != backend.PublishStreamStatusPermissionDenied {
		t.Fatalf("publish: %+v %v", res, err)
	}
}

func TestRunStream(t *testing.T) {
	srv := fixture.New(fixture.Options{})
	defer srv.Close()
	d := newDS(t, backend.DataSourceInstanceSettings{URL: srv.URL})

	run := func(ctx context.Context, d *Datasource, path string, sink *frameSink) chan error {
		done := make(chan error, 1)
		go func() {
			done <- d.RunStream(ctx, &backend.RunStreamRequest{Path: path}, backend.NewStreamSender(sink))
		}()
		return done
	}
	returnsWithin := func(t *testing.T, done chan error, d time.Duration) error {
		t.Helper()
		select {
		case err := <-done:
			return err
		case <-time.After(d):
			t.Fatalf("RunStream did not return within %v", d)
			return nil
		}
	}

	t.Run("events as they arrive, cancel returns promptly", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		sink := &frameSink{}
		before := srv.Connects.Load()
		done := run(ctx, d, "events/all", sink)
		waitFor(t, "fixture events", func() bool { return len(sink.ids()) == 4 })
		if got := strings.Join(sink.ids(), ","); got != "evt-uc-1,evt-bf-3,evt-hr-1,evt-bf-2" {
			t.Fatalf("ids = %s", got)
		}
		waitFor(t, "subscribed", func() bool { return srv.Connects.Load() == before+1 })
		srv.Push([]byte(`{"id":"live-1","ts":"2026-11-26T03:00:00.000Z","received":"2026-11-26T03:00:00.001Z","channel":"eid","family":"wechat","code":"0","known":true,"outcome":"success","billable":true,"risk":{"level":"low","device_level":null,"risk_level":null,"platform":"unknown","device_tags":[],"identity_tags":[]}}`))
		waitFor(t, "pushed event", func() bool { return len(sink.ids()) == 5 })
		frames := sink.snapshot()
		last := frames[len(frames)-1]
		if last.Fields[0].Name != "time" || last.Fields[0].At(0).(time.Time).Unix() != time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC).Unix() {
			t.Errorf("frame time = %v", last.Fields[0].At(0))
		}
		start := time.Now()
		cancel()
		if err := returnsWithin(t, done, 2*time.Second); err != nil {
			t.Fatalf("err = %v", err)
		}
		t.Logf("returned %v after cancel", time.Since(start))
		waitFor(t, "exporter connection closed", func() bool { return srv.Subscribers() == 0 })
	})
	t.Run("channel filter", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		sink := &frameSink{}
		done := run(ctx, d, "events/billable_failure/wechat_h5", sink)
		waitFor(t, "event", func() bool { return len(sink.ids()) >= 1 })
		time.Sleep(2 * flushInterval) // nothing else may come
		if got := strings.Join(sink.ids(), ","); got != "evt-bf-2" {
			t.Fatalf("ids = %s", got)
		}
		cancel()
		returnsWithin(t, done, 2*time.Second)
	})
	t.Run("several channels, as a multi-value variable selects them", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		sink := &frameSink{}
		before := srv.Connects.Load()
		done := run(ctx, d, "events/all/pc_h5.wechat_h5", sink)
		waitFor(t, "connection", func() bool { return srv.Connects.Load() == before+1 })
		// An eid event, then a pc_h5 one: once the second arrives, the first was dropped.
		srv.Push([]byte(`{"id":"live-eid","ts":"2026-11-26T03:00:00.000Z","received":"2026-11-26T03:00:00.001Z","channel":"eid","family":"wechat","code":"0","known":true,"outcome":"success","billable":true,"risk":{"level":"low","device_level":null,"risk_level":null,"platform":"unknown","device_tags":[],"identity_tags":[]}}`))
		srv.Push([]byte(`{"id":"live-pc","ts":"2026-11-26T03:00:01.000Z","received":"2026-11-26T03:00:01.001Z","channel":"pc_h5","family":"sdk","code":"0","known":true,"outcome":"success","billable":true,"risk":{"level":"low","device_level":null,"risk_level":null,"platform":"unknown","device_tags":[],"identity_tags":[]}}`))
		waitFor(t, "the pc_h5 event", func() bool { return slices.Contains(sink.ids(), "live-pc") })
		if got := strings.Join(sink.ids(), ","); got != "evt-uc-1,evt-bf-2,live-pc" {
			t.Fatalf("ids = %s", got)
		}
		cancel()
		returnsWithin(t, done, 2*time.Second)
	})
	t.Run("reconnects when the exporter drops the stream", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		sink := &frameSink{}
		before := srv.Connects.Load()
		done := run(ctx, d, "events/unknown_code", sink)
		waitFor(t, "first connection", func() bool { return srv.Connects.Load() == before+1 })
		srv.DropStreams()
		waitFor(t, "second connection", func() bool { return srv.Connects.Load() == before+2 })
		waitFor(t, "replayed fixture event", func() bool { return len(sink.ids()) == 2 })
		cancel()
		returnsWithin(t, done, 2*time.Second)
	})
	t.Run("dispose ends the stream", func(t *testing.T) {
		d2 := newDS(t, backend.DataSourceInstanceSettings{URL: srv.URL})
		before := srv.Connects.Load()
		done := run(context.Background(), d2, "events/all", &frameSink{})
		waitFor(t, "connected", func() bool { return srv.Connects.Load() == before+1 })
		d2.Dispose()
		if err := returnsWithin(t, done, 2*time.Second); !errors.Is(err, errDisposed) {
			t.Fatalf("err = %v, want errDisposed", err)
		}
	})
	t.Run("sender error ends the stream", func(t *testing.T) {
		sink := &frameSink{err: errors.New("grafana went away")}
		err := returnsWithin(t, run(context.Background(), d, "events/all", sink), 5*time.Second)
		if err == nil || err.Error() != "send frame to Grafana: grafana went away" {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("exporter refuses", func(t *testing.T) {
		locked := fixture.New(fixture.Options{Token: "t"})
		defer locked.Close()
		err := returnsWithin(t, run(context.Background(), newDS(t, backend.DataSourceInstanceSettings{URL: locked.URL}), "events/all", &frameSink{}), 5*time.Second)
		if err == nil || !strings.Contains(err.Error(), "event stream: The exporter at "+locked.URL+" rejected the request as unauthenticated (HTTP 401)") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("bad path", func(t *testing.T) {
		err := d.RunStream(context.Background(), &backend.RunStreamRequest{Path: "events/x"}, backend.NewStreamSender(&frameSink{}))
		if err == nil {
			t.Fatal("no error")
		}
	})
}

// The SDK's instance manager disposes an instance when its settings change.
func TestInstanceDisposedOnSettingsChange(t *testing.T) {
	srv := fixture.New(fixture.Options{})
	defer srv.Close()
	im := datasource.NewInstanceManager(NewDatasource)
	pc := func(updated time.Time) backend.PluginContext {
		return backend.PluginContext{DataSourceInstanceSettings: &backend.DataSourceInstanceSettings{ID: 1, UID: testUID, URL: srv.URL, Updated: updated}}
	}
	t0 := time.Now()
	a, err := im.Get(context.Background(), pc(t0))
	if err != nil {
		t.Fatal(err)
	}
	same, _ := im.Get(context.Background(), pc(t0))
	if same != a {
		t.Fatal("same settings gave a new instance")
	}
	b, _ := im.Get(context.Background(), pc(t0.Add(time.Second)))
	if b == a {
		t.Fatal("changed settings kept the old instance")
	}
	waitFor(t, "old instance disposed", func() bool { return a.(*Datasource).ctx.Err() != nil })
	if b.(*Datasource).ctx.Err() != nil {
		t.Fatal("new instance disposed")
	}
}
