package classify

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/faceid-observability/faceid-exporter/pkg/dedupe"
)

// decodeCases are messages on which the Decoder once disagreed with
// encoding/json (oracle_test.go), or that sit on an edge of the mapping; each
// names the reason Decode must give.
var decodeCases = []struct {
	name, msg string
	reason    Reason
}{
	{"sample", string(sampleEvent), ReasonNone},
	{"nested_65_levels_is_valid", `{"x":` + strings.Repeat("[", 65) + strings.Repeat("]", 65) + `,"channel":"app_sdk","code":"0"}`, ReasonNone},
	{"nested_9999_levels_is_valid", `{"x":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `,"channel":"app_sdk","code":"0"}`, ReasonNone},
	{"nested_10001_levels_is_invalid", `{"x":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `,"channel":"app_sdk","code":"0"}`, ReasonInvalidJSON},
	{"nested_in_risk", `{"channel":"app_sdk","code":"0","risk":{"x":` + strings.Repeat(`{"a":`, 70) + "1" + strings.Repeat("}", 70) + `}}`, ReasonNone},
	{"bad_channel_then_invalid_json", `{"channel":true,"code":"0",`, ReasonInvalidJSON},
	{"bad_code_then_invalid_json", `{"channel":"app_sdk","code":1.5,"x":[}`, ReasonInvalidJSON},
	{"bad_ts_then_invalid_json", `{"channel":"app_sdk","code":"0","ts":"noon"} x`, ReasonInvalidJSON},
	{"bad_channel_then_good", `{"channel":true,"channel":"app_sdk","code":"0"}`, ReasonNone},
	{"good_channel_then_bad", `{"channel":"app_sdk","channel":[],"code":"0"}`, ReasonUnknownChannel},
	{"bad_code_then_good", `{"channel":"app_sdk","code":{},"code":2006}`, ReasonNone},
	{"bad_ts_then_good", `{"channel":"app_sdk","code":"0","ts":"noon","ts":1764123330123}`, ReasonNone},
	{"good_ts_then_null", `{"channel":"app_sdk","code":"0","ts":1764123330123,"ts":null}`, ReasonNone},
	{"bad_channel_and_code_and_ts", `{"ts":true,"code":true,"channel":true}`, ReasonUnknownChannel},
	{"bad_code_and_ts", `{"ts":true,"code":true,"channel":"app_sdk"}`, ReasonInvalidCode},
	{"risk_twice_last_wins", `{"channel":"app_sdk","code":"0","risk":{"device_level":3,"platform":"ios","device_tags":["1"]},"risk":{"risk_level":1}}`, ReasonNone},
	{"risk_then_null", `{"channel":"app_sdk","code":"0","risk":{"device_level":3},"risk":null}`, ReasonNone},
	{"risk_not_object_then_object", `{"channel":"app_sdk","code":"0","risk":"high","risk":{"device_level":1}}`, ReasonNone},
	{"risk_object_then_not_object", `{"channel":"app_sdk","code":"0","risk":{"device_level":1},"risk":[1]}`, ReasonNone},
	{"platform_then_number", `{"channel":"app_sdk","code":"0","risk":{"platform":"ios","platform":1}}`, ReasonNone},
	{"id_then_float", `{"channel":"app_sdk","code":"0","id":"a","id":1.5}`, ReasonNone},
	{"levels_as_strings", `{"channel":"app_sdk","code":"0","risk":{"device_level":"-0","risk_level":" 5"}}`, ReasonNone},
	{"level_19_digits", `{"channel":"app_sdk","code":"0","risk":{"device_level":1234567890123456789}}`, ReasonNone},
	{"tags_mixed", `{"channel":"app_sdk","code":"0","risk":{"device_tags":[" 202 ",5012,"",null,1.5,[]],"risk_tags":" 02 , ,19,"}}`, ReasonNone},
	{"tags_escaped_whitespace", `{"channel":"app_sdk","code":"0","risk":{"device_tags":["\n202\n","\t5012\t","\u0020"],"risk_tags":"02\r,\u0020 19\t,\t"}}`, ReasonNone},
	{"tags_over_limit", `{"channel":"app_sdk","code":"0","risk":{"device_tags":[` + strings.Repeat(`"1",`, MaxTags+3) + `"2"]}}`, ReasonNone},
	{"escaped_names", `{"\u0063hannel":"app_sdk","c\u006fde":"\u0030","risk":{"\u0070latform":"ios"}}`, ReasonNone},
	{"names_are_case_sensitive", `{"Channel":"x","channel":"app_sdk","CODE":true,"code":"0"}`, ReasonNone},
	{"invalid_utf8", "{\"channel\":\"app_sdk\",\"code\":\"0\",\"id\":\"\xff\xc3\x28\",\"risk\":{\"device_tags\":\"\xe4\xb8\"}}", ReasonNone},
	{"surrogates", `{"channel":"app_sdk","code":"0","id":"\ud83d\ude00\ud800\u0041\udc00"}`, ReasonNone},
	{"integer_fields", `{"channel":7,"code":-0,"id":-12,"req_id":0,"app_id":1,"rule_id":2}`, ReasonNone},
	{"whitespace_everywhere", " \r\n\t{ \"channel\" : \"app_sdk\" , \"code\" : 0 , \"risk\" : { \"device_tags\" : [ 1 , 2 ] } } \n", ReasonNone},
	{"ts_lower_case", `{"channel":"app_sdk","code":"0","ts":"2026-11-26t10:15:30.5z"}`, ReasonNone},
	{"ts_max_ms", `{"channel":"app_sdk","code":"0","ts":7258118400000}`, ReasonNone},
	{"ts_past_max_ms", `{"channel":"app_sdk","code":"0","ts":7258118400001}`, ReasonInvalidTS},
	{"ts_minus_zero", `{"channel":"app_sdk","code":"0","ts":-0}`, ReasonNone},
	{"top_level_array", `[{"channel":"app_sdk"}]`, ReasonNotObject},
	{"deep_top_level_array", strings.Repeat("[", 100) + strings.Repeat("]", 100), ReasonNotObject},
	{"trailing_comma", `{"channel":"app_sdk","code":"0",}`, ReasonInvalidJSON},
}

// TestDecodeMatchesEncodingJSON: on each case, Decode gives its reason and
// what the oracle reads.
func TestDecodeMatchesEncodingJSON(t *testing.T) {
	d := &Decoder{prefetch: dedupe.NewWindow(time.Minute, 16)}
	for _, tc := range decodeCases {
		t.Run(tc.name, func(t *testing.T) {
			msg := []byte(tc.msg)
			w := oracleDecode(msg)
			if w.reason != tc.reason {
				t.Fatalf("the oracle says %s, the case %s", w.reason, tc.reason)
			}
			checkDecode(t, d, msg)
		})
	}
}

// FuzzDecodeMatchesEncodingJSON: the Decoder reads every message as
// encoding/json does, by the mapping oracle_test.go states.
func FuzzDecodeMatchesEncodingJSON(f *testing.F) {
	for _, tc := range decodeCases {
		if len(tc.msg) < 4096 {
			f.Add([]byte(tc.msg))
		}
	}
	d := &Decoder{prefetch: dedupe.NewWindow(time.Minute, 16)}
	f.Fuzz(func(t *testing.T, msg []byte) { checkDecode(t, d, msg) })
}

func checkDecode(t *testing.T, d *Decoder, msg []byte) {
	t.Helper()
	var ev Event
	err := d.Decode(msg, &ev)
	reason := ReasonNone
	if err != nil {
		var rej *RejectError
		if !errors.As(err, &rej) {
			t.Fatalf("error %v is not a *RejectError", err)
		}
		reason = rej.Reason
	}
	if diffs := diffEvent(&ev, reason, oracleDecode(msg)); len(diffs) > 0 {
		t.Fatalf("%q\ndecode error: %v\n%s", truncate(msg), err, strings.Join(diffs, "\n"))
	}
	if err == nil && (ev.hasIDKey != (len(ev.ID) > 0) || ev.hasIDKey && ev.idKey != IDKey(ev.ID)) {
		t.Fatalf("%q: id key %v %x for id %q", msg, ev.hasIDKey, ev.idKey, ev.ID)
	}
}

// rfc3339Cases sit on the edges of the RFC 3339 grammar and of what
// time.Parse accepts beyond it.
var rfc3339Cases = []struct {
	in string
	ok bool
}{
	{"2026-11-26T10:15:30.123+08:00", true},
	{"2026-11-26T10:15:30Z", true},
	{"2026-11-26t10:15:30z", true},
	{"2026-11-26T10:15:30.123456789123Z", true}, // digits past nanoseconds are cut
	{"2024-02-29T00:00:00-23:59", true},
	{"1970-01-01T00:00:00Z", true},
	{"2199-12-31T23:59:59.999+00:00", true},
	{"1969-12-31T23:59:59Z", false},
	{"2200-01-01T00:00:00Z", false},
	{"2025-02-29T00:00:00Z", false},
	{"2026-11-26T24:00:00Z", false},
	{"2026-11-26T10:60:00Z", false},
	{"2026-11-26T10:15:60Z", false},
	{"2026-11-26T10:15:30", false},
	{"2026-11-26T10:15:30+24:00", false}, // time.Parse takes it; RFC 3339 does not
	{"2026-11-26T10:15:30+23:60", false},
	{"2026-11-26T10:15:30,5Z", false}, // time.Parse takes a comma
	{"2026-11-26T1:15:30Z", false},    // time.Parse takes one hour digit
	{"2026-11-26T10:15:30.Z", false},
	{"2026-11-26 10:15:30Z", false},
	{"2026-11-26T10:15:30+0800", false},
	{"2026-11-26T10:15:30Z ", false},
	{"+2026-11-26T10:15:30Z", false},
}

func TestParseRFC3339MatchesTimeParse(t *testing.T) {
	for _, tc := range rfc3339Cases {
		t.Run(tc.in, func(t *testing.T) {
			if _, ok := wantRFC3339(tc.in); ok != tc.ok {
				t.Fatalf("the oracle says %v, the case %v", ok, tc.ok)
			}
			checkRFC3339(t, tc.in)
		})
	}
}

// FuzzParseRFC3339MatchesTimeParse: parseRFC3339 accepts what time.Parse
// accepts of RFC 3339's grammar, in the contract's years, and reads the same
// instant.
func FuzzParseRFC3339MatchesTimeParse(f *testing.F) {
	for _, tc := range rfc3339Cases {
		f.Add(tc.in)
	}
	f.Fuzz(checkRFC3339)
}

func checkRFC3339(t *testing.T, s string) {
	got, ok := parseRFC3339([]byte(s))
	want, wantOK := wantRFC3339(s)
	if ok != wantOK || got != want {
		t.Fatalf("parseRFC3339(%q) = %d, %v; time.Parse reads %d, %v", s, got, ok, want, wantOK)
	}
}
