// Package dedupe remembers event ids for a window so that redeliveries are
// counted once.
package dedupe

import (
	"sync"
	"time"
)

// Store records event-id hashes. Implementations are safe for concurrent use.
// The in-memory Window serves one replica; replicas sharing one JetStream
// consumer need a shared implementation (a JetStream KV bucket, for example).
type Store interface {
	// Seen reports whether key was recorded less than the window before at,
	// and records it when it was not.
	Seen(key uint64, at time.Time) bool
}

// Prefetcher is a Store that can start loading what Seen(key, …) will read,
// so that a classifier can overlap the cache miss with decoding the rest of
// the event. It must be safe to call without synchronisation.
type Prefetcher interface {
	Prefetch(key uint64)
}

// Window is a bounded in-memory Store. It forgets a key once the newest time
// it has seen is a window past the key's, or when it holds Capacity keys and
// needs room (the oldest goes first; Evicted counts those). It does not
// allocate after construction.
type Window struct {
	mu       sync.Mutex
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

// Seen implements Store.
func (w *Window) Seen(key uint64, at time.Time) bool {
	if w.disabled {
		return false
	}
	t := at.UnixNano()
	w.mu.Lock()
	if t > w.newest {
		w.newest = t
	}
	w.table.ExpireBefore(w.newest - w.window + 1)
	dup := false
	if prev, ok := w.table.Get(key); ok && t-prev < w.window && prev-t < w.window {
		dup = true
	} else if w.table.Put(key, t) {
		w.evicted++
	}
	w.mu.Unlock()
	return dup
}

// Prefetch implements Prefetcher.
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
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.table.Len()
}

// Evicted returns how many keys were dropped for room before their window ended.
func (w *Window) Evicted() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.evicted
}
