// Package privacytest holds the personal data the privacy tests plant in
// rejected messages, the messages themselves (one or more per rejection
// reason) and the check that none of it shows up where it must not.
package privacytest

import (
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
)

// The planted personal data: an ID number in the format of a resident
// identity card, a name, and a photo's worth of Base64.
const (
	IDNumber = "11010519491231002X"
	Name     = "张三丰"
	// IDNumberInt is an ID number written as a JSON integer (no check digit X).
	IDNumberInt = "110105194912310021"
)

// Media is a Base64 "photo" whose first bytes are recognisable.
var Media = base64.StdEncoding.EncodeToString([]byte("JFIF-planted-best-frame-" + strings.Repeat("\xff\xd8", 512)))

// Message is a rejected message carrying the planted data.
type Message struct {
	Name   string // a name for subtests
	Reason string // the rejection reason it earns (classify.Reason's label)
	// Channel is the subject's last token it is published on: the fallback
	// channel when the message has none.
	Channel string
	Data    []byte
	// Object says whether the payload is a JSON object, the only payload
	// the redacted mode keeps.
	Object bool
}

// KnownChannel is a channel of the embedded catalog; UnknownChannel is not.
const (
	KnownChannel   = "app_sdk"
	UnknownChannel = "unlisted"
)

// Messages returns the rejected messages, every rejection reason the
// exporter has (and future_ts, which a newer classifier earns for a time far
// ahead) with the ID number and the name in them: in listed personal fields
// and, where the reason is about a value, as that value.
func Messages() []Message {
	person := `"IdCard":"` + IDNumber + `","Name":"` + Name + `","BestFrame":"` + Media + `"`
	big := `{"channel":"` + KnownChannel + `","code":0,` + person + `,"VideoBase64":"` + strings.Repeat("A", 70<<10) + `"}`
	return []Message{
		{"oversize", "oversize", KnownChannel, []byte(big), true},
		{"array", "not_object", KnownChannel, []byte(`["` + IDNumber + `","` + Name + `"]`), false},
		{"string", "not_object", KnownChannel, []byte(`"` + Name + " " + IDNumber + `"`), false},
		{"not_json", "invalid_json", KnownChannel, []byte(`IdCard=` + IDNumber + ` Name=` + Name), false},
		{"cut_object", "invalid_json", KnownChannel, []byte(`{"channel":"` + KnownChannel + `",` + person + `,"code":`), false},
		{"missing_channel", "missing_channel", "", []byte(`{"code":0,` + person + `}`), true},
		{"unknown_channel_is_a_name", "unknown_channel", UnknownChannel, []byte(`{"channel":"` + Name + `","code":0,` + person + `}`), true},
		{"channel_not_a_string", "unknown_channel", KnownChannel, []byte(`{"channel":{"Name":"` + Name + `","IdCard":"` + IDNumber + `"},"code":0}`), true},
		{"missing_code", "missing_code", KnownChannel, []byte(`{"channel":"` + KnownChannel + `",` + person + `}`), true},
		{"code_is_an_object", "invalid_code", KnownChannel, []byte(`{"channel":"` + KnownChannel + `","code":{` + person + `}}`), true},
		{"ts_is_the_id_number", "invalid_ts", KnownChannel, []byte(`{"channel":"` + KnownChannel + `","code":0,"ts":"` + IDNumber + `",` + person + `}`), true},
		{"ts_is_the_id_number_as_integer", "invalid_ts", KnownChannel, []byte(`{"channel":"` + KnownChannel + `","code":0,"ts":` + IDNumberInt + `,` + person + `}`), true},
		{"ts_is_a_name_in_an_object", "invalid_ts", KnownChannel, []byte(`{"channel":"` + KnownChannel + `","code":0,"ts":{"Name":"` + Name + `"},` + person + `}`), true},
		{"ts_far_ahead", "future_ts", KnownChannel, []byte(`{"channel":"` + KnownChannel + `","code":0,"ts":4102444800000,` + person + `}`), true},
	}
}

// Counted returns messages that are counted, not rejected, yet carry the
// planted data where logs and the API could show it: a code that is a name
// or an ID number is an unknown code (logged, kept in the unknown_code ring
// of /api/v1/events), and personal fields besides a valid event.
func Counted() []Message {
	person := `"IdCard":"` + IDNumber + `","Name":"` + Name + `","BestFrame":"` + Media + `"`
	return []Message{
		{"code_is_a_name", "", KnownChannel, []byte(`{"id":"p1","channel":"` + KnownChannel + `","code":"` + Name + `",` + person + `}`), true},
		{"code_is_the_id_number", "", KnownChannel, []byte(`{"id":"p2","channel":"` + KnownChannel + `","code":"` + IDNumber + `",` + person + `}`), true},
		{"code_is_the_id_number_as_integer", "", KnownChannel, []byte(`{"id":"p3","channel":"` + KnownChannel + `","code":` + IDNumberInt + `,` + person + `}`), true},
		{"billable_failure_with_personal_fields", "", KnownChannel, []byte(`{"id":"p4","channel":"` + KnownChannel + `","code":-1,` + person + `}`), true},
	}
}

// Leaks returns which planted values text holds, as they were planted or
// escaped the ways JSON and Go quoting write them.
func Leaks(text string) []string {
	var found []string
	forms := map[string][]string{
		"the ID number":  {IDNumber, IDNumberInt, "11010519491231"},
		"the name":       {Name, quoteASCII(Name), strconv.QuoteToASCII(Name)[1 : len(strconv.QuoteToASCII(Name))-1]},
		"the media data": {Media[:40]},
	}
	for _, what := range []string{"the ID number", "the name", "the media data"} {
		for _, f := range forms[what] {
			if strings.Contains(text, f) {
				found = append(found, what)
				break
			}
		}
	}
	return found
}

// quoteASCII is s as encoding/json writes it with HTML escaping off and
// every non-ASCII rune escaped (\uXXXX, lower-case hex).
func quoteASCII(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 0x80 {
			b.WriteRune(r)
			continue
		}
		b.WriteString(`\u`)
		h := strconv.FormatInt(int64(r), 16)
		b.WriteString(strings.Repeat("0", 4-len(h)) + h)
	}
	return b.String()
}

// AssertNoLeak fails t when text holds any planted value.
func AssertNoLeak(t testing.TB, what, text string) {
	t.Helper()
	if l := Leaks(text); len(l) > 0 {
		t.Errorf("%s holds %s:\n%.2000s", what, strings.Join(l, " and "), text)
	}
}

// AssertLeak fails t when text does not hold the ID number and the name (the
// full mode keeps them: this is how a test shows it can see a leak).
func AssertLeak(t testing.TB, what, text string) {
	t.Helper()
	l := Leaks(text)
	if len(l) < 2 {
		t.Errorf("%s holds only %v of the planted data, want the ID number and the name:\n%.2000s", what, l, text)
	}
}
