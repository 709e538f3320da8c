// Package redact removes personal fields from a JSON object: every member,
// at any depth, whose name is on a list (the catalog's personal_fields),
// names compared without ASCII case and without '_' and '-'. It keeps every
// other member's bytes as they were. It is pure: no I/O.
package redact

import (
	"errors"

	"github.com/faceid-observability/faceid-exporter/internal/jsonscan"
)

// ErrNotObject is returned for valid JSON that is not an object: a bare
// string or array says nothing about what its values are, so it cannot be
// redacted safely.
var ErrNotObject = errors.New("not a JSON object")

// Key is how field names are compared: ASCII letters lower-cased, '_' and
// '-' left out, so IdCard, idcard, ID_CARD and id-card are one field.
func Key(name string) string { return string(appendKey(nil, []byte(name))) }

func appendKey(dst, name []byte) []byte {
	for _, c := range name {
		switch {
		case c == '_' || c == '-':
			continue
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// Redactor removes the listed fields. It is safe for concurrent use.
type Redactor struct {
	keys map[string]bool
}

// New returns a Redactor of the fields named.
func New(fields []string) *Redactor {
	r := &Redactor{keys: make(map[string]bool, len(fields))}
	for _, f := range fields {
		r.keys[Key(f)] = true
	}
	return r
}

// With returns a Redactor of r's fields and fields.
func (r *Redactor) With(fields ...string) *Redactor {
	w := &Redactor{keys: make(map[string]bool, len(r.keys)+len(fields))}
	for k := range r.keys {
		w.keys[k] = true
	}
	for _, f := range fields {
		w.keys[Key(f)] = true
	}
	return w
}

// Listed reports whether a member named name is removed.
func (r *Redactor) Listed(name string) bool { return r.keys[Key(name)] }

// Object returns data, a JSON object, without the listed members (at any
// depth: in nested objects and in objects inside arrays), and how many it
// removed (a listed member inside a removed one is not counted). The kept
// members are copied byte for byte; the whitespace between members is not
// kept. Invalid JSON is a *jsonscan.SyntaxError, other valid JSON
// ErrNotObject: neither can be redacted.
func (r *Redactor) Object(data []byte) ([]byte, int, error) {
	i := jsonscan.SkipWS(data, 0)
	end, err := jsonscan.Skip(data, i, 0)
	if err != nil {
		return nil, 0, err
	}
	if k := jsonscan.SkipWS(data, end); k != len(data) {
		return nil, 0, jsonscan.Errorf(data, k, "unexpected data after the value")
	}
	if data[i] != '{' {
		return nil, 0, ErrNotObject
	}
	w := walker{r: r, b: data, out: make([]byte, 0, len(data))}
	w.value(i)
	return w.out, w.removed, nil
}

// walker copies valid JSON (checked by Object first) without the listed members.
type walker struct {
	r       *Redactor
	b, out  []byte
	key     []byte // scratch: the decoded member name, then its Key
	removed int
}

// value copies the value at b[i] and returns the index after it.
func (w *walker) value(i int) int {
	b := w.b
	switch b[i] {
	case '{':
		w.out = append(w.out, '{')
		i++
		first := true
		for {
			i = jsonscan.SkipWS(b, i)
			if b[i] == '}' {
				i++
				break
			}
			if b[i] == ',' {
				i = jsonscan.SkipWS(b, i+1)
			}
			start := i
			ks, ke, next, esc, _ := jsonscan.String(b, i)
			colon := jsonscan.SkipWS(b, next)
			v := jsonscan.SkipWS(b, colon+1)
			if w.listed(b[ks:ke], esc) {
				w.removed++
				i, _ = jsonscan.Skip(b, v, 0)
				continue
			}
			if !first {
				w.out = append(w.out, ',')
			}
			first = false
			w.out = append(w.out, b[start:next]...)
			w.out = append(w.out, ':')
			i = w.value(v)
		}
		w.out = append(w.out, '}')
		return i
	case '[':
		w.out = append(w.out, '[')
		i++
		first := true
		for {
			i = jsonscan.SkipWS(b, i)
			if b[i] == ']' {
				i++
				break
			}
			if b[i] == ',' {
				i = jsonscan.SkipWS(b, i+1)
			}
			if !first {
				w.out = append(w.out, ',')
			}
			first = false
			i = w.value(i)
		}
		w.out = append(w.out, ']')
		return i
	default:
		end, _ := jsonscan.Skip(b, i, 0)
		w.out = append(w.out, b[i:end]...)
		return end
	}
}

// listed reports whether the member whose name's content (escapes
// undecoded when esc) is s is removed.
func (w *walker) listed(s []byte, esc bool) bool {
	if esc {
		w.key = jsonscan.Unescape(w.key[:0], s)
		w.key = appendKey(w.key[:0], w.key)
	} else {
		w.key = appendKey(w.key[:0], s)
	}
	return w.r.keys[string(w.key)]
}
