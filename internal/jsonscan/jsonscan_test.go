package jsonscan

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// valid reports whether b is one JSON value with optional whitespace around
// it, by this package.
func valid(b []byte) (bool, error) {
	i := SkipWS(b, 0)
	n, err := Skip(b, i, 0)
	if err != nil {
		return false, err
	}
	if SkipWS(b, n) != len(b) {
		return false, nil
	}
	return true, nil
}

func TestSkip(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		ok       bool
		err      string // the SyntaxError, when not ok and the value itself is bad
	}{
		{"empty_object", `{}`, true, ""},
		{"empty_array", ` [ ] `, true, ""},
		{"nested", `{"a":[1,-0.5e+3,"x",true,false,null,{"b":{}}],"c":""}`, true, ""},
		{"string_escapes", `"\" \\ \/ \b \f \n \r \t \u00e9 \ud83d\ude00"`, true, ""},
		{"invalid_utf8_in_string", "\"\xff\xfe\"", true, ""},
		{"del_in_string", "\"\x7f\"", true, ""},
		{"zero", `0`, true, ""},
		{"negative_exponent", `-1E-7`, true, ""},
		{"empty_input", ``, false, "expected a value at end of input"},
		{"leading_zero", `01`, false, ""},
		{"minus_alone", `-`, false, "invalid number at end of input"},
		{"minus_letter", `-a`, false, "invalid number at byte 1"},
		{"dot_no_digits", `1.`, false, "invalid number at end of input"},
		{"exponent_no_digits", `1e+`, false, "invalid number at end of input"},
		{"plus_sign", `+1`, false, "unexpected character at byte 0"},
		{"control_char", "\"a\x01\"", false, "control character in string at byte 2"},
		{"tab_in_string", "\"a\tb\"", false, "control character in string at byte 2"},
		{"bad_escape", `"\x"`, false, "invalid escape at byte 2"},
		{"short_u_escape", `"\u12"`, false, `invalid \u escape at byte 2`},
		{"unterminated_string", `"abc`, false, "unterminated string at end of input"},
		{"trailing_comma_array", `[1,]`, false, "unexpected character at byte 3"},
		{"trailing_comma_object", `{"a":1,}`, false, "expected a field name at byte 7"},
		{"missing_colon", `{"a" 1}`, false, "expected ':' at byte 5"},
		{"mismatched", `[1}`, false, "expected ',' or ']' at byte 2"},
		{"unterminated_array", `[1`, false, "unterminated array at end of input"},
		{"bad_literal", `nul`, false, "invalid literal at byte 0"},
		{"true_prefix", `trueish`, false, ""},
		{"two_values", `1 2`, false, ""},
		{"single_quotes", `'a'`, false, "unexpected character at byte 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := valid([]byte(tc.in))
			if ok != tc.ok {
				t.Fatalf("valid = %v (%v), want %v", ok, err, tc.ok)
			}
			if ok != json.Valid([]byte(tc.in)) {
				t.Fatalf("encoding/json disagrees: json.Valid = %v", !ok)
			}
			if tc.err != "" {
				var se *SyntaxError
				if !errors.As(err, &se) || err.Error() != tc.err {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
			}
		})
	}
}

// TestSkipDepth: nesting is bounded where encoding/json bounds it, and deep
// values are skipped without recursion (by the explicit stack).
func TestSkipDepth(t *testing.T) {
	nest := func(open, close string, n int, inner string) string {
		return strings.Repeat(open, n) + inner + strings.Repeat(close, n)
	}
	for _, tc := range []struct {
		name string
		in   string
	}{
		{"arrays_at_limit", nest("[", "]", MaxDepth, "")},
		{"arrays_past_limit", nest("[", "]", MaxDepth+1, "")},
		{"objects_at_limit", nest(`{"a":`, "}", MaxDepth-1, "{}")},
		{"objects_past_limit", nest(`{"a":`, "}", MaxDepth, "{}")},
		{"mixed_at_limit", nest(`[{"a":`, "}]", MaxDepth/2, "1")},
		{"mixed_past_limit", "[" + nest(`[{"a":`, "}]", MaxDepth/2, "1") + "]"},
		{"deep_with_members", nest(`[1,{"x":"y","a":`, `,2}]`, 100, "[]")},
		{"deep_mismatched", nest("[", "]", 100, "") + strings.Repeat("}", 1)},
		{"deep_unterminated", strings.Repeat("[", 200)},
		{"deep_bad_member", nest(`{"a":`, "}", 100, `{"b" 1}`)},
		{"deep_trailing_comma", nest("[", "]", 100, "1,")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := valid([]byte(tc.in))
			if want := json.Valid([]byte(tc.in)); ok != want {
				t.Fatalf("valid = %v (%v), json.Valid = %v", ok, err, want)
			}
			if strings.HasSuffix(tc.name, "past_limit") && (err == nil || !strings.Contains(err.Error(), "nesting deeper than 10000 levels")) {
				t.Fatalf("error %v, want the nesting limit", err)
			}
		})
	}
	t.Run("depth_counts_what_is_open_around", func(t *testing.T) {
		if _, err := Skip([]byte("[]"), 0, MaxDepth-1); err != nil {
			t.Fatalf("a container at level MaxDepth: %v", err)
		}
		if _, err := Skip([]byte("[]"), 0, MaxDepth); err == nil {
			t.Fatal("a container at level MaxDepth+1 accepted")
		}
		if _, err := Skip([]byte("1"), 0, MaxDepth); err != nil {
			t.Fatalf("a scalar inside MaxDepth containers: %v", err)
		}
	})
}

func TestString(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		esc      bool
		want     string // Unescape of the content
	}{
		{"plain", `"abc"`, false, "abc"},
		{"long_plain", `"` + strings.Repeat("abcdefgh", 5) + `"`, false, strings.Repeat("abcdefgh", 5)},
		{"quote_in_word", `"abcdefg\"h"`, true, `abcdefg"h`},
		{"high_bytes", "\"\xe4\xb8\xad\xe6\x96\x87 \x80\"", false, "中文 \x80"},
		{"escapes", `"\"\\\/\b\f\n\r\t"`, true, "\"\\/\b\f\n\r\t"},
		{"u_escape", `"\u00e9\u4E2D"`, true, "é中"},
		{"surrogate_pair", `"\ud83d\ude00"`, true, "😀"},
		{"lone_high_surrogate", `"\ud83d"`, true, "\ufffd"},
		{"lone_low_surrogate", `"\ude00x"`, true, "\ufffdx"},
		{"high_then_non_surrogate", `"\ud83d\u0041"`, true, "\ufffdA"},
		{"high_then_escaped_backslash", `"\ud83d\\u0041"`, true, "\ufffd\\u0041"},
		{"nul", `"\u0000"`, true, "\x00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := []byte(tc.in)
			s, e, n, esc, err := String(b, 0)
			if err != nil {
				t.Fatal(err)
			}
			if n != len(b) || esc != tc.esc {
				t.Fatalf("next %d esc %v, want %d %v", n, esc, len(b), tc.esc)
			}
			got := string(b[s:e])
			if esc {
				got = string(Unescape(nil, b[s:e]))
			}
			if got != tc.want {
				t.Fatalf("content %q, want %q", got, tc.want)
			}
			var ref string
			if err := json.Unmarshal(b, &ref); err != nil {
				t.Fatal(err)
			}
			if asJSONReads(got) != ref {
				t.Fatalf("encoding/json reads %q", ref)
			}
		})
	}
}

func TestNumber(t *testing.T) {
	for _, tc := range []struct {
		in    string
		next  int
		isInt bool
	}{
		{"0", 1, true}, {"-0", 2, true}, {"123,", 3, true}, {"1.5", 3, false}, {"1e3", 3, false},
		{"-12.5E-3]", 8, false}, {"0123", 1, true}, {"9223372036854775808", 19, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			n, isInt, err := Number([]byte(tc.in), 0)
			if err != nil || n != tc.next || isInt != tc.isInt {
				t.Fatalf("Number = %d, %v, %v; want %d, %v", n, isInt, err, tc.next, tc.isInt)
			}
		})
	}
}

// TestNoAllocs: scanning valid input allocates nothing, deep nesting included.
func TestNoAllocs(t *testing.T) {
	for name, in := range map[string]string{
		"event": `{"id":"b6f1c0de","ts":"2026-11-26T10:15:30.123+08:00","risk":{"device_tags":["202","5012"],"x":[1,2.5,true,null]}}`,
		"deep":  strings.Repeat("[", 5000) + strings.Repeat("]", 5000),
	} {
		b := []byte(in)
		if n := testing.AllocsPerRun(50, func() {
			if _, err := Skip(b, 0, 0); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: %v allocations", name, n)
		}
	}
	dst := make([]byte, 0, 64)
	s := []byte(`\u00e9\ud83d\ude00\n`)
	if n := testing.AllocsPerRun(50, func() { dst = Unescape(dst[:0], s) }); n != 0 {
		t.Errorf("Unescape: %v allocations", n)
	}
}

// asJSONReads maps content as this package returns it to the string
// encoding/json reads for it: each byte that is not part of valid UTF-8
// becomes U+FFFD.
func asJSONReads(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		b.WriteRune(r)
		s = s[size:]
	}
	return b.String()
}
