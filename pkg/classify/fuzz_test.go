package classify

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzClassify runs decode+classify on arbitrary bytes: it must never panic,
// must reject what is not valid JSON, and what it accepts must be consistent
// and serialise to valid JSON.
func FuzzClassify(f *testing.F) {
	seeds := []string{
		string(sampleEvent),
		`{"channel":"nfc_server","code":0,"req_id":"r1","ts":1764123330123}`,
		`{"channel":"app_sdk","code":-5008,"risk":{"device_tags":"202, 5012","risk_tags":"02,19","platform":"iOS"}}`,
		`{"x":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `,"channel":"app_sdk","code":"0"}`,
		`{"channel":"app_sdk","code":"0","risk":` + strings.Repeat(`{"a":`, 70) + "1" + strings.Repeat("}", 70) + `}`,
		"{\"channel\":\"app_sdk\",\"code\":\"\xff\xfe\",\"id\":\"\xc3\x28\"}",
		`{"channel":"app_sdk","code":"0","channel":"eid","code":"2006","code":2016}`,
		`{"channel":"app_sdk","code":1e999,"ts":99999999999999999999999999}`,
		`{"channel":"app_sdk","code":123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890}`,
		`{"channel":"app_sdk","code":"0","pad":"` + strings.Repeat("a", MaxMessageBytes) + `"}`,
		`{"channel":"app_sdk","code":"0","id":"\ud83d\ude00\ud800\u0000"}`,
		`{"channel":"app_sdk","code":"0","risk":{"device_level":-1,"risk_level":"5","device_tags":[1,2,3,null,true,{}]}}`,
		`[]`, `null`, `"x"`, ``, `{`, `{"a"}`, `{"channel":"app_sdk","code":"0"}}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	cat, err := Default()
	if err != nil {
		f.Fatal(err)
	}
	c := New(cat, Options{})
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, msg []byte) {
		var r Result
		err := c.Classify(msg, []byte("app_sdk"), now, &r)
		if err != nil {
			var rej *RejectError
			if !errors.As(err, &rej) || rej.Reason == ReasonNone || rej.Reason >= numReasons {
				t.Fatalf("error is not a RejectError with a reason: %v", err)
			}
			if !utf8.ValidString(rej.Reason.String()) {
				t.Fatal("bad reason")
			}
			return
		}
		if len(msg) > MaxMessageBytes {
			t.Fatal("oversize message accepted")
		}
		if !json.Valid(msg) {
			t.Fatalf("accepted invalid JSON %q", msg)
		}
		if r.Channel == nil || r.Family != r.Channel.Family {
			t.Fatal("channel/family inconsistent")
		}
		if len(r.CodeRaw) == 0 || len(r.CodeRaw) > 64 {
			t.Fatalf("code %q", r.CodeRaw)
		}
		if (r.Outcome == OutcomeSuccess) != bytes.Equal(r.CodeRaw, []byte("0")) {
			t.Fatalf("outcome %s for code %q", r.Outcome, r.CodeRaw)
		}
		if r.Code != nil && r.Code.Family != r.Family.Name {
			t.Fatal("code from another family")
		}
		if r.NDeviceTags > MaxTags || r.NIdentityTags > MaxTags {
			t.Fatal("tag bound broken")
		}
		if r.DeviceLevel > cat.DeviceLevel.Max || r.RiskLevel > cat.RiskLevel.Max {
			t.Fatal("level out of range accepted")
		}
		out := r.AppendJSON(nil, 1)
		if !json.Valid(out) {
			t.Fatalf("output is not valid JSON: %s", out)
		}
	})
}

// TestAdversarialAllocationBounded: hostile inputs cost a bounded number of
// allocations (the rejection error) and no more.
func TestAdversarialAllocationBounded(t *testing.T) {
	cat := mustDefault(t)
	c := New(cat, Options{})
	now := time.Now()
	inputs := map[string][]byte{
		"deep_nesting":   []byte(`{"x":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`),
		"huge_number":    []byte(`{"channel":"app_sdk","code":` + strings.Repeat("9", 60000) + `}`),
		"many_tags":      []byte(`{"channel":"app_sdk","code":"0","risk":{"device_tags":[` + strings.Repeat(`"202",`, 5000) + `"1"]}}`),
		"long_escapes":   []byte(`{"channel":"app_sdk","code":"0","id":"` + strings.Repeat(`\u00e9`, 10000) + `"}`),
		"oversize":       bytes.Repeat([]byte("x"), MaxMessageBytes+1),
		"invalid_utf8":   []byte("{\"channel\":\"\xff\xff\",\"code\":\"0\"}"),
		"unterminated":   []byte(`{"channel":"app_sdk","code":"0","x":"` + strings.Repeat("a", 50000)),
		"many_fields":    []byte(`{` + strings.Repeat(`"a":1,`, 8000) + `"channel":"app_sdk","code":"0"}`),
		"duplicate_keys": []byte(`{` + strings.Repeat(`"channel":"eid",`, 3000) + `"code":"0"}`),
	}
	for name, msg := range inputs {
		t.Run(name, func(t *testing.T) {
			var r Result
			_ = c.Classify(msg, nil, now, &r)
			if n := testing.AllocsPerRun(20, func() { _ = c.Classify(msg, nil, now, &r) }); n > 8 {
				t.Errorf("%v allocations per message", n)
			}
		})
	}
}
