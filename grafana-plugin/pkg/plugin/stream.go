package plugin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/faceid-observability/faceid-exporter/grafana-plugin/pkg/exporterapi"
)

// Stream batching and reconnection.
const (
	flushInterval  = 250 * time.Millisecond
	maxBatch       = 500
	initialBackoff = 500 * time.Millisecond
	maxBackoff     = 30 * time.Second
)

// channelPathPart is what a channel name in a stream path may look like.
var channelPathPart = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)

// channelSeparator joins the channels of a stream path (Grafana Live paths
// allow no comma).
const channelSeparator = "."

// ParseStreamPath splits "events/<kind>" or "events/<kind>/<channels>", where
// channels are one or more channel names joined by ".".
func ParseStreamPath(path string) (kind string, channels []string, err error) {
	parts := strings.Split(path, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] != "events" {
		return "", nil, fmt.Errorf("stream path %q is not events/<kind> or events/<kind>/<channel>[.<channel>...]", path)
	}
	kind = parts[1]
	if !exporterapi.ValidStreamKind(kind) {
		return "", nil, fmt.Errorf("stream path %q: kind %q is not one of %s", path, kind, strings.Join(exporterapi.StreamKinds(), ", "))
	}
	if len(parts) == 3 {
		for ch := range strings.SplitSeq(parts[2], channelSeparator) {
			if !channelPathPart.MatchString(ch) {
				return "", nil, fmt.Errorf("stream path %q: %q is not a channel name", path, ch)
			}
			channels = append(channels, ch)
		}
	}
	return kind, channels, nil
}

// SubscribeStream allows the paths ParseStreamPath accepts; a channel must be
// in the exporter's catalog when the catalog can be read.
func (d *Datasource) SubscribeStream(ctx context.Context, req *backend.SubscribeStreamRequest) (*backend.SubscribeStreamResponse, error) {
	_, channels, err := ParseStreamPath(req.Path)
	if err != nil {
		d.logger.Warn("Subscription refused", "path", req.Path, "error", err)
		return &backend.SubscribeStreamResponse{Status: backend.SubscribeStreamStatusNotFound}, nil
	}
	if len(channels) > 0 {
		if cat, err := d.getCatalog(ctx); err == nil {
			for _, ch := range channels {
				if cat.FamilyOf(ch) == "" {
					d.logger.Warn("Subscription refused: unknown channel", "path", req.Path, "channel", ch)
					return &backend.SubscribeStreamResponse{Status: backend.SubscribeStreamStatusNotFound}, nil
				}
			}
		}
	}
	return &backend.SubscribeStreamResponse{Status: backend.SubscribeStreamStatusOK}, nil
}

// PublishStream is denied: the stream is read-only.
func (d *Datasource) PublishStream(context.Context, *backend.PublishStreamRequest) (*backend.PublishStreamResponse, error) {
	return &backend.PublishStreamResponse{Status: backend.PublishStreamStatusPermissionDenied}, nil
}

// RunStream follows the exporter's event stream and sends the events to
// Grafana in frames of up to maxBatch rows, at most every flushInterval. It
// reconnects after transport errors with a capped backoff, returns nil as soon
// as ctx is cancelled, and an error when the exporter refuses the stream or
// the instance is disposed. A bad path or unusable settings are downstream
// errors: the user's to fix.
func (d *Datasource) RunStream(ctx context.Context, req *backend.RunStreamRequest, sender *backend.StreamSender) error {
	kind, channels, err := ParseStreamPath(req.Path)
	if err != nil {
		return backend.DownstreamError(err)
	}
	c, err := d.ready()
	if err != nil {
		return backend.DownstreamError(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(d.ctx, cancel)
	defer stop()

	events := make(chan exporterapi.Event, maxBatch)
	followErr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		followErr <- d.follow(runCtx, c, kind, Filter(channels), events)
	}()
	defer wg.Wait()
	defer cancel()

	ticker := time.NewTicker(flushInterval)
	defer ticker.Stop()
	var batch []exporterapi.Event
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		frame := EventsFrame("live_"+kind, batch)
		batch = batch[:0]
		if err := sender.SendFrame(frame, data.IncludeAll); err != nil {
			return fmt.Errorf("send frame to Grafana: %w", err)
		}
		return nil
	}
	for {
		select {
		case <-runCtx.Done():
			if ctx.Err() == nil && d.ctx.Err() != nil {
				return errDisposed
			}
			return nil
		case e := <-events:
			batch = append(batch, e)
			if len(batch) >= maxBatch {
				if err := flush(); err != nil {
					return err
				}
			}
		case <-ticker.C:
			if err := flush(); err != nil {
				return err
			}
		case err := <-followErr:
			for len(events) > 0 { // what follow delivered before it ended
				batch = append(batch, <-events)
			}
			if ferr := flush(); ferr != nil {
				return ferr
			}
			if err == nil && ctx.Err() == nil && d.ctx.Err() != nil {
				return errDisposed
			}
			return err
		}
	}
}

// follow reads the exporter's stream into events until ctx ends, reconnecting
// after transport errors; it returns nil when ctx ends and an error when the
// exporter refuses the stream (4xx other than 429).
func (d *Datasource) follow(ctx context.Context, c *exporterapi.Client, kind string, channels Filter, events chan<- exporterapi.Event) error {
	backoff := initialBackoff
	for {
		got, opened := false, false
		err := c.Stream(ctx, kind, exporterapi.StreamHandlers{
			Open: func() {
				opened = true
				d.openStreams.Add(1)
			},
			Event: func(e exporterapi.Event) error {
				got = true
				if !channels.Allows(e.Channel) {
					return nil
				}
				select {
				case events <- e:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			},
			Bad: func(err error) {
				d.logger.Warn("Skipped an event the exporter streamed", "error", err)
			},
		})
		if opened {
			d.openStreams.Add(-1)
		}
		if ctx.Err() != nil {
			return nil
		}
		var ae *exporterapi.APIError
		if errors.As(err, &ae) && ae.StatusCode >= 400 && ae.StatusCode < 500 && ae.StatusCode != http.StatusTooManyRequests {
			return fmt.Errorf("event stream: %s", Explain(err, c.URL()))
		}
		if got {
			backoff = initialBackoff
		}
		d.logger.Warn("Event stream interrupted; reconnecting", "error", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}
