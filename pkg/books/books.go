package books

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
)

// Books is one partition's state. The goroutine that owns the partition is
// its only writer and holds Lock while it applies a message; readers (the
// metrics collector, the checkpoint) take the same lock, except for counter
// values, which Value reads atomically.
type Books struct {
	mu    sync.Mutex
	l     *Layout
	c     []atomic.Uint64
	rules *Rules
	keep  ledger.Day // days kept before the newest day

	days  map[ledger.Day]map[uint32]uint64
	gen   map[ledger.Day]uint64 // change generation of each day
	dirty map[ledger.Day]uint64 // days changed since their last commit, with the generation
	// cur is the generation a change gets now; every capture of a snapshot
	// starts a new one. markDay's gen and dirty are cur already when markCur
	// is cur, so further events on it change neither map.
	cur, markCur uint64
	markDay      ledger.Day
	newestDay    ledger.Day
	lastDay      ledger.Day // cache of the day the last event landed on
	lastRows     map[uint32]uint64

	// The state of the last commit, for the next delta: every counter's
	// value, the places of the keys of the last full snapshot, the rules'
	// tables' marks and signature, the rows of the newest days; and the days
	// whose changes went into deltas since they were last stored whole.
	base     []uint64
	keyIndex map[int]int
	baseMark mark
	baseSig  []byte
	dayBase  map[ledger.Day]map[uint32]uint64
	inDeltas map[ledger.Day]bool
}

// New returns empty books.
func New(l *Layout, o RulesOptions) *Books {
	if o.RetentionDays <= 0 {
		o.RetentionDays = ledger.DefaultRetentionDays
	}
	return &Books{
		l: l, c: make([]atomic.Uint64, l.Slots()), rules: NewRules(l.cat, o), keep: ledger.Day(o.RetentionDays),
		days: map[ledger.Day]map[uint32]uint64{}, gen: map[ledger.Day]uint64{}, dirty: map[ledger.Day]uint64{}, cur: 1,
		base: make([]uint64, l.Slots()), dayBase: map[ledger.Day]map[uint32]uint64{}, inDeltas: map[ledger.Day]bool{},
	}
}

// Layout returns the books' layout.
func (b *Books) Layout() *Layout { return b.l }

// Rules returns the books' rules (for their prefetcher).
func (b *Books) Rules() *Rules { return b.rules }

// Lock locks the books.
func (b *Books) Lock() { b.mu.Lock() }

// Unlock unlocks the books.
func (b *Books) Unlock() { b.mu.Unlock() }

// Value returns a counter slot's value; safe without the lock.
func (b *Books) Value(slot int) uint64 { return b.c[slot].Load() }

// Apply applies the rules to a classified event and counts it: a duplicate
// in faceid_exporter_duplicates_total only, anything else in every event
// metric and the ledger. It reports whether the event was a duplicate. The
// caller holds the lock.
func (b *Books) Apply(r *classify.Result) (duplicate bool) {
	b.rules.Apply(r)
	l := b.l
	if ev := b.rules.DedupeEvicted(); ev != b.c[l.dedupeEv].Load() {
		b.c[l.dedupeEv].Store(ev)
	}
	if ev := b.rules.ReqIDEvicted(); ev != b.c[l.reqIDEv].Load() {
		b.c[l.reqIDEv].Store(ev)
	}
	if r.Duplicate {
		b.c[l.dup].Add(1)
		return true
	}
	ch := r.Channel.Index
	slot := 0
	if r.Code != nil {
		slot = r.Code.Index + 1
	} else {
		b.c[l.unk+ch].Add(1)
	}
	b.c[l.VerIndex(ch, slot, r.Outcome, r.Billable)].Add(1)
	b.c[l.risk+ch*3+int(r.Risk)].Add(1)
	b.c[l.dl+ch*l.dlSlots+r.DeviceLevel+1].Add(1)
	b.c[l.il+ch*l.ilSlots+r.RiskLevel+1].Add(1)
	const nPlat = 4
	p := int(r.Platform)
	for _, t := range r.DeviceTags[:r.NDeviceTags] {
		b.c[l.dt+(ch*l.dtSlots+t.Index+1)*nPlat+p].Add(1)
	}
	if r.UnknownDeviceTags > 0 {
		b.c[l.dt+(ch*l.dtSlots)*nPlat+p].Add(uint64(r.UnknownDeviceTags))
	}
	for _, t := range r.IdentityTags[:r.NIdentityTags] {
		b.c[l.it+ch*l.itSlots+t.Index+1].Add(1)
	}
	if r.UnknownIdentityTags > 0 {
		b.c[l.it+ch*l.itSlots].Add(uint64(r.UnknownIdentityTags))
	}
	if r.Problems != 0 {
		for i := 0; i < 16; i++ {
			if r.Problems&(1<<i) != 0 && l.values[l.prob+i] != nil {
				b.c[l.prob+i].Add(1)
			}
		}
	}
	if l.business {
		a, ru := slotOf(l.apps, r.Event.AppID), slotOf(l.rules, r.Event.RuleID)
		b.c[l.bizIndex(ch, a, ru, r.Outcome, r.Billable)].Add(1)
	}
	b.book(r, slot)
	return false
}

// book adds the event to its Beijing day's row. The ledger keeps the days
// from the retention before the newest day an accepted event landed on.
func (b *Books) book(r *classify.Result, codeSlot int) {
	l := b.l
	day := ledger.DayOfUnixNano(r.TS.UnixNano())
	if day > b.newestDay || len(b.days) == 0 {
		if day > b.newestDay {
			b.newestDay = day
		}
		b.prune()
	}
	if day < b.newestDay-b.keep {
		b.c[l.tooOld].Add(1)
		return
	}
	rows := b.lastRows
	if rows == nil || day != b.lastDay {
		if rows = b.days[day]; rows == nil {
			rows = map[uint32]uint64{}
			b.days[day] = rows
		}
		b.lastDay, b.lastRows = day, rows
	}
	key := uint32(((r.Channel.Index*l.codeSlots+codeSlot)*3+int(r.Billable))*l.ruleSlots + l.ruleSlot(r.Event.RuleID))
	rows[key]++
	if day != b.markDay || b.markCur != b.cur {
		b.gen[day], b.dirty[day] = b.cur, b.cur
		b.markDay, b.markCur = day, b.cur
	}
}

// prune drops the days past the retention before the newest day.
func (b *Books) prune() {
	for d := range b.days {
		if d < b.newestDay-b.keep {
			delete(b.days, d)
			delete(b.gen, d)
			b.dirty[d] = b.gen[d] // a removal to commit
			b.markCur = 0
		}
	}
}

// Reject counts a rejected message. The caller holds the lock.
func (b *Books) Reject(reason classify.Reason) { b.c[b.l.rej+int(reason&15)].Add(1) }

// DeadLettered counts a rejected message republished to the dead-letter
// subject. The caller holds the lock.
func (b *Books) DeadLettered(reason classify.Reason) { b.c[b.l.dlt+int(reason&15)].Add(1) }

// AddLost counts stream messages removed before they were read.
func (b *Books) AddLost(n uint64) { b.c[b.l.lost].Add(n) }

// StreamReset counts a re-creation of the stream.
func (b *Books) StreamReset() { b.c[b.l.resets].Add(1) }

// Rows returns the ledger rows of days from..to. The caller holds the lock.
func (b *Books) Rows(from, to ledger.Day) []ledger.Row {
	bk := ledger.Books{}
	for d, rows := range b.days {
		if d < from || d > to {
			continue
		}
		for k, n := range rows {
			bk.Add(b.rowKey(d, k), n)
		}
	}
	return bk.Rows(from, to)
}

func (b *Books) rowKey(d ledger.Day, k uint32) ledger.Key {
	l := b.l
	rule := int(k) % l.ruleSlots
	rest := int(k) / l.ruleSlots
	bill := rest % 3
	rest /= 3
	codeSlot := rest % l.codeSlots
	ch := rest / l.codeSlots
	code := Unknown
	if codeSlot > 0 {
		code = l.cat.Codes[codeSlot-1].Code
	}
	return ledger.Key{Day: d, Channel: l.cat.Channels[ch].Name, Code: code,
		Billable: classify.Billable(bill).String(), RuleID: l.ruleName(rule)}
}

// BilledMonthToDate returns, per channel index, the billable verifications
// of the Beijing month of now, from its first day to now's day. The caller
// holds the lock.
func (b *Books) BilledMonthToDate(now time.Time) []uint64 {
	l := b.l
	out := make([]uint64, len(l.cat.Channels))
	t := now.In(ledger.Beijing)
	first := ledger.DayOf(time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, ledger.Beijing))
	last := ledger.DayOf(t)
	for d := first; d <= last; d++ {
		for k, n := range b.days[d] {
			rest := int(k) / l.ruleSlots
			if classify.Billable(rest%3) != classify.BillableTrue {
				continue
			}
			out[rest/3/l.codeSlots] += n
		}
	}
	return out
}
