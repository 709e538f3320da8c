package books

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"testing"
)

// FuzzMergeCounters: whatever a counters delta holds, MergeCounters never
// panics; a delta it accepts sets counters to values (it does not add), so
// applying it twice gives what applying it once does, and the result holds
// each counter the delta names at the delta's value (or not at all for 0).
func FuzzMergeCounters(f *testing.F) {
	snap := []byte(`{"a{}":3,"b{}":5}`)
	one := binary.AppendUvarint(nil, 2)
	one = binary.AppendUvarint(one, 2) // "b{}"
	one = binary.AppendUvarint(one, 9)
	one = binary.AppendUvarint(one, 0) // a key of its own
	one = binary.AppendUvarint(one, 3)
	one = append(one, "c{}"...)
	one = binary.AppendUvarint(one, 1)
	f.Add(snap, one)
	f.Add([]byte(`{}`), []byte{0})
	f.Add(snap, []byte{1, 3, 0})
	f.Fuzz(func(t *testing.T, snapshot, delta []byte) {
		once, err := MergeCounters(snapshot, delta)
		if err != nil {
			return
		}
		twice, err := MergeCounters(snapshot, delta, delta)
		if err != nil {
			t.Fatalf("a delta applied once but not twice: %v", err)
		}
		if !bytes.Equal(once, twice) {
			t.Fatalf("applying a delta twice changed the counters:\n%s\n%s", once, twice)
		}
		base, got := map[string]uint64{}, map[string]uint64{}
		if len(snapshot) > 0 { // none: no counters
			if err := json.Unmarshal(snapshot, &base); err != nil {
				t.Fatalf("merged over a snapshot that does not parse: %v", err)
			}
		}
		if err := json.Unmarshal(once, &got); err != nil {
			t.Fatalf("merged counters do not parse: %v", err)
		}
		// An independent reading of the delta.
		keys := sortedKeys(base)
		want := map[string]uint64{}
		for k, v := range base {
			want[k] = v
		}
		d := delta
		next := func() uint64 {
			v, n := binary.Uvarint(d)
			d = d[n:]
			return v
		}
		for range next() {
			ref := next()
			key := ""
			if ref == 0 {
				l := next()
				key, d = string(d[:l]), d[l:]
			} else {
				key = keys[ref-1]
			}
			want[key] = next()
		}
		for k, v := range want {
			if v == 0 {
				delete(want, k)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("merged %v, want %v", got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("merged %v, want %v", got, want)
			}
		}
	})
}

func sortedKeys(m map[string]uint64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}
