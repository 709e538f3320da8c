package dedupe

import (
	"encoding/binary"
	"fmt"
)

// A delta carries what changed in a table's state since a mark (the table's
// Puts at the last checkpoint): the entries put since, the number of entries
// held now, and the newest time and eviction count. The entries a table holds
// are always the newest ones put, in put order, so the state after a delta is
// the last Len entries of the state before followed by the delta's entries.
//
// Encoding, version 1: uvarint version, varint newest, uvarint evicted,
// uvarint held (entries after the delta), uvarint k (entries that follow),
// then k entries: key as 8 bytes little-endian, time as a varint of its
// difference from newest.
const deltaVersion = 1

// Mark returns what a later AppendDelta takes as since.
func (w *Window) Mark() uint64 {
	if w.disabled {
		return 0
	}
	return w.table.Puts()
}

// AppendDelta appends the change of the window's state since mark to b.
func (w *Window) AppendDelta(b []byte, mark uint64) []byte {
	return appendDelta(b, w.table, mark, w.newest, w.evicted)
}

// Mark returns what a later AppendDelta takes as since.
func (a *Anchors) Mark() uint64 { return a.table.Puts() }

// AppendDelta appends the change of the anchors' state since mark to b.
func (a *Anchors) AppendDelta(b []byte, mark uint64) []byte {
	return appendDelta(b, a.table, mark, a.newest, a.evicted)
}

func appendDelta(b []byte, t *TimeTable, mark uint64, newest int64, evicted uint64) []byte {
	n, k := 0, 0
	if t != nil {
		n = t.Len()
		k = n
		if p := t.Puts(); mark <= p && p-mark < uint64(n) {
			k = int(p - mark)
		}
	}
	b = binary.AppendUvarint(b, deltaVersion)
	b = binary.AppendVarint(b, newest)
	b = binary.AppendUvarint(b, evicted)
	b = binary.AppendUvarint(b, uint64(n))
	b = binary.AppendUvarint(b, uint64(k))
	if t != nil {
		t.Tail(k, func(key uint64, at int64) {
			b = binary.LittleEndian.AppendUint64(b, key)
			b = binary.AppendVarint(b, at-newest)
		})
	}
	return b
}

// Entry is one key and time of a table's state.
type Entry struct {
	Key uint64
	At  int64
}

// State is a table's encoded state (AppendBinary's) in a form deltas apply
// to: the entries in put order, the newest time and the eviction count. It
// is pure data; restoring it into a table is UnmarshalBinary of its
// AppendBinary.
type State struct {
	Newest  int64
	Evicted uint64
	Entries []Entry
}

// DecodeState parses what Window.AppendBinary or Anchors.AppendBinary wrote.
func DecodeState(data []byte) (*State, error) {
	if len(data) < 32 {
		return nil, fmt.Errorf("%w: %d bytes, want at least 32", errState, len(data))
	}
	u := func(i int) uint64 { return binary.LittleEndian.Uint64(data[i*8:]) }
	if v := u(0); v != stateVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", errState, v, stateVersion)
	}
	n := u(3)
	if uint64(len(data)-32) != n*16 {
		return nil, fmt.Errorf("%w: %d entries in %d bytes", errState, n, len(data)-32)
	}
	s := &State{Newest: int64(u(1)), Evicted: u(2), Entries: make([]Entry, n)}
	for i := range s.Entries {
		s.Entries[i] = Entry{Key: u(4 + 2*i), At: int64(u(5 + 2*i))}
	}
	return s, nil
}

// AppendBinary appends the state in AppendBinary's encoding.
func (s *State) AppendBinary(b []byte) []byte {
	b = binary.LittleEndian.AppendUint64(b, stateVersion)
	b = binary.LittleEndian.AppendUint64(b, uint64(s.Newest))
	b = binary.LittleEndian.AppendUint64(b, s.Evicted)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(s.Entries)))
	for _, e := range s.Entries {
		b = binary.LittleEndian.AppendUint64(b, e.Key)
		b = binary.LittleEndian.AppendUint64(b, uint64(e.At))
	}
	return b
}

// ApplyDelta applies what AppendDelta wrote (the whole of data) to s.
func (s *State) ApplyDelta(data []byte) error {
	d, err := DecodeDelta(data)
	if err != nil {
		return err
	}
	if d.Held > uint64(len(s.Entries))+uint64(len(d.Entries)) {
		return fmt.Errorf("%w: delta holds %d entries, only %d before and %d added", errState, d.Held, len(s.Entries), len(d.Entries))
	}
	all := append(s.Entries, d.Entries...)
	// Keep the newest Held entries, in a slice of their own so that later
	// appends never grow an ever-larger backing array.
	s.Entries = append(make([]Entry, 0, d.Held), all[uint64(len(all))-d.Held:]...)
	s.Newest, s.Evicted = d.Newest, d.Evicted
	return nil
}

// Delta is a decoded delta.
type Delta struct {
	Newest  int64
	Evicted uint64
	Held    uint64  // entries the state holds after the delta
	Entries []Entry // entries put since the mark (the newest of them, at most Held)
}

// DecodeDelta parses what AppendDelta wrote; data must hold exactly one delta.
func DecodeDelta(data []byte) (*Delta, error) {
	r := deltaReader{data: data}
	if v := r.uvarint(); r.err == nil && v != deltaVersion {
		return nil, fmt.Errorf("%w: delta version %d, want %d", errState, v, deltaVersion)
	}
	d := &Delta{Newest: r.varint(), Evicted: r.uvarint(), Held: r.uvarint()}
	k := r.uvarint()
	if r.err == nil && (k > d.Held || k > uint64(len(r.data))/9) {
		return nil, fmt.Errorf("%w: delta announces %d entries (%d held) in %d bytes", errState, k, d.Held, len(r.data))
	}
	if r.err == nil {
		d.Entries = make([]Entry, k)
		for i := range d.Entries {
			key := r.uint64()
			d.Entries[i] = Entry{Key: key, At: d.Newest + r.varint()}
		}
	}
	if r.err == nil && len(r.data) > 0 {
		r.err = fmt.Errorf("%w: %d bytes after the delta", errState, len(r.data))
	}
	if r.err != nil {
		return nil, r.err
	}
	return d, nil
}

// AppendDelta appends d in AppendDelta's encoding.
func (d *Delta) AppendDelta(b []byte) []byte {
	b = binary.AppendUvarint(b, deltaVersion)
	b = binary.AppendVarint(b, d.Newest)
	b = binary.AppendUvarint(b, d.Evicted)
	b = binary.AppendUvarint(b, d.Held)
	b = binary.AppendUvarint(b, uint64(len(d.Entries)))
	for _, e := range d.Entries {
		b = binary.LittleEndian.AppendUint64(b, e.Key)
		b = binary.AppendVarint(b, e.At-d.Newest)
	}
	return b
}

type deltaReader struct {
	data []byte
	err  error
}

func (r *deltaReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.data)
	if n <= 0 {
		r.err = fmt.Errorf("%w: delta truncated or malformed", errState)
		return 0
	}
	r.data = r.data[n:]
	return v
}

func (r *deltaReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.data)
	if n <= 0 {
		r.err = fmt.Errorf("%w: delta truncated or malformed", errState)
		return 0
	}
	r.data = r.data[n:]
	return v
}

func (r *deltaReader) uint64() uint64 {
	if r.err != nil {
		return 0
	}
	if len(r.data) < 8 {
		r.err = fmt.Errorf("%w: delta truncated", errState)
		return 0
	}
	v := binary.LittleEndian.Uint64(r.data)
	r.data = r.data[8:]
	return v
}
