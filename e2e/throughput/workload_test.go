package throughput

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/simulate"
)

const (
	streamName = "FACEID"
	subjects   = simulate.DefaultSubjectPrefix + ".>"
)

// workload is the benchmark's stream content: distinct events drawn from the
// simulator's baseline mix (every one accepted by the classifier), each
// published copies times with a new id, so that every message is counted
// and none is a duplicate.
type workload struct {
	templates [][]byte
	subjects  []string
	idAt      int // offset of the 12 hex digits of the id in every template
	copies    int
	channels  map[string]int // templates per channel
	bytes     int            // sum of the templates' sizes
}

func (w *workload) events() int { return len(w.templates) * w.copies }

// newWorkload draws distinct accepted events from the baseline scenario with
// seed; their times lie a moment before now (the exporter rejects a ts more
// than --events.future-tolerance after the message's stream time, not an
// older one).
//
// An event shorter than size gets an "extra" object the exporter does not
// read (as producers add fields of their own), so that the messages have the
// size of real ones (pkg/stream's benchEvent: 350 bytes).
func newWorkload(distinct, copies, size int, seed int64) (*workload, error) {
	if distinct < 1 || copies < 1 {
		return nil, fmt.Errorf("distinct %d × copies %d: want at least 1 each", distinct, copies)
	}
	if int64(distinct)*int64(copies) >= 1<<48 {
		return nil, fmt.Errorf("distinct %d × copies %d: over the 12 hex digits of an id", distinct, copies)
	}
	cat, err := classify.Default()
	if err != nil {
		return nil, err
	}
	g, err := simulate.NewGenerator(cat, simulate.Baseline, seed, simulate.WithRunID("bench"))
	if err != nil {
		return nil, err
	}
	w := &workload{copies: copies, channels: map[string]int{}}
	prefix := []byte(`{"id":"` + g.RunID() + "-")
	w.idAt = len(prefix)
	now := time.Now()
	for tries := 0; len(w.templates) < distinct; tries++ {
		if tries > 100*distinct {
			return nil, fmt.Errorf("drew %d events for %d accepted ones", tries, distinct)
		}
		msg, subject, truth := g.Next(nil, now)
		if truth.Reject != classify.ReasonNone {
			continue
		}
		if !bytes.HasPrefix(msg, prefix) || len(msg) < w.idAt+13 || msg[w.idAt+12] != '"' {
			return nil, fmt.Errorf("the simulator's event does not start with %s<12 hex digits>\": %.60s", prefix, msg)
		}
		msg = pad(msg, size)
		w.templates = append(w.templates, msg)
		w.subjects = append(w.subjects, subject)
		w.channels[truth.Channel.Name]++
		w.bytes += len(msg)
	}
	return w, nil
}

// message writes event i (copy i/len(templates) of template
// i%len(templates)) into buf and returns it with its subject: the copies
// interleave the templates, so every channel is read all along.
func (w *workload) message(buf []byte, i int) ([]byte, string) {
	t := i % len(w.templates)
	buf = append(buf[:0], w.templates[t]...)
	v := uint64(i)
	for j := 11; j >= 0; j-- {
		buf[w.idAt+j] = "0123456789abcdef"[v&15]
		v >>= 4
	}
	return buf, w.subjects[t]
}

// fill creates the stream and publishes the workload into it, waiting for
// every acknowledgement.
func fill(ctx context.Context, url string, w *workload) error {
	nc, err := nats.Connect(url, nats.Name("throughput-fill"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return err
	}
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: streamName, Subjects: []string{subjects}, Storage: jetstream.FileStorage})
	if err != nil {
		return fmt.Errorf("create stream %s: %w", streamName, err)
	}
	var buf []byte
	for i := 0; i < w.events(); i++ {
		msg, subject := w.message(buf, i)
		buf = msg
		if _, err := js.PublishAsync(subject, append([]byte(nil), msg...)); err != nil {
			return fmt.Errorf("publish event %d: %w", i, err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return fmt.Errorf("waiting for the publish acks: %w", ctx.Err())
	}
	info, err := s.Info(ctx)
	if err != nil {
		return err
	}
	if info.State.Msgs != uint64(w.events()) {
		return fmt.Errorf("stream %s holds %d messages, want %d (a publish failed)", streamName, info.State.Msgs, w.events())
	}
	return nil
}

// pad inserts ,"extra":{"note":"xx…"} before msg's closing brace so that it
// is size bytes long (a message already that long, or too short for the
// field, is returned as it is).
func pad(msg []byte, size int) []byte {
	const open, closing = `,"extra":{"note":"`, `"}`
	fill := size - len(msg) - len(open) - len(closing)
	if fill < 0 || len(msg) == 0 || msg[len(msg)-1] != '}' {
		return msg
	}
	out := make([]byte, 0, size)
	out = append(out, msg[:len(msg)-1]...)
	out = append(out, open...)
	out = append(out, bytes.Repeat([]byte{'x'}, fill)...)
	out = append(out, closing...)
	return append(out, '}')
}
