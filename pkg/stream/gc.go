package stream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/faceid-observability/faceid-exporter/pkg/checkpoint"
)

// collect runs, after a commit, the partition's value collection: at the
// first commit of an epoch and then every GCInterval.
func (pt *partition) collect(ctx context.Context) {
	g := pt.g
	if (!pt.gcAt.IsZero() && time.Since(pt.gcAt) < g.o.GCInterval) || pt.days == nil {
		return // nil days: not known (never after a commit)
	}
	pt.gcAt = time.Now()
	n, err := g.collectValues(ctx, pt.p, pt.epoch, pt.rec, pt.days)
	if err != nil {
		pt.log.Warn("could not delete unreferenced checkpoint values", "err", err)
		return
	}
	if n > 0 {
		pt.log.Debug("deleted unreferenced checkpoint values", "keys", n)
	}
}

// collectValues deletes the data keys of partition p that rec, the record the
// owner of epoch has just committed, does not reference (with days, the days
// it names): values of earlier
// epochs that no commit moved off (the unreferenced slot, a value a failed or
// fenced commit wrote), chunks past a value's last, a dropped day's slots,
// deltas a snapshot replaced, and the markers that deletions left. It must run in the owner's commit
// goroutine, between commits: the owner's next commit references only what
// rec references or what it writes then. Keys of a later epoch (a new owner's)
// are left alone. It returns how many keys it removed.
func (g *Group) collectValues(ctx context.Context, p int, epoch uint64, rec *checkpoint.Record, days map[string]checkpoint.Ref) (int, error) {
	refs := map[string]int{} // base key → chunks
	named := []checkpoint.Ref{rec.Counters, rec.Rules}
	if rec.DaysIndex != nil {
		named = append(named, *rec.DaysIndex)
	}
	for _, r := range named {
		if r.Key != "" {
			refs[r.Key] = r.Chunks
		}
	}
	for _, r := range days {
		if r.Key != "" {
			refs[r.Key] = r.Chunks
		}
	}
	prefix := g.store.DataPrefix(p)
	w, err := g.store.KV().Watch(ctx, prefix+">", jetstream.MetaOnly())
	if err != nil {
		return 0, fmt.Errorf("list checkpoint values: %w", err)
	}
	type key struct {
		name string
		rev  uint64
	}
	var drop []key
	func() {
		defer func() { _ = w.Stop() }()
		for {
			select {
			case e, ok := <-w.Updates():
				if !ok || e == nil {
					return
				}
				if e.Operation() != jetstream.KeyValuePut {
					drop = append(drop, key{e.Key(), e.Revision()}) // a marker
					continue
				}
				base, chunk, ep, ok := parseDataKey(prefix, e.Key())
				if !ok || ep > epoch {
					continue // not ours to judge
				}
				if n, ok := refs[base]; ok && chunk < n {
					continue
				}
				if inChain(rec, prefix, base, ep, chunk) {
					continue
				}
				drop = append(drop, key{e.Key(), e.Revision()})
			case <-ctx.Done():
				err = ctx.Err()
				return
			}
		}
	}()
	if err != nil {
		return 0, fmt.Errorf("list checkpoint values: %w", err)
	}
	var errs []error
	n := 0
	for _, k := range drop {
		if err := g.purgeKey(ctx, k.name, k.rev); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// inChain reports whether a data key's chunk may belong to a delta of rec's
// chain: a delta of its epoch written by a commit from the chain's first to
// its last (each commit writes at most one delta, under its own key).
func inChain(rec *checkpoint.Record, prefix, base string, epoch uint64, chunk int) bool {
	c := rec.Deltas
	if c == nil || epoch != rec.Epoch || chunk >= c.Chunks {
		return false
	}
	parts := strings.Split(strings.TrimPrefix(base, prefix), ".")
	if len(parts) != 3 || parts[2] != "s0" {
		return false
	}
	commit, ok := checkpoint.ParseDeltaKind(parts[1])
	return ok && commit >= c.First && commit <= c.Last
}

// parseDataKey splits prefix + "e<epoch>.<kind>.s<slot>.c<chunk>" into its
// base key (up to the slot), chunk and epoch.
func parseDataKey(prefix, key string) (base string, chunk int, epoch uint64, ok bool) {
	rest, found := strings.CutPrefix(key, prefix)
	if !found {
		return "", 0, 0, false
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 4 || !strings.HasPrefix(parts[0], "e") || !strings.HasPrefix(parts[3], "c") {
		return "", 0, 0, false
	}
	epoch, err := strconv.ParseUint(parts[0][1:], 10, 64)
	if err != nil {
		return "", 0, 0, false
	}
	chunk, err = strconv.Atoi(parts[3][1:])
	if err != nil {
		return "", 0, 0, false
	}
	return prefix + strings.Join(parts[:3], "."), chunk, epoch, true
}
