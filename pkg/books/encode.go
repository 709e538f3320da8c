package books

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"unicode/utf8"

	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
)

// Snapshot is what a checkpoint stores of the books at one stream position.
// A full snapshot holds every nonzero counter by its stable key and the
// rules' state; a delta what changed in them since the last commit. Either
// holds the ledger days to store whole (Days); a delta also holds the changed
// rows of days stored whole before (DaysDelta).
type Snapshot struct {
	Full     bool
	Counters []byte // full: JSON object, stable key → value
	Rules    []byte // full: binary (Rules.AppendBinary)
	// CountersDelta (the counters changed since the last commit, for
	// MergeCounters), RulesDelta (what the rules' tables took in since, for
	// MergeRules) and DaysDelta (ledger.EncodeDaysDelta; empty: none) make a
	// delta.
	CountersDelta []byte
	RulesDelta    []byte
	DaysDelta     []byte
	// Days holds the JSON ledger.DayFile of each day to store whole; nil:
	// the day left the books.
	Days map[ledger.Day][]byte

	gens         map[ledger.Day]uint64
	rows         map[ledger.Day]map[uint32]uint64 // the rows of the days committed, for the next delta's base
	deltaDays    []ledger.Day                     // the days of DaysDelta
	vals         []uint64                         // every counter, for the next delta's base
	keyIndex     map[int]int                      // full: the slot of each key, by its place among the snapshot's sorted keys
	mark         mark
	sig          []byte // the rules' newest times, sizes and evictions
	countersN    int    // counters in the delta
	rulesChanged bool
}

// Changed reports whether a delta holds any change (a full snapshot always
// does): a commit with none need not write one.
func (s *Snapshot) Changed() bool {
	return s.Full || len(s.Days) > 0 || len(s.deltaDays) > 0 || s.countersN > 0 || s.rulesChanged
}

// Snapshot encodes the books' full state, and whole every ledger day changed
// since it was last stored whole. The caller holds the lock.
func (b *Books) Snapshot() (*Snapshot, error) {
	s := b.capture()
	counters := make(map[string]uint64, 256)
	for slot, v := range s.vals {
		if v != 0 {
			counters[b.l.keys[slot]] = v
		}
	}
	cj, err := json.Marshal(counters)
	if err != nil {
		return nil, fmt.Errorf("encode counters: %w", err)
	}
	keys := slices.Sorted(maps.Keys(counters)) // the order json.Marshal wrote them in
	s.keyIndex = make(map[int]int, len(keys))
	for i, k := range keys {
		s.keyIndex[b.l.index[k]] = i
	}
	s.Full, s.Counters, s.Rules = true, cj, b.rules.AppendBinary(nil)
	whole := maps.Clone(b.dirty)
	for d := range b.inDeltas {
		if _, ok := whole[d]; !ok {
			whole[d] = b.gen[d]
		}
	}
	return s, b.encodeDays(s, whole)
}

// SnapshotDelta encodes what changed since the last commit (Committed): the
// counters whose value changed, the rules' new entries, the changed rows of
// days stored before, and whole the days that are new (or whose rows at the
// last commit are not kept). The caller holds the lock.
func (b *Books) SnapshotDelta() (*Snapshot, error) {
	s := b.capture()
	var cd []byte
	for slot, v := range s.vals {
		if v == b.base[slot] {
			continue
		}
		s.countersN++
		if i, ok := b.keyIndex[slot]; ok {
			cd = binary.AppendUvarint(cd, uint64(i)+1)
		} else {
			cd = binary.AppendUvarint(cd, 0)
			cd = binary.AppendUvarint(cd, uint64(len(b.l.keys[slot])))
			cd = append(cd, b.l.keys[slot]...)
		}
		cd = binary.AppendUvarint(cd, v)
	}
	s.CountersDelta = binary.AppendUvarint(nil, uint64(s.countersN))
	s.CountersDelta = append(s.CountersDelta, cd...)
	s.RulesDelta = b.rules.appendDelta(nil, b.baseMark)
	s.rulesChanged = s.mark != b.baseMark || !bytes.Equal(s.sig, b.baseSig)
	whole := map[ledger.Day]uint64{}
	changed := map[ledger.Day][]ledger.Row{}
	for d, g := range b.dirty {
		base, ok := b.dayBase[d]
		rows, live := b.days[d]
		if !live || (!ok && !b.inDeltas[d]) {
			// Gone, or new or with its base not kept: stored whole. A day
			// with rows in the chain's deltas never is (they would apply
			// over the newer whole value): all its rows go in the delta.
			whole[d] = g
			continue
		}
		s.gens[d] = g
		var keys []uint32
		for k, n := range rows {
			if base[k] != n {
				keys = append(keys, k)
			}
		}
		if len(keys) == 0 {
			continue
		}
		out := make([]ledger.Row, len(keys))
		for i, k := range keys {
			out[i] = b.rowOf(d, k, rows[k])
		}
		ledger.SortRows(out)
		changed[d] = out
		s.rows[d] = maps.Clone(rows)
		s.deltaDays = append(s.deltaDays, d)
	}
	if len(changed) > 0 {
		var err error
		if s.DaysDelta, err = ledger.EncodeDaysDelta(changed); err != nil {
			return nil, err
		}
	}
	return s, b.encodeDays(s, whole)
}

func (b *Books) rowOf(d ledger.Day, k uint32, n uint64) ledger.Row {
	key := b.rowKey(d, k)
	return ledger.Row{Day: d.String(), Channel: key.Channel, Code: key.Code, Billable: key.Billable, RuleID: key.RuleID, Count: n}
}

func (b *Books) capture() *Snapshot {
	m := b.rules.mark()
	s := &Snapshot{vals: make([]uint64, len(b.c)), mark: m, sig: b.rules.appendDelta(nil, m),
		Days: map[ledger.Day][]byte{}, gens: map[ledger.Day]uint64{}, rows: map[ledger.Day]map[uint32]uint64{}}
	for slot := range b.c {
		s.vals[slot] = b.c[slot].Load()
	}
	b.cur++ // a change from now on is one this snapshot misses
	return s
}

// encodeDays stores the days of whole whole (with their generations).
func (b *Books) encodeDays(s *Snapshot, whole map[ledger.Day]uint64) error {
	for d, g := range whole {
		s.gens[d] = g
		rows, ok := b.days[d]
		if !ok {
			s.Days[d] = nil
			continue
		}
		s.rows[d] = maps.Clone(rows)
		f := ledger.DayFile{Day: d.String(), Rows: b.Rows(d, d)}
		if f.Rows == nil {
			f.Rows = []ledger.Row{}
		}
		var err error
		if s.Days[d], err = json.Marshal(f); err != nil {
			return fmt.Errorf("encode ledger day %s: %w", d, err)
		}
	}
	return nil
}

// keptDayBases is how many of the newest days keep their committed rows, so
// that a delta can hold just their changed rows; a change to an older day
// stores it whole.
const keptDayBases = 3

// Committed marks s as committed: its days, unless they changed since, and
// its counters, rules and rows as the base of the next delta. The caller
// holds the lock.
func (b *Books) Committed(s *Snapshot) {
	for d, g := range s.gens {
		if b.dirty[d] == g {
			delete(b.dirty, d)
		}
	}
	b.base, b.baseMark, b.baseSig = s.vals, s.mark, s.sig
	if s.Full {
		b.keyIndex = s.keyIndex
		clear(b.inDeltas) // every day changed since it was stored whole is stored whole again
	}
	for d := range s.Days {
		delete(b.inDeltas, d)
	}
	for _, d := range s.deltaDays {
		b.inDeltas[d] = true
	}
	for d, rows := range s.rows {
		b.dayBase[d] = rows
	}
	for d := range b.dayBase {
		if _, ok := b.days[d]; !ok || d < b.newestDay-keptDayBases+1 {
			delete(b.dayBase, d)
		}
	}
}

// RestoredDeltas tells restored books which days the restored deltas
// changed: their stored whole values are older than the books, so the next
// full snapshot stores them whole again. The caller holds the lock.
func (b *Books) RestoredDeltas(days []ledger.Day) {
	for _, d := range days {
		if _, ok := b.days[d]; ok {
			b.inDeltas[d] = true
		}
	}
}

// MergeCounters applies counters deltas (Snapshot.CountersDelta of later
// commits, in commit order) to a full snapshot's counters (a JSON object of
// stable key → value) and returns the counters they describe in the same
// form. A delta names a counter by its place among the snapshot's sorted
// keys, or by its key when the snapshot has none: uvarint count, then for
// each counter uvarint place+1 (0: uvarint length and the key follow) and
// uvarint value. It is pure.
func MergeCounters(snapshot []byte, deltas ...[]byte) ([]byte, error) {
	if len(deltas) == 0 {
		return snapshot, nil
	}
	m := map[string]uint64{}
	if len(snapshot) > 0 {
		if err := json.Unmarshal(snapshot, &m); err != nil {
			return nil, fmt.Errorf("decode counters: %w", err)
		}
	}
	keys := slices.Sorted(maps.Keys(m))
	for i, d := range deltas {
		if err := applyCounters(m, keys, d); err != nil {
			return nil, fmt.Errorf("counters delta %d: %w", i, err)
		}
	}
	for _, k := range slices.Collect(maps.Keys(m)) {
		if m[k] == 0 {
			delete(m, k)
		}
	}
	out, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode counters: %w", err)
	}
	return out, nil
}

var errCounters = errors.New("truncated or malformed")

func applyCounters(m map[string]uint64, keys []string, d []byte) error {
	next := func() (uint64, error) {
		v, k := binary.Uvarint(d)
		if k <= 0 {
			return 0, errCounters
		}
		d = d[k:]
		return v, nil
	}
	n, err := next()
	if err != nil {
		return err
	}
	if n > uint64(len(d))/2 {
		return fmt.Errorf("%d counters announced in %d bytes: %w", n, len(d), errCounters)
	}
	for range n {
		ref, err := next()
		if err != nil {
			return err
		}
		var key string
		switch {
		case ref == 0:
			l, err := next()
			if err != nil {
				return err
			}
			if l > uint64(len(d)) {
				return errCounters
			}
			key, d = string(d[:l]), d[l:]
			if !utf8.ValidString(key) {
				return fmt.Errorf("counter key %q is not UTF-8: %w", key, errCounters)
			}
		case ref > uint64(len(keys)):
			return fmt.Errorf("counter %d of a snapshot of %d: %w", ref-1, len(keys), errCounters)
		default:
			key = keys[ref-1]
		}
		v, err := next()
		if err != nil {
			return err
		}
		m[key] = v
	}
	if len(d) > 0 {
		return fmt.Errorf("%d bytes after the counters: %w", len(d), errCounters)
	}
	return nil
}

// Restore loads a checkpoint's state into empty books: counters, the rules'
// state and the ledger days. A counter or row the layout cannot place (a
// channel or code the catalog no longer has) is an error: the books must not
// silently lose what they committed.
func (b *Books) Restore(counters, rules []byte, days map[ledger.Day][]byte) error {
	if len(counters) > 0 {
		var m map[string]uint64
		if err := json.Unmarshal(counters, &m); err != nil {
			return fmt.Errorf("decode counters: %w", err)
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			slot, ok := b.l.Slot(k)
			if !ok {
				return fmt.Errorf("checkpointed counter %s has no series in this catalog and config (was the catalog or the business allowlist changed?)", k)
			}
			b.c[slot].Store(m[k])
		}
	}
	if len(rules) > 0 {
		if err := b.rules.UnmarshalBinary(rules); err != nil {
			return fmt.Errorf("decode rules state: %w", err)
		}
	}
	for d, data := range days {
		var f ledger.DayFile
		if err := json.Unmarshal(data, &f); err != nil {
			return fmt.Errorf("decode ledger day %s: %w", d, err)
		}
		rows := map[uint32]uint64{}
		for _, r := range f.Rows {
			k, err := b.l.rowSlot(r)
			if err != nil {
				return fmt.Errorf("ledger day %s: %w", d, err)
			}
			rows[k] += r.Count
		}
		b.days[d] = rows
		if d > b.newestDay {
			b.newestDay = d
		}
	}
	// A retention shorter than the one the days were kept with drops the
	// days now past it (committed as removals).
	b.prune()
	b.lastRows, b.markCur = nil, 0
	// What was restored is what is committed: the next delta's base (a
	// full snapshot comes first: the key order of the record's is not known).
	s := b.capture()
	b.base, b.baseMark, b.baseSig, b.keyIndex = s.vals, s.mark, s.sig, nil
	clear(b.dayBase)
	return nil
}

func (l *Layout) rowSlot(r ledger.Row) (uint32, error) {
	ch, ok := l.cat.Channel(r.Channel)
	if !ok {
		return 0, fmt.Errorf("row %+v: channel %q is not in the catalog", r, r.Channel)
	}
	codeSlot := 0
	if r.Code != Unknown {
		c, ok := l.cat.Lookup(ch.Family.Name, r.Code)
		if !ok {
			return 0, fmt.Errorf("row %+v: code %q is not in the catalog for family %s", r, r.Code, ch.Family.Name)
		}
		codeSlot = c.Index + 1
	}
	bill, err := classify.ParseBillable(r.Billable)
	if err != nil {
		return 0, fmt.Errorf("row %+v: %w", r, err)
	}
	rule := 0
	switch {
	case r.RuleID == "":
	case l.ruleSlots == 1:
		return 0, fmt.Errorf("row %+v: rule_id %q but no business.rule_id allowlist is configured", r, r.RuleID)
	case r.RuleID == Other:
		rule = 1
	default:
		i, ok := l.rules[r.RuleID]
		if !ok {
			return 0, fmt.Errorf("row %+v: rule_id %q is not in business.rule_id", r, r.RuleID)
		}
		rule = i
	}
	return uint32(((ch.Index*l.codeSlots+codeSlot)*3+int(bill))*l.ruleSlots + rule), nil
}

// Days returns the days the books hold. The caller holds the lock.
func (b *Books) Days() []ledger.Day { return slices.Sorted(maps.Keys(b.days)) }

func appendLen(b []byte, n int) []byte { return binary.LittleEndian.AppendUint64(b, uint64(n)) }

func readLen(data []byte) (int, []byte, error) {
	if len(data) < 8 {
		return 0, nil, errors.New("rules state: truncated")
	}
	n := binary.LittleEndian.Uint64(data)
	if n > uint64(len(data)-8) {
		return 0, nil, fmt.Errorf("rules state: %d bytes announced, %d present", n, len(data)-8)
	}
	return int(n), data[8:], nil
}
