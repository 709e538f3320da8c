package stream

import (
	"testing"
	"time"
)

// TestAckPosition covers both reply-subject forms JetStream uses and what is
// not one.
func TestAckPosition(t *testing.T) {
	for _, tc := range []struct {
		name, reply string
		seq         uint64
		ts          int64
		ok          bool
	}{
		{"v1", "$JS.ACK.FACEID.c.1.12345.678.1764547200123456789.9", 12345, 1764547200123456789, true},
		{"v2_with_token", "$JS.ACK.dom.ACCHASH.FACEID.c.1.12345.678.1764547200123456789.9.xyz", 12345, 1764547200123456789, true},
		{"v2", "$JS.ACK.dom.ACCHASH.FACEID.c.1.42.678.1764547200000000000.0", 42, 1764547200000000000, true},
		{"not_ack", "$JS.NAK.FACEID.c.1.12345.678.1764547200123456789.9", 0, 0, false},
		{"short", "$JS.ACK.FACEID.c.1.12345", 0, 0, false},
		{"ten_tokens", "$JS.ACK.FACEID.c.1.12345.678.1764547200123456789.9.x", 0, 0, false},
		{"bad_seq", "$JS.ACK.FACEID.c.1.12x45.678.1764547200123456789.9", 0, 0, false},
		{"empty", "", 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seq, ts, ok := ackPosition(tc.reply)
			if ok != tc.ok || (ok && (seq != tc.seq || !ts.Equal(time.Unix(0, tc.ts)))) {
				t.Fatalf("got %d %v %v, want %d %v %v", seq, ts.UnixNano(), ok, tc.seq, tc.ts, tc.ok)
			}
		})
	}
	if n := testing.AllocsPerRun(100, func() { ackPosition("$JS.ACK.FACEID.c.1.12345.678.1764547200123456789.9") }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}
