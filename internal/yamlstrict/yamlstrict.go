// Package yamlstrict walks YAML node trees strictly: unknown and duplicate
// keys are errors, and every error names file:line and the field.
package yamlstrict

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is an error at one field of one line of a YAML file.
type Error struct {
	File  string
	Line  int
	Field string // empty when the error is not about one field
	Msg   string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d: field %q: %s", e.File, e.Line, e.Field, e.Msg)
}

// Parser makes the errors of one file.
type Parser struct {
	File string
}

// Errorf returns an *Error at n's line.
func (p *Parser) Errorf(n *yaml.Node, field, format string, args ...any) error {
	return &Error{File: p.File, Line: n.Line, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Fields returns a mapping's values by key, refusing unknown and duplicate
// keys and reporting missing required ones; ctx names the mapping in errors.
func (p *Parser) Fields(n *yaml.Node, ctx string, known []string, required []string) (map[string]*yaml.Node, error) {
	if n.Kind != yaml.MappingNode {
		return nil, p.Errorf(n, ctx, "must be a mapping, got %s", KindName(n))
	}
	out := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !slices.Contains(known, k.Value) {
			return nil, p.Errorf(k, k.Value, "unknown field in %s (known: %s)", ctx, strings.Join(known, ", "))
		}
		if _, dup := out[k.Value]; dup {
			return nil, p.Errorf(k, k.Value, "duplicate field in %s", ctx)
		}
		out[k.Value] = v
	}
	for _, r := range required {
		if _, ok := out[r]; !ok {
			return nil, p.Errorf(n, r, "required in %s", ctx)
		}
	}
	return out, nil
}

// KindName describes a node for an error message: "a mapping", "a list",
// "null", a quoted scalar value or "an alias".
func KindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return fmt.Sprintf("%q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "nothing"
}
