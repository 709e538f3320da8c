package classify

import (
	"fmt"

	"github.com/faceid-observability/faceid-exporter/internal/jsonscan"
)

// Reason is why a message was rejected. It is a closed set, safe as a label value.
type Reason uint8

// Rejection reasons.
const (
	ReasonNone Reason = iota
	ReasonOversize
	ReasonNotObject
	ReasonInvalidJSON
	ReasonMissingChannel
	ReasonUnknownChannel
	ReasonMissingCode
	ReasonInvalidCode
	ReasonInvalidTS
	// ReasonFutureTS: the event's ts is later than its message's time (the
	// JetStream timestamp, or the time of receipt on core NATS) by more than
	// the classifier's FutureTolerance.
	ReasonFutureTS
	numReasons
)

var reasonNames = [numReasons]string{"none", "oversize", "not_object", "invalid_json", "missing_channel", "unknown_channel", "missing_code", "invalid_code", "invalid_ts", "future_ts"}

// String returns the reason's label value.
func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// Reasons lists every rejection reason (without ReasonNone).
func Reasons() []Reason {
	out := make([]Reason, 0, numReasons-1)
	for r := ReasonOversize; r < numReasons; r++ {
		out = append(out, r)
	}
	return out
}

// RejectError says why a message was rejected. Detail describes what was
// wrong without quoting the message: it reaches dead letters, logs and the
// API, and a message may hold personal data anywhere (a name in the channel,
// an ID number as the ts), so no value of the message is ever copied into it.
type RejectError struct {
	Reason Reason
	Detail string
}

func (e *RejectError) Error() string { return e.Reason.String() + ": " + e.Detail }

func reject(r Reason, format string, args ...any) error {
	return &RejectError{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// asReject turns a scanner's syntax error into the rejection it earns.
func asReject(err error) error {
	if se, ok := err.(*jsonscan.SyntaxError); ok {
		return &RejectError{Reason: ReasonInvalidJSON, Detail: se.Error()}
	}
	return err
}

// truncate cuts a value for a test's failure message (never a Detail).
func truncate(v []byte) string {
	const max = 64
	if len(v) > max {
		return string(v[:max]) + "…"
	}
	return string(v)
}
