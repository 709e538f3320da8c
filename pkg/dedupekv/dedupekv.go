// Package dedupekv is a dedupe.Store shared through a JetStream key-value
// bucket: an event id recorded by one exporter process is a duplicate for
// every other process using the same bucket, replicas and restarts included.
package dedupekv

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"

	"github.com/faceid-observability/faceid-exporter/pkg/dedupe"
)

// Options configure a Store.
type Options struct {
	// Bucket is the KV bucket, created when missing.
	Bucket string
	// Window is how long an id is remembered: the bucket's TTL (wall-clock
	// time since the id was recorded) and the local front's span (event time).
	Window time.Duration
	// Capacity bounds the local in-memory front (ids).
	Capacity int
	// Replicas of the bucket's stream (default 1).
	Replicas int
	// Storage of the bucket (default file).
	Storage jetstream.StorageType
	// Timeout of one bucket request (default 2s).
	Timeout time.Duration
	Logger  *slog.Logger
}

// Store records event-id hashes in a JetStream KV bucket, one key per id,
// created with KV Create (a write that fails when the key exists), behind a
// bounded in-memory dedupe.Window so that repeats seen by this process do not
// cost a round trip. It is safe for concurrent use.
//
// When the bucket cannot be reached within the timeout, Seen answers "not
// seen" (the event is counted: nothing is lost) and Errors counts it.
type Store struct {
	kv      jetstream.KeyValue
	front   *dedupe.Window
	timeout time.Duration
	log     *slog.Logger
	logLim  *rate.Limiter
	errors  atomic.Uint64
	remote  atomic.Uint64 // duplicates only the bucket knew
	writes  atomic.Uint64
}

// New creates the bucket when missing (or updates its TTL) and returns a
// Store using it.
func New(ctx context.Context, js jetstream.JetStream, o Options) (*Store, error) {
	if o.Bucket == "" {
		return nil, errors.New("dedupe kv: no bucket name")
	}
	if o.Window <= 0 {
		return nil, errors.New("dedupe kv: the window must be above 0")
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	kv, err := openBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket:      o.Bucket,
		Description: "FaceID exporter: event ids already counted (dedupe)",
		TTL:         o.Window,
		Storage:     o.Storage,
		Replicas:    o.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("dedupe kv bucket %s: %w", o.Bucket, err)
	}
	return &Store{
		kv:      kv,
		front:   dedupe.NewWindow(o.Window, o.Capacity),
		timeout: o.Timeout,
		log:     o.Logger,
		logLim:  rate.NewLimiter(rate.Every(time.Second), 1),
	}, nil
}

// Key is the bucket key of an id hash.
func Key(key uint64) string {
	var b [16]byte
	return string(strconv.AppendUint(b[:0], key, 16))
}

// Seen implements dedupe.Store.
func (s *Store) Seen(key uint64, at time.Time) bool {
	if s.front.Seen(key, at) {
		return true
	}
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], uint64(at.UnixNano()))
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	s.writes.Add(1)
	_, err := s.kv.Create(ctx, Key(key), v[:])
	switch {
	case err == nil:
		return false
	case errors.Is(err, jetstream.ErrKeyExists):
		s.remote.Add(1)
		return true
	default:
		s.errors.Add(1)
		if s.logLim.Allow() {
			s.log.Warn("dedupe kv unreachable: counting the event without duplicate check (logged at most once a second)", "err", err)
		}
		return false
	}
}

// Errors returns how many ids could not be checked against the bucket.
func (s *Store) Errors() uint64 { return s.errors.Load() }

// RemoteDuplicates returns how many duplicates only the bucket knew of
// (recorded by another process or before a restart).
func (s *Store) RemoteDuplicates() uint64 { return s.remote.Load() }

// Writes returns how many ids were sent to the bucket.
func (s *Store) Writes() uint64 { return s.writes.Load() }

// Evicted returns how many ids the local front forgot for room (they are
// still in the bucket).
func (s *Store) Evicted() uint64 { return s.front.Evicted() }

var _ dedupe.Store = (*Store)(nil)

// openBucket creates or updates a KV bucket that keeps one value per key.
func openBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cfg.History = 1
	return js.CreateOrUpdateKeyValue(cctx, cfg)
}
