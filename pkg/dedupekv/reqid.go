package dedupekv

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"

	"github.com/faceid-observability/faceid-exporter/pkg/classify"
)

// ReqIDOptions configure a ReqIDs store.
type ReqIDOptions struct {
	// Bucket is the KV bucket of the anchors, created when missing. It must
	// not be the dedupe bucket.
	Bucket string
	// Window is the reqId rule's window (the catalog's req_id_rule.window).
	Window time.Duration
	// TTL of the bucket: how long an anchor is kept after it was written
	// (wall-clock time). Default and minimum: Window.
	TTL time.Duration
	// Replicas of the bucket's stream (default 1).
	Replicas int
	// Storage of the bucket (default file).
	Storage jetstream.StorageType
	// Timeout of one Bill, its retries included (default 2s).
	Timeout time.Duration
	// Attempts bounds the read-decide-write rounds of one Bill when other
	// writers keep winning the compare-and-set (default 8).
	Attempts int
	Logger   *slog.Logger
}

// ReqIDs is a classify.ReqIDStore shared through a JetStream KV bucket: the
// anchor of each reqId's open window is one key (Key of the reqId hash, the
// anchor's event time in Unix ns as 8 big-endian bytes), so that replicas and
// restarts apply the reqId billing rule as one process would.
//
// Bill reads the anchor, decides with classify.DecideReqID and, when the
// success becomes the new anchor, writes it with a compare-and-set: Create
// when there was none, Update at the revision read otherwise. When another
// process wrote first, it reads and decides again, so among concurrent
// successes of one reqId inside a window exactly one is billed. It is safe for
// concurrent use.
//
// When the bucket cannot be reached within the timeout, or the compare-and-set
// keeps losing for Attempts rounds, Bill answers "billed" (the success is
// counted as the classifier alone would count a reqId it has not seen) and
// Errors counts it.
type ReqIDs struct {
	kv        jetstream.KeyValue
	timeout   time.Duration
	attempts  int
	log       *slog.Logger
	logLim    *rate.Limiter
	errors    atomic.Uint64
	conflicts atomic.Uint64
	writes    atomic.Uint64

	afterGet func(key uint64) // test hook: runs between the read and the write
}

// NewReqIDs creates the bucket when missing (or updates its TTL) and returns
// a ReqIDs using it.
func NewReqIDs(ctx context.Context, js jetstream.JetStream, o ReqIDOptions) (*ReqIDs, error) {
	if o.Bucket == "" {
		return nil, errors.New("reqid kv: no bucket name")
	}
	if o.Window <= 0 {
		return nil, errors.New("reqid kv: the window must be above 0")
	}
	if o.TTL == 0 {
		o.TTL = o.Window
	}
	if o.TTL < o.Window {
		return nil, fmt.Errorf("reqid kv: the ttl %s is shorter than the window %s", o.TTL, o.Window)
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	if o.Attempts <= 0 {
		o.Attempts = 8
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	kv, err := openBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket:      o.Bucket,
		Description: "FaceID exporter: anchors of the NFC reqId billing windows",
		TTL:         o.TTL,
		Storage:     o.Storage,
		Replicas:    o.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("reqid kv bucket %s: %w", o.Bucket, err)
	}
	return &ReqIDs{
		kv: kv, timeout: o.Timeout, attempts: o.Attempts, log: o.Logger,
		logLim: rate.NewLimiter(rate.Every(time.Second), 1),
	}, nil
}

// Bill implements classify.ReqIDStore.
func (s *ReqIDs) Bill(key uint64, at time.Time, window time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	billed, err := s.bill(ctx, key, at.UnixNano(), int64(window))
	if err != nil {
		s.errors.Add(1)
		if s.logLim.Allow() {
			s.log.Warn("reqid kv unavailable: billing the nfc success as a first one (logged at most once a second)", "err", err)
		}
		return true
	}
	return billed
}

func (s *ReqIDs) bill(ctx context.Context, key uint64, t, window int64) (bool, error) {
	k := Key(key)
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], uint64(t))
	for attempt := 1; ; attempt++ {
		var anchor int64
		var rev uint64 // 0: no key
		has := false
		e, err := s.kv.Get(ctx, k)
		switch {
		case err == nil:
			// A value that is not 8 bytes is no anchor: it is overwritten.
			rev = e.Revision()
			if b := e.Value(); len(b) == 8 {
				anchor, has = int64(binary.BigEndian.Uint64(b)), true
			}
		case !errors.Is(err, jetstream.ErrKeyNotFound):
			return false, fmt.Errorf("read reqid anchor: %w", err)
		}
		if s.afterGet != nil {
			s.afterGet(key)
		}
		billed, reanchor := classify.DecideReqID(anchor, has, t, window)
		if !reanchor {
			return billed, nil
		}
		s.writes.Add(1)
		if rev == 0 {
			_, err = s.kv.Create(ctx, k, v[:])
		} else {
			_, err = s.kv.Update(ctx, k, v[:], rev)
		}
		switch {
		case err == nil:
			return billed, nil
		case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
			s.conflicts.Add(1)
			if attempt >= s.attempts {
				return false, fmt.Errorf("write reqid anchor: %d compare-and-set conflicts in a row: %w", attempt, err)
			}
		default:
			return false, fmt.Errorf("write reqid anchor: %w", err)
		}
	}
}

// Errors returns how many successes were billed without the bucket's answer.
func (s *ReqIDs) Errors() uint64 { return s.errors.Load() }

// Conflicts returns how many compare-and-set writes lost to another writer
// (each followed by a new read and decision).
func (s *ReqIDs) Conflicts() uint64 { return s.conflicts.Load() }

// Writes returns how many anchors were sent to the bucket.
func (s *ReqIDs) Writes() uint64 { return s.writes.Load() }

var _ classify.ReqIDStore = (*ReqIDs)(nil)
