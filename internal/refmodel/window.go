package refmodel

import "time"

// window is the state of the two rules that remember keys for a span of
// event time: the duplicate rule (event ids) and the NFC reqId rule (the
// anchor of each reqId's billing window).
//
// What it remembers, in words (docs/service.md, docs/metrics.md, the
// dedupe.window and dedupe.capacity settings):
//   - keys are remembered in the order they were put, each with the event
//     time it was put with; a key put again while an older entry of it is
//     still held has two entries, and its time is the latest put's;
//   - "newest" is the latest event time the rule has been asked about (for
//     ids: every counted or duplicate event with an id; for reqIds: every
//     non-duplicate NFC success with a reqId);
//   - entries are forgotten oldest-put first: the oldest entry leaves once
//     newest is a whole span past its time, and (the model's pick, following
//     "the oldest goes first") expiry stops at the first entry that is not
//     that old, so an entry put after a newer one waits behind it;
//   - when capacity entries are held, putting one more forgets the oldest
//     entry first and counts an eviction.
type window struct {
	span     int64 // ns
	capacity int
	order    []entry          // put order, oldest first
	at       map[string]int64 // key -> time of its latest put still held
	newest   int64
	evicted  uint64
}

type entry struct {
	key string
	at  int64
}

func newWindow(span time.Duration, capacity int) *window {
	return &window{span: span.Nanoseconds(), capacity: capacity, at: map[string]int64{}}
}

func (w *window) observe(t int64) {
	if t > w.newest {
		w.newest = t
	}
	for len(w.order) > 0 && w.newest-w.order[0].at >= w.span {
		w.dropOldest()
	}
}

func (w *window) dropOldest() {
	e := w.order[0]
	w.order = w.order[1:]
	if w.at[e.key] == e.at {
		delete(w.at, e.key)
	}
}

func (w *window) put(key string, t int64) {
	if len(w.order) == w.capacity {
		w.dropOldest()
		w.evicted++
	}
	w.at[key] = t
	w.order = append(w.order, entry{key, t})
}

// seen is the duplicate rule: it reports whether id was put less than a span
// before or after t, and puts it when it was not, unless the id's record is
// later than t (README: a late event a window or more before its id's record
// is not a duplicate and does not replace that record).
func (w *window) seen(id string, t int64) bool {
	w.observe(t)
	prev, ok := w.at[id]
	if ok && t-prev < w.span && prev-t < w.span {
		return true
	}
	if ok && prev > t {
		return false
	}
	w.put(id, t)
	return false
}

// bill is the NFC reqId rule (docs/codes.md "reqId rule"): a success of a
// reqId with no open window is billed and opens one anchored at it; a
// success at or after the anchor is billed (and re-anchors) only when it is a
// whole span after the anchor; a success before the anchor (out of order) is
// billed only when it lies a whole span before it, and leaves the anchor
// where it is.
func (w *window) bill(reqID string, t int64) bool {
	w.observe(t)
	anchor, ok := w.at[reqID]
	switch {
	case !ok:
		w.put(reqID, t)
		return true
	case t >= anchor:
		if t-anchor >= w.span {
			w.put(reqID, t)
			return true
		}
		return false
	default:
		return anchor-t >= w.span
	}
}
