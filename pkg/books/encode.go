package books

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
)

// Snapshot is what a checkpoint stores of the books at one stream position:
// every nonzero counter by its stable key and the rules' state (a full
// snapshot), or what changed in them since the last commit (a delta), and
// the ledger days changed since they were last committed.
type Snapshot struct {
	Full     bool
	Counters []byte // full: JSON object, stable key → value
	Rules    []byte // full: binary (Rules.AppendBinary)
	// CountersDelta (a JSON object of the counters changed since the last
	// commit, by stable key, with their values) and RulesDelta (what the
	// rules' tables took in since, for MergeRules) make a delta.
	CountersDelta []byte
	RulesDelta    []byte
	Days          map[ledger.Day][]byte // JSON ledger.DayFile of each changed day; nil: the day left the books
	gens          map[ledger.Day]uint64
	vals          []uint64 // every counter, for the next delta's base
	mark          mark
	sig           []byte // the rules' newest times, sizes and evictions
	rulesChanged  bool
}

// Changed reports whether a delta holds any change (a full snapshot always
// does): a commit with none need not write one.
func (s *Snapshot) Changed() bool {
	return s.Full || len(s.Days) > 0 || string(s.CountersDelta) != "{}" || s.rulesChanged
}

// Snapshot encodes the books' full state. The caller holds the lock.
func (b *Books) Snapshot() (*Snapshot, error) {
	s, counters := b.capture()
	cj, err := json.Marshal(counters)
	if err != nil {
		return nil, fmt.Errorf("encode counters: %w", err)
	}
	s.Full, s.Counters, s.Rules = true, cj, b.rules.AppendBinary(nil)
	return s, b.encodeDays(s)
}

// SnapshotDelta encodes what changed since the last commit (Committed): the
// counters whose value changed, the rules' new entries, the changed days.
// The caller holds the lock.
func (b *Books) SnapshotDelta() (*Snapshot, error) {
	s, _ := b.capture()
	changed := map[string]uint64{}
	for slot, v := range s.vals {
		if v != b.base[slot] {
			changed[b.l.keys[slot]] = v
		}
	}
	cj, err := json.Marshal(changed)
	if err != nil {
		return nil, fmt.Errorf("encode counters: %w", err)
	}
	s.CountersDelta, s.RulesDelta = cj, b.rules.appendDelta(nil, b.baseMark)
	s.rulesChanged = s.mark != b.baseMark || !bytes.Equal(s.sig, b.baseSig)
	return s, b.encodeDays(s)
}

func (b *Books) capture() (*Snapshot, map[string]uint64) {
	m := b.rules.mark()
	s := &Snapshot{vals: make([]uint64, len(b.c)), mark: m, sig: b.rules.appendDelta(nil, m)}
	counters := make(map[string]uint64, 256)
	for slot := range b.c {
		if v := b.c[slot].Load(); v != 0 {
			s.vals[slot] = v
			counters[b.l.keys[slot]] = v
		}
	}
	return s, counters
}

func (b *Books) encodeDays(s *Snapshot) error {
	s.Days, s.gens = map[ledger.Day][]byte{}, map[ledger.Day]uint64{}
	for d, g := range b.dirty {
		s.gens[d] = g
		if _, ok := b.days[d]; !ok {
			s.Days[d] = nil
			continue
		}
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

// Committed marks s as committed: its days, unless they changed since, and
// its counters and rules as the base of the next delta. The caller holds the
// lock.
func (b *Books) Committed(s *Snapshot) {
	for d, g := range s.gens {
		if b.dirty[d] == g {
			delete(b.dirty, d)
		}
	}
	b.base, b.baseMark, b.baseSig = s.vals, s.mark, s.sig
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
	b.lastRows = nil
	// What was restored is what is committed: the next delta's base.
	s, _ := b.capture()
	b.base, b.baseMark, b.baseSig = s.vals, s.mark, s.sig
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
