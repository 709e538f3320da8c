// Package jsonscan scans JSON text in place, without allocating: whitespace,
// strings, numbers and whole values, each validated as RFC 8259 and
// encoding/json do. It is the lexer of the event decoder in pkg/classify,
// which walks the fields it reads and skips the rest with it.
//
// Every function takes the input and the index where a token starts and
// returns the index after it. Errors are *SyntaxError.
package jsonscan

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth is the deepest nesting of arrays and objects accepted, counting
// the outermost value: encoding/json's limit.
const MaxDepth = 10000

// SyntaxError is invalid JSON at a byte offset of the input.
type SyntaxError struct {
	Msg    string // what was expected or found, e.g. "invalid escape"
	Offset int    // byte offset; the input's length when it ended too early
	AtEnd  bool   // the input ended first
}

func (e *SyntaxError) Error() string {
	if e.AtEnd {
		return e.Msg + " at end of input"
	}
	return fmt.Sprintf("%s at byte %d", e.Msg, e.Offset)
}

// Errorf returns the *SyntaxError for a problem at b[i] (i ≥ len(b): at the end).
func Errorf(b []byte, i int, msg string) error {
	if i >= len(b) {
		return &SyntaxError{Msg: msg, Offset: len(b), AtEnd: true}
	}
	return &SyntaxError{Msg: msg, Offset: i}
}

// SkipWS returns the index of the first byte at or after i that is not JSON
// whitespace (space, tab, line feed, carriage return).
func SkipWS(b []byte, i int) int {
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

// KindName names the kind of the value that starts with byte c: "object",
// "array", "string", "boolean", "null" or "number".
func KindName(c byte) string {
	switch c {
	case '{':
		return "object"
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

// String scans the string that starts at b[i] == '"'. It returns the span of
// its content (between the quotes, escapes undecoded), the index after the
// closing quote and whether the content holds escapes (Unescape decodes it).
// Bytes that are not valid UTF-8 are accepted, as encoding/json accepts them.
func String(b []byte, i int) (start, end, next int, esc bool, err error) {
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
			return stringSlow(b, start, j)
		}
		j += 8
	}
	for j < len(b) && !strSpecial[b[j]] {
		j++
	}
	if j < len(b) && b[j] == '"' {
		return start, j, j + 1, false, nil
	}
	return stringSlow(b, start, j)
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// stringSlow finishes a string that holds escapes (or is malformed) from j.
func stringSlow(b []byte, start, j int) (_, end, next int, esc bool, err error) {
	for {
		for j < len(b) && !strSpecial[b[j]] {
			j++
		}
		if j >= len(b) {
			return 0, 0, 0, false, Errorf(b, len(b), "unterminated string")
		}
		switch c := b[j]; {
		case c == '"':
			return start, j, j + 1, esc, nil
		case c == '\\':
			esc = true
			j++
			if j >= len(b) {
				return 0, 0, 0, false, Errorf(b, j, "unterminated string")
			}
			switch b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(b) || !isHex(b[j+1]) || !isHex(b[j+2]) || !isHex(b[j+3]) || !isHex(b[j+4]) {
					return 0, 0, 0, false, Errorf(b, j, "invalid \\u escape")
				}
				j += 4
			default:
				return 0, 0, 0, false, Errorf(b, j, "invalid escape")
			}
			j++
		default:
			return 0, 0, 0, false, Errorf(b, j, "control character in string")
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

// Unescape appends to dst the decoded content of a string that String
// accepted (s is its content span). A \u escape of a lone or mismatched
// UTF-16 surrogate becomes U+FFFD, as in encoding/json; other bytes are
// copied as they are.
func Unescape(dst, s []byte) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		switch s[i] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hexVal(s[i+1:])
			i += 4
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
					r2 = hexVal(s[i+3:])
				}
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
		default: // '"', '\\', '/'
			dst = append(dst, s[i])
		}
	}
	return dst
}

// Number scans the number that starts at b[i] ('-' or a digit) and reports
// whether it is an integer: no fraction and no exponent.
func Number(b []byte, i int) (next int, isInt bool, err error) {
	j := i
	if b[j] == '-' {
		j++
	}
	if j >= len(b) {
		return 0, false, Errorf(b, j, "invalid number")
	}
	switch {
	case b[j] == '0':
		j++
	case b[j] >= '1' && b[j] <= '9':
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
	default:
		return 0, false, Errorf(b, j, "invalid number")
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
			return 0, false, Errorf(b, j, "invalid number")
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
			return 0, false, Errorf(b, j, "invalid number")
		}
	}
	return j, isInt, nil
}

// Skip validates the value that starts at b[i] and returns the index after
// it; depth is the number of arrays and objects open around it. Nesting past
// MaxDepth is an error.
func Skip(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return 0, Errorf(b, i, "expected a value")
	}
	switch c := b[i]; {
	case c == '"':
		_, _, n, _, err := String(b, i)
		return n, err
	case c == '{' || c == '[':
		if depth >= recursionDepth {
			return skipDeep(b, i, depth)
		}
		return skipContainer(b, i, depth)
	case c == '-' || (c >= '0' && c <= '9'):
		n, _, err := Number(b, i)
		return n, err
	case c == 't':
		return literal(b, i, "true")
	case c == 'f':
		return literal(b, i, "false")
	case c == 'n':
		return literal(b, i, "null")
	}
	return 0, Errorf(b, i, "unexpected character")
}

// recursionDepth is the nesting up to which Skip recurses; deeper values are
// skipped by skipDeep without growing the stack.
const recursionDepth = 32

// skipContainer skips the array or object at b[i], recursing for its members.
func skipContainer(b []byte, i, depth int) (int, error) {
	c := b[i]
	closer := byte('}')
	if c == '[' {
		closer = ']'
	}
	i = SkipWS(b, i+1)
	if i < len(b) && b[i] == closer {
		return i + 1, nil
	}
	for {
		if c == '{' {
			var err error
			if i, err = memberName(b, i); err != nil {
				return 0, err
			}
		}
		n, err := Skip(b, i, depth+1)
		if err != nil {
			return 0, err
		}
		i = SkipWS(b, n)
		if i >= len(b) {
			return 0, Errorf(b, i, "unterminated "+KindName(c))
		}
		if b[i] == ',' {
			i = SkipWS(b, i+1)
			continue
		}
		if b[i] == closer {
			return i + 1, nil
		}
		return 0, Errorf(b, i, "expected ',' or '"+string(closer)+"'")
	}
}

// memberName scans an object member's name and its colon from b[i] and
// returns where the value starts.
func memberName(b []byte, i int) (int, error) {
	if i >= len(b) || b[i] != '"' {
		return 0, Errorf(b, i, "expected a field name")
	}
	_, _, n, _, err := String(b, i)
	if err != nil {
		return 0, err
	}
	i = SkipWS(b, n)
	if i >= len(b) || b[i] != ':' {
		return 0, Errorf(b, i, "expected ':'")
	}
	return SkipWS(b, i+1), nil
}

// skipDeep skips the array or object at b[i] with an explicit stack of the
// open containers' kinds, one bit each (set: object).
func skipDeep(b []byte, i, depth int) (int, error) {
	var objects [MaxDepth/64 + 1]uint64
	open := 0 // containers open since b[i]
	for {
		// A value starts at b[i].
		if i >= len(b) {
			return 0, Errorf(b, i, "expected a value")
		}
		if c := b[i]; c == '{' || c == '[' {
			if depth+open+1 > MaxDepth {
				return 0, Errorf(b, i, fmt.Sprintf("nesting deeper than %d levels", MaxDepth))
			}
			if c == '{' {
				objects[open/64] |= 1 << (open % 64)
			} else {
				objects[open/64] &^= 1 << (open % 64)
			}
			open++
			i = SkipWS(b, i+1)
			if i < len(b) && b[i] == closerOf(c) {
				open--
				i++
			} else {
				if c == '{' {
					var err error
					if i, err = memberName(b, i); err != nil {
						return 0, err
					}
				}
				continue
			}
		} else {
			n, err := Skip(b, i, MaxDepth) // a scalar: depth does not matter
			if err != nil {
				return 0, err
			}
			i = n
		}
		// A value ended at b[i]: close containers until one goes on.
		for {
			if open == 0 {
				return i, nil
			}
			obj := objects[(open-1)/64]&(1<<((open-1)%64)) != 0
			kind, closer := byte('['), byte(']')
			if obj {
				kind, closer = '{', '}'
			}
			i = SkipWS(b, i)
			if i >= len(b) {
				return 0, Errorf(b, i, "unterminated "+KindName(kind))
			}
			if b[i] == closer {
				open--
				i++
				continue
			}
			if b[i] != ',' {
				return 0, Errorf(b, i, "expected ',' or '"+string(closer)+"'")
			}
			i = SkipWS(b, i+1)
			if obj {
				var err error
				if i, err = memberName(b, i); err != nil {
					return 0, err
				}
			}
			break
		}
	}
}

func closerOf(c byte) byte {
	if c == '{' {
		return '}'
	}
	return ']'
}

func literal(b []byte, i int, lit string) (int, error) {
	if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
		return i + len(lit), nil
	}
	return 0, Errorf(b, i, "invalid literal")
}
