package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/faceid-observability/faceid-exporter/pkg/checkpoint"
	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/stream"
)

// JetStream configures the checkpointed JetStream mode.
type JetStream struct {
	Stream, Consumer   string // Stream "" means core NATS
	CheckpointBucket   string
	CheckpointReplicas int
	CheckpointInterval time.Duration
	TakeoverTimeout    time.Duration
	Partitions         int

	CreateStream     bool
	StreamMaxAge     time.Duration
	StreamMaxBytes   int64
	StreamReplicas   int
	DeadLetterStream string

	// Instance names the process in the group: stable across restarts
	// (--jetstream.instance, the pod name), a restarted process takes its
	// partitions back at once; default: host, pid and a random suffix.
	Instance string
}

// JetStream defaults.
const (
	DefaultCheckpointBucket   = "faceid-checkpoints"
	DefaultCheckpointInterval = time.Second
	DefaultTakeoverTimeout    = 10 * time.Second
	DefaultStreamMaxAge       = 7 * 24 * time.Hour
	DefaultStreamMaxBytes     = 8 << 30
	DefaultDeadLetterStream   = "FACEID_DEADLETTER"
	// DeadLetterDuplicates is the shortest duplicate window of the
	// dead-letter stream the exporter creates (see DeadLetterWindow).
	DeadLetterDuplicates = 10 * time.Minute
)

// DeadLetterWindow is the duplicate window a dead-letter stream needs so
// that a dead letter is stored once: a replay (after a takeover, a restart or
// a partition's restart from its checkpoint) publishes again the dead letters
// of the messages after the last commit, and it starts within about a
// takeover timeout of that commit, unless checkpoints could not be written
// in between. The window is ten takeover timeouts, at least
// DeadLetterDuplicates, so that such an outage of up to the window less a
// takeover timeout still stores each dead letter once; past it a replayed
// dead letter is stored twice (the books count it once either way).
func DeadLetterWindow(takeover time.Duration) time.Duration {
	return max(DeadLetterDuplicates, 10*takeover)
}

// Filters splits the subject into partitions: one partition takes the whole
// subject; more split the catalog's channels (by index modulo n) over the
// subjects prefix.<channel>, as producers publish them today. It returns the
// filters and the channels each partition owns.
func Filters(subject string, n int, cat *classify.Catalog) ([][]string, [][]bool, error) {
	if n <= 1 {
		return [][]string{{subject}}, [][]bool{nil}, nil
	}
	if n > len(cat.Channels) {
		return nil, nil, fmt.Errorf("--jetstream.partitions %d: at most %d (one per catalog channel)", n, len(cat.Channels))
	}
	prefix, ok := strings.CutSuffix(subject, ".>")
	if !ok {
		prefix, ok = strings.CutSuffix(subject, ".*")
	}
	if !ok || strings.ContainsAny(prefix, "*>") {
		return nil, nil, fmt.Errorf("--jetstream.partitions %d needs --nats.subject of the form prefix.> or prefix.* (subjects prefix.<channel>), not %q", n, subject)
	}
	filters, owns := make([][]string, n), make([][]bool, n)
	for p := range owns {
		owns[p] = make([]bool, len(cat.Channels))
	}
	for _, ch := range cat.Channels {
		p := ch.Index % n
		filters[p] = append(filters[p], prefix+"."+ch.Name)
		owns[p][ch.Index] = true
	}
	return filters, owns, nil
}

// NewInstanceID returns an id unique to this process: host, pid and a random
// suffix, in the characters KV keys allow.
func NewInstanceID() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	id := fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '-'
	}, id)
}

// validInstance reports whether name (empty: a generated one) fits in a KV
// key token.
func validInstance(name string) bool {
	if len(name) > 128 {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// ensureStreams binds the stream and, with CreateStream, creates it (with
// its limits) and the dead-letter stream when missing. It reports whether a
// stream captures the dead-letter subject.
func ensureStreams(ctx context.Context, js jetstream.JetStream, c *Config, log *slog.Logger) (deadLetterJS bool, err error) {
	o := c.JetStream
	_, err = js.Stream(ctx, o.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) && o.CreateStream {
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        o.Stream,
			Description: "FaceID verification results (created by faceid-exporter)",
			Subjects:    []string{c.Subject},
			Storage:     jetstream.FileStorage,
			MaxAge:      o.StreamMaxAge,
			MaxBytes:    o.StreamMaxBytes,
			Replicas:    max(o.StreamReplicas, 1),
			Discard:     jetstream.DiscardOld,
		})
		if err == nil {
			log.Info("created jetstream stream", "stream", o.Stream, "subject", c.Subject, "max_age", o.StreamMaxAge, "max_bytes", o.StreamMaxBytes)
		} else if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			_, err = js.Stream(ctx, o.Stream)
		}
	}
	if err != nil {
		return false, fmt.Errorf("stream %s: %w", o.Stream, err)
	}
	window := DeadLetterWindow(o.TakeoverTimeout)
	name, err := js.StreamNameBySubject(ctx, c.DeadLetterSubject)
	if err == nil && name != "" {
		if s, err := js.Stream(ctx, name); err == nil {
			if have := s.CachedInfo().Config.Duplicates; have < window {
				log.Warn("the dead-letter stream's duplicate window is shorter than the exporter needs: a dead letter replayed later than it after its first publish (a takeover after a checkpoint outage) is stored twice; raise the stream's duplicate_window",
					"stream", name, "duplicate_window", have, "needed", window, "takeover_timeout", o.TakeoverTimeout)
			}
		}
		return true, nil
	}
	if !o.CreateStream || o.DeadLetterStream == "" {
		log.Warn("no stream captures the dead-letter subject: dead letters go out on core NATS (a replay after a crash may publish one twice)", "subject", c.DeadLetterSubject)
		return false, nil
	}
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{
		Name:        o.DeadLetterStream,
		Description: "FaceID messages the exporter rejected (created by faceid-exporter)",
		Subjects:    []string{c.DeadLetterSubject},
		Storage:     jetstream.FileStorage,
		MaxAge:      o.StreamMaxAge,
		MaxBytes:    max(o.StreamMaxBytes/8, 64<<20),
		Replicas:    max(o.StreamReplicas, 1),
		Duplicates:  window,
	})
	if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return false, fmt.Errorf("dead-letter stream %s: %w", o.DeadLetterStream, err)
	}
	log.Info("created dead-letter stream", "stream", o.DeadLetterStream, "subject", c.DeadLetterSubject, "duplicate_window", window)
	return true, nil
}

// startGroup sets up the JetStream side and joins the group, retrying with
// backoff while NATS or JetStream is not reachable, until ctx ends.
func startGroup(ctx context.Context, nc *nats.Conn, c *Config, o stream.GroupOptions, log *slog.Logger) (*stream.Group, *checkpoint.Store, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		dlJS, err := ensureStreams(actx, js, c, log)
		var kv jetstream.KeyValue
		if err == nil {
			kv, err = checkpoint.OpenBucket(actx, js, checkpoint.BucketOptions{Bucket: c.JetStream.CheckpointBucket, Replicas: c.JetStream.CheckpointReplicas, Create: true})
		}
		cancel()
		if err == nil {
			store := checkpoint.NewStore(kv, c.JetStream.Stream, c.JetStream.Consumer)
			o.DeadLetterJetStream = dlJS
			g, err := stream.StartGroup(ctx, nc, js, store, o)
			return g, store, err
		}
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return nil, nil, fmt.Errorf("--jetstream.stream needs JetStream on the NATS server: %w", err)
		}
		log.Warn("jetstream not ready, retrying", "stream", c.JetStream.Stream, "err", err)
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("jetstream: %w", err)
		case <-time.After(stream.Backoff(attempt, 5*time.Second)):
		}
	}
}

// DemoStream is the stream --demo consumes on the embedded server.
const DemoStream = "FACEID"
