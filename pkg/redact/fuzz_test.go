package redact_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/redact"
)

// fuzzFields is the embedded catalog's list and the test's own names.
func fuzzFields(t testing.TB) []string {
	cat, err := classify.Default()
	if err != nil {
		t.Fatal(err)
	}
	return append(cat.PersonalFieldNames(), testFields...)
}

// FuzzRedact: for any input, Object accepts exactly the JSON objects
// encoding/json accepts; what it returns is valid JSON in which no listed
// field is left at any depth (walked token by token with encoding/json, an
// implementation independent of the redactor's scanner), and which decodes to
// the input with the listed members taken out by an oracle over decoded
// values: every other member survives unchanged.
func FuzzRedact(f *testing.F) {
	seeds := []string{
		`{"channel":"app_sdk","code":0,"IdCard":"11010519491231002X","Name":"张三"}`,
		`{"Response":{"Text":{"ErrCode":0,"IdCard":"1","Name":"x","OcrAddress":"y"},"IdCardData":{"OcrFront":"AAAA"},"BestFrame":{"BestFrame":"BBBB"},"VideoData":{"LivenessVideo":"CCCC"}}}`,
		`{"a":[{"name":1},{"b":[{"ID_CARD":2}]}],"c":{"d":{"e":{"BestFrame":"x"}}}}`,
		`{"Id\u0043ard":"1","n\u0061me":2,"x":"\ud800"}`,
		`{"a":1,"a":{"Name":2},"Name":3}`,
		`["Name",{"Name":1}]`,
		`{"Name":`,
		`{"k": 1.5e3 , "s" : "\u00e9" }`,
		"{\"\xff\":1,\"Name\xff\":2}",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	r := redact.New(fuzzFields(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		out, removed, err := r.Object(data)
		isObject := json.Valid(data) && bytes.TrimLeft(data, " \t\r\n")[0] == '{'
		if err != nil {
			if isObject {
				t.Fatalf("refused a JSON object: %v\n%q", err, data)
			}
			if json.Valid(data) != errors.Is(err, redact.ErrNotObject) {
				t.Fatalf("valid JSON %v, but error %v\n%q", json.Valid(data), err, data)
			}
			return
		}
		if !isObject {
			t.Fatalf("accepted what is not a JSON object:\n%q", data)
		}
		if !json.Valid(out) {
			t.Fatalf("output is not valid JSON:\n in %q\nout %q", data, out)
		}
		if names := listedNames(t, r, out); len(names) > 0 {
			t.Fatalf("listed fields survive: %q\n in %q\nout %q", names, data, out)
		}
		want, n := oracle(r, decode(t, data))
		if got := decode(t, out); !reflect.DeepEqual(got, want) {
			t.Fatalf("kept members changed:\n in %q\nout %q\ngot  %#v\nwant %#v", data, out, got, want)
		}
		// Duplicate keys hide members from the oracle, so only one way holds.
		if n > 0 && removed == 0 {
			t.Fatalf("removed %d, the oracle removed %d:\n in %q\nout %q", removed, n, data, out)
		}
	})
}

func decode(t *testing.T, b []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return v
}

// oracle removes the listed keys from a decoded value, at every depth, and
// counts them (encoding/json kept the last of duplicate keys).
func oracle(r *redact.Redactor, v any) (any, int) {
	n := 0
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if r.Listed(k) {
				delete(x, k)
				n++
				continue
			}
			var m int
			x[k], m = oracle(r, e)
			n += m
		}
	case []any:
		for i, e := range x {
			var m int
			x[i], m = oracle(r, e)
			n += m
		}
	}
	return v, n
}

// listedNames walks b's tokens and returns the listed object keys in it.
func listedNames(t *testing.T, r *redact.Redactor, b []byte) []string {
	d := json.NewDecoder(bytes.NewReader(b))
	var found []string
	// In an object, a string token in key position is a key.
	type frame struct {
		object bool
		key    bool
	}
	var stack []frame
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return found
		}
		if err != nil {
			t.Fatalf("tokens of %q: %v", b, err)
		}
		top := len(stack) - 1
		switch v := tok.(type) {
		case json.Delim:
			if v == '{' || v == '[' {
				if top >= 0 && stack[top].object {
					stack[top].key = true
				}
				stack = append(stack, frame{object: v == '{', key: true})
				continue
			}
			stack = stack[:top]
			continue
		case string:
			if top >= 0 && stack[top].object && stack[top].key {
				if r.Listed(v) || r.Listed(strings.ToValidUTF8(v, "\uFFFD")) {
					found = append(found, v)
				}
				stack[top].key = false
				continue
			}
		}
		if top >= 0 && stack[top].object {
			stack[top].key = true
		}
	}
}
