package redact_test

import (
	"errors"
	"testing"

	"github.com/faceid-observability/faceid-exporter/internal/jsonscan"
	"github.com/faceid-observability/faceid-exporter/pkg/redact"
)

var testFields = []string{"IdCard", "Name", "BestFrame", "OcrIdCard", "customer_name"}

func TestObject(t *testing.T) {
	r := redact.New(testFields)
	tests := []struct {
		name, in, want string
		removed        int
	}{
		{"top level", `{"channel":"app_sdk","IdCard":"11010519491231002X","code":0,"Name":"张三"}`, `{"channel":"app_sdk","code":0}`, 2},
		{"nested object", `{"code":0,"Text":{"ErrCode":0,"IdCard":"1","OcrIdCard":"1","Name":"x"}}`, `{"code":0,"Text":{"ErrCode":0}}`, 3},
		{"objects in arrays", `{"list":[{"Name":"a","k":1},[{"name":"b"}],"Name"]}`, `{"list":[{"k":1},[{}],"Name"]}`, 2},
		{"any case, underscores and hyphens", `{"idcard":1,"ID_CARD":2,"id-card":3,"iDcArD":4,"CustomerName":5,"keep":6}`, `{"keep":6}`, 5},
		{"escaped name", `{"Id\u0043ard":"1","\u004eame":"x","ok":true}`, `{"ok":true}`, 2},
		{"listed value of any kind", `{"Name":{"IdCard":"1"},"BestFrame":["x"],"IdCard":null}`, `{}`, 3},
		{"duplicates", `{"a":1,"Name":"x","a":2,"Name":"y"}`, `{"a":1,"a":2}`, 2},
		{"kept bytes unchanged", "{ \"n\" : 1.50e+3 , \"s\":\"\\u00e9\\/\", \"Name\":1 }", `{"n":1.50e+3,"s":"\u00e9\/"}`, 1},
		{"a value equal to a listed name is kept", `{"field":"IdCard"}`, `{"field":"IdCard"}`, 0},
		{"a prefix is not the name", `{"IdCardType":1,"MyName":2}`, `{"IdCardType":1,"MyName":2}`, 0},
		{"empty", ` {} `, `{}`, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, n, err := r.Object([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want || n != tc.removed {
				t.Errorf("Object(%s) = %s, %d removed; want %s, %d", tc.in, got, n, tc.want, tc.removed)
			}
		})
	}
}

func TestObjectRefuses(t *testing.T) {
	r := redact.New(testFields)
	tests := []struct {
		name, in  string
		notObject bool
	}{
		{"array", `["11010519491231002X","张三"]`, true},
		{"string", `"张三"`, true},
		{"number", `110105194912310021`, true},
		{"cut", `{"Name":"张三","IdCard":`, false},
		{"not json", `Name=张三`, false},
		{"trailing data", `{"Name":"张三"} x`, false},
		{"empty", ``, false},
		{"two objects", `{}{}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := r.Object([]byte(tc.in))
			if err == nil {
				t.Fatalf("accepted: %s", out)
			}
			var se *jsonscan.SyntaxError
			if tc.notObject != errors.Is(err, redact.ErrNotObject) || !tc.notObject && !errors.As(err, &se) {
				t.Errorf("error %v (not object: %v)", err, tc.notObject)
			}
		})
	}
}
