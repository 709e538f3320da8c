package stream

import "regexp"

// Redacted replaces the user information of a URL in what RedactURLs returns.
const Redacted = "REDACTED"

// userinfo matches a URL's scheme and user information, up to the last '@'
// before whitespace, a comma, a quote or an angle bracket: a password holding
// '/' or '@' is still covered.
var userinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://)[^\s,"'<>]*@`)

// RedactURLs returns s with the user information (user and password, or a
// token given as the user) of every URL in it replaced by REDACTED. s may be
// a comma-separated list of NATS URLs or any text that quotes them, such as an
// error message. Every log line and error that may hold a NATS URL goes
// through it.
func RedactURLs(s string) string {
	return userinfo.ReplaceAllString(s, "${1}"+Redacted+"@")
}

// redactErr wraps err so that its message is redacted; errors.Is and
// errors.As still see err.
func redactErr(err error) error {
	if err == nil {
		return nil
	}
	return &redactedError{err}
}

type redactedError struct{ err error }

func (e *redactedError) Error() string { return RedactURLs(e.err.Error()) }
func (e *redactedError) Unwrap() error { return e.err }
