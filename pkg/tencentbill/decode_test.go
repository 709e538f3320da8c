package tencentbill

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/faceid-observability/faceid-exporter/internal/fixtures"
)

func TestDecodeValid(t *testing.T) {
	name := filepath.Join("testdata", "decode", "valid.json")
	body, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Decode(name, body)
	if err != nil {
		t.Fatal(err)
	}
	want := Page{HasNextPage: true, NextCursor: 2, RequestID: "9f0c3a5e-0001", Bills: []Bill{
		{BizToken: "BT-A", ChargeCount: 2, RuleID: "1", Details: []ChargeDetail{
			{ReqTimeMs: 1709222400000, Seq: "seq-a1", Sim: "41.00", IsNeedCharge: true, ChargeType: "核身", ErrorCode: "2016", ErrorMessage: "比对相似度未达到通过标准"},
			{ReqTimeMs: 1709222460000, Seq: "seq-a2", Sim: "88.00", IsNeedCharge: true, ChargeType: "核身", ErrorCode: "0", ErrorMessage: "成功"},
		}},
		{BizToken: "BT-B", ChargeCount: 0, Details: []ChargeDetail{{ReqTimeMs: 1709308799999, ErrorCode: "1005"}}},
		{BizToken: "BT-C", ChargeCount: 0, Details: []ChargeDetail{}},
	}}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", p, want)
	}
	if got := p.Bills[1].Details[0].ReqTime().Format("2006-01-02T15:04:05.000Z07:00"); got != "2024-03-01T23:59:59.999+08:00" {
		t.Errorf("ReqTime %s", got)
	}

	// Encoding drops the personal fields, and what it writes decodes to the same page.
	enc, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"Idcard", "Name", "1101", "*三"} {
		if strings.Contains(string(enc), s) {
			t.Errorf("the encoded page holds %q:\n%s", s, enc)
		}
	}
	again, err := Decode("encoded", enc)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again, p) {
		t.Errorf("re-decoded\n%+v\nwant\n%+v", again, p)
	}
}

func TestDecodeInvalid(t *testing.T) {
	const d = `Response.WeChatBillDetails[0].ChargeDetails[0]`
	tests := map[string]string{
		"not_json":                `Response.HasNextPage: invalid JSON at byte 27: invalid character '\n' in literal true (expecting 'e')`,
		"trailing_data":           ": data after the response body",
		"top_array":               "(top level): want an object, got an array",
		"no_response":             "Response: missing",
		"unknown_top_field":       `Extra: unknown field (the body is {"Response": {...}})`,
		"response_null":           "Response: want an object, got null",
		"unknown_response_field":  "Response.Total: unknown field",
		"duplicate_field":         "Response.HasNextPage: duplicate field",
		"error_response":          "Response.Error: an error response, not bill data: InvalidParameterValue: Date out of range",
		"missing_has_next_page":   "Response.HasNextPage: missing",
		"missing_details":         "Response.WeChatBillDetails: missing",
		"has_next_page_string":    "Response.HasNextPage: want true or false, got a string",
		"next_cursor_negative":    "Response.NextCursor: want a non-negative integer, got -1",
		"next_cursor_fraction":    "Response.NextCursor: want a non-negative integer, got 1.5",
		"details_object":          "Response.WeChatBillDetails: want an array, got an object",
		"missing_biz_token":       "Response.WeChatBillDetails[0].BizToken: missing",
		"empty_biz_token":         "Response.WeChatBillDetails[0].BizToken: empty",
		"charge_count_string":     "Response.WeChatBillDetails[0].ChargeCount: want a non-negative integer, got a string",
		"unknown_bill_field":      "Response.WeChatBillDetails[0].AppId: unknown field",
		"missing_req_time":        d + ".ReqTime: missing",
		"req_time_number":         d + ".ReqTime: want a string, got a number",
		"req_time_seconds":        d + `.ReqTime: "1709222400" is not 13 digits of Unix milliseconds`,
		"is_need_charge_null":     d + ".IsNeedCharge: want true or false, got null",
		"missing_is_need_charge":  d + ".IsNeedCharge: missing",
		"error_code_number":       d + ".ErrorCode: want a string, got a number",
		"error_code_leading_zero": d + `.ErrorCode: "02006" is not an integer return code`,
		"charge_type_unknown":     d + `.ChargeType: "活体" is not one of the documented charge types ["比对" "核身" "混合部署"]`,
		"unknown_detail_field":    d + ".Mobile: unknown field",
		"idcard_number":           d + ".Idcard: want a string, got a number",
		"name_object":             d + ".Name: want a string, got an object",
	}
	fixtures.Each(t, filepath.Join("testdata", "decode", "invalid"), ".json", tests, func(t *testing.T, name, want string) {
		body, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Decode(name, body)
		if err == nil {
			t.Fatal("decoded without error")
		}
		if got, wantFull := err.Error(), name+": "+want; got != wantFull && !(strings.HasPrefix(want, ":") && got == name+want) {
			t.Errorf("error\n%s\nwant\n%s", got, wantFull)
		}
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Errorf("error %T is not a *DecodeError", err)
		}
		for _, secret := range []string{"110101199003071234", "张三"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error shows personal data %q", secret)
			}
		}
	})
}
