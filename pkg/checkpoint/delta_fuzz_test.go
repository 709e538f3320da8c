package checkpoint

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzDecodeDelta: whatever bytes DecodeDelta accepts encode (EncodeDelta)
// to bytes that decode to the same delta and encode to the same bytes again;
// a delta built from arbitrary parts comes back from EncodeDelta and
// DecodeDelta equal in every part. Nothing panics.
func FuzzDecodeDelta(f *testing.F) {
	seed, err := EncodeDelta(&Delta{Prev: Ref{Key: "FACEID.g.d.p0.e2.x7.s0", Chunks: 1, Size: 20, Hash: "a1"}, Counters: []byte{1, 3, 5}, Days: []byte(`{}`), Rules: []byte{9, 9}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed, "FACEID.g.d.p0.e2.x7.s0", 1, []byte{1, 3, 5}, []byte(`{"2026-12-01":[["wechat_h5","0","true","",3]]}`), []byte{7})
	f.Add([]byte{1, 0, 0, 0}, "", 0, []byte{}, []byte{}, []byte{})
	f.Add([]byte{2, 0, 0, 0}, "k", -1, []byte(nil), []byte(nil), []byte{0})
	f.Fuzz(func(t *testing.T, data []byte, key string, chunks int, counters, days, rules []byte) {
		if d, err := DecodeDelta(data); err == nil {
			enc, err := EncodeDelta(d)
			if err != nil {
				t.Fatalf("a decoded delta does not encode: %v", err)
			}
			again, err := DecodeDelta(enc)
			if err != nil {
				t.Fatalf("an encoded delta does not decode: %v", err)
			}
			if !sameDelta(d, again) {
				t.Fatalf("round trip changed the delta:\n%+v\n%+v", d, again)
			}
			if enc2, _ := EncodeDelta(again); !bytes.Equal(enc, enc2) {
				t.Fatalf("encodings differ:\n%x\n%x", enc, enc2)
			}
		}
		d := &Delta{Counters: counters, Days: days, Rules: rules}
		if key != "" && valid(key) {
			d.Prev = Ref{Key: key, Chunks: chunks, Size: len(counters), Hash: "h"}
		}
		enc, err := EncodeDelta(d)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeDelta(enc)
		if err != nil {
			t.Fatalf("an encoded delta does not decode: %v\n%x", err, enc)
		}
		if !sameDelta(d, got) {
			t.Fatalf("encode and decode changed the delta:\n got %+v\nwant %+v", got, d)
		}
	})
}

// sameDelta compares deltas part by part, an empty part as nil.
func sameDelta(a, b *Delta) bool {
	return reflect.DeepEqual(a.Prev, b.Prev) && bytes.Equal(a.Counters, b.Counters) && bytes.Equal(a.Days, b.Days) && bytes.Equal(a.Rules, b.Rules)
}
