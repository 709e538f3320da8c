package metrics

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	promBridge "go.opentelemetry.io/contrib/bridges/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/prometheus/client_golang/prometheus"
)

// OTLP configures the OpenTelemetry push of the metrics.
type OTLP struct {
	// Endpoint is host:port, or a URL (http://, https://) whose scheme decides TLS.
	Endpoint string
	// Protocol is "grpc" or "http" (OTLP/HTTP protobuf).
	Protocol string
	Headers  map[string]string
	Insecure bool
	Interval time.Duration
	Timeout  time.Duration
	// ServiceName, ServiceInstance and ServiceVersion fill the resource.
	ServiceName, ServiceInstance, ServiceVersion string
}

// StartOTLP pushes every metric gathered from g to an OTLP receiver, cumulative,
// every Interval. The returned shutdown exports once more and stops.
func StartOTLP(ctx context.Context, cfg OTLP, g prometheus.Gatherer) (shutdown func(context.Context) error, err error) {
	if cfg.Interval <= 0 {
		cfg.Interval = 15 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	isURL := strings.Contains(cfg.Endpoint, "://")
	var exp sdkmetric.Exporter
	switch cfg.Protocol {
	case "grpc", "":
		opts := []otlpmetricgrpc.Option{otlpmetricgrpc.WithTimeout(cfg.Timeout)}
		if isURL {
			opts = append(opts, otlpmetricgrpc.WithEndpointURL(cfg.Endpoint))
		} else {
			opts = append(opts, otlpmetricgrpc.WithEndpoint(cfg.Endpoint))
		}
		if cfg.Insecure {
			opts = append(opts, otlpmetricgrpc.WithInsecure())
		}
		if len(cfg.Headers) > 0 {
			opts = append(opts, otlpmetricgrpc.WithHeaders(cfg.Headers))
		}
		exp, err = otlpmetricgrpc.New(ctx, opts...)
	case "http":
		opts := []otlpmetrichttp.Option{otlpmetrichttp.WithTimeout(cfg.Timeout)}
		if isURL {
			opts = append(opts, otlpmetrichttp.WithEndpointURL(cfg.Endpoint))
		} else {
			opts = append(opts, otlpmetrichttp.WithEndpoint(cfg.Endpoint))
		}
		if cfg.Insecure {
			opts = append(opts, otlpmetrichttp.WithInsecure())
		}
		if len(cfg.Headers) > 0 {
			opts = append(opts, otlpmetrichttp.WithHeaders(cfg.Headers))
		}
		exp, err = otlpmetrichttp.New(ctx, opts...)
	default:
		return nil, fmt.Errorf("otlp protocol %q: want grpc or http", cfg.Protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("create otlp exporter: %w", err)
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", cfg.ServiceName)}
	if cfg.ServiceInstance != "" {
		attrs = append(attrs, attribute.String("service.instance.id", cfg.ServiceInstance))
	}
	if cfg.ServiceVersion != "" {
		attrs = append(attrs, attribute.String("service.version", cfg.ServiceVersion))
	}
	reader := sdkmetric.NewPeriodicReader(exp,
		sdkmetric.WithInterval(cfg.Interval),
		sdkmetric.WithTimeout(cfg.Timeout),
		sdkmetric.WithProducer(promBridge.NewMetricProducer(promBridge.WithGatherer(g))),
	)
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithReader(reader),
		sdkmetric.WithResource(resource.NewSchemaless(attrs...)),
	)
	return mp.Shutdown, nil
}

// ReadHeadersFile reads OTLP headers from a file of KEY=VALUE lines (blank
// lines and lines starting with # are skipped), so that secrets such as
// authorization tokens stay off the command line.
func ReadHeadersFile(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read otlp headers file: %w", err)
	}
	out := map[string]string{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("otlp headers file %s:%d: want KEY=VALUE", path, i+1)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("otlp headers file %s:%d: header %q given twice", path, i+1, k)
		}
		out[k] = strings.TrimSpace(v)
	}
	return out, nil
}

// ParseHeaders turns KEY=VALUE strings into a header map.
func ParseHeaders(kv []string) (map[string]string, error) {
	out := map[string]string{}
	for _, s := range kv {
		k, v, ok := strings.Cut(s, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("otlp header %q: want KEY=VALUE", s)
		}
		out[k] = v
	}
	return out, nil
}
