package classify

import (
	"github.com/faceid-observability/faceid-exporter/internal/jsonscan"
)

// Prefetcher can start loading what a duplicate lookup of key will read, so
// that the decoder overlaps the cache miss with decoding the rest of the event
// (the duplicate table of pkg/dedupe is one). It is declared here, where it is
// used, so that this pure layer imports nothing that holds state; it must be
// safe to call without synchronisation.
type Prefetcher interface {
	Prefetch(key uint64)
}

// Input limits. A message over MaxMessageBytes is rejected; tags past MaxTags in
// one list are dropped and reported.
const (
	MaxMessageBytes = 64 << 10
	MaxTags         = 32
)

// Decoder turns JSON messages into Events without allocating in steady state.
// It is not safe for concurrent use.
//
// A message is read as encoding/json reads it into a map: when a field occurs
// more than once, its last occurrence counts, and the top-level fields the
// input contract names and the fields of risk are matched by exact name.
type Decoder struct {
	scratch []byte
	// prefetch, when set, is told each event id's key as soon as the id is
	// read, so that the dedupe lookup's cache miss overlaps the rest of decoding.
	prefetch Prefetcher
	// Fields whose last occurrence breaks the contract: the message is
	// rejected once it is known to be valid JSON.
	badChannel, badCode bool
	badTS               ValueKind // KindAbsent: ts is fine
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
	d.badChannel, d.badCode, d.badTS = false, false, KindAbsent
	i := jsonscan.SkipWS(msg, 0)
	if i >= len(msg) || msg[i] != '{' {
		if i >= len(msg) {
			return reject(ReasonInvalidJSON, "empty message")
		}
		if j, err := jsonscan.Skip(msg, i, 0); err == nil && jsonscan.SkipWS(msg, j) == len(msg) {
			return reject(ReasonNotObject, "message is a JSON %s, not an object", jsonscan.KindName(msg[i]))
		}
		return reject(ReasonInvalidJSON, "not valid JSON at byte %d", i)
	}
	j, err := d.object(msg, i, ev, false)
	if err != nil {
		return asReject(err)
	}
	if k := jsonscan.SkipWS(msg, j); k != len(msg) {
		return reject(ReasonInvalidJSON, "unexpected data after the object at byte %d", k)
	}
	return d.contractErr()
}

// contractErr is the rejection earned by the last occurrence of channel, code
// or ts (checked in that order), or nil.
func (d *Decoder) contractErr() error {
	switch {
	case d.badChannel:
		return reject(ReasonUnknownChannel, "channel must be a string")
	case d.badCode:
		return reject(ReasonInvalidCode, "code must be a string or an integer")
	case d.badTS == KindString:
		return reject(ReasonInvalidTS, "ts is a string that is not an RFC 3339 time with an offset")
	case d.badTS == KindInt:
		return reject(ReasonInvalidTS, "ts is an integer that is not Unix milliseconds between 1970 and 2200")
	case d.badTS == KindOther:
		return reject(ReasonInvalidTS, "ts must be an RFC 3339 string or integer Unix milliseconds")
	}
	return nil
}

// object parses the top-level object (risk=false) or the risk object.
func (d *Decoder) object(b []byte, i int, ev *Event, risk bool) (int, error) {
	i++ // '{'
	i = jsonscan.SkipWS(b, i)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, jsonscan.Errorf(b, i, "expected a field name")
		}
		key, next := matchKey(b, i, risk)
		if key == keyNone {
			ks, ke, n, esc, err := jsonscan.String(b, i)
			if err != nil {
				return 0, err
			}
			name := b[ks:ke]
			if esc {
				name = d.unescape(name)
			}
			key, next = keyByName(name, risk), n
		}
		i = jsonscan.SkipWS(b, next)
		if i >= len(b) || b[i] != ':' {
			return 0, jsonscan.Errorf(b, i, "expected ':'")
		}
		i = jsonscan.SkipWS(b, i+1)
		if i >= len(b) {
			return 0, jsonscan.Errorf(b, i, "expected a value")
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
		i = jsonscan.SkipWS(b, i)
		if i >= len(b) {
			return 0, jsonscan.Errorf(b, i, "unterminated object")
		}
		if b[i] == ',' {
			i = jsonscan.SkipWS(b, i+1)
			continue
		}
		if b[i] == '}' {
			return i + 1, nil
		}
		return 0, jsonscan.Errorf(b, i, "expected ',' or '}'")
	}
}

// Nesting of the values the decoder reads: arrays and objects open around them.
const (
	depthTop  = 1 // a top-level field's value
	depthRisk = 2 // a field of risk
	depthTag  = 3 // an item of a tag list
)

// scalar reads a string or integer value; kind says which it was. Other values
// are skipped and reported as KindOther (or KindAbsent for null); depth is the
// nesting around the value.
func (d *Decoder) scalar(b []byte, i, depth int) (val []byte, kind ValueKind, next int, err error) {
	switch c := b[i]; {
	case c == '"':
		s, e, n, esc, err := jsonscan.String(b, i)
		if err != nil {
			return nil, 0, 0, err
		}
		v := b[s:e]
		if esc {
			v = d.unescape(v)
		}
		return v, KindString, n, nil
	case c == '-' || (c >= '0' && c <= '9'):
		e, isInt, err := jsonscan.Number(b, i)
		if err != nil {
			return nil, 0, 0, err
		}
		if isInt {
			return b[i:e], KindInt, e, nil
		}
		return b[i:e], KindOther, e, nil
	case c == 'n':
		n, err := jsonscan.Skip(b, i, depth)
		return nil, KindAbsent, n, err
	default:
		n, err := jsonscan.Skip(b, i, depth)
		return nil, KindOther, n, err
	}
}

// unescape decodes a validated string body into the scratch space.
func (d *Decoder) unescape(s []byte) []byte {
	start := len(d.scratch)
	d.scratch = jsonscan.Unescape(d.scratch, s)
	return d.scratch[start:len(d.scratch):len(d.scratch)]
}

func (d *Decoder) topField(b []byte, i int, key fieldKey, ev *Event) (int, error) {
	switch key {
	case keyID, keyReqID, keyAppID, keyRuleID:
		v, kind, n, err := d.scalar(b, i, depthTop)
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
			} else {
				ev.hasIDKey = false
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
		v, kind, n, err := d.scalar(b, i, depthTop)
		if err != nil {
			return 0, err
		}
		d.badChannel = kind == KindOther
		if d.badChannel {
			v = nil
		}
		ev.Channel = v
		return n, nil
	case keyCode:
		v, kind, n, err := d.scalar(b, i, depthTop)
		if err != nil {
			return 0, err
		}
		d.badCode = kind == KindOther
		if d.badCode {
			v, kind = nil, KindAbsent
		}
		ev.Code, ev.CodeKind = v, kind
		return n, nil
	case keyTS:
		v, kind, n, err := d.scalar(b, i, depthTop)
		if err != nil {
			return 0, err
		}
		d.ts(v, kind, ev)
		return n, nil
	case keyRisk:
		ev.resetRisk()
		if b[i] == '{' {
			return d.object(b, i, ev, true)
		}
		n, err := jsonscan.Skip(b, i, depthTop)
		if b[i] != 'n' {
			ev.RiskNotObject = true
		}
		return n, err
	}
	return jsonscan.Skip(b, i, depthTop)
}

// ts reads the ts field's value, as written (kind).
func (d *Decoder) ts(v []byte, kind ValueKind, ev *Event) {
	d.badTS, ev.TS, ev.HasTS = KindAbsent, 0, false
	switch kind {
	case KindAbsent:
	case KindString:
		if ts, ok := parseRFC3339(v); ok {
			ev.TS, ev.HasTS = ts, true
		} else {
			d.badTS = KindString
		}
	case KindInt:
		if ms, ok := parseInt(v); ok && ms >= 0 && ms <= maxUnixMs {
			ev.TS, ev.HasTS = ms*1e6, true
		} else {
			d.badTS = KindInt
		}
	default:
		d.badTS = KindOther
	}
}

func (d *Decoder) riskField(b []byte, i int, key fieldKey, ev *Event) (int, error) {
	switch key {
	case keyDeviceLevel, keyRiskLevel:
		v, kind, n, err := d.scalar(b, i, depthRisk)
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
		v, kind, n, err := d.scalar(b, i, depthRisk)
		if err != nil {
			return 0, err
		}
		if kind != KindString {
			v = nil
		}
		ev.Platform = v
		return n, nil
	}
	return jsonscan.Skip(b, i, depthRisk)
}

// tags reads a list of strings or integers, or one comma-separated string.
func (d *Decoder) tags(b []byte, i int, t *TagList) (int, error) {
	t.clear()
	switch b[i] {
	case '"':
		v, _, n, err := d.scalar(b, i, depthRisk)
		if err != nil {
			return 0, err
		}
		splitTags(v, t)
		return n, nil
	case '[':
		i = jsonscan.SkipWS(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1, nil
		}
		for {
			if i >= len(b) {
				return 0, jsonscan.Errorf(b, i, "unterminated list")
			}
			v, kind, n, err := d.scalar(b, i, depthTag)
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
			i = jsonscan.SkipWS(b, n)
			if i >= len(b) {
				return 0, jsonscan.Errorf(b, i, "unterminated list")
			}
			if b[i] == ',' {
				i = jsonscan.SkipWS(b, i+1)
				continue
			}
			if b[i] == ']' {
				return i + 1, nil
			}
			return 0, jsonscan.Errorf(b, i, "expected ',' or ']'")
		}
	case 'n':
		return jsonscan.Skip(b, i, depthRisk)
	}
	t.Invalid = true
	return jsonscan.Skip(b, i, depthRisk)
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
