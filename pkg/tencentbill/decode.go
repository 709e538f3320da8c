package tencentbill

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
)

// MaxBodyBytes bounds one response body.
const MaxBodyBytes = 64 << 20

// DecodeError is a problem at one field of one response body.
type DecodeError struct {
	Name  string // the file or request the body came from
	Field string // the field's path, such as Response.WeChatBillDetails[0].BizToken
	Msg   string
}

func (e *DecodeError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s: %s", e.Name, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.Name, e.Field, e.Msg)
}

// Decode parses a GetWeChatBillDetails response body, {"Response": {...}},
// strictly: unknown or duplicate fields, wrong types and missing required
// fields are errors naming the field. Idcard and Name are checked to be
// strings and dropped; no error ever shows their values. name prefixes errors.
func Decode(name string, body []byte) (Page, error) {
	if len(body) > MaxBodyBytes {
		return Page{}, &DecodeError{Name: name, Msg: fmt.Sprintf("larger than %d bytes", MaxBodyBytes)}
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	x := &decoder{d: d, name: name}
	var p Page
	var apiErr *APIError
	seen := false
	err := x.object("", func(key, path string) error {
		if key != "Response" {
			return x.fail(path, "unknown field (the body is {\"Response\": {...}})")
		}
		seen = true
		return x.response(path, &p, &apiErr)
	})
	if err != nil {
		return Page{}, err
	}
	if !seen {
		return Page{}, x.fail("Response", "missing")
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return Page{}, x.fail("", "data after the response body")
	}
	if apiErr != nil {
		return Page{}, x.fail("Response.Error", fmt.Sprintf("an error response, not bill data: %s: %s", apiErr.Code, apiErr.Message))
	}
	return p, nil
}

type decoder struct {
	d    *json.Decoder
	name string
}

func (x *decoder) fail(path, msg string) error {
	return &DecodeError{Name: x.name, Field: path, Msg: msg}
}

func (x *decoder) token(path string) (json.Token, error) {
	t, err := x.d.Token()
	if err == nil {
		return t, nil
	}
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return nil, x.fail(path, fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, se))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return nil, x.fail(path, "unexpected end of JSON")
	}
	return nil, x.fail(path, fmt.Sprintf("invalid JSON: %v", err))
}

// kind names a token's JSON type, never its value.
func kind(t json.Token) string {
	switch v := t.(type) {
	case json.Delim:
		if v == '{' {
			return "an object"
		}
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", t)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// object reads an object, calling field for each key with the key's path;
// field must read the value.
func (x *decoder) object(path string, field func(key, path string) error) error {
	t, err := x.token(path)
	if err != nil {
		return err
	}
	if t != json.Delim('{') {
		where := path
		if where == "" {
			where = "(top level)"
		}
		return x.fail(where, "want an object, got "+kind(t))
	}
	seen := map[string]bool{}
	for x.d.More() {
		kt, err := x.token(path)
		if err != nil {
			return err
		}
		key, _ := kt.(string)
		kp := join(path, key)
		if seen[key] {
			return x.fail(kp, "duplicate field")
		}
		seen[key] = true
		if err := field(key, kp); err != nil {
			return err
		}
	}
	_, err = x.token(path)
	return err
}

// array reads an array (or null, read as empty), calling elem for each element.
func (x *decoder) array(path string, elem func(i int, path string) error) error {
	t, err := x.token(path)
	if err != nil {
		return err
	}
	if t == nil {
		return nil
	}
	if t != json.Delim('[') {
		return x.fail(path, "want an array, got "+kind(t))
	}
	for i := 0; x.d.More(); i++ {
		if err := elem(i, fmt.Sprintf("%s[%d]", path, i)); err != nil {
			return err
		}
	}
	_, err = x.token(path)
	return err
}

// str reads a string; null reads as "".
func (x *decoder) str(path string) (string, error) {
	t, err := x.token(path)
	if err != nil {
		return "", err
	}
	switch v := t.(type) {
	case string:
		return v, nil
	case nil:
		return "", nil
	case json.Delim:
		return "", x.fail(path, "want a string, got "+kind(t))
	}
	return "", x.fail(path, "want a string, got "+kind(t))
}

// personal reads a masked personal field (string or null) and drops it.
func (x *decoder) personal(path string) error {
	t, err := x.token(path)
	if err != nil {
		return err
	}
	switch t.(type) {
	case string, nil:
		return nil
	}
	return x.fail(path, "want a string, got "+kind(t))
}

func (x *decoder) boolean(path string) (bool, error) {
	t, err := x.token(path)
	if err != nil {
		return false, err
	}
	b, ok := t.(bool)
	if !ok {
		return false, x.fail(path, "want true or false, got "+kind(t))
	}
	return b, nil
}

func (x *decoder) uint(path string) (uint64, error) {
	t, err := x.token(path)
	if err != nil {
		return 0, err
	}
	n, ok := t.(json.Number)
	if !ok {
		return 0, x.fail(path, "want a non-negative integer, got "+kind(t))
	}
	v, err := strconv.ParseUint(n.String(), 10, 64)
	if err != nil {
		return 0, x.fail(path, fmt.Sprintf("want a non-negative integer, got %s", n))
	}
	return v, nil
}

// APIError is an error Tencent's API returned.
type APIError struct {
	Code, Message, RequestID string
	HTTPStatus               int // 0 when not known
}

func (e *APIError) Error() string {
	s := "tencent cloud error " + e.Code
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.RequestID != "" {
		s += " (request id " + e.RequestID + ")"
	}
	return s
}

func (x *decoder) response(path string, p *Page, apiErr **APIError) error {
	var has [3]bool // HasNextPage, NextCursor, WeChatBillDetails
	err := x.object(path, func(key, fp string) error {
		var err error
		switch key {
		case "Error":
			e := &APIError{}
			*apiErr = e
			return x.object(fp, func(k, kp string) error {
				switch k {
				case "Code":
					e.Code, err = x.str(kp)
				case "Message":
					e.Message, err = x.str(kp)
				default:
					return x.fail(kp, "unknown field")
				}
				return err
			})
		case "RequestId":
			p.RequestID, err = x.str(fp)
		case "HasNextPage":
			has[0] = true
			p.HasNextPage, err = x.boolean(fp)
		case "NextCursor":
			has[1] = true
			p.NextCursor, err = x.uint(fp)
		case "WeChatBillDetails":
			has[2] = true
			p.Bills = []Bill{}
			err = x.array(fp, func(_ int, ep string) error {
				b, err := x.bill(ep)
				p.Bills = append(p.Bills, b)
				return err
			})
		default:
			return x.fail(fp, "unknown field")
		}
		return err
	})
	if err != nil || *apiErr != nil {
		return err
	}
	for i, f := range []string{"HasNextPage", "NextCursor", "WeChatBillDetails"} {
		if !has[i] {
			return x.fail(join(path, f), "missing")
		}
	}
	return nil
}

func (x *decoder) bill(path string) (Bill, error) {
	var b Bill
	var has [3]bool // BizToken, ChargeCount, ChargeDetails
	err := x.object(path, func(key, fp string) error {
		var err error
		switch key {
		case "BizToken":
			has[0] = true
			if b.BizToken, err = x.str(fp); err == nil && b.BizToken == "" {
				err = x.fail(fp, "empty")
			}
		case "ChargeCount":
			has[1] = true
			b.ChargeCount, err = x.uint(fp)
		case "RuleId":
			b.RuleID, err = x.str(fp)
		case "ChargeDetails":
			has[2] = true
			b.Details = []ChargeDetail{}
			err = x.array(fp, func(_ int, ep string) error {
				d, err := x.detail(ep)
				b.Details = append(b.Details, d)
				return err
			})
		default:
			return x.fail(fp, "unknown field")
		}
		return err
	})
	if err != nil {
		return b, err
	}
	for i, f := range []string{"BizToken", "ChargeCount", "ChargeDetails"} {
		if !has[i] {
			return b, x.fail(join(path, f), "missing")
		}
	}
	return b, nil
}

func (x *decoder) detail(path string) (ChargeDetail, error) {
	var d ChargeDetail
	var has [3]bool // ReqTime, IsNeedCharge, ErrorCode
	err := x.object(path, func(key, fp string) error {
		var err error
		switch key {
		case "ReqTime":
			has[0] = true
			var s string
			if s, err = x.str(fp); err == nil {
				d.ReqTimeMs, err = reqTime(s)
				if err != nil {
					err = x.fail(fp, err.Error())
				}
			}
		case "Seq":
			d.Seq, err = x.str(fp)
		case "Idcard", "Name":
			err = x.personal(fp)
		case "Sim":
			d.Sim, err = x.str(fp)
		case "IsNeedCharge":
			has[1] = true
			d.IsNeedCharge, err = x.boolean(fp)
		case "ChargeType":
			if d.ChargeType, err = x.str(fp); err == nil && d.ChargeType != "" && !slices.Contains(chargeTypes, d.ChargeType) {
				err = x.fail(fp, fmt.Sprintf("%q is not one of the documented charge types %q", d.ChargeType, chargeTypes))
			}
		case "ErrorCode":
			has[2] = true
			if d.ErrorCode, err = x.str(fp); err == nil && !canonicalCode(d.ErrorCode) {
				err = x.fail(fp, fmt.Sprintf("%q is not an integer return code", d.ErrorCode))
			}
		case "ErrorMessage":
			d.ErrorMessage, err = x.str(fp)
		default:
			return x.fail(fp, "unknown field")
		}
		return err
	})
	if err != nil {
		return d, err
	}
	for i, f := range []string{"ReqTime", "IsNeedCharge", "ErrorCode"} {
		if !has[i] {
			return d, x.fail(join(path, f), "missing")
		}
	}
	return d, nil
}

// reqTime parses a ReqTime: 13 decimal digits, Unix milliseconds.
func reqTime(s string) (int64, error) {
	ok := len(s) == 13
	for i := 0; ok && i < len(s); i++ {
		ok = s[i] >= '0' && s[i] <= '9'
	}
	if !ok {
		return 0, fmt.Errorf("%q is not 13 digits of Unix milliseconds", s)
	}
	return strconv.ParseInt(s, 10, 64)
}

// canonicalCode reports whether s is an integer without sign-less leading
// zeros: 0, 2006, -5008.
func canonicalCode(s string) bool {
	v := s
	if len(v) > 0 && v[0] == '-' {
		v = v[1:]
		if v == "0" {
			return false
		}
	}
	if v == "" || len(v) > 19 || (len(v) > 1 && v[0] == '0') {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return true
}
