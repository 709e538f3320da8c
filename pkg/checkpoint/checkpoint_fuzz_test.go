package checkpoint

import (
	"encoding/json"
	"testing"
)

// FuzzDecode: a record that decodes encodes again, and nothing panics.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"v":1,"stream":"FACEID","group":"g","partition":0,"partitions":1,"filter":["faceid.results.>"],"owner":"a","epoch":3,"seq":42,"counters":{"key":"k","chunks":1,"size":2,"xxh64":"0"}}`))
	f.Add([]byte(`{"v":2}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := Decode(data)
		if err != nil {
			return
		}
		if _, err := json.Marshal(rec); err != nil {
			t.Fatalf("decoded record does not encode: %v", err)
		}
	})
}
