package stream

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// heartbeat is the value of a member key.
type heartbeat struct {
	Instance string    `json:"instance"`
	Run      string    `json:"run"` // random, per process
	At       time.Time `json:"at"`
}

func newRunID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// onOwnKey handles an entry of this replica's own member key. A heartbeat of
// another process (another run) written after this process's first one
// means two live processes share the name; live says the watch delivered the
// entry as it was written (not among its initial values).
func (g *Group) onOwnKey(e jetstream.KeyValueEntry, live bool) {
	var hb heartbeat
	if err := json.Unmarshal(e.Value(), &hb); err == nil && hb.Run != "" && hb.Run != g.runID {
		if first := g.firstBeat.Load(); first > 0 && e.Revision() > first {
			now := time.Now()
			if prev := g.duplicate.Swap(now.UnixNano()); prev == 0 || now.Sub(time.Unix(0, prev)) >= 2*g.o.TakeoverTimeout {
				g.log.Error("another live process uses this instance name: give each replica its own --jetstream.instance; records under the name are not taken back at once while both run",
					"instance", g.o.Instance)
			}
		}
		return
	}
	g.selfSeen.Store(time.Now().UnixNano())
	if live {
		g.skew.Store(int64(time.Since(e.Created())))
	}
}

// duplicated reports whether another live process has written a heartbeat
// under this process's name within the last two takeover timeouts.
func (g *Group) duplicated(now time.Time) bool {
	at := g.duplicate.Load()
	return at != 0 && now.Sub(time.Unix(0, at)) < 2*g.o.TakeoverTimeout
}

func (g *Group) duplicateMessage() string {
	return fmt.Sprintf("another live process uses --jetstream.instance %q: give each replica its own name", g.o.Instance)
}

// collectMembers deletes the member keys of processes unheard for
// MemberExpiry (killed ones never delete theirs) and the markers of members
// that left, so that the bucket does not grow with every restart. A key is
// purged only up to the revision seen: a member that writes again keeps its
// new heartbeat.
func (g *Group) collectMembers(ctx context.Context, serverNow time.Time) {
	self := g.store.MemberKey(g.o.Instance)
	type old struct {
		key string
		rev uint64
	}
	var gone []old
	g.mu.Lock()
	for k, m := range g.members {
		limit := g.o.MemberExpiry
		if m.deleted {
			limit = g.o.TakeoverTimeout // left: the marker was shown to every watch by now
		}
		if k != self && serverNow.Sub(m.at) >= limit {
			gone = append(gone, old{k, m.rev})
			delete(g.members, k)
		}
	}
	g.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, g.o.TakeoverTimeout)
	defer cancel()
	for _, o := range gone {
		if err := g.purgeKey(cctx, o.key, o.rev); err != nil {
			g.log.Warn("could not delete the member key of a dead process", "key", o.key, "err", err)
			return
		}
		g.log.Debug("deleted the member key of a dead process", "key", o.key)
	}
}

// purgeKey removes a key's messages up to revision rev from the bucket's
// stream, leaving no marker, and never a later write.
func (g *Group) purgeKey(ctx context.Context, key string, rev uint64) error {
	g.kvMu.Lock()
	s := g.kvStream
	g.kvMu.Unlock()
	if s == nil {
		var err error
		if s, err = g.js.Stream(ctx, "KV_"+g.store.KV().Bucket()); err != nil {
			return fmt.Errorf("checkpoint bucket stream: %w", err)
		}
		g.kvMu.Lock()
		g.kvStream = s
		g.kvMu.Unlock()
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSubject("$KV."+g.store.KV().Bucket()+"."+key), jetstream.WithPurgeSequence(rev+1)); err != nil {
		return fmt.Errorf("purge %s: %w", key, err)
	}
	return nil
}
