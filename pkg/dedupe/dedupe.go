// Package dedupe holds the bounded, time-windowed tables behind the duplicate
// rule (event ids) and the NFC reqId billing rule (anchors), with a binary
// encoding so that a partition's checkpoint can carry them exactly.
package dedupe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Window remembers event ids for a span of event time. It forgets a key once
// the newest time it has seen is a window past the key's, or when it holds
// Capacity keys and needs room (the oldest goes first; Evicted counts those).
// It does not allocate after construction and is not safe for concurrent
// use: it belongs to the one goroutine that owns a partition's state.
type Window struct {
	window   int64
	table    *TimeTable
	newest   int64
	evicted  uint64
	disabled bool
}

// NewWindow returns a Window of the given span and capacity. A zero window or
// capacity disables it: nothing is ever a duplicate.
func NewWindow(window time.Duration, capacity int) *Window {
	if window <= 0 || capacity <= 0 {
		return &Window{disabled: true}
	}
	return &Window{window: int64(window), table: NewTimeTable(capacity)}
}

// Seen reports whether key was recorded less than the window before or after
// at (Unix nanoseconds), and records it when it was not, unless the key's
// record is newer (an event far in the past never replaces it).
func (w *Window) Seen(key uint64, at int64) bool {
	if w.disabled {
		return false
	}
	if at > w.newest {
		w.newest = at
	}
	w.table.ExpireBefore(w.newest - w.window + 1)
	prev, ok := w.table.Get(key)
	if ok && at-prev < w.window && prev-at < w.window {
		return true
	}
	if ok && prev > at {
		// A late event a window or more before the key's record: keeping
		// the newer record is what catches the redeliveries to come.
		return false
	}
	if w.table.Put(key, at) {
		w.evicted++
	}
	return false
}

// Prefetch starts loading what a lookup of key will read (it satisfies
// classify.Prefetcher).
func (w *Window) Prefetch(key uint64) {
	if !w.disabled {
		w.table.Prefetch(key)
	}
}

// Len returns how many keys the window holds.
func (w *Window) Len() int {
	if w.disabled {
		return 0
	}
	return w.table.Len()
}

// Evicted returns how many keys were dropped for room before their window ended.
func (w *Window) Evicted() uint64 { return w.evicted }

// AppendBinary appends the window's state (see Table encoding) to b.
func (w *Window) AppendBinary(b []byte) []byte {
	return appendState(b, w.table, w.newest, w.evicted)
}

// UnmarshalBinary restores a state AppendBinary wrote into w (its span and
// capacity stay as constructed). When the state holds more entries than w's
// capacity, the oldest leave and are counted as evicted.
func (w *Window) UnmarshalBinary(data []byte) error {
	if w.disabled {
		return nil
	}
	var err error
	w.newest, w.evicted, err = restoreState(data, w.table)
	return err
}

// Anchors holds the state of the NFC reqId billing rule: a success of the
// rule's code is billed once per reqId; a further success of the same reqId
// less than a window after the billed one is not billed; the window is
// anchored at the billed success, and a success at or after its end is billed
// and opens a new one. It is not safe for concurrent use.
type Anchors struct {
	window  int64
	table   *TimeTable
	newest  int64
	evicted uint64
}

// NewAnchors returns the reqId rule's state for a window, remembering at most
// capacity reqIds (at least 1). When full, the oldest is forgotten and a
// repeat of it would be billed again; Evicted counts those.
func NewAnchors(window time.Duration, capacity int) *Anchors {
	return &Anchors{window: int64(window), table: NewTimeTable(capacity)}
}

// Bill reports whether a success of key at t (Unix nanoseconds) is billed,
// and records it.
func (a *Anchors) Bill(key uint64, t int64) bool {
	if t > a.newest {
		a.newest = t
	}
	a.table.ExpireBefore(a.newest - a.window + 1)
	anchor, ok := a.table.Get(key)
	billed, reanchor := DecideReqID(anchor, ok, t, a.window)
	if reanchor && a.table.Put(key, t) {
		a.evicted++
	}
	return billed
}

// Len returns how many anchors are held.
func (a *Anchors) Len() int { return a.table.Len() }

// Evicted returns how many reqIds were forgotten for room inside their window.
func (a *Anchors) Evicted() uint64 { return a.evicted }

// AppendBinary appends the anchors' state to b.
func (a *Anchors) AppendBinary(b []byte) []byte {
	return appendState(b, a.table, a.newest, a.evicted)
}

// UnmarshalBinary restores a state AppendBinary wrote.
func (a *Anchors) UnmarshalBinary(data []byte) error {
	var err error
	a.newest, a.evicted, err = restoreState(data, a.table)
	return err
}

// DecideReqID decides a success at t (Unix ns) of a reqId whose window is
// anchored at anchor (hasAnchor false: none is open): whether it is billed,
// and whether t becomes the reqId's anchor. A success earlier than the anchor
// (events out of order) is billed only when it lies a whole window before it,
// and leaves the anchor where it is, so a window never bills twice.
func DecideReqID(anchor int64, hasAnchor bool, t, window int64) (billed, reanchor bool) {
	switch {
	case !hasAnchor:
		return true, true
	case t >= anchor:
		billed = t-anchor >= window
		return billed, billed
	default:
		return anchor-t >= window, false
	}
}

// stateVersion heads the encoding: version, newest, evicted, entry count, then
// each entry in put order as key and time, all little-endian 64-bit.
const stateVersion = 1

var errState = errors.New("dedupe state")

func appendState(b []byte, t *TimeTable, newest int64, evicted uint64) []byte {
	n := 0
	if t != nil {
		n = t.Len()
	}
	b = binary.LittleEndian.AppendUint64(b, stateVersion)
	b = binary.LittleEndian.AppendUint64(b, uint64(newest))
	b = binary.LittleEndian.AppendUint64(b, evicted)
	b = binary.LittleEndian.AppendUint64(b, uint64(n))
	if t != nil {
		t.Each(func(key uint64, at int64) {
			b = binary.LittleEndian.AppendUint64(b, key)
			b = binary.LittleEndian.AppendUint64(b, uint64(at))
		})
	}
	return b
}

func restoreState(data []byte, t *TimeTable) (newest int64, evicted uint64, err error) {
	if len(data) < 32 {
		return 0, 0, fmt.Errorf("%w: %d bytes, want at least 32", errState, len(data))
	}
	u := func(i int) uint64 { return binary.LittleEndian.Uint64(data[i*8:]) }
	if v := u(0); v != stateVersion {
		return 0, 0, fmt.Errorf("%w: version %d, want %d", errState, v, stateVersion)
	}
	newest, evicted = int64(u(1)), u(2)
	n := u(3)
	if uint64(len(data)-32) != n*16 {
		return 0, 0, fmt.Errorf("%w: %d entries in %d bytes", errState, n, len(data)-32)
	}
	t.Reset()
	for i := uint64(0); i < n; i++ {
		if t.Put(u(4+2*int(i)), int64(u(5+2*int(i)))) {
			evicted++
		}
	}
	return newest, evicted, nil
}
