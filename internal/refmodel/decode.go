package refmodel

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The input contract (README "The input contract"), read with encoding/json.

// MaxMessageBytes is the largest message accepted (64 KiB).
const MaxMessageBytes = 64 << 10

// maxTags is how many tags of one list are read; the rest are dropped.
const maxTags = 32

// Rejection reasons (docs/metrics.md, faceid_exporter_events_rejected_total),
// plus future_ts (issue 15).
const (
	ReasonOversize       = "oversize"
	ReasonNotObject      = "not_object"
	ReasonInvalidJSON    = "invalid_json"
	ReasonMissingChannel = "missing_channel"
	ReasonUnknownChannel = "unknown_channel"
	ReasonMissingCode    = "missing_code"
	ReasonInvalidCode    = "invalid_code"
	ReasonInvalidTS      = "invalid_ts"
	ReasonFutureTS       = "future_ts"
)

// event is one decoded message, before the catalog.
type event struct {
	id, channel, code, reqID, appID, ruleID string
	hasTS                                   bool
	ts                                      time.Time

	riskNotObject bool
	platform      string
	deviceLevel   levelValue
	riskLevel     levelValue
	deviceTags    tagList
	riskTags      tagList
}

type levelValue struct {
	present bool  // the field is there and not null
	isInt   bool  // an integer, or a string holding one (optional '-', 1 to 18 digits)
	v       int64 // when isInt
}

type tagList struct {
	items   []string
	dropped int
	invalid bool
}

// kind of a JSON value.
type kind int

const (
	kNull kind = iota
	kString
	kInt
	kOther // float, bool, object, array
)

func kindOf(raw json.RawMessage) kind {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return kNull
	}
	switch c := raw[0]; {
	case c == 'n':
		return kNull
	case c == '"':
		return kString
	case c == '-' || (c >= '0' && c <= '9'):
		if bytes.ContainsAny(raw, ".eE") {
			return kOther
		}
		return kInt
	}
	return kOther
}

// text returns a string value unquoted, or an integer as written.
func text(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if kindOf(raw) == kString {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return ""
		}
		return s
	}
	return string(raw)
}

// decode reads a message. It returns the event or the rejection reason
// ("" when accepted). fallback is the channel named by the subject.
func decode(data []byte, fallback string, familyOf map[string]string) (event, string) {
	var ev event
	if len(data) > MaxMessageBytes {
		return ev, ReasonOversize
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return ev, ReasonInvalidJSON
	}
	if !json.Valid(data) {
		return ev, ReasonInvalidJSON
	}
	if bytes.TrimLeft(data, " \t\r\n")[0] != '{' {
		return ev, ReasonNotObject // valid JSON, but an array, a string, a number, true, false or null
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return ev, ReasonInvalidJSON
	}
	scalar := func(name string) string {
		raw, ok := top[name]
		if !ok {
			return ""
		}
		if k := kindOf(raw); k == kString || k == kInt {
			return text(raw)
		}
		return ""
	}
	ev.id, ev.reqID, ev.appID, ev.ruleID = scalar("id"), scalar("req_id"), scalar("app_id"), scalar("rule_id")

	// channel, code and ts break the contract in this order of checks.
	badChannel, badCode, badTS := false, false, false
	codePresent := false
	if raw, ok := top["channel"]; ok {
		switch kindOf(raw) {
		case kString, kInt:
			ev.channel = text(raw)
		case kOther:
			badChannel = true
		}
	}
	if raw, ok := top["code"]; ok {
		switch kindOf(raw) {
		case kString, kInt:
			ev.code, codePresent = text(raw), true
		case kOther:
			badCode = true
		}
	}
	if raw, ok := top["ts"]; ok {
		switch kindOf(raw) {
		case kString:
			t, ok := parseTS(text(raw))
			ev.ts, ev.hasTS, badTS = t, ok, !ok
		case kInt:
			ms, err := strconv.ParseInt(text(raw), 10, 64)
			if err != nil || ms < 0 || ms > maxUnixMs {
				badTS = true
			} else {
				ev.ts, ev.hasTS = time.UnixMilli(ms), true
			}
		case kOther:
			badTS = true
		}
	}
	switch {
	case badChannel:
		return ev, ReasonUnknownChannel
	case badCode:
		return ev, ReasonInvalidCode
	case badTS:
		return ev, ReasonInvalidTS
	}
	if ev.channel == "" {
		ev.channel = fallback
	}
	if ev.channel == "" {
		return ev, ReasonMissingChannel
	}
	if _, ok := familyOf[ev.channel]; !ok {
		return ev, ReasonUnknownChannel
	}
	if !codePresent || ev.code == "" {
		return ev, ReasonMissingCode
	}

	if raw, ok := top["risk"]; ok {
		switch kindOf(raw) {
		case kNull:
		case kOther:
			if bytes.TrimSpace(raw)[0] == '{' {
				readRisk(raw, &ev)
			} else {
				ev.riskNotObject = true
			}
		default:
			ev.riskNotObject = true
		}
	}
	return ev, ""
}

func readRisk(raw json.RawMessage, ev *event) {
	var r map[string]json.RawMessage
	if err := json.Unmarshal(raw, &r); err != nil {
		return
	}
	ev.deviceLevel = readLevel(r, "device_level")
	ev.riskLevel = readLevel(r, "risk_level")
	if p, ok := r["platform"]; ok && kindOf(p) == kString {
		ev.platform = text(p)
	}
	ev.deviceTags = readTags(r, "device_tags")
	ev.riskTags = readTags(r, "risk_tags")
}

func readLevel(r map[string]json.RawMessage, name string) levelValue {
	raw, ok := r[name]
	if !ok || kindOf(raw) == kNull {
		return levelValue{}
	}
	lv := levelValue{present: true}
	if k := kindOf(raw); k == kString || k == kInt {
		s := text(raw)
		digits := strings.TrimPrefix(s, "-")
		if len(digits) >= 1 && len(digits) <= 18 && strings.Trim(digits, "0123456789") == "" {
			v, err := strconv.ParseInt(s, 10, 64)
			if err == nil {
				lv.isInt, lv.v = true, v
			}
		}
	}
	return lv
}

func trimTag(s string) string { return strings.Trim(s, " \t") }

func (t *tagList) add(s string) {
	if s == "" {
		return
	}
	if len(t.items) == maxTags {
		t.dropped++
		return
	}
	t.items = append(t.items, s)
}

func readTags(r map[string]json.RawMessage, name string) tagList {
	var t tagList
	raw, ok := r[name]
	if !ok {
		return t
	}
	switch kindOf(raw) {
	case kNull:
	case kString:
		for _, part := range strings.Split(text(raw), ",") {
			t.add(trimTag(part))
		}
	case kOther:
		if bytes.TrimSpace(raw)[0] != '[' {
			t.invalid = true
			return t
		}
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			t.invalid = true
			return t
		}
		for _, it := range items {
			switch kindOf(it) {
			case kString:
				t.add(trimTag(text(it)))
			case kInt:
				t.add(text(it))
			default: // null, float, bool, object, array
				t.invalid = true
			}
		}
	default: // an integer
		t.invalid = true
	}
	return t
}

var tsForm = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-](0[0-9]|1[0-9]|2[0-3]):[0-5][0-9])$`)

// maxUnixMs is 2200-01-01T00:00:00Z: years 1970-2199 are accepted.
const maxUnixMs = 7258118400000

// parseTS reads an RFC 3339 time with an offset, years 1970 to 2199 as
// written: YYYY-MM-DDTHH:MM:SS, an optional fraction of any length (digits
// past the nanosecond are ignored), then Z or ±HH:MM (hours 00-23). RFC 3339
// allows 't' and 'z' in lower case, and so does the model.
func parseTS(s string) (time.Time, bool) {
	if !tsForm.MatchString(s) {
		return time.Time{}, false
	}
	b := []byte(s)
	b[10] = 'T'
	if last := len(b) - 1; b[last] == 'z' {
		b[last] = 'Z'
	}
	s = string(b)
	if i := strings.IndexByte(s, '.'); i >= 0 {
		j := i + 1
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j-i-1 > 9 {
			s = s[:i+10] + s[j:]
		}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false
	}
	year, err := strconv.Atoi(s[:4])
	if err != nil || year < 1970 || year > 2199 {
		return time.Time{}, false
	}
	return t, true
}

// normaliseCode returns the canonical form of a code: an optionally signed
// integer of at most 20 digits without leading zeros ("-0" is "0"), after
// trimming spaces and tabs. Anything else is returned as written (it cannot
// match the catalog).
func normaliseCode(raw string) string {
	v := strings.Trim(raw, " \t")
	neg := false
	if strings.HasPrefix(v, "-") || strings.HasPrefix(v, "+") {
		neg, v = v[0] == '-', v[1:]
	}
	if v == "" || strings.Trim(v, "0123456789") != "" {
		return raw
	}
	v = strings.TrimLeft(v, "0")
	if v == "" {
		v = "0"
	}
	if len(v) > 20 {
		return raw
	}
	if neg && v != "0" {
		return "-" + v
	}
	return v
}

// platformOf returns the platform label: android or ios in any ASCII case,
// unknown when not given (or not a string), else other.
func platformOf(p string) string {
	if p == "" {
		return "unknown"
	}
	lower := []byte(p)
	for i, c := range lower {
		if c >= 'A' && c <= 'Z' {
			lower[i] = c + 'a' - 'A'
		}
	}
	switch string(lower) {
	case "android":
		return "android"
	case "ios":
		return "ios"
	}
	return "other"
}
