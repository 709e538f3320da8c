package classify

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/faceid-observability/faceid-exporter/pkg/dedupe"
)

// Input limits. A message over MaxMessageBytes is rejected; tags past MaxTags in
// one list are dropped and reported.
const (
	MaxMessageBytes = 64 << 10
	MaxTags         = 32
	maxDepth        = 64
)

// Reason is why a message was rejected. It is a closed set, safe as a label value.
type Reason uint8

// Rejection reasons.
const (
	ReasonNone Reason = iota
	ReasonOversize
	ReasonNotObject
	ReasonInvalidJSON
	ReasonMissingChannel
	ReasonUnknownChannel
	ReasonMissingCode
	ReasonInvalidCode
	ReasonInvalidTS
	numReasons
)

var reasonNames = [numReasons]string{"none", "oversize", "not_object", "invalid_json", "missing_channel", "unknown_channel", "missing_code", "invalid_code", "invalid_ts"}

// String returns the reason's label value.
func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// Reasons lists every rejection reason (without ReasonNone).
func Reasons() []Reason {
	out := make([]Reason, 0, numReasons-1)
	for r := ReasonOversize; r < numReasons; r++ {
		out = append(out, r)
	}
	return out
}

// RejectError says why a message was rejected.
type RejectError struct {
	Reason Reason
	Detail string
}

func (e *RejectError) Error() string { return e.Reason.String() + ": " + e.Detail }

func reject(r Reason, format string, args ...any) error {
	return &RejectError{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

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
	ev.ID, ev.Channel, ev.Code, ev.ReqID, ev.AppID, ev.RuleID, ev.Platform = nil, nil, nil, nil, nil, nil, nil
	ev.CodeKind, ev.TS, ev.HasTS = KindAbsent, 0, false
	ev.DeviceLevel, ev.RiskLevel, ev.DeviceLevelKind, ev.RiskLevelKind = 0, 0, KindAbsent, KindAbsent
	ev.DeviceTags.clear()
	ev.RiskTags.clear()
	ev.RiskNotObject = false
	ev.hasIDKey = false
}

func (t *TagList) clear() { t.N, t.Dropped, t.Invalid = 0, 0, false }

// Decoder turns JSON messages into Events without allocating in steady state.
// It is not safe for concurrent use.
type Decoder struct {
	scratch []byte
	// prefetch, when set, is told each event id's key as soon as the id is
	// read, so that the dedupe lookup's cache miss overlaps the rest of decoding.
	prefetch dedupe.Prefetcher
}

// Decode parses msg into ev. It returns a *RejectError when the message breaks
// the input contract.
func (d *Decoder) Decode(msg []byte, ev *Event) error {
	ev.reset()
	if len(msg) > MaxMessageBytes {
		return reject(ReasonOversize, "message is %d bytes, over the %d-byte limit", len(msg), MaxMessageBytes)
	}
	if cap(d.scratch) == 0 {
		d.scratch = make([]byte, 0, 1024)
	}
	d.scratch = d.scratch[:0]
	i := skipWS(msg, 0)
	if i >= len(msg) || msg[i] != '{' {
		if i >= len(msg) {
			return reject(ReasonInvalidJSON, "empty message")
		}
		if j, err := skipValue(msg, i, 0); err == nil && skipWS(msg, j) == len(msg) {
			return reject(ReasonNotObject, "message is a JSON %s, not an object", jsonKind(msg[i]))
		}
		return reject(ReasonInvalidJSON, "not valid JSON at byte %d", i)
	}
	j, err := d.object(msg, i, ev, false)
	if err != nil {
		return err
	}
	if k := skipWS(msg, j); k != len(msg) {
		return reject(ReasonInvalidJSON, "unexpected data after the object at byte %d", k)
	}
	return nil
}

func jsonKind(c byte) string {
	switch c {
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// object parses the top-level object (risk=false) or the risk object.
func (d *Decoder) object(b []byte, i int, ev *Event, risk bool) (int, error) {
	i++ // '{'
	i = skipWS(b, i)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, syntaxErr(b, i, "expected a field name")
		}
		key, next := matchKey(b, i, risk)
		if key == keyNone {
			ks, ke, n, esc, err := scanString(b, i)
			if err != nil {
				return 0, err
			}
			name := b[ks:ke]
			if esc {
				name = d.unescape(name)
			}
			key, next = keyByName(name, risk), n
		}
		i = skipWS(b, next)
		if i >= len(b) || b[i] != ':' {
			return 0, syntaxErr(b, i, "expected ':'")
		}
		i = skipWS(b, i+1)
		if i >= len(b) {
			return 0, syntaxErr(b, i, "expected a value")
		}
		var err error
		if risk {
			i, err = d.riskField(b, i, key, ev)
		} else {
			i, err = d.topField(b, i, key, ev)
		}
		if err != nil {
			return 0, err
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return 0, syntaxErr(b, i, "unterminated object")
		}
		if b[i] == ',' {
			i = skipWS(b, i+1)
			continue
		}
		if b[i] == '}' {
			return i + 1, nil
		}
		return 0, syntaxErr(b, i, "expected ',' or '}'")
	}
}

// fieldKey names a field the decoder reads.
type fieldKey uint8

const (
	keyNone fieldKey = iota
	keyOther
	keyID
	keyTS
	keyChannel
	keyCode
	keyReqID
	keyRisk
	keyAppID
	keyRuleID
	keyDeviceLevel
	keyRiskLevel
	keyDeviceTags
	keyRiskTags
	keyPlatform
)

// keyPattern is a field name with its closing quote, as two masked
// little-endian words, so that a name is matched with two compares.
type keyPattern struct {
	w0, w1, m0, m1 uint64
	n              int // bytes, closing quote included
	key            fieldKey
}

func makeKeyPattern(name string, key fieldKey) keyPattern {
	var buf [16]byte
	q := name + `"`
	copy(buf[:], q)
	p := keyPattern{n: len(q), key: key}
	p.w0, p.w1 = binary.LittleEndian.Uint64(buf[:8]), binary.LittleEndian.Uint64(buf[8:])
	for i := 0; i < len(q); i++ {
		if i < 8 {
			p.m0 |= 0xff << (8 * i)
		} else {
			p.m1 |= 0xff << (8 * (i - 8))
		}
	}
	return p
}

var (
	topKeys = []keyPattern{
		makeKeyPattern("id", keyID), makeKeyPattern("ts", keyTS), makeKeyPattern("channel", keyChannel),
		makeKeyPattern("code", keyCode), makeKeyPattern("req_id", keyReqID), makeKeyPattern("risk", keyRisk),
		makeKeyPattern("app_id", keyAppID), makeKeyPattern("rule_id", keyRuleID),
	}
	riskKeys = []keyPattern{
		makeKeyPattern("device_level", keyDeviceLevel), makeKeyPattern("risk_level", keyRiskLevel),
		makeKeyPattern("device_tags", keyDeviceTags), makeKeyPattern("risk_tags", keyRiskTags),
		makeKeyPattern("platform", keyPlatform),
	}
)

// matchKey recognises the field name that opens at b[i] == '"' when it is one
// the decoder reads and at least 16 bytes follow; otherwise it returns keyNone
// and the caller scans the name.
func matchKey(b []byte, i int, risk bool) (fieldKey, int) {
	if len(b)-i < 17 {
		return keyNone, 0
	}
	w0 := binary.LittleEndian.Uint64(b[i+1:])
	w1 := binary.LittleEndian.Uint64(b[i+9:])
	// The first letter picks the candidates; each is two masked compares.
	var p *keyPattern
	if risk {
		switch b[i+1] {
		case 'd':
			if p = &riskKeys[0]; !p.match(w0, w1) {
				p = &riskKeys[2]
			}
		case 'r':
			if p = &riskKeys[1]; !p.match(w0, w1) {
				p = &riskKeys[3]
			}
		case 'p':
			p = &riskKeys[4]
		default:
			return keyNone, 0
		}
	} else {
		switch b[i+1] {
		case 'i':
			p = &topKeys[0]
		case 't':
			p = &topKeys[1]
		case 'c':
			if p = &topKeys[2]; !p.match(w0, w1) {
				p = &topKeys[3]
			}
		case 'r':
			if p = &topKeys[4]; !p.match(w0, w1) {
				if p = &topKeys[5]; !p.match(w0, w1) {
					p = &topKeys[7]
				}
			}
		case 'a':
			p = &topKeys[6]
		default:
			return keyNone, 0
		}
	}
	if p.match(w0, w1) {
		return p.key, i + 1 + p.n
	}
	return keyNone, 0
}

func (p *keyPattern) match(w0, w1 uint64) bool { return w0&p.m0 == p.w0 && w1&p.m1 == p.w1 }

// keyByName maps a scanned field name to its key.
func keyByName(name []byte, risk bool) fieldKey {
	keys := topKeys
	if risk {
		keys = riskKeys
	}
	var buf [16]byte
	if len(name) >= 16 {
		return keyOther
	}
	copy(buf[:], name)
	buf[len(name)] = '"'
	w0, w1 := binary.LittleEndian.Uint64(buf[:8]), binary.LittleEndian.Uint64(buf[8:])
	for k := range keys {
		p := &keys[k]
		if p.n == len(name)+1 && w0&p.m0 == p.w0 && w1&p.m1 == p.w1 {
			return p.key
		}
	}
	return keyOther
}

func syntaxErr(b []byte, i int, what string) error {
	if i >= len(b) {
		return reject(ReasonInvalidJSON, "%s at end of message", what)
	}
	return reject(ReasonInvalidJSON, "%s at byte %d", what, i)
}

// scalar reads a string or integer value; kind says which it was. Other values
// are skipped and reported as KindOther (or KindAbsent for null).
func (d *Decoder) scalar(b []byte, i int) (val []byte, kind ValueKind, next int, err error) {
	switch c := b[i]; {
	case c == '"':
		s, e, n, esc, err := scanString(b, i)
		if err != nil {
			return nil, 0, 0, err
		}
		v := b[s:e]
		if esc {
			v = d.unescape(v)
		}
		return v, KindString, n, nil
	case c == '-' || (c >= '0' && c <= '9'):
		e, isInt, err := scanNumber(b, i)
		if err != nil {
			return nil, 0, 0, err
		}
		if isInt {
			return b[i:e], KindInt, e, nil
		}
		return b[i:e], KindOther, e, nil
	case c == 'n':
		n, err := skipValue(b, i, 0)
		return nil, KindAbsent, n, err
	default:
		n, err := skipValue(b, i, 1)
		return nil, KindOther, n, err
	}
}

func (d *Decoder) topField(b []byte, i int, key fieldKey, ev *Event) (int, error) {
	switch key {
	case keyID, keyReqID, keyAppID, keyRuleID:
		v, kind, n, err := d.scalar(b, i)
		if err != nil {
			return 0, err
		}
		if kind != KindString && kind != KindInt {
			v = nil
		}
		switch key {
		case keyID:
			ev.ID = v
			if d.prefetch != nil && len(v) > 0 {
				ev.idKey, ev.hasIDKey = IDKey(v), true
				d.prefetch.Prefetch(ev.idKey)
			}
		case keyReqID:
			ev.ReqID = v
		case keyAppID:
			ev.AppID = v
		default:
			ev.RuleID = v
		}
		return n, nil
	case keyChannel:
		v, kind, n, err := d.scalar(b, i)
		if err != nil {
			return 0, err
		}
		if kind == KindOther {
			return 0, reject(ReasonUnknownChannel, "channel must be a string")
		}
		ev.Channel = v
		return n, nil
	case keyCode:
		v, kind, n, err := d.scalar(b, i)
		if err != nil {
			return 0, err
		}
		if kind == KindOther {
			return 0, reject(ReasonInvalidCode, "code must be a string or an integer")
		}
		ev.Code, ev.CodeKind = v, kind
		return n, nil
	case keyTS:
		v, kind, n, err := d.scalar(b, i)
		if err != nil {
			return 0, err
		}
		switch kind {
		case KindAbsent:
			ev.HasTS = false
		case KindString:
			ts, ok := parseRFC3339(v)
			if !ok {
				return 0, reject(ReasonInvalidTS, "ts %q is not an RFC 3339 time with an offset", truncate(v))
			}
			ev.TS, ev.HasTS = ts, true
		case KindInt:
			ms, ok := parseInt(v)
			if !ok || ms < 0 || ms > maxUnixMs {
				return 0, reject(ReasonInvalidTS, "ts %s is not Unix milliseconds between 1970 and 2200", truncate(v))
			}
			ev.TS, ev.HasTS = ms*1e6, true
		default:
			return 0, reject(ReasonInvalidTS, "ts must be an RFC 3339 string or integer Unix milliseconds")
		}
		return n, nil
	case keyRisk:
		if b[i] == '{' {
			return d.object(b, i, ev, true)
		}
		n, err := skipValue(b, i, 1)
		if b[i] != 'n' {
			ev.RiskNotObject = true
		}
		return n, err
	}
	return skipValue(b, i, 1)
}

func (d *Decoder) riskField(b []byte, i int, key fieldKey, ev *Event) (int, error) {
	switch key {
	case keyDeviceLevel, keyRiskLevel:
		v, kind, n, err := d.scalar(b, i)
		if err != nil {
			return 0, err
		}
		lvl, lk := int64(0), kind
		if kind == KindInt || kind == KindString {
			var ok bool
			if lvl, ok = parseInt(v); ok {
				lk = KindInt
			} else {
				lk = KindOther
			}
		}
		if key == keyDeviceLevel {
			ev.DeviceLevel, ev.DeviceLevelKind = lvl, lk
		} else {
			ev.RiskLevel, ev.RiskLevelKind = lvl, lk
		}
		return n, nil
	case keyDeviceTags:
		return d.tags(b, i, &ev.DeviceTags)
	case keyRiskTags:
		return d.tags(b, i, &ev.RiskTags)
	case keyPlatform:
		v, kind, n, err := d.scalar(b, i)
		if err != nil {
			return 0, err
		}
		if kind == KindString {
			ev.Platform = v
		}
		return n, nil
	}
	return skipValue(b, i, 2)
}

// tags reads a list of strings or integers, or one comma-separated string.
func (d *Decoder) tags(b []byte, i int, t *TagList) (int, error) {
	t.clear()
	switch b[i] {
	case '"':
		v, _, n, err := d.scalar(b, i)
		if err != nil {
			return 0, err
		}
		splitTags(v, t)
		return n, nil
	case '[':
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1, nil
		}
		for {
			if i >= len(b) {
				return 0, syntaxErr(b, i, "unterminated list")
			}
			v, kind, n, err := d.scalar(b, i)
			if err != nil {
				return 0, err
			}
			switch kind {
			case KindString:
				t.add(trimSpace(v))
			case KindInt:
				t.add(v)
			default:
				t.Invalid = true
			}
			i = skipWS(b, n)
			if i >= len(b) {
				return 0, syntaxErr(b, i, "unterminated list")
			}
			if b[i] == ',' {
				i = skipWS(b, i+1)
				continue
			}
			if b[i] == ']' {
				return i + 1, nil
			}
			return 0, syntaxErr(b, i, "expected ',' or ']'")
		}
	case 'n':
		return skipValue(b, i, 2)
	}
	t.Invalid = true
	return skipValue(b, i, 2)
}

func splitTags(v []byte, t *TagList) {
	start := 0
	for k := 0; k <= len(v); k++ {
		if k == len(v) || v[k] == ',' {
			t.add(trimSpace(v[start:k]))
			start = k + 1
		}
	}
}

func trimSpace(v []byte) []byte {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v
}

func truncate(v []byte) string {
	const max = 64
	if len(v) > max {
		return string(v[:max]) + "…"
	}
	return string(v)
}

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// scanString scans the string starting at b[i] == '"'. It returns the content
// span, the index after the closing quote and whether it holds escapes.
func scanString(b []byte, i int) (start, end, next int, esc bool, err error) {
	start = i + 1
	j := start
	// Eight bytes at a time: the lowest flagged byte of the first word that
	// holds a quote, a backslash or a control character is the first such byte
	// (the zero-byte trick only flags falsely above a true hit).
	for j+8 <= len(b) {
		x := binary.LittleEndian.Uint64(b[j:])
		q := x ^ (lsb * '"')
		s := x ^ (lsb * '\\')
		if m := ((q-lsb)&^q | (s-lsb)&^s | (x-lsb*0x20)&^x) & msb; m != 0 {
			j += bits.TrailingZeros64(m) >> 3
			if b[j] == '"' {
				return start, j, j + 1, false, nil
			}
			return scanStringSlow(b, start, j)
		}
		j += 8
	}
	for j < len(b) && !strSpecial[b[j]] {
		j++
	}
	if j < len(b) && b[j] == '"' {
		return start, j, j + 1, false, nil
	}
	return scanStringSlow(b, start, j)
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// scanStringSlow finishes a string that holds escapes (or is malformed) from j.
func scanStringSlow(b []byte, start, j int) (_, end, next int, esc bool, err error) {
	for {
		for j < len(b) && !strSpecial[b[j]] {
			j++
		}
		if j >= len(b) {
			return 0, 0, 0, false, syntaxErr(b, len(b), "unterminated string")
		}
		switch c := b[j]; {
		case c == '"':
			return start, j, j + 1, esc, nil
		case c == '\\':
			esc = true
			j++
			if j >= len(b) {
				return 0, 0, 0, false, syntaxErr(b, j, "unterminated string")
			}
			switch b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(b) || !isHex(b[j+1]) || !isHex(b[j+2]) || !isHex(b[j+3]) || !isHex(b[j+4]) {
					return 0, 0, 0, false, syntaxErr(b, j, "invalid \\u escape")
				}
				j += 4
			default:
				return 0, 0, 0, false, syntaxErr(b, j, "invalid escape")
			}
			j++
		default:
			return 0, 0, 0, false, syntaxErr(b, j, "control character in string")
		}
	}
}

// strSpecial marks the bytes that end a run of plain string content.
var strSpecial = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func hexVal(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		default:
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}

// unescape decodes a validated string body into the scratch space.
func (d *Decoder) unescape(s []byte) []byte {
	start := len(d.scratch)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			d.scratch = append(d.scratch, c)
			continue
		}
		i++
		switch s[i] {
		case 'b':
			d.scratch = append(d.scratch, '\b')
		case 'f':
			d.scratch = append(d.scratch, '\f')
		case 'n':
			d.scratch = append(d.scratch, '\n')
		case 'r':
			d.scratch = append(d.scratch, '\r')
		case 't':
			d.scratch = append(d.scratch, '\t')
		case 'u':
			r := hexVal(s[i+1:])
			i += 4
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 < len(s)+0 && s[i+1] == '\\' && s[i+2] == 'u' {
					r2 = hexVal(s[i+3:])
				}
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			d.scratch = utf8.AppendRune(d.scratch, r)
		default: // '"', '\\', '/'
			d.scratch = append(d.scratch, s[i])
		}
	}
	return d.scratch[start:len(d.scratch):len(d.scratch)]
}

// scanNumber validates the JSON number at b[i] and says whether it is an integer.
func scanNumber(b []byte, i int) (next int, isInt bool, err error) {
	j := i
	if b[j] == '-' {
		j++
	}
	if j >= len(b) {
		return 0, false, syntaxErr(b, j, "invalid number")
	}
	switch {
	case b[j] == '0':
		j++
	case b[j] >= '1' && b[j] <= '9':
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
	default:
		return 0, false, syntaxErr(b, j, "invalid number")
	}
	isInt = true
	if j < len(b) && b[j] == '.' {
		isInt = false
		j++
		k := j
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if j == k {
			return 0, false, syntaxErr(b, j, "invalid number")
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		isInt = false
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		k := j
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if j == k {
			return 0, false, syntaxErr(b, j, "invalid number")
		}
	}
	return j, isInt, nil
}

// skipValue validates and skips one JSON value; depth bounds nesting.
func skipValue(b []byte, i int, depth int) (int, error) {
	if depth > maxDepth {
		return 0, reject(ReasonInvalidJSON, "nesting deeper than %d levels", maxDepth)
	}
	if i >= len(b) {
		return 0, syntaxErr(b, i, "expected a value")
	}
	switch c := b[i]; {
	case c == '"':
		_, _, n, _, err := scanString(b, i)
		return n, err
	case c == '{' || c == '[':
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == closer {
			return i + 1, nil
		}
		for {
			if c == '{' {
				if i >= len(b) || b[i] != '"' {
					return 0, syntaxErr(b, i, "expected a field name")
				}
				_, _, n, _, err := scanString(b, i)
				if err != nil {
					return 0, err
				}
				i = skipWS(b, n)
				if i >= len(b) || b[i] != ':' {
					return 0, syntaxErr(b, i, "expected ':'")
				}
				i = skipWS(b, i+1)
			}
			n, err := skipValue(b, i, depth+1)
			if err != nil {
				return 0, err
			}
			i = skipWS(b, n)
			if i >= len(b) {
				return 0, syntaxErr(b, i, "unterminated "+jsonKind(c))
			}
			if b[i] == ',' {
				i = skipWS(b, i+1)
				continue
			}
			if b[i] == closer {
				return i + 1, nil
			}
			return 0, syntaxErr(b, i, "expected ',' or '"+string(closer)+"'")
		}
	case c == '-' || (c >= '0' && c <= '9'):
		n, _, err := scanNumber(b, i)
		return n, err
	case c == 't':
		return literal(b, i, "true")
	case c == 'f':
		return literal(b, i, "false")
	case c == 'n':
		return literal(b, i, "null")
	}
	return 0, syntaxErr(b, i, "unexpected character")
}

func literal(b []byte, i int, lit string) (int, error) {
	if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
		return i + len(lit), nil
	}
	return 0, syntaxErr(b, i, "invalid literal")
}

// parseInt parses an optionally signed decimal integer of at most 18 digits.
func parseInt(v []byte) (int64, bool) {
	neg := false
	if len(v) > 0 && v[0] == '-' {
		neg, v = true, v[1:]
	}
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// maxUnixMs is 2200-01-01T00:00:00Z; later times are refused.
const maxUnixMs = 7258118400000

// parseRFC3339 parses YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM) into Unix nanoseconds.
func parseRFC3339(v []byte) (int64, bool) {
	if len(v) < 20 || v[4] != '-' || v[7] != '-' || (v[10] != 'T' && v[10] != 't') || v[13] != ':' || v[16] != ':' {
		return 0, false
	}
	year, ok1 := digits(v[0:4])
	month, ok2 := digits(v[5:7])
	day, ok3 := digits(v[8:10])
	hour, ok4 := digits(v[11:13])
	minute, ok5 := digits(v[14:16])
	sec, ok6 := digits(v[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || year < 1970 || year >= 2200 || month < 1 || month > 12 ||
		day < 1 || day > daysIn(month, year) || hour > 23 || minute > 59 || sec > 59 {
		return 0, false
	}
	i := 19
	var nanos int64
	if v[i] == '.' {
		i++
		k := i
		scale := int64(1e8)
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			nanos += int64(v[i]-'0') * scale
			scale /= 10
			i++
		}
		if i == k {
			return 0, false
		}
	}
	if i >= len(v) {
		return 0, false
	}
	var offset int64
	switch v[i] {
	case 'Z', 'z':
		i++
	case '+', '-':
		if len(v)-i != 6 || v[i+3] != ':' {
			return 0, false
		}
		oh, ok1 := digits(v[i+1 : i+3])
		om, ok2 := digits(v[i+4 : i+6])
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return 0, false
		}
		offset = oh*3600 + om*60
		if v[i] == '-' {
			offset = -offset
		}
		i += 6
	default:
		return 0, false
	}
	if i != len(v) {
		return 0, false
	}
	days := daysFromCivil(year, month, day)
	secs := days*86400 + hour*3600 + minute*60 + sec - offset
	return secs*1e9 + nanos, true
}

func digits(v []byte) (int64, bool) {
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func daysIn(month, year int64) int64 {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns the days since 1970-01-01 of a proleptic Gregorian date.
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400 // y >= 1969 here, so no negative-era correction is needed
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}
