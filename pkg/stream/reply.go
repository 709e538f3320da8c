package stream

import "time"

// ackInfo is what a JetStream message's reply subject says about it.
type ackInfo struct {
	seq  uint64    // stream sequence
	cseq uint64    // the consumer's delivery sequence (1 for its first message)
	ts   time.Time // stored timestamp
	// consumer names the server-side consumer that delivered the message;
	// an ordered consumer re-creates itself under a new name.
	consumer string
}

// parseAck reads the reply subject of a JetStream message without
// allocating: $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>,
// or the form with domain and account hash ahead of the stream (11 or 12
// tokens). ok is false for any other subject.
func parseAck(reply string) (a ackInfo, ok bool) {
	var starts [13]int
	n := 0
	starts[0] = 0
	for i := 0; i < len(reply); i++ {
		if reply[i] == '.' {
			n++
			if n >= len(starts) {
				return ackInfo{}, false
			}
			starts[n] = i + 1
		}
	}
	n++ // tokens
	token := func(i int) string {
		end := len(reply)
		if i+1 < n {
			end = starts[i+1] - 1
		}
		return reply[starts[i]:end]
	}
	if n < 9 || token(0) != "$JS" || token(1) != "ACK" {
		return ackInfo{}, false
	}
	si, ti := 5, 7
	switch n {
	case 9:
	case 11, 12:
		si, ti = 7, 9
	default:
		return ackInfo{}, false
	}
	seq, ok1 := parseUint(token(si))
	cseq, ok2 := parseUint(token(si + 1))
	t, ok3 := parseUint(token(ti))
	if !ok1 || !ok2 || !ok3 {
		return ackInfo{}, false
	}
	return ackInfo{seq: seq, cseq: cseq, ts: time.Unix(0, int64(t)), consumer: token(si - 2)}, true
}

func parseUint(s string) (uint64, bool) {
	if s == "" || len(s) > 19 {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}

// parseAckTail reads the tail of a reply subject after
// $JS.ACK.<stream>.<consumer>.: <delivered>.<sseq>.<cseq>.<ts>.<pending>, in
// one pass. It is the reader's fast path for its own consumer's messages
// (parseAck reads the same fields from the whole subject).
func parseAckTail(tail string) (seq, cseq, ts uint64, ok bool) {
	var v [5]uint64
	k, digits := 0, 0
	for i := 0; i < len(tail); i++ {
		c := tail[i]
		if c == '.' {
			if digits == 0 || k == 4 {
				return 0, 0, 0, false
			}
			k, digits = k+1, 0
			continue
		}
		if c < '0' || c > '9' || digits == 19 {
			return 0, 0, 0, false
		}
		v[k] = v[k]*10 + uint64(c-'0')
		digits++
	}
	if k != 4 || digits == 0 {
		return 0, 0, 0, false
	}
	return v[1], v[2], v[3], true
}
