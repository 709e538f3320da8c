package checkpoint

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Delta is one commit's change of a partition's counters and rules' state
// since the commit before, and the link to the delta before it in its chain.
type Delta struct {
	Prev     Ref    // the delta before (none: the first after the snapshot)
	Counters []byte // the counters that changed (books.MergeCounters), opaque here
	Days     []byte // the ledger rows that changed (ledger.DecodeDaysDelta), opaque here
	Rules    []byte // the rules' delta (books.MergeRules), opaque here
}

// deltaVersion heads a delta's encoding: uvarint version, uvarint length and
// the previous delta's Ref as JSON (empty when none), uvarint length and the
// counters, uvarint length and the days, then the rules' delta to the end.
const deltaVersion = 1

var errDelta = errors.New("checkpoint delta")

// EncodeDelta returns a delta's stored form.
func EncodeDelta(d *Delta) ([]byte, error) {
	var prev []byte
	if d.Prev != (Ref{}) {
		var err error
		if prev, err = json.Marshal(d.Prev); err != nil {
			return nil, fmt.Errorf("encode delta: %w", err)
		}
	}
	b := make([]byte, 0, 24+len(prev)+len(d.Counters)+len(d.Days)+len(d.Rules))
	b = binary.AppendUvarint(b, deltaVersion)
	b = binary.AppendUvarint(b, uint64(len(prev)))
	b = append(b, prev...)
	b = binary.AppendUvarint(b, uint64(len(d.Counters)))
	b = append(b, d.Counters...)
	b = binary.AppendUvarint(b, uint64(len(d.Days)))
	b = append(b, d.Days...)
	return append(b, d.Rules...), nil
}

// DecodeDelta parses what EncodeDelta wrote. Its parts are checked by
// their merges.
func DecodeDelta(data []byte) (*Delta, error) {
	field := func() ([]byte, error) {
		n, k := binary.Uvarint(data)
		if k <= 0 || n > uint64(len(data)-k) {
			return nil, fmt.Errorf("%w: truncated", errDelta)
		}
		f := data[k : k+int(n)]
		data = data[k+int(n):]
		return f, nil
	}
	v, k := binary.Uvarint(data)
	if k <= 0 {
		return nil, fmt.Errorf("%w: truncated", errDelta)
	}
	if v != deltaVersion {
		return nil, fmt.Errorf("%w: version %d, this exporter reads %d", errDelta, v, deltaVersion)
	}
	data = data[k:]
	prev, err := field()
	if err != nil {
		return nil, err
	}
	d := &Delta{}
	if len(prev) > 0 {
		if err := json.Unmarshal(prev, &d.Prev); err != nil {
			return nil, fmt.Errorf("%w: previous delta: %w", errDelta, err)
		}
		if d.Prev == (Ref{}) {
			return nil, fmt.Errorf("%w: an empty previous delta", errDelta)
		}
	}
	if d.Counters, err = field(); err != nil {
		return nil, err
	}
	if d.Days, err = field(); err != nil {
		return nil, err
	}
	d.Rules = data
	return d, nil
}

// DeltaKey returns the base key of the delta a partition's commit writes in
// an epoch.
func (s *Store) DeltaKey(p int, epoch, commit uint64) string {
	return s.DataKey(p, epoch, DeltaKind(commit), 0)
}

// DeltaKind returns the data kind of a commit's delta.
func DeltaKind(commit uint64) string { return "x" + strconv.FormatUint(commit, 10) }

// ParseDeltaKind returns the commit of a delta's data kind.
func ParseDeltaKind(kind string) (uint64, bool) {
	if len(kind) < 2 || kind[0] != 'x' {
		return 0, false
	}
	c, err := strconv.ParseUint(kind[1:], 10, 64)
	return c, err == nil
}

// Deltas reads the chain of deltas rec names, oldest first, with their Refs.
// A delta that is gone or holds other bytes than its link names is
// ErrChanged (a later commit's snapshot replaced the chain while it was read,
// or the value is damaged).
func (s *Store) Deltas(ctx context.Context, rec *Record) ([]*Delta, []Ref, error) {
	c := rec.Deltas
	if c == nil {
		return nil, nil, nil
	}
	if c.Len <= 0 || c.Len > 1<<20 {
		return nil, nil, fmt.Errorf("%w: a chain of %d deltas", errDelta, c.Len)
	}
	out := make([]*Delta, c.Len)
	refs := make([]Ref, c.Len)
	ref := c.Head
	for i := c.Len - 1; i >= 0; i-- {
		if ref.Key == "" {
			return nil, nil, fmt.Errorf("%w: the chain of %s ends after %d of its %d deltas: %w", errDelta, c.Head.Key, c.Len-1-i, c.Len, ErrChanged)
		}
		data, err := s.Get(ctx, ref)
		if err != nil {
			return nil, nil, err
		}
		d, err := DecodeDelta(data)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", ref.Key, err)
		}
		out[i], refs[i] = d, ref
		ref = d.Prev
	}
	if ref.Key != "" {
		return nil, nil, fmt.Errorf("%w: the chain of %s is longer than the %d deltas its record names", errDelta, c.Head.Key, c.Len)
	}
	return out, refs, nil
}
