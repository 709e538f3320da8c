package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend/grpcplugin"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/faceid-observability/faceid-exporter/grafana-plugin/pkg/internal/exportertest"
	"github.com/faceid-observability/faceid-exporter/grafana-plugin/pkg/plugin"
)

// grafanaHandshake is what Grafana's plugin manager uses for backend plugins.
var grafanaHandshake = goplugin.HandshakeConfig{
	ProtocolVersion:  2,
	MagicCookieKey:   "grafana_plugin_type",
	MagicCookieValue: "datasource",
}

// pluginClients are the gRPC services Grafana dispenses from a datasource backend.
type pluginClients struct {
	diagnostics grpcplugin.DiagnosticsClient
	data        grpcplugin.DataClient
	resource    grpcplugin.ResourceClient
	stream      grpcplugin.StreamClient
}

// buildPlugin compiles this package the way build.sh does and returns the binary.
func buildPlugin(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("gpx_faceid_%s_%s", runtime.GOOS, runtime.GOARCH)
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	bin := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build the plugin: %v\n%s", err, out)
	}
	return bin
}

// startPlugin starts the binary as Grafana does: go-plugin handshake, gRPC, protocol 2.
func startPlugin(t *testing.T, bin string) pluginClients {
	t.Helper()
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig: grafanaHandshake,
		VersionedPlugins: map[int]goplugin.PluginSet{2: {
			"diagnostics": &grpcplugin.DiagnosticsGRPCPlugin{},
			"resource":    &grpcplugin.ResourceGRPCPlugin{},
			"data":        &grpcplugin.DataGRPCPlugin{},
			"stream":      &grpcplugin.StreamGRPCPlugin{},
		}},
		Cmd:              exec.Command(bin),
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		Logger:           hclog.New(&hclog.LoggerOptions{Name: "gpx_faceid", Output: os.Stderr, Level: hclog.Warn}),
		StartTimeout:     30 * time.Second,
	})
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("handshake with the plugin: %v", err)
	}
	if v := client.NegotiatedVersion(); v != 2 {
		t.Fatalf("negotiated protocol %d, want 2", v)
	}
	dispense := func(name string) any {
		raw, err := rpc.Dispense(name)
		if err != nil {
			t.Fatalf("dispense %s: %v", name, err)
		}
		return raw
	}
	return pluginClients{
		diagnostics: dispense("diagnostics").(grpcplugin.DiagnosticsClient),
		data:        dispense("data").(grpcplugin.DataClient),
		resource:    dispense("resource").(grpcplugin.ResourceClient),
		stream:      dispense("stream").(grpcplugin.StreamClient),
	}
}

func pluginContext(url string, updated time.Time) *pluginv2.PluginContext {
	return &pluginv2.PluginContext{
		OrgId:    1,
		PluginId: plugin.ID,
		DataSourceInstanceSettings: &pluginv2.DataSourceInstanceSettings{
			Id: 7, Uid: "faceid", Name: "FaceID exporter", Url: url,
			JsonData: []byte(`{"timeout":10}`), DecryptedSecureJsonData: map[string]string{},
			LastUpdatedMS: updated.UnixMilli(),
		},
	}
}

// TestGRPCHarness builds gpx_faceid, starts it like Grafana does and talks to
// it over gRPC while it serves a real exporter running with --demo traffic.
func TestGRPCHarness(t *testing.T) {
	exp := exportertest.Start(t, exportertest.Options{Demo: true, DemoRate: 200})
	p := startPlugin(t, buildPlugin(t))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	updated := time.Now()
	pc := pluginContext(exp.URL, updated)

	t.Run("CheckHealth", func(t *testing.T) {
		res, err := p.diagnostics.CheckHealth(ctx, &pluginv2.CheckHealthRequest{PluginContext: pc})
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != pluginv2.CheckHealthResponse_OK || !strings.HasPrefix(res.Message, "Connected to the FaceID exporter at "+exp.URL+": 9 channels") {
			t.Fatalf("%v %s", res.Status, res.Message)
		}
	})

	t.Run("QueryData", func(t *testing.T) {
		now := time.Now()
		q := func(ref, qt, model string) *pluginv2.DataQuery {
			return &pluginv2.DataQuery{RefId: ref, QueryType: qt, Json: []byte(model), IntervalMS: 1000, MaxDataPoints: 100,
				TimeRange: &pluginv2.TimeRange{FromEpochMS: now.Add(-time.Hour).UnixMilli(), ToEpochMS: now.Add(time.Minute).UnixMilli()}}
		}
		var frames map[string][]*data.Frame
		// Demo traffic needs a moment to produce billable failures.
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := p.data.QueryData(ctx, &pluginv2.QueryDataRequest{PluginContext: pc, Queries: []*pluginv2.DataQuery{
				q("catalog", "catalog", `{"channel":"wechat_h5"}`),
				q("events", "events", `{"kind":"billable_failure","limit":20}`),
				q("summary", "summary", `{"outcome":"failure","billable":"true","groupBy":["channel"]}`),
				q("alert", "summary", `{"format":"timeseries","groupBy":["channel"],"value":"ratio","outcome":"failure","billable":"true"}`),
				q("live", "live", `{"kind":"high_risk"}`),
				q("bad", "events", `{"kind":"nope"}`),
			}})
			if err != nil {
				t.Fatal(err)
			}
			frames = map[string][]*data.Frame{}
			for ref, r := range resp.Responses {
				if ref == "bad" {
					if r.Error != `event kind "nope" is not one of all, billable_failure, high_risk, unknown_code` || r.Status != 400 || len(r.Frames) != 0 || r.ErrorSource != "downstream" {
						t.Fatalf("bad query: %q %d", r.Error, r.Status)
					}
					continue
				}
				if r.Error != "" {
					t.Fatalf("%s: %s", ref, r.Error)
				}
				for _, b := range r.Frames {
					f, err := data.UnmarshalArrowFrame(b)
					if err != nil {
						t.Fatalf("%s: decode Arrow frame: %v", ref, err)
					}
					frames[ref] = append(frames[ref], f)
				}
			}
			if n, _ := frames["events"][0].RowLen(); n > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no billable failure within 30s of demo traffic")
			}
			time.Sleep(500 * time.Millisecond)
		}

		if f := frames["catalog"][0]; f.Fields[1].Name != "channel" || f.Fields[1].At(0) != "wechat_h5" {
			t.Errorf("catalog frame: %v", f.Fields[1].Name)
		}
		ev := frames["events"][0]
		if ev.Fields[0].Name != "time" || ev.Fields[0].Type() != data.FieldTypeTime {
			t.Errorf("events time field: %s %s", ev.Fields[0].Name, ev.Fields[0].Type())
		}
		bill, _ := ev.FieldByName("billable")
		out, _ := ev.FieldByName("outcome")
		for i := 0; i < bill.Len(); i++ {
			if bill.At(i) != "true" || out.At(i) != "failure" {
				t.Fatalf("row %d: billable %v outcome %v", i, bill.At(i), out.At(i))
			}
		}
		sum := frames["summary"][0]
		if sum.Meta == nil || sum.Meta.Type != data.FrameTypeNumericLong || len(sum.Fields) != 2 || sum.Fields[1].Type() != data.FieldTypeNullableFloat64 {
			t.Errorf("summary frame: %+v", sum.Meta)
		}
		ts := frames["alert"][0]
		if ts.Meta == nil || ts.Meta.Type != data.FrameTypeTimeSeriesWide || len(ts.Fields) != 10 || ts.Fields[1].Labels["channel"] != "wechat_h5" {
			t.Errorf("alert frame: %d fields, meta %+v", len(ts.Fields), ts.Meta)
		}
		if live := frames["live"][0]; live.Meta == nil || live.Meta.Channel != "ds/faceid/events/high_risk" {
			t.Errorf("live frame meta: %+v", live.Meta)
		}
	})

	t.Run("CallResource", func(t *testing.T) {
		for path, want := range map[string]int{"channels": 9, "codes?channel=app_sdk": -1, "nothing": 0} {
			cl, err := p.resource.CallResource(ctx, &pluginv2.CallResourceRequest{PluginContext: pc, Method: "GET", Path: strings.SplitN(path, "?", 2)[0], Url: path})
			if err != nil {
				t.Fatal(err)
			}
			var body []byte
			var code int32
			for {
				r, err := cl.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if r.Code != 0 {
					code = r.Code
				}
				body = append(body, r.Body...)
			}
			if want == 0 {
				if code != 404 {
					t.Errorf("%s: %d %s", path, code, body)
				}
				continue
			}
			var opts []plugin.Option
			if err := json.Unmarshal(body, &opts); err != nil || code != 200 {
				t.Fatalf("%s: %d %s %v", path, code, body, err)
			}
			if want > 0 && len(opts) != want || len(opts) == 0 {
				t.Errorf("%s: %d options", path, len(opts))
			}
		}
	})

	t.Run("Streams", func(t *testing.T) {
		sub, err := p.stream.SubscribeStream(ctx, &pluginv2.SubscribeStreamRequest{PluginContext: pc, Path: "events/all"})
		if err != nil || sub.Status != pluginv2.SubscribeStreamResponse_OK {
			t.Fatalf("subscribe: %v %v", sub, err)
		}
		sub, err = p.stream.SubscribeStream(ctx, &pluginv2.SubscribeStreamRequest{PluginContext: pc, Path: "events/whatever"})
		if err != nil || sub.Status != pluginv2.SubscribeStreamResponse_NOT_FOUND {
			t.Fatalf("subscribe bad path: %v %v", sub, err)
		}
		pub, err := p.stream.PublishStream(ctx, &pluginv2.PublishStreamRequest{PluginContext: pc, Path: "events/all", Data: []byte(`{}`)})
		if err != nil || pub.Status != pluginv2.PublishStreamResponse_PERMISSION_DENIED {
			t.Fatalf("publish: %v %v", pub, err)
		}

		sctx, stop := context.WithCancel(ctx)
		rs, err := p.stream.RunStream(sctx, &pluginv2.RunStreamRequest{PluginContext: pc, Path: "events/all"})
		if err != nil {
			t.Fatal(err)
		}
		events := 0
		for events < 50 {
			pkt, err := rs.Recv()
			if err != nil {
				t.Fatalf("after %d events: %v", events, err)
			}
			var f data.Frame
			if err := json.Unmarshal(pkt.Data, &f); err != nil {
				t.Fatalf("stream packet: %v", err)
			}
			if f.Fields[0].Name != "time" || f.Fields[0].Len() == 0 {
				t.Fatalf("stream frame: %d fields", len(f.Fields))
			}
			events += f.Fields[0].Len()
		}
		stop()
		for {
			if _, err := rs.Recv(); err != nil {
				if status.Code(err) != codes.Canceled {
					t.Fatalf("after cancel: %v", err)
				}
				break
			}
		}
		t.Logf("received %d live events over gRPC", events)
	})

	t.Run("settings change gives a new instance", func(t *testing.T) {
		changed := pluginContext("http://127.0.0.1:1", updated.Add(time.Second))
		res, err := p.diagnostics.CheckHealth(ctx, &pluginv2.CheckHealthRequest{PluginContext: changed})
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != pluginv2.CheckHealthResponse_ERROR || !strings.HasPrefix(res.Message, "Cannot reach the exporter at http://127.0.0.1:1") {
			t.Fatalf("%v %s", res.Status, res.Message)
		}
	})
}
