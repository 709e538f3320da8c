package refmodel

import (
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"
)

// catalog is the part of pkg/classify/catalog.yaml the model needs, read into
// plain maps. Only the DATA is shared with production: this parser is the
// model's own.
type catalog struct {
	channels     []string          // in catalog order (families, then their channels): the index rule of partitions
	familyOf     map[string]string // channel -> family
	codes        map[string]code   // family + "/" + code -> code
	reqFamily    string            // the NFC reqId rule: family, code, window
	reqCode      string
	reqWindow    time.Duration
	deviceMax    int
	deviceHigh   int
	riskMax      int
	riskHigh     int
	deviceTags   map[string]deviceTag
	identityTags map[string]string // tag -> type
}

type code struct {
	billable string // "true", "false", "unknown"
	// A dated billing change: before changedAt the code was billable as before says.
	changedAt time.Time
	before    string
}

type deviceTag struct {
	name      string
	platforms map[string]bool
}

// The YAML shape, as plain structs.
type yamlCatalog struct {
	Families []struct {
		Name     string   `yaml:"name"`
		Channels []string `yaml:"channels"`
	} `yaml:"families"`
	BillingChanges []struct {
		Family         string   `yaml:"family"`
		Codes          []string `yaml:"codes"`
		Effective      string   `yaml:"effective"`
		BillableBefore any      `yaml:"billable_before"`
	} `yaml:"billing_changes"`
	ReqIDRule struct {
		Family string `yaml:"family"`
		Code   string `yaml:"code"`
		Window string `yaml:"window"`
	} `yaml:"req_id_rule"`
	Risk struct {
		DeviceLevel struct {
			Max      int `yaml:"max"`
			HighFrom int `yaml:"high_from"`
		} `yaml:"device_level"`
		RiskLevel struct {
			Max      int `yaml:"max"`
			HighFrom int `yaml:"high_from"`
		} `yaml:"risk_level"`
	} `yaml:"risk"`
	DeviceTags []struct {
		Tag       string   `yaml:"tag"`
		Name      string   `yaml:"name"`
		Platforms []string `yaml:"platforms"`
	} `yaml:"device_tags"`
	IdentityTags []struct {
		Tag  string `yaml:"tag"`
		Type string `yaml:"type"`
	} `yaml:"identity_tags"`
	Codes []struct {
		Family   string `yaml:"family"`
		Code     string `yaml:"code"`
		Billable any    `yaml:"billable"`
	} `yaml:"codes"`
}

func billableString(v any) (string, error) {
	switch b := v.(type) {
	case bool:
		if b {
			return "true", nil
		}
		return "false", nil
	case string:
		if b == "unknown" || b == "true" || b == "false" {
			return b, nil
		}
	case nil:
		return "unknown", nil
	}
	return "", fmt.Errorf("billable %v: want true, false or unknown", v)
}

func parseCatalog(data []byte) (*catalog, error) {
	var y yamlCatalog
	if err := yaml.Unmarshal(data, &y); err != nil {
		return nil, fmt.Errorf("refmodel catalog: %w", err)
	}
	c := &catalog{
		familyOf: map[string]string{}, codes: map[string]code{},
		deviceTags: map[string]deviceTag{}, identityTags: map[string]string{},
		deviceMax: y.Risk.DeviceLevel.Max, deviceHigh: y.Risk.DeviceLevel.HighFrom,
		riskMax: y.Risk.RiskLevel.Max, riskHigh: y.Risk.RiskLevel.HighFrom,
	}
	for _, f := range y.Families {
		for _, ch := range f.Channels {
			c.channels = append(c.channels, ch)
			c.familyOf[ch] = f.Name
		}
	}
	if len(c.channels) == 0 {
		return nil, fmt.Errorf("refmodel catalog: no channels")
	}
	for _, cd := range y.Codes {
		b, err := billableString(cd.Billable)
		if err != nil {
			return nil, fmt.Errorf("refmodel catalog: code %s/%s: %w", cd.Family, cd.Code, err)
		}
		c.codes[cd.Family+"/"+cd.Code] = code{billable: b}
	}
	for _, bc := range y.BillingChanges {
		at, err := time.Parse(time.RFC3339, bc.Effective)
		if err != nil {
			return nil, fmt.Errorf("refmodel catalog: billing change: %w", err)
		}
		before, err := billableString(bc.BillableBefore)
		if err != nil {
			return nil, fmt.Errorf("refmodel catalog: billing change: %w", err)
		}
		for _, k := range bc.Codes {
			cd, ok := c.codes[bc.Family+"/"+k]
			if !ok {
				return nil, fmt.Errorf("refmodel catalog: billing change of unknown code %s/%s", bc.Family, k)
			}
			cd.changedAt, cd.before = at, before
			c.codes[bc.Family+"/"+k] = cd
		}
	}
	if y.ReqIDRule.Family != "" {
		w, err := time.ParseDuration(y.ReqIDRule.Window)
		if err != nil {
			return nil, fmt.Errorf("refmodel catalog: req_id_rule window: %w", err)
		}
		c.reqFamily, c.reqCode, c.reqWindow = y.ReqIDRule.Family, y.ReqIDRule.Code, w
	}
	for _, t := range y.DeviceTags {
		p := map[string]bool{}
		for _, s := range t.Platforms {
			p[s] = true
		}
		c.deviceTags[t.Tag] = deviceTag{name: t.Name, platforms: p}
	}
	for _, t := range y.IdentityTags {
		c.identityTags[t.Tag] = t.Type
	}
	return c, nil
}

// Channels returns the catalog's channels in catalog order (the order the
// exporter numbers them in: partition = index % partitions).
func (m *Model) Channels() []string { return append([]string(nil), m.cat.channels...) }

// Family returns the code family of a channel ("" when it is not a catalog channel).
func (m *Model) Family(channel string) string { return m.cat.familyOf[channel] }

// Codes returns the catalog codes of a family, in no particular order.
func (m *Model) Codes(family string) []string {
	var out []string
	for k := range m.cat.codes {
		if len(k) > len(family) && k[:len(family)+1] == family+"/" {
			out = append(out, k[len(family)+1:])
		}
	}
	return out
}

// DeviceTags returns the catalog's device tags; IdentityTags its identity tags.
func (m *Model) DeviceTags() []string {
	var out []string
	for k := range m.cat.deviceTags {
		out = append(out, k)
	}
	return out
}

// IdentityTags returns the catalog's identity tags.
func (m *Model) IdentityTags() []string {
	var out []string
	for k := range m.cat.identityTags {
		out = append(out, k)
	}
	return out
}
