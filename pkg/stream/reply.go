package stream

import "time"

// ackPosition returns the stream sequence and the stored timestamp of a
// JetStream message from its reply subject, without allocating:
// $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>, or
// the form with domain and account hash ahead of the stream (11 or 12
// tokens). ok is false for any other subject.
func ackPosition(reply string) (seq uint64, ts time.Time, ok bool) {
	var starts [13]int
	n := 0
	starts[0] = 0
	for i := 0; i < len(reply); i++ {
		if reply[i] == '.' {
			n++
			if n >= len(starts) {
				return 0, time.Time{}, false
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
		return 0, time.Time{}, false
	}
	si, ti := 5, 7
	switch n {
	case 9:
	case 11, 12:
		si, ti = 7, 9
	default:
		return 0, time.Time{}, false
	}
	seq, ok1 := parseUint(token(si))
	t, ok2 := parseUint(token(ti))
	if !ok1 || !ok2 {
		return 0, time.Time{}, false
	}
	return seq, time.Unix(0, int64(t)), true
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
