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

type entry struct {
	key uint64
	at  int64
}

// Window is a bounded in-memory Store. It forgets a key once the newest time
// it has seen is a window past the key's, or when it holds Capacity keys and
// needs room (the oldest goes first; Evicted counts those).
type Window struct {
	mu       sync.Mutex
	window   int64
	seen     map[uint64]int64
	ring     []entry
	head, n  int
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
	return &Window{
		window: int64(window),
		seen:   make(map[uint64]int64, capacity),
		ring:   make([]entry, capacity),
	}
}

// Seen implements Store.
func (w *Window) Seen(key uint64, at time.Time) bool {
	if w.disabled {
		return false
	}
	t := at.UnixNano()
	w.mu.Lock()
	defer w.mu.Unlock()
	if t > w.newest {
		w.newest = t
	}
	w.expire()
	if prev, ok := w.seen[key]; ok && t-prev < w.window && prev-t < w.window {
		return true
	}
	if w.n == len(w.ring) {
		w.evictOldest()
		w.evicted++
	}
	w.ring[(w.head+w.n)%len(w.ring)] = entry{key: key, at: t}
	w.n++
	w.seen[key] = t
	return false
}

func (w *Window) expire() {
	for w.n > 0 && w.newest-w.ring[w.head].at >= w.window {
		w.evictOldest()
	}
}

func (w *Window) evictOldest() {
	e := w.ring[w.head]
	if at, ok := w.seen[e.key]; ok && at == e.at {
		delete(w.seen, e.key)
	}
	w.head = (w.head + 1) % len(w.ring)
	w.n--
}

// Len returns how many keys the window holds.
func (w *Window) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// Evicted returns how many keys were dropped for room before their window ended.
func (w *Window) Evicted() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.evicted
}
