package dedupe

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"
)

// FuzzDelta: whatever bytes DecodeDelta accepts encode again (AppendDelta)
// to bytes that decode to the same delta, and a state it applies to then
// holds exactly Held entries, the delta's last. And the delta a table writes
// since a mark, after a run of puts and expiries that the input drives,
// applied to the table's state at the mark gives the table's state now.
func FuzzDelta(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 0}, []byte{3, 1, 4, 1, 5, 9, 2, 6}, uint8(3))
	f.Add(new(Delta).AppendDelta(nil), []byte{}, uint8(0))
	f.Add([]byte{}, []byte{1, 0, 1, 2, 0, 1, 0xff, 0, 0, 3, 0, 1, 4, 0, 1}, uint8(7)) // puts, a commit, puts
	f.Add((&Delta{Newest: 99, Evicted: 2, Held: 3, Entries: []Entry{{1, 98}, {2, 99}}}).AppendDelta(nil), []byte{0, 0, 0, 255, 7, 7}, uint8(9))
	f.Fuzz(func(t *testing.T, data, ops []byte, capacity uint8) {
		if d, err := DecodeDelta(data); err == nil {
			enc := d.AppendDelta(nil)
			again, err := DecodeDelta(enc)
			if err != nil {
				t.Fatalf("a decoded delta does not decode again: %v", err)
			}
			if !reflect.DeepEqual(d, again) {
				t.Fatalf("round trip changed the delta:\n%+v\n%+v", d, again)
			}
			st := &State{Entries: []Entry{{7, 1}, {8, 2}}}
			if err := st.ApplyDelta(data); err == nil {
				if uint64(len(st.Entries)) != d.Held {
					t.Fatalf("applied, the state holds %d entries, the delta says %d", len(st.Entries), d.Held)
				}
				if k := min(len(d.Entries), len(st.Entries)); !reflect.DeepEqual(st.Entries[len(st.Entries)-k:], d.Entries[len(d.Entries)-k:]) {
					t.Fatalf("applied, the state ends %+v, not with the delta's %+v", st.Entries, d.Entries)
				}
			}
		}
		// A window driven by ops: each 3 bytes are a key and a time step.
		w := NewWindow(50, int(capacity%16)+1)
		var at int64 = 1000
		var mark uint64
		var base []byte
		for i := 0; i+3 <= len(ops); i += 3 {
			if ops[i] == 0xff { // a commit: the mark moves
				mark, base = w.Mark(), w.AppendBinary(nil)
				continue
			}
			at += int64(int8(ops[i+2]))
			w.Seen(uint64(binary.LittleEndian.Uint16(ops[i:])), at)
		}
		if base == nil {
			mark, base = 0, NewWindow(50, 1).AppendBinary(nil)
		}
		st, err := DecodeState(base)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.ApplyDelta(w.AppendDelta(nil, mark)); err != nil {
			t.Fatalf("a window's own delta does not apply: %v", err)
		}
		if got, want := st.AppendBinary(nil), w.AppendBinary(nil); !bytes.Equal(got, want) {
			t.Fatalf("state at the mark plus the delta:\n%x\nthe window's state:\n%x", got, want)
		}
	})
}
