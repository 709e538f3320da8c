package classify

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends the classification as one JSON object. line > 0 adds a
// "line" field first. Field order is fixed, so output is stable.
func (r *Result) AppendJSON(dst []byte, line int) []byte {
	dst = append(dst, '{')
	if line > 0 {
		dst = append(dst, `"line":`...)
		dst = strconv.AppendInt(dst, int64(line), 10)
		dst = append(dst, ',')
	}
	ev := &r.Event
	dst = append(dst, `"id":`...)
	dst = appendOptString(dst, ev.ID)
	dst = append(dst, `,"ts":"`...)
	dst = r.TS.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","ts_source":`...)
	if r.TSFromEvent {
		dst = append(dst, `"event"`...)
	} else {
		dst = append(dst, `"received"`...)
	}
	dst = append(dst, `,"channel":`...)
	dst = AppendString(dst, r.Channel.Name)
	dst = append(dst, `,"family":`...)
	dst = AppendString(dst, r.Family.Name)
	dst = append(dst, `,"code":`...)
	dst = appendBytesString(dst, r.CodeRaw)
	dst = append(dst, `,"known":`...)
	dst = strconv.AppendBool(dst, r.Code != nil)
	if r.Code != nil {
		dst = append(dst, `,"meaning":`...)
		dst = AppendString(dst, r.Code.Meaning)
		dst = append(dst, `,"category":`...)
		dst = AppendString(dst, r.Code.Category)
		dst = append(dst, `,"billing_source":`...)
		dst = AppendString(dst, r.Code.Billing)
	} else {
		dst = append(dst, `,"meaning":null,"category":null,"billing_source":null`...)
	}
	dst = append(dst, `,"outcome":"`...)
	dst = append(dst, r.Outcome.String()...)
	dst = append(dst, `","billable":`...)
	switch r.Billable {
	case BillableTrue:
		dst = append(dst, "true"...)
	case BillableFalse:
		dst = append(dst, "false"...)
	default:
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"billing_rule":"`...)
	dst = append(dst, r.BillingRule...)
	dst = append(dst, `","req_id":`...)
	dst = appendOptString(dst, ev.ReqID)
	dst = append(dst, `,"risk":"`...)
	dst = append(dst, r.Risk.String()...)
	dst = append(dst, `","device_level":`...)
	dst = appendLevel(dst, r.DeviceLevel)
	dst = append(dst, `,"risk_level":`...)
	dst = appendLevel(dst, r.RiskLevel)
	dst = append(dst, `,"platform":"`...)
	dst = append(dst, r.Platform.String()...)
	dst = append(dst, `","device_tags":[`...)
	for i, t := range r.DeviceTags[:r.NDeviceTags] {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"tag":`...)
		dst = AppendString(dst, t.Tag)
		dst = append(dst, `,"name":`...)
		dst = AppendString(dst, t.Name)
		dst = append(dst, '}')
	}
	dst = append(dst, `],"identity_tags":[`...)
	for i, t := range r.IdentityTags[:r.NIdentityTags] {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"tag":`...)
		dst = AppendString(dst, t.Tag)
		dst = append(dst, `,"type":`...)
		dst = AppendString(dst, t.Type)
		dst = append(dst, '}')
	}
	dst = append(dst, `],"unknown_device_tags":`...)
	dst = strconv.AppendInt(dst, int64(r.UnknownDeviceTags), 10)
	dst = append(dst, `,"unknown_identity_tags":`...)
	dst = strconv.AppendInt(dst, int64(r.UnknownIdentityTags), 10)
	dst = append(dst, `,"duplicate":`...)
	dst = strconv.AppendBool(dst, r.Duplicate)
	dst = append(dst, `,"problems":[`...)
	for i, p := range r.Problems.Names() {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendString(dst, p)
	}
	return append(dst, "]}"...)
}

func appendLevel(dst []byte, l int) []byte {
	if l < 0 {
		return append(dst, "null"...)
	}
	return strconv.AppendInt(dst, int64(l), 10)
}

func appendOptString(dst, v []byte) []byte {
	if len(v) == 0 {
		return append(dst, "null"...)
	}
	return appendBytesString(dst, v)
}

// AppendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func AppendString(dst []byte, s string) []byte {
	return appendJSONString(dst, s)
}

func appendBytesString(dst, b []byte) []byte {
	return appendJSONString(dst, b)
}

const hexDigits = "0123456789abcdef"

func appendJSONString[S ~string | ~[]byte](dst []byte, s S) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		var r rune
		var size int
		switch v := any(s).(type) {
		case string:
			r, size = utf8.DecodeRuneInString(v[i:])
		case []byte:
			r, size = utf8.DecodeRune(v[i:])
		}
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else if r == '\u2028' || r == '\u2029' {
			dst = append(dst, `\u202`...)
			dst = append(dst, hexDigits[r&0xf])
		} else {
			dst = append(dst, string(s[i:i+size])...)
		}
		i += size
	}
	return append(dst, '"')
}
