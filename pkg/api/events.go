// Package api serves the exporter's HTTP API: recent notable events from
// bounded ring buffers, a live event stream, the catalog, a summary of counts,
// health and readiness, and the landing page.
package api

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/faceid-observability/faceid-exporter/pkg/classify"
)

// Kind selects a class of notable events.
type Kind uint8

// Kinds of events kept in ring buffers. KindAll is only a stream filter.
const (
	KindBillableFailure Kind = iota
	KindHighRisk
	KindUnknownCode
	KindAll
	numKinds = KindAll
)

var kindNames = [...]string{"billable_failure", "high_risk", "unknown_code", "all"}

// String returns the kind's name as used in the API.
func (k Kind) String() string { return kindNames[k] }

// ParseKind returns the kind named s.
func ParseKind(s string, allowAll bool) (Kind, bool) {
	for i, n := range kindNames {
		if n == s && (Kind(i) != KindAll || allowAll) {
			return Kind(i), true
		}
	}
	return 0, false
}

// Limits of what a record keeps.
const (
	MaxIDBytes = 128
	maxTags    = classify.MaxTags
)

// Record is a copy of the fields of one event the API may show. It holds no
// personal data: no names, ID numbers, app_id or req_id.
type Record struct {
	id       [MaxIDBytes]byte
	idLen    uint8
	raw      [64]byte
	rawLen   uint8
	TS       int64 // Unix nanoseconds
	Received int64
	Channel  *classify.Channel
	Code     *classify.Code // nil: not in the catalog
	Outcome  classify.Outcome
	Billable classify.Billable
	Risk     classify.Risk
	Platform classify.Platform
	DevLevel int8 // -1 absent
	IDLevel  int8
	nDT, nIT uint8
	dt       [maxTags]*classify.DeviceTag
	it       [maxTags]*classify.IdentityTag
}

// RecordBytes is the memory one ring-buffer slot holds: a Record, stored by
// value, whose pointers lead only to the catalog that every slot shares.
const RecordBytes = int64(unsafe.Sizeof(Record{}))

// ID returns the event id (cut to MaxIDBytes).
func (r *Record) ID() string { return string(r.id[:r.idLen]) }

func (r *Record) fill(res *classify.Result, received int64) {
	r.idLen = uint8(copy(r.id[:], res.Event.ID))
	r.rawLen = uint8(copy(r.raw[:], classify.ShownCode(res.CodeRaw)))
	r.TS = res.TS.UnixNano()
	r.Received = received
	r.Channel, r.Code = res.Channel, res.Code
	r.Outcome, r.Billable, r.Risk, r.Platform = res.Outcome, res.Billable, res.Risk, res.Platform
	r.DevLevel, r.IDLevel = int8(res.DeviceLevel), int8(res.RiskLevel)
	r.nDT = uint8(copy(r.dt[:], res.DeviceTags[:res.NDeviceTags]))
	r.nIT = uint8(copy(r.it[:], res.IdentityTags[:res.NIdentityTags]))
}

// kindOf reports which rings an event belongs to.
func kindOf(res *classify.Result) (billableFailure, highRisk, unknown bool) {
	return res.Billable == classify.BillableTrue && res.Outcome == classify.OutcomeFailure,
		res.Risk == classify.RiskHigh,
		res.Code == nil
}

func (r *Record) is(k Kind) bool {
	switch k {
	case KindBillableFailure:
		return r.Billable == classify.BillableTrue && r.Outcome == classify.OutcomeFailure
	case KindHighRisk:
		return r.Risk == classify.RiskHigh
	case KindUnknownCode:
		return r.Code == nil
	}
	return true
}

// AppendJSON appends the record as the API's EVENT object.
func (r *Record) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = classify.AppendString(dst, string(r.id[:r.idLen]))
	dst = append(dst, `,"ts":"`...)
	dst = time.Unix(0, r.TS).UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00")
	dst = append(dst, `","received":"`...)
	dst = time.Unix(0, r.Received).UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00")
	dst = append(dst, `","channel":`...)
	dst = classify.AppendString(dst, r.Channel.Name)
	dst = append(dst, `,"family":`...)
	dst = classify.AppendString(dst, r.Channel.Family.Name)
	if r.Code != nil {
		dst = append(dst, `,"code":`...)
		dst = classify.AppendString(dst, r.Code.Code)
		dst = append(dst, `,"known":true,"meaning":`...)
		dst = classify.AppendString(dst, r.Code.Meaning)
		dst = append(dst, `,"category":`...)
		dst = classify.AppendString(dst, r.Code.Category)
	} else {
		dst = append(dst, `,"code":"unknown","raw_code":`...)
		dst = classify.AppendString(dst, string(r.raw[:r.rawLen]))
		dst = append(dst, `,"known":false,"meaning":"","category":""`...)
	}
	dst = append(dst, `,"outcome":"`...)
	dst = append(dst, r.Outcome.String()...)
	dst = append(dst, `","billable":`...)
	dst = appendBillable(dst, r.Billable)
	dst = append(dst, `,"risk":{"level":"`...)
	dst = append(dst, r.Risk.String()...)
	dst = append(dst, `","device_level":`...)
	dst = appendLevel(dst, r.DevLevel)
	dst = append(dst, `,"risk_level":`...)
	dst = appendLevel(dst, r.IDLevel)
	dst = append(dst, `,"platform":"`...)
	dst = append(dst, r.Platform.String()...)
	dst = append(dst, `","device_tags":[`...)
	for i, t := range r.dt[:r.nDT] {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = classify.AppendString(dst, t.Tag)
	}
	dst = append(dst, `],"identity_tags":[`...)
	for i, t := range r.it[:r.nIT] {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = classify.AppendString(dst, t.Tag)
	}
	return append(dst, "]}}"...)
}

func appendLevel(dst []byte, l int8) []byte {
	if l < 0 {
		return append(dst, "null"...)
	}
	return strconv.AppendInt(dst, int64(l), 10)
}

// ring keeps the newest records of one kind.
type ring struct {
	mu    sync.Mutex
	slots []Record
	next  int
	n     int
}

func newRing(size int) *ring { return &ring{slots: make([]Record, size)} }

func (g *ring) add(res *classify.Result, received int64) {
	g.mu.Lock()
	g.slots[g.next].fill(res, received)
	g.next = (g.next + 1) % len(g.slots)
	if g.n < len(g.slots) {
		g.n++
	}
	g.mu.Unlock()
}

// newest returns up to limit records, newest first.
func (g *ring) newest(limit int) []Record {
	g.mu.Lock()
	defer g.mu.Unlock()
	if limit > g.n {
		limit = g.n
	}
	out := make([]Record, limit)
	for i := range out {
		out[i] = g.slots[(g.next-1-i+2*len(g.slots))%len(g.slots)]
	}
	return out
}

// Sizes are the ring-buffer sizes.
type Sizes struct {
	BillableFailure, HighRisk, UnknownCode int
}

// Events keeps recent notable events and feeds the live stream. Its methods
// are safe for concurrent use.
type Events struct {
	rings [numKinds]*ring
	hub   hub
}

// NewEvents returns Events with rings of the given sizes (each at least 1).
func NewEvents(s Sizes) *Events {
	e := &Events{}
	for k, n := range []int{s.BillableFailure, s.HighRisk, s.UnknownCode} {
		e.rings[k] = newRing(max(n, 1))
	}
	e.hub.subs = map[*subscriber]struct{}{}
	return e
}

// Observe records a counted event in the rings it belongs to and sends it to
// live-stream subscribers. It costs a few comparisons for ordinary events.
func (e *Events) Observe(res *classify.Result, received int64) {
	bf, hr, unk := kindOf(res)
	streaming := e.hub.active.Load() > 0
	if !bf && !hr && !unk && !streaming {
		return
	}
	if bf {
		e.rings[KindBillableFailure].add(res, received)
	}
	if hr {
		e.rings[KindHighRisk].add(res, received)
	}
	if unk {
		e.rings[KindUnknownCode].add(res, received)
	}
	if streaming {
		var rec Record
		rec.fill(res, received)
		e.hub.publish(&rec)
	}
}

// Newest returns up to limit records of a kind, newest first.
func (e *Events) Newest(k Kind, limit int) []Record { return e.rings[k].newest(limit) }

// Size returns the capacity of a kind's ring.
func (e *Events) Size(k Kind) int { return len(e.rings[k].slots) }

// hub fans records out to live-stream subscribers. A subscriber that falls
// behind loses records rather than slowing the pipeline.
type hub struct {
	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	active atomic.Int32
}

type subscriber struct {
	kind    Kind
	ch      chan []byte
	dropped atomic.Uint64
}

func (h *hub) subscribe(k Kind, buf int) *subscriber {
	s := &subscriber{kind: k, ch: make(chan []byte, buf)}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.active.Store(int32(len(h.subs)))
	h.mu.Unlock()
	return s
}

func (h *hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	delete(h.subs, s)
	h.active.Store(int32(len(h.subs)))
	h.mu.Unlock()
}

func (h *hub) publish(rec *Record) {
	var data []byte
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if !rec.is(s.kind) {
			continue
		}
		if data == nil {
			data = rec.AppendJSON(make([]byte, 0, 512))
		}
		select {
		case s.ch <- data:
		default:
			s.dropped.Add(1)
		}
	}
}

// appendBillable appends b as the API writes billable everywhere: true,
// false, or null when the catalog does not know.
func appendBillable(dst []byte, b classify.Billable) []byte {
	switch b {
	case classify.BillableTrue:
		return append(dst, "true"...)
	case classify.BillableFalse:
		return append(dst, "false"...)
	default:
		return append(dst, "null"...)
	}
}

// billableJSON is a billable label value ("true", "false", "unknown") as
// the API writes it: true, false or null.
func billableJSON(label string) *bool {
	switch label {
	case "true":
		t := true
		return &t
	case "false":
		f := false
		return &f
	default:
		return nil
	}
}
