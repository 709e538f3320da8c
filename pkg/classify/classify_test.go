package classify

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

var receivedAt = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func classifyOne(t *testing.T, c *Classifier, msg string) *Result {
	t.Helper()
	var r Result
	if err := c.Classify([]byte(msg), nil, receivedAt, &r); err != nil {
		t.Fatalf("classify %s: %v", msg, err)
	}
	return &r
}

func TestDatedBillingBoundary(t *testing.T) {
	cat := mustDefault(t)
	c := New(cat, Options{})
	changed := []string{"2007", "2009", "2010", "2011", "2012", "2013", "2014", "2015"}
	cases := []struct {
		name string
		ts   string
		want Billable
	}{
		{"utc_last_nanosecond_before", `"2021-07-18T15:59:59.999999999Z"`, BillableTrue},
		{"utc_first_instant_after", `"2021-07-18T16:00:00Z"`, BillableFalse},
		{"beijing_last_second_before", `"2021-07-18T23:59:59+08:00"`, BillableTrue},
		{"beijing_midnight", `"2021-07-19T00:00:00+08:00"`, BillableFalse},
		{"beijing_midnight_lowercase", `"2021-07-19t00:00:00.000+08:00"`, BillableFalse},
		{"unix_ms_before", "1626623999999", BillableTrue},
		{"unix_ms_at", "1626624000000", BillableFalse},
		{"other_offset_before", `"2021-07-18T10:59:59-05:00"`, BillableTrue},
		{"other_offset_at", `"2021-07-18T11:00:00-05:00"`, BillableFalse},
		{"long_before", `"2019-01-01T00:00:00+08:00"`, BillableTrue},
		{"today", `"2026-11-26T10:15:30.123+08:00"`, BillableFalse},
	}
	for _, code := range changed {
		for _, channel := range []string{"wechat_h5", "wechat_miniprogram", "eid"} {
			for _, tc := range cases {
				t.Run(fmt.Sprintf("%s/%s/%s", code, channel, tc.name), func(t *testing.T) {
					r := classifyOne(t, c, fmt.Sprintf(`{"channel":%q,"code":%q,"ts":%s}`, channel, code, tc.ts))
					if r.Billable != tc.want {
						t.Fatalf("billable = %s, want %s", r.Billable, tc.want)
					}
					if r.BillingRule != "billing_change" {
						t.Errorf("billing rule = %q", r.BillingRule)
					}
				})
			}
		}
	}
	// Codes outside the change keep their billing on both sides of the date.
	for _, tc := range []struct {
		code string
		want Billable
	}{{"2006", BillableTrue}, {"2016", BillableTrue}, {"2008", BillableFalse}, {"0", BillableTrue}, {"1001", BillableFalse}} {
		for _, ts := range []string{`"2021-07-18T15:59:59Z"`, `"2021-07-18T16:00:00Z"`} {
			t.Run("unchanged/"+tc.code+"/"+ts, func(t *testing.T) {
				r := classifyOne(t, c, fmt.Sprintf(`{"channel":"wechat_h5","code":%q,"ts":%s}`, tc.code, ts))
				if r.Billable != tc.want {
					t.Fatalf("billable = %s, want %s", r.Billable, tc.want)
				}
			})
		}
	}
	// The dated change is the WeChat family's: the same numbers elsewhere are unknown codes.
	r := classifyOne(t, c, `{"channel":"app_sdk","code":"2007","ts":"2020-01-01T00:00:00Z"}`)
	if r.Known() || r.Billable != BillableUnknown {
		t.Errorf("2007 on app_sdk: known=%v billable=%s, want unknown", r.Known(), r.Billable)
	}
}

func TestNamespaces(t *testing.T) {
	cat := mustDefault(t)
	c := New(cat, Options{})
	cases := []struct {
		name, msg    string
		known        bool
		category     string
		deviceTag    string
		deviceTagArg string
	}{
		{"1001_is_a_wechat_liveness_code", `{"channel":"wechat_h5","code":"1001"}`, true, "liveness_common", "", ""},
		{"1001_is_a_device_tag", `{"channel":"app_sdk","code":"0","risk":{"device_tags":["1001"],"platform":"android"}}`, true, "sdk", "parameter_tampering", "1001"},
		{"1001_unknown_on_sdk", `{"channel":"app_sdk","code":"1001"}`, false, "", "", ""},
		{"3_is_a_system_code", `{"channel":"eid","code":3}`, true, "system", "", ""},
		{"3_is_the_emulator_tag", `{"channel":"wechat_h5","code":"0","risk":{"device_tags":"3"}}`, true, "system", "emulator", "3"},
		{"66660004_unknown_on_wechat", `{"channel":"wechat_h5","code":"66660004"}`, false, "", "", ""},
		{"66660004_known_on_pc_h5", `{"channel":"pc_h5","code":"66660004"}`, true, "sdk", "", ""},
		{"66666006_only_willingness", `{"channel":"app_sdk","code":"66666006"}`, false, "", "", ""},
		{"66664006_server_not_terminal", `{"channel":"nfc_terminal","code":"66664006"}`, false, "", "", ""},
		{"600100_terminal", `{"channel":"nfc_terminal","code":"600100"}`, true, "nfc_terminal", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := classifyOne(t, c, tc.msg)
			if r.Known() != tc.known {
				t.Fatalf("known = %v, want %v", r.Known(), tc.known)
			}
			if tc.known && r.Code.Category != tc.category {
				t.Errorf("category = %s, want %s", r.Code.Category, tc.category)
			}
			if !tc.known && r.Billable != BillableUnknown {
				t.Errorf("unknown code billable = %s", r.Billable)
			}
			if tc.deviceTag != "" {
				if r.NDeviceTags != 1 || r.DeviceTags[0].Name != tc.deviceTag || r.DeviceTags[0].Tag != tc.deviceTagArg {
					t.Errorf("device tags = %d %+v", r.NDeviceTags, r.DeviceTags[0])
				}
			}
		})
	}
}

func TestOutcomeAndCodeForms(t *testing.T) {
	cat := mustDefault(t)
	c := New(cat, Options{})
	cases := []struct {
		name, msg, code string
		known           bool
		outcome         Outcome
	}{
		{"string_zero", `{"channel":"app_sdk","code":"0"}`, "0", true, OutcomeSuccess},
		{"int_zero", `{"channel":"app_sdk","code":0}`, "0", true, OutcomeSuccess},
		{"negative_int", `{"channel":"app_sdk","code":-5008}`, "-5008", true, OutcomeFailure},
		{"negative_string", `{"channel":"app_sdk","code":"-5008"}`, "-5008", true, OutcomeFailure},
		{"leading_zeros", `{"channel":"app_sdk","code":"000"}`, "0", true, OutcomeSuccess},
		{"minus_zero", `{"channel":"app_sdk","code":"-0"}`, "0", true, OutcomeSuccess},
		{"spaces", `{"channel":"wechat_h5","code":" 2006 "}`, "2006", true, OutcomeFailure},
		{"huge_int", `{"channel":"app_sdk","code":123456789012345678901234567890}`, "123456789012345678901234567890", false, OutcomeFailure},
		{"text_code", `{"channel":"app_sdk","code":"E_TIMEOUT"}`, "E_TIMEOUT", false, OutcomeFailure},
		{"escaped_code", `{"channel":"app_sdk","code":"\u0030"}`, "0", true, OutcomeSuccess},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := classifyOne(t, c, tc.msg)
			if string(r.CodeRaw) != tc.code || r.Known() != tc.known || r.Outcome != tc.outcome {
				t.Fatalf("code=%q known=%v outcome=%s, want %q %v %s", r.CodeRaw, r.Known(), r.Outcome, tc.code, tc.known, tc.outcome)
			}
		})
	}
}

func TestRejections(t *testing.T) {
	cat := mustDefault(t)
	c := New(cat, Options{})
	big := `{"channel":"app_sdk","code":"0","pad":"` + string(make([]byte, MaxMessageBytes)) + `"}`
	cases := []struct {
		name, msg string
		reason    Reason
	}{
		{"array", `[1,2]`, ReasonNotObject},
		{"string", `"hello"`, ReasonNotObject},
		{"number", `42`, ReasonNotObject},
		{"null", `null`, ReasonNotObject},
		{"garbage", `{"channel":`, ReasonInvalidJSON},
		{"empty", ``, ReasonInvalidJSON},
		{"trailing", `{"channel":"app_sdk","code":"0"} x`, ReasonInvalidJSON},
		{"bad_escape", `{"channel":"app\qsdk","code":"0"}`, ReasonInvalidJSON},
		{"control_char", "{\"channel\":\"app\x01\",\"code\":\"0\"}", ReasonInvalidJSON},
		{"too_deep", `{"x":` + repeat("[", 10000) + repeat("]", 10000) + `,"channel":"app_sdk","code":"0"}`, ReasonInvalidJSON},
		{"missing_channel", `{"code":"0"}`, ReasonMissingChannel},
		{"empty_channel", `{"channel":"","code":"0"}`, ReasonMissingChannel},
		{"null_channel", `{"channel":null,"code":"0"}`, ReasonMissingChannel},
		{"unknown_channel", `{"channel":"wechat","code":"0"}`, ReasonUnknownChannel},
		{"numeric_channel", `{"channel":7,"code":"0"}`, ReasonUnknownChannel},
		{"missing_code", `{"channel":"app_sdk"}`, ReasonMissingCode},
		{"empty_code", `{"channel":"app_sdk","code":""}`, ReasonMissingCode},
		{"float_code", `{"channel":"app_sdk","code":2006.5}`, ReasonInvalidCode},
		{"exp_code", `{"channel":"app_sdk","code":2e3}`, ReasonInvalidCode},
		{"bool_code", `{"channel":"app_sdk","code":true}`, ReasonInvalidCode},
		{"object_code", `{"channel":"app_sdk","code":{"v":1}}`, ReasonInvalidCode},
		{"ts_no_offset", `{"channel":"app_sdk","code":"0","ts":"2026-11-26T10:15:30"}`, ReasonInvalidTS},
		{"ts_words", `{"channel":"app_sdk","code":"0","ts":"yesterday"}`, ReasonInvalidTS},
		{"ts_bad_day", `{"channel":"app_sdk","code":"0","ts":"2026-02-30T10:15:30Z"}`, ReasonInvalidTS},
		{"ts_float", `{"channel":"app_sdk","code":"0","ts":1.5}`, ReasonInvalidTS},
		{"ts_negative", `{"channel":"app_sdk","code":"0","ts":-1}`, ReasonInvalidTS},
		{"ts_huge", `{"channel":"app_sdk","code":"0","ts":99999999999999999999}`, ReasonInvalidTS},
		{"ts_bool", `{"channel":"app_sdk","code":"0","ts":true}`, ReasonInvalidTS},
		{"oversize", big, ReasonOversize},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r Result
			err := c.Classify([]byte(tc.msg), nil, receivedAt, &r)
			var rej *RejectError
			if !errors.As(err, &rej) {
				t.Fatalf("err = %v, want a RejectError", err)
			}
			if rej.Reason != tc.reason {
				t.Fatalf("reason = %s (%v), want %s", rej.Reason, err, tc.reason)
			}
			if rej.Detail == "" {
				t.Error("rejection has no detail")
			}
		})
	}
}

func repeat(s string, n int) string {
	out := make([]byte, 0, len(s)*n)
	for i := 0; i < n; i++ {
		out = append(out, s...)
	}
	return string(out)
}

func TestInputContract(t *testing.T) {
	cat := mustDefault(t)
	c := New(cat, Options{})
	t.Run("sample_event", func(t *testing.T) {
		r := classifyOne(t, c, `{"id":"b6f1","ts":"2026-11-26T10:15:30.123+08:00","channel":"wechat_h5","code":"2006","req_id":"",
 "risk":{"device_level":3,"risk_level":1,"device_tags":["202","5012"],"risk_tags":["02"],"platform":"android"}}`)
		if r.Channel.Name != "wechat_h5" || r.Family.Name != "wechat" || r.Code.Code != "2006" || r.Billable != BillableTrue ||
			r.Outcome != OutcomeFailure || r.Risk != RiskHigh || r.DeviceLevel != 3 || r.RiskLevel != 1 || r.Platform != PlatformAndroid {
			t.Fatalf("unexpected classification %+v", r)
		}
		if want := time.Date(2026, 11, 26, 2, 15, 30, 123e6, time.UTC); !r.TS.Equal(want) || !r.TSFromEvent {
			t.Errorf("ts = %s, want %s", r.TS, want)
		}
		if r.NDeviceTags != 2 || r.DeviceTags[0].Name != "root_jailbreak" || r.DeviceTags[1].Name != "emulator" {
			t.Errorf("device tags wrong: %d", r.NDeviceTags)
		}
		if r.NIdentityTags != 1 || r.IdentityTags[0].Type != IdentityAttack {
			t.Errorf("identity tags wrong")
		}
		if string(r.Event.ID) != "b6f1" || r.Problems != 0 {
			t.Errorf("id=%q problems=%v", r.Event.ID, r.Problems.Names())
		}
	})
	t.Run("ts_absent_means_receipt", func(t *testing.T) {
		r := classifyOne(t, c, `{"channel":"app_sdk","code":"0"}`)
		if !r.TS.Equal(receivedAt) || r.TSFromEvent {
			t.Errorf("ts = %s from event %v", r.TS, r.TSFromEvent)
		}
	})
	t.Run("ts_null_means_receipt", func(t *testing.T) {
		r := classifyOne(t, c, `{"channel":"app_sdk","code":"0","ts":null}`)
		if !r.TS.Equal(receivedAt) {
			t.Errorf("ts = %s", r.TS)
		}
	})
	t.Run("ts_unix_ms", func(t *testing.T) {
		r := classifyOne(t, c, `{"channel":"app_sdk","code":"0","ts":1764123330123}`)
		if r.TS.UnixMilli() != 1764123330123 {
			t.Errorf("ts = %s", r.TS)
		}
	})
	t.Run("unknown_fields_ignored", func(t *testing.T) {
		r := classifyOne(t, c, `{"name":"张三","id_card":"x","nested":{"a":[1,{"b":null}]},"channel":"app_sdk","code":"0","extra":true}`)
		if r.Code == nil || r.Code.Code != "0" {
			t.Fatal("event not classified")
		}
	})
	t.Run("comma_separated_tags", func(t *testing.T) {
		r := classifyOne(t, c, `{"channel":"app_sdk","code":"0","risk":{"device_tags":"202, 5012,203","risk_tags":"02,19"}}`)
		if r.NDeviceTags != 3 || r.NIdentityTags != 2 || r.IdentityTags[1].Type != IdentityBusiness {
			t.Fatalf("tags: %d %d", r.NDeviceTags, r.NIdentityTags)
		}
	})
	t.Run("integer_tags_and_repeats", func(t *testing.T) {
		r := classifyOne(t, c, `{"channel":"app_sdk","code":"0","risk":{"device_tags":[202,"202",5012]}}`)
		if r.NDeviceTags != 2 {
			t.Fatalf("tags: %d", r.NDeviceTags)
		}
	})
	t.Run("unknown_tags_counted_not_named", func(t *testing.T) {
		r := classifyOne(t, c, `{"channel":"app_sdk","code":"0","risk":{"device_tags":["999","202"],"risk_tags":["2","99"]}}`)
		if r.NDeviceTags != 1 || r.UnknownDeviceTags != 1 || r.UnknownIdentityTags != 2 || r.NIdentityTags != 0 {
			t.Fatalf("tags: %d/%d %d/%d", r.NDeviceTags, r.UnknownDeviceTags, r.NIdentityTags, r.UnknownIdentityTags)
		}
		if r.Problems&ProblemUnknownDeviceTag == 0 || r.Problems&ProblemUnknownIdentityTag == 0 {
			t.Error("unknown tags not reported")
		}
	})
	t.Run("too_many_tags", func(t *testing.T) {
		tags := ""
		for i := 0; i < MaxTags+5; i++ {
			tags += `"202",`
		}
		r := classifyOne(t, c, `{"channel":"app_sdk","code":"0","risk":{"device_tags":[`+tags+`"5012"]}}`)
		if r.Problems&ProblemTooManyTags == 0 || r.NDeviceTags != 1 {
			t.Fatalf("problems=%v tags=%d", r.Problems.Names(), r.NDeviceTags)
		}
	})
	t.Run("duplicate_keys_last_wins", func(t *testing.T) {
		r := classifyOne(t, c, `{"channel":"wechat_h5","code":"0","channel":"app_sdk","code":"66660004"}`)
		if r.Channel.Name != "app_sdk" || r.Code.Code != "66660004" {
			t.Fatalf("got %s %s", r.Channel.Name, r.CodeRaw)
		}
	})
	t.Run("fallback_channel_from_subject", func(t *testing.T) {
		var r Result
		if err := c.Classify([]byte(`{"code":"0"}`), []byte("app_sdk"), receivedAt, &r); err != nil {
			t.Fatal(err)
		}
		if r.Channel.Name != "app_sdk" {
			t.Fatalf("channel %s", r.Channel.Name)
		}
		if err := c.Classify([]byte(`{"channel":"eid","code":"0"}`), []byte("app_sdk"), receivedAt, &r); err != nil || r.Channel.Name != "eid" {
			t.Fatalf("event channel must win over the subject: %v %s", err, r.Channel.Name)
		}
	})
	t.Run("platform_mismatch_reported", func(t *testing.T) {
		r := classifyOne(t, c, `{"channel":"app_sdk","code":"0","risk":{"device_tags":["5010"],"platform":"Android"}}`)
		if r.Problems&ProblemTagPlatform == 0 || r.Platform != PlatformAndroid {
			t.Fatalf("problems=%v", r.Problems.Names())
		}
	})
}

func TestRiskLevels(t *testing.T) {
	cat := mustDefault(t)
	c := New(cat, Options{})
	cases := []struct {
		name, risk   string
		want         Risk
		device, idty int
		problem      Problem
	}{
		{"none", ``, RiskUnknown, -1, -1, 0},
		{"device_0", `"device_level":0`, RiskLow, 0, -1, 0},
		{"device_2", `"device_level":2`, RiskLow, 2, -1, 0},
		{"device_3", `"device_level":3`, RiskHigh, 3, -1, 0},
		{"device_4", `"device_level":4`, RiskHigh, 4, -1, 0},
		{"device_5_out_of_range", `"device_level":5`, RiskUnknown, -1, -1, ProblemDeviceLevelRange},
		{"device_minus_1_not_obtained", `"device_level":-1,"risk_level":2`, RiskLow, -1, 2, ProblemDeviceLevelRange},
		{"risk_4", `"risk_level":4`, RiskLow, -1, 4, 0},
		{"risk_5", `"risk_level":5`, RiskHigh, -1, 5, 0},
		{"risk_6_out_of_range", `"risk_level":6`, RiskUnknown, -1, -1, ProblemRiskLevelRange},
		{"risk_5_device_low", `"device_level":1,"risk_level":5`, RiskHigh, 1, 5, 0},
		{"string_level", `"device_level":"3"`, RiskHigh, 3, -1, 0},
		{"float_level", `"device_level":3.5`, RiskUnknown, -1, -1, ProblemDeviceLevelType},
		{"bool_level", `"risk_level":true`, RiskUnknown, -1, -1, ProblemRiskLevelType},
		{"null_level", `"risk_level":null`, RiskUnknown, -1, -1, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := classifyOne(t, c, `{"channel":"app_sdk","code":"0","risk":{`+tc.risk+`}}`)
			if r.Risk != tc.want || r.DeviceLevel != tc.device || r.RiskLevel != tc.idty || r.Problems != tc.problem {
				t.Fatalf("risk=%s device=%d risk_level=%d problems=%v; want %s %d %d %v", r.Risk, r.DeviceLevel, r.RiskLevel, r.Problems.Names(), tc.want, tc.device, tc.idty, tc.problem.Names())
			}
		})
	}
	t.Run("risk_not_object", func(t *testing.T) {
		r := classifyOne(t, c, `{"channel":"app_sdk","code":"0","risk":"high"}`)
		if r.Problems&ProblemRiskNotObject == 0 || r.Risk != RiskUnknown {
			t.Fatalf("problems=%v", r.Problems.Names())
		}
	})
}

// TestClassifierIsPure: the classifier keeps no state between events: the
// same message always gives the same result (the duplicate and reqId rules
// belong to package books).
func TestClassifierIsPure(t *testing.T) {
	c := New(mustDefault(t), Options{})
	msg := `{"id":"a","channel":"nfc_server","code":"0","req_id":"r1","ts":"2026-11-26T10:00:00Z"}`
	first := classifyOne(t, c, msg)
	for i := 0; i < 3; i++ {
		again := classifyOne(t, c, msg)
		if again.Duplicate || again.Billable != first.Billable || again.BillingRule != first.BillingRule || first.BillingRule != "catalog" {
			t.Fatalf("repeat %d: duplicate=%v billable=%s (%s), first %s (%s)", i, again.Duplicate, again.Billable, again.BillingRule, first.Billable, first.BillingRule)
		}
	}
	if IDKey([]byte("shared-1")) != IDKey([]byte("shared-1")) || IDKey([]byte("a")) == IDKey([]byte("b")) {
		t.Fatal("IDKey is not a stable hash")
	}
}

// TestFutureTimestamp: an event whose ts is later than its message's time by
// more than the tolerance is rejected as future_ts; exactly the tolerance,
// any past ts and an event without ts are accepted; a tolerance of 0 turns
// the rule off; a worse fault of the message wins.
func TestFutureTimestamp(t *testing.T) {
	cat := mustDefault(t)
	const tol = 5 * time.Minute
	at := func(d time.Duration) string { return fmt.Sprintf("%q", receivedAt.Add(d).Format(time.RFC3339Nano)) }
	cases := []struct {
		name      string
		tolerance time.Duration
		ts        string // the ts field's JSON value, "" for none
		code      string
		want      Reason
	}{
		{"at_the_message_time", tol, at(0), `"0"`, ReasonNone},
		{"exactly_the_tolerance", tol, at(tol), `"0"`, ReasonNone},
		{"one_nanosecond_past", tol, at(tol + time.Nanosecond), `"0"`, ReasonFutureTS},
		{"unix_ms_one_ms_past", tol, fmt.Sprint(receivedAt.Add(tol + time.Millisecond).UnixMilli()), `"0"`, ReasonFutureTS},
		{"unix_ms_exactly", tol, fmt.Sprint(receivedAt.Add(tol).UnixMilli()), `"0"`, ReasonNone},
		{"year_2199", tol, `"2199-01-01T00:00:00Z"`, `"0"`, ReasonFutureTS},
		{"far_past", tol, `"1970-01-01T00:00:00Z"`, `"0"`, ReasonNone},
		{"no_ts", tol, "", `"0"`, ReasonNone},
		{"rule_off", 0, `"2199-01-01T00:00:00Z"`, `"0"`, ReasonNone},
		{"missing_code_wins", tol, `"2199-01-01T00:00:00Z"`, "null", ReasonMissingCode},
		{"invalid_ts_is_not_future", tol, `"2199-13-01T00:00:00Z"`, `"0"`, ReasonInvalidTS},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := New(cat, Options{FutureTolerance: tc.tolerance})
			msg := `{"id":"a","channel":"wechat_h5","code":` + tc.code
			if tc.ts != "" {
				msg += `,"ts":` + tc.ts
			}
			msg += "}"
			var r Result
			err := c.Classify([]byte(msg), nil, receivedAt, &r)
			var rej *RejectError
			got := ReasonNone
			if errors.As(err, &rej) {
				got = rej.Reason
			} else if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("%s: reason %s (%v), want %s", msg, got, err, tc.want)
			}
			if got == ReasonFutureTS && rej.Reason.String() != "future_ts" {
				t.Errorf("label %q", rej.Reason.String())
			}
		})
	}
}
