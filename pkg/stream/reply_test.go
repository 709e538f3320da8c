package stream

import (
	"strings"
	"testing"
	"time"
)

// TestParseAck covers both reply-subject forms JetStream uses and what is
// not one.
func TestParseAck(t *testing.T) {
	for _, tc := range []struct {
		name, reply string
		seq, cseq   uint64
		consumer    string
		ts          int64
		ok          bool
	}{
		{"v1", "$JS.ACK.FACEID.c.1.12345.678.1764547200123456789.9", 12345, 678, "c", 1764547200123456789, true},
		{"v2_with_token", "$JS.ACK.dom.ACCHASH.FACEID.oc_7.1.12345.678.1764547200123456789.9.xyz", 12345, 678, "oc_7", 1764547200123456789, true},
		{"v2", "$JS.ACK.dom.ACCHASH.FACEID.c.1.42.1.1764547200000000000.0", 42, 1, "c", 1764547200000000000, true},
		{"not_ack", "$JS.NAK.FACEID.c.1.12345.678.1764547200123456789.9", 0, 0, "", 0, false},
		{"short", "$JS.ACK.FACEID.c.1.12345", 0, 0, "", 0, false},
		{"ten_tokens", "$JS.ACK.FACEID.c.1.12345.678.1764547200123456789.9.x", 0, 0, "", 0, false},
		{"bad_seq", "$JS.ACK.FACEID.c.1.12x45.678.1764547200123456789.9", 0, 0, "", 0, false},
		{"bad_cseq", "$JS.ACK.FACEID.c.1.12345.6x8.1764547200123456789.9", 0, 0, "", 0, false},
		{"empty", "", 0, 0, "", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, ok := parseAck(tc.reply)
			if ok != tc.ok || (ok && (a.seq != tc.seq || a.cseq != tc.cseq || a.consumer != tc.consumer || !a.ts.Equal(time.Unix(0, tc.ts)))) {
				t.Fatalf("got %+v %v, want seq %d cseq %d consumer %q ts %d %v", a, ok, tc.seq, tc.cseq, tc.consumer, tc.ts, tc.ok)
			}
		})
	}
	if n := testing.AllocsPerRun(100, func() { parseAck("$JS.ACK.FACEID.c.1.12345.678.1764547200123456789.9") }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

// FuzzParseAckTail: the reader's fast path reads what parseAck reads from the
// whole subject, and accepts exactly the tails parseAck accepts.
func FuzzParseAckTail(f *testing.F) {
	for _, s := range []string{"1.12345.678.1764547200123456789.9", "1.1.1.1.0", "", "1..2.3.4", "1.2.3.4.5.6", "12x.1.1.1.1", "99999999999999999999.1.1.1.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tail string) {
		seq, cseq, ts, ok := parseAckTail(tail)
		a, wok := parseAck("$JS.ACK.FACEID.c." + tail)
		if tokens := strings.Split(tail, "."); wok {
			// parseAck does not read the delivered and pending counts; the
			// fast path checks they are numbers too.
			_, okD := parseUint(tokens[0])
			_, okP := parseUint(tokens[len(tokens)-1])
			wok = len(tokens) == 5 && okD && okP
		}
		if ok != wok || (ok && (seq != a.seq || cseq != a.cseq || int64(ts) != a.ts.UnixNano())) {
			t.Fatalf("parseAckTail(%q) = %d %d %d %v; parseAck reads %+v %v", tail, seq, cseq, ts, ok, a, wok)
		}
	})
}
