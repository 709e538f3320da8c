package classify

// ValueKind says how a field was written.
type ValueKind uint8

// Value kinds.
const (
	KindAbsent ValueKind = iota
	KindString
	KindInt
	KindOther // present, but neither a string nor an integer
)

// TagList holds the tags of one list, as written.
type TagList struct {
	Items   [MaxTags][]byte
	N       int
	Dropped int  // tags past MaxTags
	Invalid bool // the field was neither a list of strings/integers nor a string
}

func (t *TagList) add(b []byte) {
	if len(b) == 0 {
		return
	}
	if t.N == MaxTags {
		t.Dropped++
		return
	}
	t.Items[t.N] = b
	t.N++
}

// Event is one decoded verification result. Its byte slices point into the
// message or into the Decoder's scratch space and stay valid until the next Decode.
type Event struct {
	ID, Channel, Code, ReqID, AppID, RuleID, Platform []byte

	CodeKind ValueKind
	TS       int64 // Unix nanoseconds; valid when HasTS
	HasTS    bool

	DeviceLevel, RiskLevel         int64
	DeviceLevelKind, RiskLevelKind ValueKind
	DeviceTags, RiskTags           TagList
	RiskNotObject                  bool

	idKey    uint64 // IDKey(ID), when the decoder computed it early
	hasIDKey bool
}

// reset clears an Event for reuse. The tag arrays are not cleared: only their
// first N entries are read.
func (ev *Event) reset() {
	ev.ID, ev.Channel, ev.Code, ev.ReqID, ev.AppID, ev.RuleID = nil, nil, nil, nil, nil, nil
	ev.CodeKind, ev.TS, ev.HasTS = KindAbsent, 0, false
	ev.resetRisk()
	ev.hasIDKey = false
}

// resetRisk clears what the risk field gave, for its next occurrence.
func (ev *Event) resetRisk() {
	ev.Platform = nil
	ev.DeviceLevel, ev.RiskLevel, ev.DeviceLevelKind, ev.RiskLevelKind = 0, 0, KindAbsent, KindAbsent
	ev.DeviceTags.clear()
	ev.RiskTags.clear()
	ev.RiskNotObject = false
}

func (t *TagList) clear() { t.N, t.Dropped, t.Invalid = 0, 0, false }
