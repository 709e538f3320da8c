package dedupe

import (
	"math/bits"
	"unsafe"
)

// TimeTable maps 64-bit keys to times, holding at most its capacity of
// entries. Entries leave in the order they were put: when the table is full,
// or when ExpireBefore passes them. It never allocates after construction.
// It is not safe for concurrent use.
type TimeTable struct {
	slots []slot // open addressing, linear probing; key 0 marks an empty slot
	mask  uint64

	fifo    []entry // put order, for expiry and eviction
	head, n int
	puts    uint64 // entries put since construction or Reset (a checkpoint's delta mark)

	zeroSet bool // key 0 lives outside the slots, where 0 marks empty
	zeroAt  int64
}

type entry struct {
	key uint64
	at  int64
}

// slot holds a key with its time, so that one cache line serves a lookup.
type slot = entry

// entryBytes is the size of one slot and of one fifo entry.
const entryBytes = int64(unsafe.Sizeof(entry{}))

// BytesPerID bounds the memory a TimeTable holds per id of its capacity: its
// slots are fewer than 4×capacity and each id has one fifo entry, all 16-byte
// entries. TableBytes gives the exact figure of one capacity (48 to 80 bytes
// per id).
const BytesPerID = 80

// TableBytes returns the memory a TimeTable of the given capacity holds: a
// power of two ≥ 2×capacity of slots, and one fifo entry per id.
func TableBytes(capacity int) int64 {
	capacity = max(capacity, 1)
	return int64(slotCount(capacity))*entryBytes + int64(capacity)*entryBytes
}

// slotCount is the number of slots of a table of capacity: a power of two ≥ 2×capacity.
func slotCount(capacity int) uint64 { return uint64(1) << bits.Len64(uint64(capacity)*2-1) }

// NewTimeTable returns a table that holds up to capacity entries (at least 1).
func NewTimeTable(capacity int) *TimeTable {
	capacity = max(capacity, 1)
	size := slotCount(capacity)
	return &TimeTable{
		slots: make([]slot, size),
		mask:  size - 1,
		fifo:  make([]entry, capacity),
	}
}

func (t *TimeTable) home(key uint64) uint64 { return (key * 0x9E3779B97F4A7C15) >> 32 & t.mask }

// Prefetch starts loading the memory a lookup of key will read, so that the
// cache miss overlaps other work. It reads only what never changes after
// construction, so it may be called without the owner's lock.
func (t *TimeTable) Prefetch(key uint64) {
	prefetch(uintptr(unsafe.Pointer(&t.slots[t.home(key)])))
}

func (t *TimeTable) slot(key uint64) (uint64, bool) {
	i := t.home(key)
	for {
		switch t.slots[i].key {
		case key:
			return i, true
		case 0:
			return i, false
		}
		i = (i + 1) & t.mask
	}
}

// Get returns the time stored for key.
func (t *TimeTable) Get(key uint64) (int64, bool) {
	if key == 0 {
		if !t.zeroSet {
			return 0, false
		}
		return t.zeroAt, true
	}
	i, ok := t.slot(key)
	if !ok {
		return 0, false
	}
	return t.slots[i].at, true
}

// Put stores at for key and reports whether the oldest entry had to leave to
// make room.
func (t *TimeTable) Put(key uint64, at int64) (evicted bool) {
	if t.n == len(t.fifo) {
		t.dropOldest()
		evicted = true
	}
	if key == 0 {
		t.zeroSet, t.zeroAt = true, at
	} else {
		i, _ := t.slot(key)
		t.slots[i] = slot{key: key, at: at}
	}
	t.fifo[(t.head+t.n)%len(t.fifo)] = entry{key: key, at: at}
	t.n++
	t.puts++
	if t.n == len(t.fifo) {
		// The next Put evicts the oldest entry: start loading its slot now.
		t.Prefetch(t.fifo[t.head].key)
	}
	return evicted
}

// ExpireBefore drops, in put order, the entries put with a time before cutoff;
// it stops at the first that is not.
func (t *TimeTable) ExpireBefore(cutoff int64) {
	for t.n > 0 && t.fifo[t.head].at < cutoff {
		t.dropOldest()
	}
}

// Each calls f for every entry in put order.
func (t *TimeTable) Each(f func(key uint64, at int64)) {
	for i := 0; i < t.n; i++ {
		e := t.fifo[(t.head+i)%len(t.fifo)]
		f(e.key, e.at)
	}
}

// Reset empties the table.
func (t *TimeTable) Reset() {
	clear(t.slots)
	t.head, t.n, t.zeroSet, t.zeroAt, t.puts = 0, 0, false, 0, 0
}

// Puts returns how many entries were put since the table was made or reset:
// the entries a delta since an earlier count holds are the newest
// min(Puts()-since, Len()).
func (t *TimeTable) Puts() uint64 { return t.puts }

// Tail calls f for the newest n entries (at most Len()) in put order.
func (t *TimeTable) Tail(n int, f func(key uint64, at int64)) {
	n = min(n, t.n)
	for i := t.n - n; i < t.n; i++ {
		e := t.fifo[(t.head+i)%len(t.fifo)]
		f(e.key, e.at)
	}
}

// Len returns the number of entries held (a key put twice counts twice until
// its older entry leaves).
func (t *TimeTable) Len() int { return t.n }

func (t *TimeTable) dropOldest() {
	e := t.fifo[t.head]
	t.head = (t.head + 1) % len(t.fifo)
	t.n--
	if e.key == 0 {
		if t.zeroAt == e.at {
			t.zeroSet = false
		}
		return
	}
	if i, ok := t.slot(e.key); ok && t.slots[i].at == e.at {
		t.remove(i)
	}
}

// remove empties slot i and shifts later members of its probe run back, so
// that lookups never need tombstones.
func (t *TimeTable) remove(i uint64) {
	for {
		t.slots[i].key = 0
		j := i
		for {
			j = (j + 1) & t.mask
			k := t.slots[j].key
			if k == 0 {
				return
			}
			home := t.home(k)
			// Move k back to i when i lies on its probe path from home to j.
			if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
				t.slots[i] = t.slots[j]
				i = j
				break
			}
		}
	}
}
