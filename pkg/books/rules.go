// Package books is the state one partition of the stream owns: the event
// counters, the ledger of daily counts, and the rules that depend on earlier
// events (duplicates, the NFC reqId billing rule), with the encoding its
// checkpoint carries. It does no I/O; the partition's runner (package stream)
// owns a Books and persists it.
package books

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/dedupe"
)

// DefaultReqIDCapacity is how many reqIds the NFC rule remembers by default.
const DefaultReqIDCapacity = 100000

// RulesOptions size the books' bounded state and set its time rules.
type RulesOptions struct {
	// DedupeWindow and DedupeCapacity bound the event ids remembered for the
	// duplicate rule (a zero value turns it off).
	DedupeWindow   time.Duration
	DedupeCapacity int
	// ReqIDCapacity bounds the reqIds remembered for the NFC rule (default 100000).
	ReqIDCapacity int
	// FutureTolerance is how much later than its message's time an event's
	// ts may be (classify.Options.FutureTolerance; 0 turns the rule off).
	FutureTolerance time.Duration
	// RetentionDays is how many days before the newest accepted day the
	// ledger keeps (default ledger.DefaultRetentionDays).
	RetentionDays int
}

// Rules applies the rules that depend on the events before: an event whose id
// was seen within the dedupe window is a duplicate (not billed, not counted);
// a success of the reqId rule's code is billed once per reqId window. Rules are
// not safe for concurrent use.
type Rules struct {
	future  time.Duration
	ids     *dedupe.Window
	anchors *dedupe.Anchors // nil when the catalog has no reqId rule
	code    *classify.Code  // the code the reqId rule applies to
}

// NewRules returns the rules for cat.
func NewRules(cat *classify.Catalog, o RulesOptions) *Rules {
	r := &Rules{future: o.FutureTolerance, ids: dedupe.NewWindow(o.DedupeWindow, o.DedupeCapacity), code: cat.ReqIDCode()}
	if r.code != nil {
		if o.ReqIDCapacity <= 0 {
			o.ReqIDCapacity = DefaultReqIDCapacity
		}
		r.anchors = dedupe.NewAnchors(cat.ReqIDRule.Window, o.ReqIDCapacity)
	}
	return r
}

// Prefetcher returns what a classifier should prefetch event ids into.
func (ru *Rules) Prefetcher() classify.Prefetcher { return ru.ids }

// ClassifyOptions returns the options of the classifier that feeds these
// rules: the prefetcher and the future-timestamp tolerance.
func (ru *Rules) ClassifyOptions() classify.Options {
	return classify.Options{Prefetch: ru.ids, FutureTolerance: ru.future}
}

// Apply decides r.Duplicate and, for duplicates and the reqId rule's code,
// amends r.Billable and r.BillingRule ("duplicate", "req_id_first",
// "req_id_repeat").
func (ru *Rules) Apply(r *classify.Result) {
	ev := &r.Event
	ts := r.TS.UnixNano()
	r.Duplicate = len(ev.ID) > 0 && ru.ids.Seen(ev.Key(), ts)
	switch {
	case r.Code == nil:
	case r.Duplicate:
		r.Billable, r.BillingRule = classify.BillableFalse, "duplicate"
	case r.Code == ru.code && len(ev.ReqID) > 0:
		if ru.anchors.Bill(classify.IDKey(ev.ReqID), ts) {
			r.BillingRule = "req_id_first"
		} else {
			r.Billable, r.BillingRule = classify.BillableFalse, "req_id_repeat"
		}
	}
}

// DedupeEvicted returns the ids forgotten for room inside the window.
func (ru *Rules) DedupeEvicted() uint64 { return ru.ids.Evicted() }

// ReqIDEvicted returns the reqIds forgotten for room inside their window.
func (ru *Rules) ReqIDEvicted() uint64 {
	if ru.anchors == nil {
		return 0
	}
	return ru.anchors.Evicted()
}

// AppendBinary appends the rules' state to b.
func (ru *Rules) AppendBinary(b []byte) []byte {
	ids := ru.ids.AppendBinary(nil)
	b = appendLen(b, len(ids))
	b = append(b, ids...)
	if ru.anchors != nil {
		b = ru.anchors.AppendBinary(b)
	}
	return b
}

// UnmarshalBinary restores what AppendBinary wrote.
func (ru *Rules) UnmarshalBinary(data []byte) error {
	n, rest, err := readLen(data)
	if err != nil {
		return err
	}
	if err := ru.ids.UnmarshalBinary(rest[:n]); err != nil {
		return err
	}
	if rest = rest[n:]; ru.anchors != nil && len(rest) > 0 {
		return ru.anchors.UnmarshalBinary(rest)
	}
	return nil
}

// mark is where the rules' tables stood at a checkpoint: a later delta holds
// what they took in since.
type mark struct{ ids, anchors uint64 }

func (ru *Rules) mark() mark {
	m := mark{ids: ru.ids.Mark()}
	if ru.anchors != nil {
		m.anchors = ru.anchors.Mark()
	}
	return m
}

// appendDelta appends the change of the rules' state since m: the ids'
// delta, length-prefixed, then the anchors' (when the catalog has the rule).
func (ru *Rules) appendDelta(b []byte, m mark) []byte {
	ids := ru.ids.AppendDelta(nil, m.ids)
	b = binary.AppendUvarint(b, uint64(len(ids)))
	b = append(b, ids...)
	if ru.anchors != nil {
		b = ru.anchors.AppendDelta(b, m.anchors)
	}
	return b
}

// MergeRules applies rules deltas (Snapshot.RulesDelta of later commits, in
// commit order) to a rules state (Snapshot.Rules) and returns the state they
// describe, as AppendBinary would write it. It is pure: the caller restores
// the result.
func MergeRules(state []byte, deltas ...[]byte) ([]byte, error) {
	if len(deltas) == 0 {
		return state, nil
	}
	n, rest, err := readLen(state)
	if err != nil {
		return nil, err
	}
	ids, err := dedupe.DecodeState(rest[:n])
	if err != nil {
		return nil, fmt.Errorf("rules state ids: %w", err)
	}
	var anchors *dedupe.State
	if rest = rest[n:]; len(rest) > 0 {
		if anchors, err = dedupe.DecodeState(rest); err != nil {
			return nil, fmt.Errorf("rules state anchors: %w", err)
		}
	}
	for i, d := range deltas {
		l, k := binary.Uvarint(d)
		if k <= 0 || l > uint64(len(d)-k) {
			return nil, fmt.Errorf("rules delta %d: truncated", i)
		}
		d = d[k:]
		if err := ids.ApplyDelta(d[:l]); err != nil {
			return nil, fmt.Errorf("rules delta %d ids: %w", i, err)
		}
		switch d = d[l:]; {
		case anchors == nil && len(d) > 0:
			return nil, fmt.Errorf("rules delta %d changes reqId anchors the state does not hold", i)
		case anchors != nil && len(d) == 0:
			return nil, fmt.Errorf("rules delta %d lacks the reqId anchors the state holds", i)
		case anchors != nil:
			if err := anchors.ApplyDelta(d); err != nil {
				return nil, fmt.Errorf("rules delta %d anchors: %w", i, err)
			}
		}
	}
	idb := ids.AppendBinary(nil)
	out := appendLen(nil, len(idb))
	out = append(out, idb...)
	if anchors != nil {
		out = anchors.AppendBinary(out)
	}
	return out, nil
}
