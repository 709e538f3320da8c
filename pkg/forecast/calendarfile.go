package forecast

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/faceid-observability/faceid-exporter/internal/yamlstrict"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
)

// ParseCalendar parses a calendar file (name is for errors):
//
//	public_holidays: true        # China's public calendar underneath (default true)
//	days:
//	  - day: 2026-11-11          # a promotion: twice the usual volume
//	    factor: 2
//	  - day: 2026-03-03          # an outage: left out of the fit
//	    kind: ignore
//	  - day: 2026-12-31          # the company's own day off
//	    kind: holiday
//
// kind is regular (default), holiday, workday or ignore; factor (> 0) is
// not allowed on an ignored day. Unknown fields and a day given twice are
// errors.
func ParseCalendar(name string, data []byte) (*Calendar, error) {
	p := &yamlstrict.Parser{File: name}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return NewCalendar(true, nil)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(doc.Content) == 0 {
		return NewCalendar(true, nil)
	}
	f, err := p.Fields(doc.Content[0], "calendar", []string{"public_holidays", "days"}, nil)
	if err != nil {
		return nil, err
	}
	public := true
	if n, ok := f["public_holidays"]; ok {
		if n.Kind != yaml.ScalarNode || (n.Value != "true" && n.Value != "false") {
			return nil, p.Errorf(n, "public_holidays", "want true or false")
		}
		public = n.Value == "true"
	}
	var overrides []Override
	if n, ok := f["days"]; ok {
		if n.Kind != yaml.SequenceNode {
			return nil, p.Errorf(n, "days", "must be a list, got %s", yamlstrict.KindName(n))
		}
		seen := map[ledger.Day]int{}
		for _, item := range n.Content {
			df, err := p.Fields(item, "days entry", []string{"day", "kind", "factor"}, []string{"day"})
			if err != nil {
				return nil, err
			}
			d, err := ledger.ParseDay(df["day"].Value)
			if err != nil {
				return nil, p.Errorf(df["day"], "day", "%v", err)
			}
			if line, dup := seen[d]; dup {
				return nil, p.Errorf(df["day"], "day", "%s is also on line %d", d, line)
			}
			seen[d] = df["day"].Line
			o := Override{Day: d}
			if k, ok := df["kind"]; ok {
				if o.Kind, err = ParseKind(k.Value); err != nil {
					return nil, p.Errorf(k, "kind", "%v", err)
				}
			}
			if fn, ok := df["factor"]; ok {
				v, err := strconv.ParseFloat(fn.Value, 64)
				if err != nil || !(v > 0) || v > 1000 {
					return nil, p.Errorf(fn, "factor", "%q: want a number above 0 (at most 1000)", fn.Value)
				}
				if o.Kind == Ignore {
					return nil, p.Errorf(fn, "factor", "an ignored day has no factor")
				}
				o.Factor = v
			}
			overrides = append(overrides, o)
		}
	}
	return NewCalendar(public, overrides)
}
