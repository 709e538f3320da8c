package jsonscan

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzSkip: Skip accepts exactly what encoding/json's json.Valid accepts.
func FuzzSkip(f *testing.F) {
	for _, s := range []string{
		`{"a":[1,2.5e-3,"x",true,false,null,{}]}`, `"\u00e9\ud83d\ude00"`, `-0`, ` [ ] `, `01`, `[1,]`, `{"a" 1}`,
		"\"\xff\"", "\"\x1f\"", `"\x"`, `[[[[]]]]`, `{"a":{"b":{"c":[{"d":[]}]}}}`, `nul`, `1 2`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ok, err := valid(b)
		if want := json.Valid(b); ok != want {
			t.Fatalf("Skip says valid=%v (%v), json.Valid says %v for %q", ok, err, want, b)
		}
		if err != nil {
			if _, isSyntax := err.(*SyntaxError); !isSyntax {
				t.Fatalf("error %T, want *SyntaxError", err)
			}
		}
	})
}

// FuzzString: String and Unescape read the string that starts the input as
// encoding/json's Decoder.Token reads it: the same validity, the same end and
// the same content (where encoding/json turns bytes that are not UTF-8 into
// U+FFFD).
func FuzzString(f *testing.F) {
	for _, s := range []string{
		`"abc"`, `"abcdefgh\"ij"`, `"\ud83d\ude00"`, `"\ud83d\u0041"`, `"\ude00"`, `"\u0000\b\f\n\r\t\/\\"`,
		"\"\xe4\xb8\xad\xff\"", "\"a\x00\"", `"\u12`, `"abc`, `"\q"`, `"abcdefghijklmnop" tail`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 || b[0] != '"' {
			b = append([]byte{'"'}, b...)
		}
		s, e, n, esc, err := String(b, 0)
		dec := json.NewDecoder(bytes.NewReader(b))
		tok, jerr := dec.Token()
		ref, isString := tok.(string)
		if (err == nil) != (jerr == nil && isString) {
			t.Fatalf("String: err %v; encoding/json: %v, %v for %q", err, tok, jerr, b)
		}
		if err != nil {
			return
		}
		if int64(n) != dec.InputOffset() {
			t.Fatalf("String ends at %d, encoding/json at %d for %q", n, dec.InputOffset(), b)
		}
		content := b[s:e]
		if esc {
			content = Unescape(nil, content)
		} else if bytes.IndexByte(content, '\\') >= 0 {
			t.Fatalf("escapes not reported in %q", b)
		}
		if got := asJSONReads(string(content)); got != ref {
			t.Fatalf("content %q, encoding/json reads %q, for %q", got, ref, b)
		}
	})
}
