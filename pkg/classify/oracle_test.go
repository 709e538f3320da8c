package classify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// This file is the oracle of the hand-written decoder: what encoding/json and
// time.Parse read from a message, mapped onto the Decoder's Event by these
// rules.
//
//   - A message over MaxMessageBytes is oversize; one json.Valid refuses is
//     invalid_json (nesting past 10,000 levels included, as encoding/json);
//     a valid value that is not an object is not_object. A valid object is
//     never refused as invalid_json.
//   - Fields are read as json.Unmarshal reads the object into a
//     map[string]json.RawMessage: names match exactly (no case folding, unlike
//     encoding/json's struct fields), and the last occurrence of a name wins,
//     the risk object's fields included.
//   - A value's kind is its first byte: a string, a number (an integer when it
//     has no fraction and no exponent), null, or other (true, false, an object
//     or an array).
//   - A string field is the string json.Unmarshal reads (bytes that are not
//     UTF-8 read as U+FFFD: the Decoder keeps the bytes as they are, and they
//     are compared after the same replacement); an integer field is its
//     literal text, as written (-0 stays -0).
//   - id, req_id, app_id, rule_id: a string or an integer; anything else reads
//     as absent ("").
//   - channel: a string or an integer; null is absent; other kinds reject the
//     message as unknown_channel. code: the same, with invalid_code, and
//     CodeKind says string or integer.
//   - ts: absent or null is no ts; a string must be an RFC 3339 date-time with
//     an offset (see wantRFC3339) and is its instant; an integer is Unix
//     milliseconds in 0..maxUnixMs; anything else rejects the message as
//     invalid_ts. When several fields are bad, channel wins over code, code
//     over ts.
//   - risk: null or absent gives nothing; a value that is not an object gives
//     RiskNotObject and nothing else. Its fields:
//   - device_level, risk_level: an integer literal, or a string whose content
//     is one, of at most 18 digits with an optional minus, is KindInt with its
//     value; null is absent; any other value is KindOther (value 0).
//   - device_tags, risk_tags: a string is split at commas; a list gives one
//     tag per string or integer item, and any other item (null included) sets
//     Invalid; any other value sets Invalid and gives no tags. Each tag is
//     trimmed of spaces and tabs, empty tags are dropped, and past MaxTags
//     they are counted in Dropped.
//   - platform: a string; anything else is absent.

// wantEvent is what the oracle expects the Decoder to extract.
type wantEvent struct {
	reason                               Reason
	id, channel, code, reqID, appID, rID string
	codeKind                             ValueKind
	ts                                   int64
	hasTS                                bool
	deviceLevel, riskLevel               int64
	deviceLevelKind, riskLevelKind       ValueKind
	deviceTags, riskTags                 wantTags
	platform                             string
	riskNotObject                        bool
}

type wantTags struct {
	items   []string
	dropped int
	invalid bool
}

// oracleDecode reads msg with encoding/json by the rules above.
func oracleDecode(msg []byte) wantEvent {
	var w wantEvent
	switch {
	case len(msg) > MaxMessageBytes:
		w.reason = ReasonOversize
		return w
	case !json.Valid(msg):
		w.reason = ReasonInvalidJSON
		return w
	case bytes.TrimLeft(msg, " \t\r\n")[0] != '{':
		w.reason = ReasonNotObject
		return w
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(msg, &top); err != nil {
		panic("json.Valid accepted an object json.Unmarshal refuses: " + err.Error())
	}
	w.id, _ = stringOrInt(top["id"])
	w.reqID, _ = stringOrInt(top["req_id"])
	w.appID, _ = stringOrInt(top["app_id"])
	w.rID, _ = stringOrInt(top["rule_id"])
	var badChannel, badCode, badTS bool
	var kind ValueKind
	w.channel, kind = stringOrInt(top["channel"])
	badChannel = kind == KindOther
	if badChannel {
		w.channel = ""
	}
	w.code, w.codeKind = stringOrInt(top["code"])
	badCode = w.codeKind == KindOther
	if badCode {
		w.code, w.codeKind = "", KindAbsent
	}
	switch raw := trim(top["ts"]); kindOf(raw) {
	case KindAbsent:
	case KindString:
		w.ts, w.hasTS = wantRFC3339(str(raw))
		badTS = !w.hasTS
	case KindInt:
		ms, err := strconv.ParseInt(string(raw), 10, 64)
		if err == nil && ms >= 0 && ms <= maxUnixMs {
			w.ts, w.hasTS = ms*1e6, true
		} else {
			badTS = true
		}
	default:
		badTS = true
	}
	switch {
	case badChannel:
		w.reason = ReasonUnknownChannel
	case badCode:
		w.reason = ReasonInvalidCode
	case badTS:
		w.reason = ReasonInvalidTS
		w.ts, w.hasTS = 0, false
	}
	raw := trim(top["risk"])
	switch {
	case len(raw) == 0 || raw[0] == 'n':
	case raw[0] != '{':
		w.riskNotObject = true
	default:
		var risk map[string]json.RawMessage
		if err := json.Unmarshal(raw, &risk); err != nil {
			panic(err)
		}
		w.deviceLevel, w.deviceLevelKind = wantLevel(risk["device_level"])
		w.riskLevel, w.riskLevelKind = wantLevel(risk["risk_level"])
		w.deviceTags = wantTagList(risk["device_tags"])
		w.riskTags = wantTagList(risk["risk_tags"])
		if p := trim(risk["platform"]); kindOf(p) == KindString {
			w.platform = str(p)
		}
	}
	return w
}

func trim(raw json.RawMessage) []byte { return bytes.TrimSpace(raw) }

// kindOf is a value's kind by its first byte (KindAbsent for none or null).
func kindOf(raw []byte) ValueKind {
	switch {
	case len(raw) == 0 || raw[0] == 'n':
		return KindAbsent
	case raw[0] == '"':
		return KindString
	case raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'):
		if bytes.ContainsAny(raw, ".eE") {
			return KindOther
		}
		return KindInt
	}
	return KindOther
}

// str is the string encoding/json reads from a JSON string.
func str(raw []byte) string {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		panic(err)
	}
	return s
}

// stringOrInt reads a field that is a string or an integer.
func stringOrInt(raw json.RawMessage) (string, ValueKind) {
	raw = trim(raw)
	switch k := kindOf(raw); k {
	case KindString:
		return str(raw), k
	case KindInt:
		return string(raw), k
	default:
		return "", k
	}
}

var levelPattern = regexp.MustCompile(`^-?[0-9]{1,18}$`)

func wantLevel(raw json.RawMessage) (int64, ValueKind) {
	raw = trim(raw)
	var s string
	switch kindOf(raw) {
	case KindAbsent:
		return 0, KindAbsent
	case KindString:
		s = str(raw)
	case KindInt:
		s = string(raw)
	default:
		return 0, KindOther
	}
	if !levelPattern.MatchString(s) {
		return 0, KindOther
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		panic(err)
	}
	return v, KindInt
}

func wantTagList(raw json.RawMessage) wantTags {
	raw = trim(raw)
	var w wantTags
	add := func(s string) {
		s = strings.Trim(s, " \t")
		switch {
		case s == "":
		case len(w.items) == MaxTags:
			w.dropped++
		default:
			w.items = append(w.items, s)
		}
	}
	switch {
	case len(raw) == 0 || raw[0] == 'n':
	case raw[0] == '"':
		for _, s := range strings.Split(str(raw), ",") {
			add(s)
		}
	case raw[0] == '[':
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			panic(err)
		}
		for _, it := range items {
			switch it = trim(it); kindOf(it) {
			case KindString:
				add(str(it))
			case KindInt:
				add(string(it))
			default:
				w.invalid = true
			}
		}
	default:
		w.invalid = true
	}
	return w
}

// rfc3339Syntax is RFC 3339's date-time (section 5.6) with its offset ranges:
// the numbers of the date and the time are checked by time.Parse.
var rfc3339Syntax = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$`)

// wantRFC3339 is the instant of an RFC 3339 date-time by time.Parse, for the
// years the input contract accepts (1970..2199, as written). time.Parse wants
// upper-case T and Z, which RFC 3339 lets be lower-case: they are upper-cased
// first.
func wantRFC3339(s string) (int64, bool) {
	if !rfc3339Syntax.MatchString(s) {
		return 0, false
	}
	if year, _ := strconv.Atoi(s[:4]); year < 1970 || year > 2199 {
		return 0, false
	}
	b := []byte(s)
	b[10] = 'T'
	if b[len(b)-1] == 'z' {
		b[len(b)-1] = 'Z'
	}
	t, err := time.Parse(time.RFC3339, string(b))
	if err != nil {
		return 0, false
	}
	return t.UnixNano(), true
}

// asJSONReads maps bytes the Decoder returns to the string encoding/json
// reads for them: each byte that is not part of valid UTF-8 becomes U+FFFD.
func asJSONReads(b []byte) string {
	var sb strings.Builder
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		sb.WriteRune(r)
		b = b[size:]
	}
	return sb.String()
}

// diffEvent lists where a decoded event differs from the oracle's.
func diffEvent(ev *Event, reason Reason, w wantEvent) []string {
	var d []string
	check := func(name string, ok bool, got, want any) {
		if !ok {
			d = append(d, name+": got "+strconv.Quote(stringOf(got))+", want "+strconv.Quote(stringOf(want)))
		}
	}
	check("reason", reason == w.reason, reason, w.reason)
	if w.reason == ReasonOversize || w.reason == ReasonInvalidJSON || w.reason == ReasonNotObject || reason != w.reason {
		return d
	}
	s := func(b []byte) string { return asJSONReads(b) }
	check("id", s(ev.ID) == w.id, s(ev.ID), w.id)
	check("req_id", s(ev.ReqID) == w.reqID, s(ev.ReqID), w.reqID)
	check("app_id", s(ev.AppID) == w.appID, s(ev.AppID), w.appID)
	check("rule_id", s(ev.RuleID) == w.rID, s(ev.RuleID), w.rID)
	if w.reason != ReasonNone {
		return d // the rest of a rejected event is not read
	}
	check("channel", s(ev.Channel) == w.channel, s(ev.Channel), w.channel)
	check("code", s(ev.Code) == w.code, s(ev.Code), w.code)
	check("code kind", ev.CodeKind == w.codeKind, ev.CodeKind, w.codeKind)
	check("ts", ev.HasTS == w.hasTS && ev.TS == w.ts, ev.TS, w.ts)
	check("device_level", ev.DeviceLevel == w.deviceLevel && ev.DeviceLevelKind == w.deviceLevelKind,
		[2]int64{ev.DeviceLevel, int64(ev.DeviceLevelKind)}, [2]int64{w.deviceLevel, int64(w.deviceLevelKind)})
	check("risk_level", ev.RiskLevel == w.riskLevel && ev.RiskLevelKind == w.riskLevelKind,
		[2]int64{ev.RiskLevel, int64(ev.RiskLevelKind)}, [2]int64{w.riskLevel, int64(w.riskLevelKind)})
	check("device_tags", tagsEqual(&ev.DeviceTags, w.deviceTags), tagsOf(&ev.DeviceTags), w.deviceTags)
	check("risk_tags", tagsEqual(&ev.RiskTags, w.riskTags), tagsOf(&ev.RiskTags), w.riskTags)
	check("platform", s(ev.Platform) == w.platform, s(ev.Platform), w.platform)
	check("risk not object", ev.RiskNotObject == w.riskNotObject, ev.RiskNotObject, w.riskNotObject)
	return d
}

func tagsOf(t *TagList) wantTags {
	w := wantTags{dropped: t.Dropped, invalid: t.Invalid}
	for _, it := range t.Items[:t.N] {
		w.items = append(w.items, asJSONReads(it))
	}
	return w
}

func tagsEqual(t *TagList, w wantTags) bool {
	got := tagsOf(t)
	return got.dropped == w.dropped && got.invalid == w.invalid && strings.Join(got.items, "\x00") == strings.Join(w.items, "\x00") && len(got.items) == len(w.items)
}

func stringOf(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case Reason:
		return v.String()
	}
	return fmt.Sprintf("%+v", v)
}
