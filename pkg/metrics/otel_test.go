package metrics_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	colmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/faceid-observability/faceid-exporter/pkg/books"
	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/metrics"
)

// receiver keeps what an OTLP receiver was sent.
type receiver struct {
	mu       sync.Mutex
	requests []*colmetrics.ExportMetricsServiceRequest
	headers  []map[string]string
}

func (r *receiver) add(req *colmetrics.ExportMetricsServiceRequest, h map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, req)
	r.headers = append(r.headers, h)
}

// last returns the latest sum data point of faceid_verifications_total with
// the given channel and code, the resource attributes and the header seen.
func (r *receiver) last(channel, code string) (value float64, temporality metricspb.AggregationTemporality, resource map[string]string, header map[string]string, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.requests) - 1; i >= 0; i-- {
		for _, rm := range r.requests[i].ResourceMetrics {
			res := map[string]string{}
			for _, a := range rm.GetResource().GetAttributes() {
				res[a.Key] = a.GetValue().GetStringValue()
			}
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					if m.Name != "faceid_verifications_total" || m.GetSum() == nil {
						continue
					}
					for _, dp := range m.GetSum().DataPoints {
						attrs := map[string]string{}
						for _, a := range dp.Attributes {
							attrs[a.Key] = a.GetValue().GetStringValue()
						}
						if attrs["channel"] == channel && attrs["code"] == code {
							return dp.GetAsDouble(), m.GetSum().AggregationTemporality, res, r.headers[i], true
						}
					}
				}
			}
		}
	}
	return 0, 0, nil, nil, false
}

type grpcReceiver struct {
	colmetrics.UnimplementedMetricsServiceServer
	r *receiver
}

func (g *grpcReceiver) Export(ctx context.Context, req *colmetrics.ExportMetricsServiceRequest) (*colmetrics.ExportMetricsServiceResponse, error) {
	h := map[string]string{}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		for k, v := range md {
			h[k] = v[0]
		}
	}
	g.r.add(req, h)
	return &colmetrics.ExportMetricsServiceResponse{}, nil
}

// TestOTLP pushes the registry to a real OTLP receiver over HTTP and gRPC and
// finds the same counts there as in Prometheus, cumulative, with the resource
// attributes and configured header; shutdown flushes the last values.
func TestOTLP(t *testing.T) {
	for _, proto := range []string{"http", "grpc"} {
		t.Run(proto, func(t *testing.T) {
			rcv := &receiver{}
			var endpoint string
			switch proto {
			case "http":
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
					body, _ := io.ReadAll(req.Body)
					var m colmetrics.ExportMetricsServiceRequest
					if req.URL.Path != "/v1/metrics" || proto2(body, &m) != nil {
						http.Error(w, "bad request", http.StatusBadRequest)
						return
					}
					rcv.add(&m, map[string]string{"x-tenant": req.Header.Get("X-Tenant")})
					w.Header().Set("Content-Type", "application/x-protobuf")
					out, _ := protoMarshal(&colmetrics.ExportMetricsServiceResponse{})
					_, _ = w.Write(out)
				}))
				defer srv.Close()
				endpoint = srv.Listener.Addr().String()
			case "grpc":
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				gs := grpc.NewServer()
				colmetrics.RegisterMetricsServiceServer(gs, &grpcReceiver{r: rcv})
				go func() { _ = gs.Serve(l) }()
				defer gs.Stop()
				endpoint = l.Addr().String()
			}
			cat := catalog(t)
			reg := prometheus.NewRegistry()
			metrics.New(reg, cat, metrics.Options{})
			l := books.NewLayout(cat, books.LayoutOptions{})
			b := books.New(l, books.RulesOptions{})
			metrics.NewBooks(reg, metrics.Source{Layout: l, Owned: func() []metrics.Partition { return []metrics.Partition{{ID: 0, Books: b}} }}, nil)
			c := classify.New(cat, classify.Options{})
			var r classify.Result
			count := func() {
				if err := c.Classify([]byte(`{"channel":"app_sdk","code":"66660004"}`), nil, time.Now(), &r); err != nil {
					t.Fatal(err)
				}
				b.Lock()
				b.Apply(&r)
				b.Unlock()
			}
			count()
			ctx := context.Background()
			shutdown, err := metrics.StartOTLP(ctx, metrics.OTLP{
				Endpoint: endpoint, Protocol: proto, Insecure: true, Interval: 100 * time.Millisecond,
				Headers:     map[string]string{"X-Tenant": "faceid"},
				ServiceName: "faceid-exporter", ServiceInstance: "test-1", ServiceVersion: "v0",
			}, reg)
			if err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				if v, _, _, _, ok := rcv.last("app_sdk", "66660004"); ok && v == 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("no export with the count within 10s")
				}
				time.Sleep(20 * time.Millisecond)
			}
			count()
			count()
			if err := shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			v, temp, res, hdr, _ := rcv.last("app_sdk", "66660004")
			if v != 3 {
				t.Errorf("after shutdown the receiver has %v, want 3: the last values were not flushed", v)
			}
			if temp != metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE {
				t.Errorf("temporality %v, want cumulative", temp)
			}
			if res["service.name"] != "faceid-exporter" || res["service.instance.id"] != "test-1" {
				t.Errorf("resource %v", res)
			}
			if hdr["x-tenant"] != "faceid" {
				t.Errorf("headers %v, want x-tenant: faceid", hdr)
			}
		})
	}
}

func proto2(b []byte, m proto.Message) error       { return proto.Unmarshal(b, m) }
func protoMarshal(m proto.Message) ([]byte, error) { return proto.Marshal(m) }

func TestParseHeaders(t *testing.T) {
	h, err := metrics.ParseHeaders([]string{"Authorization=Bearer x=y", "X-A=1"})
	if err != nil || h["Authorization"] != "Bearer x=y" || h["X-A"] != "1" {
		t.Errorf("got %v, %v", h, err)
	}
	if _, err := metrics.ParseHeaders([]string{"novalue"}); err == nil {
		t.Error("no error for a header without =")
	}
}
