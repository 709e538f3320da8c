package plugin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// AnyValue in a filter allows every value: it is what a dashboard variable's
// custom "All" value should be set to.
const AnyValue = "*"

// Filter is the set of values a query keeps; an empty filter keeps
// everything, and so does the filter "*" (a variable's custom All value),
// which for event kinds means every kind rather than the default one. In
// query JSON it is a string holding one value or several separated by commas
// (what the frontend writes for a multi-value or All variable), or an array
// of such strings. Values are trimmed, empty ones and repeats dropped, and a
// value "*" anywhere makes the filter "*".
type Filter []string

// ParseFilter reads a filter from its string form.
func ParseFilter(s string) Filter {
	return normalize([]string{s})
}

func normalize(parts []string) Filter {
	var out Filter
	for _, p := range parts {
		for v := range strings.SplitSeq(p, ",") {
			v = strings.TrimSpace(v)
			if v == AnyValue {
				return Filter{AnyValue}
			}
			if v != "" && !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	return out
}

// UnmarshalJSON accepts a string, an array of strings or null.
func (f *Filter) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*f = nil
		return nil
	case len(b) > 0 && b[0] == '[':
		var parts []string
		if err := json.Unmarshal(b, &parts); err != nil {
			return fmt.Errorf("want a string or an array of strings: %w", err)
		}
		*f = normalize(parts)
		return nil
	default:
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("want a string or an array of strings, got %s", b)
		}
		*f = ParseFilter(s)
		return nil
	}
}

// MarshalJSON writes the filter as its string form.
func (f Filter) MarshalJSON() ([]byte, error) { return json.Marshal(f.String()) }

// String returns the values separated by commas.
func (f Filter) String() string { return strings.Join(f, ",") }

// IsAny reports whether the filter is "*".
func (f Filter) IsAny() bool { return len(f) == 1 && f[0] == AnyValue }

// Values returns the values the filter names, none when it keeps everything.
func (f Filter) Values() []string {
	if f.IsAny() {
		return nil
	}
	return f
}

// Allows reports whether the filter keeps v.
func (f Filter) Allows(v string) bool { return len(f.Values()) == 0 || slices.Contains(f, v) }

// check validates every value: a value that still looks like a dashboard
// variable was not replaced, and when allowed is not empty each value must be
// one of it.
func (f Filter) check(field string, allowed ...string) error {
	for _, v := range f.Values() {
		if strings.HasPrefix(v, "$") {
			return badQuery("%s %q is a dashboard variable Grafana did not replace (alert rules and queries outside dashboards have no variables)", field, v)
		}
		if len(allowed) > 0 {
			if err := oneOf(field, v, allowed...); err != nil {
				return err
			}
		}
	}
	return nil
}
