package classify

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/faceid-observability/faceid-exporter/internal/yamlstrict"
)

// catalogDoc is a catalog or override file as written, with line numbers for errors.
type catalogDoc struct {
	name           string
	Version        int
	Source         string
	Families       []familyDoc
	BillingChanges []billingChangeDoc
	ReqID          reqIDDoc
	DeviceLevel    levelDoc
	RiskLevel      levelDoc
	DeviceTags     []deviceTagDoc
	IdentityTags   []identityTagDoc
	Codes          []codeDoc
	PersonalFields []PersonalField
}

type familyDoc struct {
	Name, Title string
	Channels    []string
}

type billingChangeDoc struct {
	line           int
	Family         string
	Codes          []string
	Effective      time.Time
	BillableBefore Billable
	Note           string
}

type reqIDDoc struct {
	line         int
	Family, Code string
	Window       time.Duration
}

type levelDoc struct{ Max, HighFrom int }

type codeDoc struct {
	line                                     int
	Family, Code, Meaning, Category, Billing string
	Action, Note                             string
	Billable                                 Billable
}

type deviceTagDoc struct {
	Tag, Name, Meaning, Note string
	Platforms                []string
}

type identityTagDoc struct{ Tag, Type string }

var (
	fieldPattern    = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,63}$`)
	codePattern     = regexp.MustCompile(`^(0|-?[1-9][0-9]{0,11})$`)
	tagPattern      = regexp.MustCompile(`^[0-9]{1,8}$`)
	namePattern     = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)
	maxMeaningBytes = 512
)

// parser walks a YAML node tree strictly: unknown and duplicate keys are errors.
type parser struct {
	yamlstrict.Parser
}

func (p *parser) str(n *yaml.Node, field string) (string, error) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return "", p.Errorf(n, field, "must be a string, got %s", yamlstrict.KindName(n))
	}
	return n.Value, nil
}

// codeStr reads a code or tag that may be written as a YAML string or integer.
func (p *parser) codeStr(n *yaml.Node, field string, pat *regexp.Regexp, what string) (string, error) {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!str" && n.Tag != "!!int") {
		return "", p.Errorf(n, field, "must be a %s, got %s", what, yamlstrict.KindName(n))
	}
	if !pat.MatchString(n.Value) {
		return "", p.Errorf(n, field, "%q is not a valid %s", n.Value, what)
	}
	return n.Value, nil
}

func (p *parser) integer(n *yaml.Node, field string) (int, error) {
	var v int
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&v) != nil {
		return 0, p.Errorf(n, field, "must be an integer, got %s", yamlstrict.KindName(n))
	}
	return v, nil
}

func (p *parser) enum(n *yaml.Node, field string, allowed []string) (string, error) {
	s, err := p.str(n, field)
	if err != nil {
		return "", err
	}
	if !slices.Contains(allowed, s) {
		return "", p.Errorf(n, field, "%q is not one of %s", s, strings.Join(allowed, ", "))
	}
	return s, nil
}

func (p *parser) billable(n *yaml.Node, field string) (Billable, error) {
	if n.Kind == yaml.ScalarNode {
		switch {
		case n.Tag == "!!bool" && n.Value == "true":
			return BillableTrue, nil
		case n.Tag == "!!bool" && n.Value == "false":
			return BillableFalse, nil
		case n.Tag == "!!str" && n.Value == "unknown":
			return BillableUnknown, nil
		}
	}
	return 0, p.Errorf(n, field, "must be true, false or unknown, got %s", yamlstrict.KindName(n))
}

func (p *parser) list(n *yaml.Node, field string) ([]*yaml.Node, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.Errorf(n, field, "must be a list, got %s", yamlstrict.KindName(n))
	}
	return n.Content, nil
}

func (p *parser) strList(n *yaml.Node, field string, each func(*yaml.Node) (string, error)) ([]string, error) {
	items, err := p.list(n, field)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		s, err := each(it)
		if err != nil {
			return nil, err
		}
		if slices.Contains(out, s) {
			return nil, p.Errorf(it, field, "%q is listed twice", s)
		}
		out = append(out, s)
	}
	return out, nil
}

// parseCatalogDoc parses a catalog file (base nil) or an override file (base
// set: only version, codes, device_tags and identity_tags) from its content.
func parseCatalogDoc(name string, data []byte, base *catalogDoc) (*catalogDoc, error) {
	p := &parser{yamlstrict.Parser{File: name}}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &yamlstrict.Error{File: name, Line: 1, Msg: "file is empty"}
		}
		return nil, fmt.Errorf("%s: invalid YAML: %w", name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, p.Errorf(&extra, "", "a catalog file holds one YAML document")
	}
	return parseCatalogNode(name, root.Content[0], base)
}

// parseCatalogNode parses a catalog or an override from its YAML node, which
// may be a whole file's or a section of a larger file's (the config file's
// catalog block): errors name the node's own lines in the file name.
func parseCatalogNode(name string, top *yaml.Node, base *catalogDoc) (*catalogDoc, error) {
	p := &parser{yamlstrict.Parser{File: name}}
	override := base != nil
	doc := &catalogDoc{name: name}
	if override {
		// An override may name only the base catalog's families: channels and
		// metrics are built from them.
		doc.Families = base.Families
	}
	known := []string{"version", "source", "families", "billing_changes", "req_id_rule", "risk", "device_tags", "identity_tags", "codes", "personal_fields"}
	required := []string{"version", "families", "codes", "risk", "device_tags", "identity_tags", "personal_fields"}
	if override {
		known = []string{"version", "codes", "device_tags", "identity_tags", "personal_fields"}
		required = []string{"version"}
	}
	f, err := p.Fields(top, "catalog", known, required)
	if err != nil {
		return nil, err
	}
	if v, ok := f["version"]; ok {
		if doc.Version, err = p.integer(v, "version"); err != nil {
			return nil, err
		}
		if doc.Version != 1 {
			return nil, p.Errorf(v, "version", "unsupported version %d (this exporter reads version 1)", doc.Version)
		}
	}
	if v, ok := f["source"]; ok {
		if doc.Source, err = p.str(v, "source"); err != nil {
			return nil, err
		}
	}
	steps := []struct {
		key string
		fn  func(*yaml.Node) error
	}{
		{"families", func(n *yaml.Node) error { return p.families(n, doc) }},
		{"billing_changes", func(n *yaml.Node) error { return p.billingChanges(n, doc) }},
		{"req_id_rule", func(n *yaml.Node) error { return p.reqID(n, doc) }},
		{"risk", func(n *yaml.Node) error { return p.risk(n, doc) }},
		{"device_tags", func(n *yaml.Node) error { return p.deviceTags(n, doc) }},
		{"identity_tags", func(n *yaml.Node) error { return p.identityTags(n, doc) }},
		{"codes", func(n *yaml.Node) error { return p.codes(n, doc, override) }},
		{"personal_fields", func(n *yaml.Node) error { return p.personalFields(n, doc) }},
	}
	for _, s := range steps {
		if n, ok := f[s.key]; ok {
			if err := s.fn(n); err != nil {
				return nil, err
			}
		}
	}
	return doc, nil
}

func (p *parser) families(n *yaml.Node, doc *catalogDoc) error {
	items, err := p.list(n, "families")
	if err != nil {
		return err
	}
	seenCh := map[string]bool{}
	for _, it := range items {
		f, err := p.Fields(it, "family", []string{"name", "title", "channels"}, []string{"name", "channels"})
		if err != nil {
			return err
		}
		var fd familyDoc
		if fd.Name, err = p.str(f["name"], "name"); err != nil {
			return err
		}
		if !namePattern.MatchString(fd.Name) {
			return p.Errorf(f["name"], "name", "%q is not a lower-case identifier", fd.Name)
		}
		for _, o := range doc.Families {
			if o.Name == fd.Name {
				return p.Errorf(f["name"], "name", "family %q is defined twice", fd.Name)
			}
		}
		if t, ok := f["title"]; ok {
			if fd.Title, err = p.str(t, "title"); err != nil {
				return err
			}
		}
		fd.Channels, err = p.strList(f["channels"], "channels", func(c *yaml.Node) (string, error) {
			s, err := p.str(c, "channels")
			if err != nil {
				return "", err
			}
			if !namePattern.MatchString(s) {
				return "", p.Errorf(c, "channels", "%q is not a lower-case identifier", s)
			}
			if seenCh[s] {
				return "", p.Errorf(c, "channels", "channel %q belongs to two families", s)
			}
			seenCh[s] = true
			return s, nil
		})
		if err != nil {
			return err
		}
		if len(fd.Channels) == 0 {
			return p.Errorf(f["channels"], "channels", "family %q has no channels", fd.Name)
		}
		doc.Families = append(doc.Families, fd)
	}
	return nil
}

func (p *parser) familyRef(n *yaml.Node, doc *catalogDoc, field string) (string, error) {
	names := make([]string, 0, len(doc.Families))
	for _, f := range doc.Families {
		names = append(names, f.Name)
	}
	return p.enum(n, field, names)
}

func (p *parser) billingChanges(n *yaml.Node, doc *catalogDoc) error {
	items, err := p.list(n, "billing_changes")
	if err != nil {
		return err
	}
	for _, it := range items {
		f, err := p.Fields(it, "billing change", []string{"family", "codes", "effective", "billable_before", "note"}, []string{"family", "codes", "effective", "billable_before"})
		if err != nil {
			return err
		}
		bc := billingChangeDoc{line: it.Line}
		if bc.Family, err = p.familyRef(f["family"], doc, "family"); err != nil {
			return err
		}
		if bc.Codes, err = p.strList(f["codes"], "codes", func(c *yaml.Node) (string, error) {
			return p.codeStr(c, "codes", codePattern, "return code")
		}); err != nil {
			return err
		}
		s, err := p.str(f["effective"], "effective")
		if err != nil {
			return err
		}
		if bc.Effective, err = time.Parse(time.RFC3339, s); err != nil {
			return p.Errorf(f["effective"], "effective", "%q is not an RFC 3339 time with an offset", s)
		}
		if bc.BillableBefore, err = p.billable(f["billable_before"], "billable_before"); err != nil {
			return err
		}
		if v, ok := f["note"]; ok {
			if bc.Note, err = p.str(v, "note"); err != nil {
				return err
			}
		}
		doc.BillingChanges = append(doc.BillingChanges, bc)
	}
	return nil
}

func (p *parser) reqID(n *yaml.Node, doc *catalogDoc) error {
	f, err := p.Fields(n, "req_id_rule", []string{"family", "code", "window"}, []string{"family", "code", "window"})
	if err != nil {
		return err
	}
	doc.ReqID.line = n.Line
	if doc.ReqID.Family, err = p.familyRef(f["family"], doc, "family"); err != nil {
		return err
	}
	if doc.ReqID.Code, err = p.codeStr(f["code"], "code", codePattern, "return code"); err != nil {
		return err
	}
	s, err := p.str(f["window"], "window")
	if err != nil {
		return err
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return p.Errorf(f["window"], "window", "%q is not a positive duration such as 5m", s)
	}
	doc.ReqID.Window = d
	return nil
}

func (p *parser) risk(n *yaml.Node, doc *catalogDoc) error {
	f, err := p.Fields(n, "risk", []string{"device_level", "risk_level"}, []string{"device_level", "risk_level"})
	if err != nil {
		return err
	}
	for _, k := range []struct {
		key string
		dst *levelDoc
	}{{"device_level", &doc.DeviceLevel}, {"risk_level", &doc.RiskLevel}} {
		lf, err := p.Fields(f[k.key], k.key, []string{"max", "high_from"}, []string{"max", "high_from"})
		if err != nil {
			return err
		}
		if k.dst.Max, err = p.integer(lf["max"], "max"); err != nil {
			return err
		}
		if k.dst.HighFrom, err = p.integer(lf["high_from"], "high_from"); err != nil {
			return err
		}
		if k.dst.Max < 0 || k.dst.Max > 100 {
			return p.Errorf(lf["max"], "max", "must be between 0 and 100")
		}
		if k.dst.HighFrom < 0 || k.dst.HighFrom > k.dst.Max {
			return p.Errorf(lf["high_from"], "high_from", "must be between 0 and max (%d)", k.dst.Max)
		}
	}
	return nil
}

func (p *parser) optStr(f map[string]*yaml.Node, key string, dst *string) error {
	v, ok := f[key]
	if !ok {
		return nil
	}
	s, err := p.str(v, key)
	if err != nil {
		return err
	}
	if len(s) > maxMeaningBytes {
		return p.Errorf(v, key, "longer than %d bytes", maxMeaningBytes)
	}
	*dst = s
	return nil
}

func (p *parser) deviceTags(n *yaml.Node, doc *catalogDoc) error {
	items, err := p.list(n, "device_tags")
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, it := range items {
		f, err := p.Fields(it, "device tag", []string{"tag", "name", "platforms", "meaning", "note"}, []string{"tag", "name", "platforms"})
		if err != nil {
			return err
		}
		var td deviceTagDoc
		if td.Tag, err = p.codeStr(f["tag"], "tag", tagPattern, "device tag (digits)"); err != nil {
			return err
		}
		if seen[td.Tag] {
			return p.Errorf(f["tag"], "tag", "device tag %q is defined twice", td.Tag)
		}
		seen[td.Tag] = true
		if td.Name, err = p.str(f["name"], "name"); err != nil {
			return err
		}
		if !namePattern.MatchString(td.Name) {
			return p.Errorf(f["name"], "name", "%q is not a lower-case identifier", td.Name)
		}
		if td.Platforms, err = p.strList(f["platforms"], "platforms", func(c *yaml.Node) (string, error) {
			return p.enum(c, "platforms", platforms)
		}); err != nil {
			return err
		}
		if len(td.Platforms) == 0 {
			return p.Errorf(f["platforms"], "platforms", "must name at least one platform")
		}
		if err := p.optStr(f, "meaning", &td.Meaning); err != nil {
			return err
		}
		if err := p.optStr(f, "note", &td.Note); err != nil {
			return err
		}
		doc.DeviceTags = append(doc.DeviceTags, td)
	}
	if len(doc.DeviceTags) > MaxDeviceTags {
		return p.Errorf(n, "device_tags", "more than %d device tags", MaxDeviceTags)
	}
	return nil
}

func (p *parser) identityTags(n *yaml.Node, doc *catalogDoc) error {
	items, err := p.list(n, "identity_tags")
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, it := range items {
		f, err := p.Fields(it, "identity tag", []string{"tag", "type"}, []string{"tag", "type"})
		if err != nil {
			return err
		}
		var td identityTagDoc
		if td.Tag, err = p.codeStr(f["tag"], "tag", tagPattern, "identity tag (digits)"); err != nil {
			return err
		}
		if seen[td.Tag] {
			return p.Errorf(f["tag"], "tag", "identity tag %q is defined twice", td.Tag)
		}
		seen[td.Tag] = true
		if td.Type, err = p.enum(f["type"], "type", []string{IdentityAttack, IdentityBusiness}); err != nil {
			return err
		}
		doc.IdentityTags = append(doc.IdentityTags, td)
	}
	if len(doc.IdentityTags) > MaxIdentityTags {
		return p.Errorf(n, "identity_tags", "more than %d identity tags", MaxIdentityTags)
	}
	return nil
}

// personalFields reads the fields a redacted dead letter leaves out: groups
// of field names by kind; a name (compared as FieldKey does) is listed once.
func (p *parser) personalFields(n *yaml.Node, doc *catalogDoc) error {
	items, err := p.list(n, "personal_fields")
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, it := range items {
		f, err := p.Fields(it, "personal field group", []string{"kind", "fields"}, []string{"kind", "fields"})
		if err != nil {
			return err
		}
		kind, err := p.enum(f["kind"], "kind", PersonalKinds())
		if err != nil {
			return err
		}
		names, err := p.list(f["fields"], "fields")
		if err != nil {
			return err
		}
		if len(names) == 0 {
			return p.Errorf(f["fields"], "fields", "the %s group lists no fields", kind)
		}
		for _, fn := range names {
			name, err := p.str(fn, "fields")
			if err != nil {
				return err
			}
			if !fieldPattern.MatchString(name) {
				return p.Errorf(fn, "fields", "%q is not a field name (a letter, then letters, digits, '_' or '-'; at most 64)", name)
			}
			key := FieldKey(name)
			if seen[key] {
				return p.Errorf(fn, "fields", "%q is listed twice (names are compared without case, '_' and '-')", name)
			}
			seen[key] = true
			doc.PersonalFields = append(doc.PersonalFields, PersonalField{Kind: kind, Field: name})
		}
	}
	if len(doc.PersonalFields) > MaxPersonalFields {
		return p.Errorf(n, "personal_fields", "more than %d fields", MaxPersonalFields)
	}
	return nil
}

func (p *parser) codes(n *yaml.Node, doc *catalogDoc, override bool) error {
	items, err := p.list(n, "codes")
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, it := range items {
		f, err := p.Fields(it, "code", []string{"family", "code", "category", "billable", "billing", "meaning", "action", "note"}, []string{"family", "code", "category", "billable", "meaning"})
		if err != nil {
			return err
		}
		cd := codeDoc{line: it.Line, Billing: BillingSeed}
		if override {
			cd.Billing = BillingOverride
		}
		if cd.Family, err = p.familyRef(f["family"], doc, "family"); err != nil {
			return err
		}
		if cd.Code, err = p.codeStr(f["code"], "code", codePattern, "return code (an integer, no leading zeros)"); err != nil {
			return err
		}
		key := cd.Family + "/" + cd.Code
		if seen[key] {
			return p.Errorf(f["code"], "code", "code %q of family %q is defined twice", cd.Code, cd.Family)
		}
		seen[key] = true
		if cd.Category, err = p.enum(f["category"], "category", categories); err != nil {
			return err
		}
		if cd.Billable, err = p.billable(f["billable"], "billable"); err != nil {
			return err
		}
		if v, ok := f["billing"]; ok {
			if cd.Billing, err = p.enum(v, "billing", billingSources); err != nil {
				return err
			}
		}
		if cd.Billing == BillingNotInSeed && cd.Billable != BillableUnknown {
			return p.Errorf(f["billable"], "billable", "a code with billing not_in_seed must have billable unknown")
		}
		if err := p.optStr(f, "meaning", &cd.Meaning); err != nil {
			return err
		}
		if err := p.optStr(f, "action", &cd.Action); err != nil {
			return err
		}
		if err := p.optStr(f, "note", &cd.Note); err != nil {
			return err
		}
		doc.Codes = append(doc.Codes, cd)
	}
	if len(doc.Codes) > MaxCodes {
		return p.Errorf(n, "codes", "more than %d codes", MaxCodes)
	}
	return nil
}

// toDoc turns a built catalog back into a document, for merging overrides.
func (c *Catalog) toDoc() *catalogDoc {
	doc := &catalogDoc{
		name: "catalog", Version: c.Version, Source: c.Source,
		ReqID:       reqIDDoc{Family: c.ReqIDRule.Family, Code: c.ReqIDRule.Code, Window: c.ReqIDRule.Window},
		DeviceLevel: levelDoc{Max: c.DeviceLevel.Max, HighFrom: c.DeviceLevel.HighFrom},
		RiskLevel:   levelDoc{Max: c.RiskLevel.Max, HighFrom: c.RiskLevel.HighFrom},
	}
	for _, f := range c.Families {
		doc.Families = append(doc.Families, familyDoc{Name: f.Name, Title: f.Title, Channels: f.Channels})
	}
	for _, b := range c.BillingChanges {
		doc.BillingChanges = append(doc.BillingChanges, billingChangeDoc{Family: b.Family, Codes: b.Codes, Effective: b.Effective, BillableBefore: b.BillableBefore, Note: b.Note})
	}
	for _, k := range c.Codes {
		doc.Codes = append(doc.Codes, codeDoc{Family: k.Family, Code: k.Code, Meaning: k.Meaning, Category: k.Category, Billing: k.Billing, Action: k.Action, Note: k.Note, Billable: k.Billable})
	}
	for _, t := range c.DeviceTags {
		doc.DeviceTags = append(doc.DeviceTags, deviceTagDoc{Tag: t.Tag, Name: t.Name, Meaning: t.Meaning, Note: t.Note, Platforms: t.Platforms})
	}
	for _, t := range c.IdentityTags {
		doc.IdentityTags = append(doc.IdentityTags, identityTagDoc{Tag: t.Tag, Type: t.Type})
	}
	doc.PersonalFields = slices.Clone(c.PersonalFields)
	return doc
}

// merge applies an override document: same key replaces, new key appends.
func (d *catalogDoc) merge(o *catalogDoc) {
	for _, oc := range o.Codes {
		i := slices.IndexFunc(d.Codes, func(c codeDoc) bool { return c.Family == oc.Family && c.Code == oc.Code })
		if i >= 0 {
			d.Codes[i] = oc
		} else {
			d.Codes = append(d.Codes, oc)
		}
	}
	for _, ot := range o.DeviceTags {
		i := slices.IndexFunc(d.DeviceTags, func(t deviceTagDoc) bool { return t.Tag == ot.Tag })
		if i >= 0 {
			d.DeviceTags[i] = ot
		} else {
			d.DeviceTags = append(d.DeviceTags, ot)
		}
	}
	for _, of := range o.PersonalFields {
		if !slices.ContainsFunc(d.PersonalFields, func(f PersonalField) bool { return FieldKey(f.Field) == FieldKey(of.Field) }) {
			d.PersonalFields = append(d.PersonalFields, of)
		}
	}
	for _, ot := range o.IdentityTags {
		i := slices.IndexFunc(d.IdentityTags, func(t identityTagDoc) bool { return t.Tag == ot.Tag })
		if i >= 0 {
			d.IdentityTags[i] = ot
		} else {
			d.IdentityTags = append(d.IdentityTags, ot)
		}
	}
}
