package classify

import (
	_ "embed"
	"fmt"
	"slices"
	"sort"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/faceid-observability/faceid-exporter/pkg/redact"
)

//go:embed catalog.yaml
var embeddedCatalog []byte

// EmbeddedCatalogYAML returns the catalog shipped inside the binary, as YAML.
func EmbeddedCatalogYAML() []byte { return append([]byte(nil), embeddedCatalog...) }

// Billable says whether a verification is billed.
type Billable uint8

// Billable values. BillableUnknown is used where Tencent's table does not say.
const (
	BillableFalse Billable = iota
	BillableTrue
	BillableUnknown
)

// String returns the label value: "false", "true" or "unknown".
func (b Billable) String() string {
	switch b {
	case BillableTrue:
		return "true"
	case BillableFalse:
		return "false"
	default:
		return "unknown"
	}
}

// BillableValues lists every Billable label value.
var billableValues = [...]string{"false", "true", "unknown"}

// BillableLabels returns every value the billable label can take.
func BillableLabels() []string { return append([]string(nil), billableValues[:]...) }

// Billing sources: where a code's billable answer comes from.
const (
	BillingSeed      = "seed"        // the table's 是否收费 column
	BillingNoColumn  = "no_column"   // the table has no billing column; the project's reading
	BillingNotInSeed = "not_in_seed" // the code is not in the table; billable unknown
	BillingOverride  = "override"    // set by a --catalog.file override
)

var billingSources = []string{BillingSeed, BillingNoColumn, BillingNotInSeed, BillingOverride}

// Categories are the seed sections a code can come from, plus the two an
// override file may use for codes Tencent's SaaS table does not list.
var categories = []string{
	"system", "wechat", "liveness_common", "liveness_digital", "liveness_action",
	"liveness_silent", "compare", "sdk", "willingness", "nfc_server", "nfc_terminal",
	"paas", "custom",
}

// Identity tag types.
const (
	IdentityAttack   = "attack"
	IdentityBusiness = "business"
)

// Platforms a device tag can support.
var platforms = []string{"android", "ios"}

// Code is one return code of one family.
type Code struct {
	Index    int      `json:"-"`
	Family   string   `json:"family"`
	Code     string   `json:"code"`
	Meaning  string   `json:"meaning"`
	Category string   `json:"category"`
	Billable Billable `json:"-"`
	Billing  string   `json:"billing"`
	Action   string   `json:"action,omitempty"`
	Note     string   `json:"note,omitempty"`

	// ChangedAt is when a dated billing change took effect (zero: none);
	// before it, BillableBefore applies.
	ChangedAt      time.Time `json:"-"`
	BillableBefore Billable  `json:"-"`
	changedAtNs    int64
}

// BillableAt returns whether the code is billed for an event at t.
func (c *Code) BillableAt(t time.Time) Billable {
	if !c.ChangedAt.IsZero() && t.Before(c.ChangedAt) {
		return c.BillableBefore
	}
	return c.Billable
}

// billableAtUnix is BillableAt for Unix nanoseconds, on the hot path.
func (c *Code) billableAtUnix(ns int64) Billable {
	if c.changedAtNs != 0 && ns < c.changedAtNs {
		return c.BillableBefore
	}
	return c.Billable
}

// Family is a group of channels that share one table of codes.
type Family struct {
	Index    int
	Name     string
	Title    string
	Channels []string
	codes    map[string]*Code
}

// Channel is one integration channel (wechat_h5, app_sdk, ...).
type Channel struct {
	Index  int
	Name   string
	Family *Family
}

// DeviceTag is one deviceInfoTag value.
type DeviceTag struct {
	Index     int
	Tag       string
	Name      string
	Meaning   string
	Note      string
	Platforms []string
}

// IdentityTag is one riskInfoTag value.
type IdentityTag struct {
	Index int
	Tag   string
	Type  string
}

// LevelRule bounds a risk level and says where "high" starts.
type LevelRule struct {
	Max      int
	HighFrom int
}

// BillingChange is a dated change of billing for a set of codes.
type BillingChange struct {
	Family         string
	Codes          []string
	Effective      time.Time
	BillableBefore Billable
	Note           string
}

// ReqIDRule bills a family's success once per reqId per window.
type ReqIDRule struct {
	Family string
	Code   string
	Window time.Duration
}

// Catalog is the validated, indexed set of families, channels, codes and tags.
type Catalog struct {
	Version        int
	Source         string
	Families       []*Family
	Channels       []*Channel
	Codes          []*Code
	DeviceTags     []*DeviceTag
	IdentityTags   []*IdentityTag
	BillingChanges []BillingChange
	ReqIDRule      ReqIDRule
	DeviceLevel    LevelRule
	RiskLevel      LevelRule
	// PersonalFields are the fields of Tencent's responses (and of records
	// built from them) that hold personal data: a redacted dead letter
	// leaves them out at any depth (see pkg/redact).
	PersonalFields []PersonalField

	channels     map[string]*Channel
	families     map[string]*Family
	deviceTags   map[string]*DeviceTag
	identityTags map[string]*IdentityTag
}

// Limits on what a catalog may hold, so that the metrics built from it stay bounded.
const (
	MaxCodes        = 2048
	MaxDeviceTags   = 256
	MaxIdentityTags = 256
	// MaxPersonalFields bounds the personal-field list.
	MaxPersonalFields = 1024
)

// PersonalField is a field name that holds personal data, and its kind.
type PersonalField struct {
	Kind  string // one of PersonalKinds
	Field string // as Tencent writes it; matched as FieldKey compares
}

var personalKinds = []string{"id_number", "name", "contact", "address", "birth", "document_text", "biometric_media", "encrypted_identity", "speech", "other"}

// PersonalKinds returns the kinds a personal field may have.
func PersonalKinds() []string { return slices.Clone(personalKinds) }

// FieldKey is how personal field names are compared (redact.Key): without
// ASCII case and without '_' and '-', so IdCard, idcard, id_card and ID-CARD
// are one field.
func FieldKey(name string) string { return redact.Key(name) }

// PersonalFieldNames returns the personal field names.
func (c *Catalog) PersonalFieldNames() []string {
	out := make([]string, len(c.PersonalFields))
	for i, f := range c.PersonalFields {
		out[i] = f.Field
	}
	return out
}

// Default returns the catalog embedded in the binary.
func Default() (*Catalog, error) {
	return Load("catalog.yaml (embedded)", embeddedCatalog)
}

// Load parses and validates a full catalog.
func Load(name string, data []byte) (*Catalog, error) {
	doc, err := parseCatalogDoc(name, data, nil)
	if err != nil {
		return nil, err
	}
	return build(doc)
}

// WithOverrides returns a copy of c with the codes and tags of an override file
// added or replaced; name is used in errors.
func (c *Catalog) WithOverrides(name string, data []byte) (*Catalog, error) {
	doc := c.toDoc()
	over, err := parseCatalogDoc(name, data, doc)
	if err != nil {
		return nil, err
	}
	return mergeOverride(name, doc, over)
}

// WithOverridesNode is WithOverrides for an override held in a YAML node, such
// as a section of a larger file; errors name the node's lines in file name.
func (c *Catalog) WithOverridesNode(name string, n *yaml.Node) (*Catalog, error) {
	doc := c.toDoc()
	over, err := parseCatalogNode(name, n, doc)
	if err != nil {
		return nil, err
	}
	return mergeOverride(name, doc, over)
}

// mergeOverride builds the catalog of doc with the override over applied.
func mergeOverride(name string, doc, over *catalogDoc) (*Catalog, error) {
	doc.merge(over)
	if len(doc.Codes) > MaxCodes || len(doc.DeviceTags) > MaxDeviceTags || len(doc.IdentityTags) > MaxIdentityTags {
		return nil, fmt.Errorf("%s: with these overrides the catalog holds more than %d codes, %d device tags or %d identity tags", name, MaxCodes, MaxDeviceTags, MaxIdentityTags)
	}
	return build(doc)
}

// Channel returns the channel named n.
func (c *Catalog) Channel(n string) (*Channel, bool) { ch, ok := c.channels[n]; return ch, ok }

// Family returns the family named n.
func (c *Catalog) Family(n string) (*Family, bool) { f, ok := c.families[n]; return f, ok }

// Lookup returns a family's code.
func (c *Catalog) Lookup(family, code string) (*Code, bool) {
	f, ok := c.families[family]
	if !ok {
		return nil, false
	}
	k, ok := f.codes[code]
	return k, ok
}

// DeviceTag returns the device tag t.
func (c *Catalog) DeviceTag(t string) (*DeviceTag, bool) { d, ok := c.deviceTags[t]; return d, ok }

// IdentityTag returns the identity tag t.
func (c *Catalog) IdentityTag(t string) (*IdentityTag, bool) {
	d, ok := c.identityTags[t]
	return d, ok
}

// DeviceTagNames returns the distinct device tag names, sorted.
func (c *Catalog) DeviceTagNames() []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range c.DeviceTags {
		if !seen[t.Name] {
			seen[t.Name] = true
			out = append(out, t.Name)
		}
	}
	sort.Strings(out)
	return out
}

// Categories returns every category a code may have.
func Categories() []string { return append([]string(nil), categories...) }

func build(doc *catalogDoc) (*Catalog, error) {
	c := &Catalog{
		Version:        doc.Version,
		Source:         doc.Source,
		ReqIDRule:      ReqIDRule{Family: doc.ReqID.Family, Code: doc.ReqID.Code, Window: doc.ReqID.Window},
		DeviceLevel:    LevelRule{Max: doc.DeviceLevel.Max, HighFrom: doc.DeviceLevel.HighFrom},
		RiskLevel:      LevelRule{Max: doc.RiskLevel.Max, HighFrom: doc.RiskLevel.HighFrom},
		PersonalFields: slices.Clone(doc.PersonalFields),
		channels:       map[string]*Channel{},
		families:       map[string]*Family{},
		deviceTags:     map[string]*DeviceTag{},
		identityTags:   map[string]*IdentityTag{},
	}
	for _, fd := range doc.Families {
		f := &Family{Index: len(c.Families), Name: fd.Name, Title: fd.Title, Channels: fd.Channels, codes: map[string]*Code{}}
		c.Families = append(c.Families, f)
		c.families[f.Name] = f
		for _, chn := range fd.Channels {
			ch := &Channel{Index: len(c.Channels), Name: chn, Family: f}
			c.Channels = append(c.Channels, ch)
			c.channels[chn] = ch
		}
	}
	for _, cd := range doc.Codes {
		f := c.families[cd.Family]
		k := &Code{
			Index: len(c.Codes), Family: cd.Family, Code: cd.Code, Meaning: cd.Meaning,
			Category: cd.Category, Billable: cd.Billable, Billing: cd.Billing,
			Action: cd.Action, Note: cd.Note,
		}
		c.Codes = append(c.Codes, k)
		f.codes[k.Code] = k
	}
	for _, bc := range doc.BillingChanges {
		f := c.families[bc.Family]
		for _, code := range bc.Codes {
			k, ok := f.codes[code]
			if !ok {
				return nil, fmt.Errorf("%s:%d: field %q: code %q is not a code of family %q", doc.name, bc.line, "codes", code, bc.Family)
			}
			k.ChangedAt = bc.Effective
			k.changedAtNs = bc.Effective.UnixNano()
			k.BillableBefore = bc.BillableBefore
		}
		c.BillingChanges = append(c.BillingChanges, BillingChange{
			Family: bc.Family, Codes: bc.Codes, Effective: bc.Effective, BillableBefore: bc.BillableBefore, Note: bc.Note,
		})
	}
	if r := c.ReqIDRule; r.Family != "" {
		if _, ok := c.Lookup(r.Family, r.Code); !ok {
			return nil, fmt.Errorf("%s:%d: field %q: code %q is not a code of family %q", doc.name, doc.ReqID.line, "code", r.Code, r.Family)
		}
	}
	for _, td := range doc.DeviceTags {
		t := &DeviceTag{Index: len(c.DeviceTags), Tag: td.Tag, Name: td.Name, Meaning: td.Meaning, Note: td.Note, Platforms: td.Platforms}
		c.DeviceTags = append(c.DeviceTags, t)
		c.deviceTags[t.Tag] = t
	}
	for _, td := range doc.IdentityTags {
		t := &IdentityTag{Index: len(c.IdentityTags), Tag: td.Tag, Type: td.Type}
		c.IdentityTags = append(c.IdentityTags, t)
		c.identityTags[t.Tag] = t
	}
	return c, nil
}
