package exactly

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// streamName is the stream every test fills.
const streamName = "FACEID"

// connect connects the test's own client to urls; it reconnects forever, so
// that it rides out server restarts. Closed when the test ends.
func connect(t testing.TB, urls string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(urls, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.Name("exactly-test"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096), jetstream.WithPublishAsyncTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// streamConfig is the FACEID stream as the tests create it: every result
// subject, file storage.
func streamConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name: streamName, Subjects: []string{subjectPrefix + ">"}, Storage: jetstream.FileStorage,
		Replicas: replicas, Duplicates: 2 * time.Minute,
	}
}

// createStream creates cfg, retrying while a cluster settles.
func createStream(t testing.TB, js jetstream.JetStream, cfg jetstream.StreamConfig) {
	t.Helper()
	eventually(t, 60*time.Second, 100*time.Millisecond, "stream "+cfg.Name+" created", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := js.CreateStream(ctx, cfg)
		return err == nil, fmt.Sprint(err)
	})
}

// streamState returns the stream's state, retrying while servers restart.
func streamState(t testing.TB, js jetstream.JetStream, name string) jetstream.StreamState {
	t.Helper()
	var st jetstream.StreamState
	eventually(t, 60*time.Second, 100*time.Millisecond, "stream "+name+" info", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, name)
		if err != nil {
			return false, err.Error()
		}
		info, err := s.Info(ctx)
		if err != nil {
			return false, err.Error()
		}
		st = info.State
		return true, ""
	})
	return st
}

// publishBatch is how many messages are in flight at once; a batch is
// confirmed (retried message by message) before the next starts, so a
// message retried across a server restart is stored at most a batch away
// from its place in the fixture.
const publishBatch = 64

// publish publishes msgs in order with their Nats-Msg-Id, paced to take about
// pace in all, retrying every message until the server confirms it (across
// server restarts and leader changes), or until ctx ends.
func publish(ctx context.Context, js jetstream.JetStream, msgs []msg, pace time.Duration) error {
	start := time.Now()
	batches := (len(msgs) + publishBatch - 1) / publishBatch
	for b := range batches {
		if d := time.Until(start.Add(pace * time.Duration(b) / time.Duration(batches))); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		batch := msgs[b*publishBatch : min(len(msgs), (b+1)*publishBatch)]
		if err := publishConfirmed(ctx, js, batch); err != nil {
			return fmt.Errorf("batch %d of %d: %w", b+1, batches, err)
		}
	}
	return nil
}

// publishConfirmed publishes msgs asynchronously and republishes, in order,
// those whose acknowledgement failed, until all are confirmed.
func publishConfirmed(ctx context.Context, js jetstream.JetStream, msgs []msg) error {
	todo := msgs
	var lastErr error
	for attempt := 0; len(todo) > 0; attempt++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%w (last publish error: %v)", err, lastErr)
		}
		if attempt > 0 {
			<-time.After(100 * time.Millisecond)
		}
		futures := make([]jetstream.PubAckFuture, len(todo))
		errs := make([]error, len(todo))
		for i, m := range todo {
			futures[i], errs[i] = js.PublishAsync(m.Subject, m.Data, jetstream.WithMsgID(m.MsgID))
		}
		var failed []msg
		for i, f := range futures {
			if errs[i] == nil {
				select {
				case <-f.Ok():
				case errs[i] = <-f.Err():
				case <-ctx.Done():
					errs[i] = ctx.Err()
				}
			}
			if errs[i] != nil {
				lastErr = errs[i]
				failed = append(failed, todo[i])
			}
		}
		todo = failed
	}
	return nil
}

// jsAPI sends a JetStream API request and fails unless the reply is a
// success.
func jsAPI(nc *nats.Conn, subject string) error {
	reply, err := nc.Request(subject, nil, 5*time.Second)
	if err != nil {
		return fmt.Errorf("%s: %w", subject, err)
	}
	var r struct {
		Success bool `json:"success"`
		Error   *struct {
			Code        int    `json:"code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(reply.Data, &r); err != nil {
		return fmt.Errorf("%s: %w: %s", subject, err, reply.Data)
	}
	if r.Error != nil || !r.Success {
		return fmt.Errorf("%s: %s", subject, reply.Data)
	}
	return nil
}
