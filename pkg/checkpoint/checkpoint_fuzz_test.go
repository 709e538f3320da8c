package checkpoint

import (
	"bytes"
	"reflect"
	"testing"
	"time"
)

// FuzzDecode: whatever bytes Decode accepts give a record of a version this
// exporter reads (with deltas exactly when version 2) that encodes and decodes again to the same record and the same bytes; a
// record built from arbitrary field values comes back from Encode and
// Decode equal in every field. Nothing panics.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"v":1,"stream":"FACEID","group":"g","partition":0,"partitions":1,"filter":["faceid.results.>"],"owner":"a","epoch":3,"seq":42,"counters":{"key":"k","chunks":1,"size":2,"xxh64":"0"}}`),
		"FACEID", "owner-1", uint64(3), uint64(42), int64(1764547200123456789), "2026-12-01", "FACEID.g.d.p0.e3.day20261201.s1", 2, true)
	f.Add([]byte(`{"v":2}`), "", "", uint64(0), uint64(0), int64(0), "", "", 0, false)
	f.Add([]byte(`{"v":2,"deltas":{"head":{"key":"k","chunks":1},"first":3,"last":5,"len":2,"bytes":9,"chunks":1}}`), "", "", uint64(0), uint64(0), int64(0), "", "", 0, false)
	f.Add([]byte(`{"v":1,"deltas":{}}`), "", "", uint64(0), uint64(0), int64(0), "", "", 0, false)
	f.Add([]byte(`{"v":2,"days_index":{"key":"k","chunks":1}}`), "", "", uint64(0), uint64(0), int64(0), "", "", 0, false)
	f.Add([]byte(`{"v":2,"days_index":{"key":"k"},"days":{"2026-12-01":{}}}`), "", "", uint64(0), uint64(0), int64(0), "", "", 0, false)
	f.Add([]byte(`{"v":3}`), "", "", uint64(0), uint64(0), int64(0), "", "", 0, false)
	f.Add([]byte(`{"v":1,"committed_at":"2026-12-01T08:00:00+08:00","days":{"2026-12-01":{}},"released":true}`),
		"S\u00e9", "\x00", ^uint64(0), uint64(1), int64(-1), "\xff", "k", -1, false)
	f.Fuzz(func(t *testing.T, data []byte, stream, owner string, epoch, seq uint64, nanos int64, day, key string, chunks int, released bool) {
		// Arbitrary bytes.
		if rec, err := Decode(data); err == nil {
			if rec.Version != Version && rec.Version != VersionDeltas || (rec.Version == VersionDeltas) != (rec.Deltas != nil || rec.DaysIndex != nil) {
				t.Fatalf("decoded a record of version %d with deltas %+v and days index %+v", rec.Version, rec.Deltas, rec.DaysIndex)
			}
			enc, err := Encode(rec)
			if err != nil {
				t.Fatalf("decoded record does not encode: %v", err)
			}
			again, err := Decode(enc)
			if err != nil {
				t.Fatalf("encoded record does not decode: %v\n%s", err, enc)
			}
			if !sameRecord(rec, again) {
				t.Fatalf("round trip changed the record:\n%+v\n%+v", rec, again)
			}
			if enc2, _ := Encode(again); !bytes.Equal(enc, enc2) {
				t.Fatalf("encodings differ:\n%s\n%s", enc, enc2)
			}
		}
		// An arbitrary record. JSON strings carry valid UTF-8 only; what
		// json.Marshal replaces cannot come back.
		at := time.Unix(0, nanos).UTC()
		rec := &Record{Version: Version, Stream: stream, StreamCreated: at, Group: "g", Partition: chunks & 7, Partitions: 8,
			Filter: []string{stream}, Owner: owner, Epoch: epoch, Commit: seq ^ epoch, Released: released, Seq: seq,
			LostUpTo: seq / 2, CommittedAt: at.Add(time.Second),
			Counters: Ref{Key: key, Chunks: chunks, Size: chunks * 3, Hash: day},
			Days:     map[string]Ref{day: {Key: key, Chunks: 1}}}
		if released { // a record with a chain of deltas
			rec.Version, rec.Deltas = VersionDeltas, &Chain{Head: Ref{Key: key, Chunks: 1}, First: seq, Last: seq + epoch, Len: chunks, Bytes: chunks * 9, Chunks: 1}
		}
		enc, err := Encode(rec)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(enc)
		if err != nil {
			t.Fatalf("an encoded record does not decode: %v\n%s", err, enc)
		}
		if valid(stream) && valid(owner) && valid(day) && valid(key) && !sameRecord(rec, got) {
			t.Fatalf("encode and decode changed the record:\n got %+v\nwant %+v\n%s", got, rec, enc)
		}
	})
}

// valid reports whether s survives a JSON string unchanged.
func valid(s string) bool {
	return bytes.Equal([]byte(s), bytes.ToValidUTF8([]byte(s), []byte("\uFFFD")))
}

// sameRecord compares records field by field, times by their instant.
func sameRecord(a, b *Record) bool {
	x, y := *a, *b
	if !x.StreamCreated.Equal(y.StreamCreated) || !x.CommittedAt.Equal(y.CommittedAt) {
		return false
	}
	x.StreamCreated, y.StreamCreated, x.CommittedAt, y.CommittedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return reflect.DeepEqual(x, y)
}
