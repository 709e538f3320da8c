// Package config reads the exporter's --config.file: catalog overrides, the
// dedupe window, business-dimension allowlists, event ring-buffer sizes and
// the future-timestamp tolerance, the ledger's retention and pricing. Parsing is strict: unknown or duplicate fields, wrong types and
// out-of-range values are errors that name file:line and the field.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/faceid-observability/faceid-exporter/internal/yamlstrict"
	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
)

// Limits enforced on a config file.
const (
	MaxAllowlist      = 100     // values per business-dimension allowlist
	MaxAllowlistValue = 128     // bytes per allowlisted value
	MaxRingSize       = 100000  // events kept per ring buffer
	MaxDedupeCapacity = 5000000 // event ids remembered
	MaxDedupeWindow   = 24 * time.Hour
	// MaxBusinessCombinations bounds (|app_id|+2)×(|rule_id|+2): the
	// app_id × rule_id label pairs of faceid_business_verifications_total,
	// "other" and "none" included. Each pair has at most channels × 2 × 3
	// series.
	MaxBusinessCombinations = 1000
)

// Default values.
const (
	DefaultDedupeWindow   = 10 * time.Minute
	DefaultDedupeCapacity = 100000
	DefaultRingSize       = 1000
	DefaultUnknownRing    = 200
	// DefaultFutureTolerance is how much later than its message's time an
	// event's ts may be before it is rejected as future_ts.
	DefaultFutureTolerance = 5 * time.Minute
)

// MaxFutureTolerance bounds events.future_tolerance.
const MaxFutureTolerance = 24 * time.Hour

// Reserved label values of the business dimensions.
const (
	ValueOther = "other" // a value not in the allowlist
	ValueNone  = "none"  // the event has no value
)

// Config is a parsed, validated config file.
type Config struct {
	// File is the name the config was read from ("" for defaults).
	File string
	// Catalog is the base catalog with the file's catalog overrides applied.
	Catalog *classify.Catalog
	// CatalogOverrides reports whether the file had a catalog section.
	CatalogOverrides bool
	Dedupe           Dedupe
	Business         Business
	Events           Events
	Ledger           Ledger
	Pricing          *Pricing // nil when the file has no pricing section
}

// Ledger configures the daily books.
type Ledger struct {
	// RetentionDays is how many days before the newest accepted day the
	// books keep; older events are counted, not booked.
	RetentionDays int
}

// Dedupe configures duplicate detection by event id.
type Dedupe struct {
	Window   time.Duration // 0 turns detection off
	Capacity int           // ids remembered at most, per partition
}

// Business holds the allowlists of business dimensions. A nil list means the
// dimension is not exported; both nil means no business metric at all.
type Business struct {
	AppID  []string
	RuleID []string
}

// Enabled reports whether any business dimension is allowlisted.
func (b Business) Enabled() bool { return b.AppID != nil || b.RuleID != nil }

// Events sizes the ring buffers behind /api/v1/events and sets how far
// ahead of its message an event's time may be.
type Events struct {
	BillableFailure int
	HighRisk        int
	UnknownCode     int
	// FutureTolerance: an event whose ts is later than its message's time
	// (JetStream timestamp; time of receipt on core NATS) by more is
	// rejected as future_ts. 0 turns the rule off.
	FutureTolerance time.Duration
}

// Pricing is what a billed verification costs, for cost dashboards.
type Pricing struct {
	Currency      string
	MonthlyBudget float64 // 0 when not set
	HasBudget     bool
	UnitPrice     map[string]float64 // by channel
}

// Default returns the configuration used without --config.file.
func Default(base *classify.Catalog) *Config {
	return &Config{
		Catalog: base,
		Dedupe:  Dedupe{Window: DefaultDedupeWindow, Capacity: DefaultDedupeCapacity},
		Events: Events{BillableFailure: DefaultRingSize, HighRisk: DefaultRingSize, UnknownCode: DefaultUnknownRing,
			FutureTolerance: DefaultFutureTolerance},
		Ledger: Ledger{RetentionDays: ledger.DefaultRetentionDays},
	}
}

// LoadFile reads and validates the config file at path against base.
func LoadFile(path string, base *classify.Catalog) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	return Parse(path, data, base)
}

// Error is an error at one field of one line of a config file.
type Error = yamlstrict.Error

type parser struct{ yamlstrict.Parser }

// Parse validates a config file's content; name is used in errors.
func Parse(name string, data []byte, base *classify.Catalog) (*Config, error) {
	p := &parser{yamlstrict.Parser{File: name}}
	cfg := Default(base)
	cfg.File = name
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return cfg, nil // an empty file means the defaults
		}
		return nil, fmt.Errorf("%s: invalid YAML: %w", name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, p.Errorf(&extra, "---", "a config file holds one YAML document")
	}
	top := root.Content[0]
	if top.Kind == yaml.ScalarNode && top.Tag == "!!null" {
		return cfg, nil
	}
	f, err := p.Fields(top, "config", []string{"catalog", "dedupe", "business_dimensions", "events", "ledger", "pricing"}, nil)
	if err != nil {
		return nil, err
	}
	if n, ok := f["catalog"]; ok {
		if cfg.Catalog, err = base.WithOverridesNode(name, n); err != nil {
			return nil, err
		}
		cfg.CatalogOverrides = true
	}
	if n, ok := f["dedupe"]; ok {
		if err := p.dedupe(n, &cfg.Dedupe); err != nil {
			return nil, err
		}
	}
	if n, ok := f["business_dimensions"]; ok {
		if err := p.business(n, &cfg.Business); err != nil {
			return nil, err
		}
	}
	if n, ok := f["events"]; ok {
		if err := p.events(n, &cfg.Events); err != nil {
			return nil, err
		}
	}
	if n, ok := f["ledger"]; ok {
		if err := p.ledger(n, &cfg.Ledger); err != nil {
			return nil, err
		}
	}
	if n, ok := f["pricing"]; ok {
		if cfg.Pricing, err = p.pricing(n, cfg.Catalog); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

func (p *parser) integer(n *yaml.Node, field string, min, max int) (int, error) {
	var v int
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&v) != nil {
		return 0, p.Errorf(n, field, "must be an integer, got %s", yamlstrict.KindName(n))
	}
	if v < min || v > max {
		return 0, p.Errorf(n, field, "%d is out of range %d..%d", v, min, max)
	}
	return v, nil
}

func (p *parser) number(n *yaml.Node, field string) (float64, error) {
	var v float64
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") || n.Decode(&v) != nil {
		return 0, p.Errorf(n, field, "must be a number, got %s", yamlstrict.KindName(n))
	}
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0, p.Errorf(n, field, "must be a finite number ≥ 0, got %s", n.Value)
	}
	return v, nil
}

func (p *parser) str(n *yaml.Node, field string) (string, error) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		return "", p.Errorf(n, field, "must be a string, got %s", yamlstrict.KindName(n))
	}
	return n.Value, nil
}

func (p *parser) duration(n *yaml.Node, field string, max time.Duration) (time.Duration, error) {
	s, err := p.str(n, field)
	if err != nil {
		return 0, err
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, p.Errorf(n, field, "%q is not a duration such as 10m", s)
	}
	if d < 0 || d > max {
		return 0, p.Errorf(n, field, "%s is out of range 0s..%s", d, max)
	}
	return d, nil
}

func (p *parser) dedupe(n *yaml.Node, d *Dedupe) error {
	if n.Kind == yaml.MappingNode {
		// Fields that were removed get their own error, and are not listed
		// among the known ones.
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i]; k.Value == "store" || k.Value == "bucket" {
				return p.Errorf(k, k.Value, "was removed: in JetStream mode the duplicate window is part of each partition's checkpoint, exact across replicas and restarts; delete this line")
			}
		}
	}
	f, err := p.Fields(n, "dedupe", []string{"window", "capacity"}, nil)
	if err != nil {
		return err
	}
	if v, ok := f["window"]; ok {
		if d.Window, err = p.duration(v, "window", MaxDedupeWindow); err != nil {
			return err
		}
	}
	if v, ok := f["capacity"]; ok {
		if d.Capacity, err = p.integer(v, "capacity", 0, MaxDedupeCapacity); err != nil {
			return err
		}
	}
	return nil
}

var valuePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/@-]*$`)

func (p *parser) business(n *yaml.Node, b *Business) error {
	f, err := p.Fields(n, "business_dimensions", []string{"app_id", "rule_id"}, nil)
	if err != nil {
		return err
	}
	read := func(field string) ([]string, error) {
		v, ok := f[field]
		if !ok {
			return nil, nil
		}
		if v.Kind != yaml.SequenceNode {
			return nil, p.Errorf(v, field, "must be a list, got %s", yamlstrict.KindName(v))
		}
		if len(v.Content) > MaxAllowlist {
			return nil, p.Errorf(v, field, "lists %d values, more than the limit of %d", len(v.Content), MaxAllowlist)
		}
		out := make([]string, 0, len(v.Content))
		for _, it := range v.Content {
			if it.Kind != yaml.ScalarNode || (it.Tag != "!!str" && it.Tag != "!!int") {
				return nil, p.Errorf(it, field, "values must be strings, got %s", yamlstrict.KindName(it))
			}
			s := it.Value
			switch {
			case s == ValueOther || s == ValueNone:
				return nil, p.Errorf(it, field, "%q is reserved for values not allowlisted or absent", s)
			case len(s) > MaxAllowlistValue:
				return nil, p.Errorf(it, field, "value is %d bytes, over the %d-byte limit", len(s), MaxAllowlistValue)
			case !valuePattern.MatchString(s):
				return nil, p.Errorf(it, field, "%q holds characters other than letters, digits and . _ : / @ -", s)
			case slices.Contains(out, s):
				return nil, p.Errorf(it, field, "%q is listed twice", s)
			}
			out = append(out, s)
		}
		return out, nil
	}
	if b.AppID, err = read("app_id"); err != nil {
		return err
	}
	if b.RuleID, err = read("rule_id"); err != nil {
		return err
	}
	if c := (len(b.AppID) + 2) * (len(b.RuleID) + 2); c > MaxBusinessCombinations {
		return p.Errorf(n, "business_dimensions", "(%d app_id + 2) × (%d rule_id + 2) = %d label combinations, over the limit of %d: shorten the allowlists",
			len(b.AppID), len(b.RuleID), c, MaxBusinessCombinations)
	}
	return nil
}

func (p *parser) events(n *yaml.Node, e *Events) error {
	f, err := p.Fields(n, "events", []string{"billable_failure", "high_risk", "unknown_code", "future_tolerance"}, nil)
	if err != nil {
		return err
	}
	if v, ok := f["future_tolerance"]; ok {
		if e.FutureTolerance, err = p.duration(v, "future_tolerance", MaxFutureTolerance); err != nil {
			return err
		}
	}
	for _, s := range []struct {
		key string
		dst *int
	}{{"billable_failure", &e.BillableFailure}, {"high_risk", &e.HighRisk}, {"unknown_code", &e.UnknownCode}} {
		if v, ok := f[s.key]; ok {
			if *s.dst, err = p.integer(v, s.key, 1, MaxRingSize); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *parser) ledger(n *yaml.Node, l *Ledger) error {
	f, err := p.Fields(n, "ledger", []string{"retention_days"}, nil)
	if err != nil {
		return err
	}
	if v, ok := f["retention_days"]; ok {
		if l.RetentionDays, err = p.integer(v, "retention_days", 1, ledger.MaxRetentionDays); err != nil {
			return err
		}
	}
	return nil
}

var currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)

func (p *parser) pricing(n *yaml.Node, cat *classify.Catalog) (*Pricing, error) {
	f, err := p.Fields(n, "pricing", []string{"currency", "monthly_budget", "unit_price"}, nil)
	if err != nil {
		return nil, err
	}
	pr := &Pricing{UnitPrice: map[string]float64{}}
	v, ok := f["currency"]
	if !ok {
		return nil, p.Errorf(n, "currency", "required in pricing")
	}
	if pr.Currency, err = p.str(v, "currency"); err != nil {
		return nil, err
	}
	if !currencyPattern.MatchString(pr.Currency) {
		return nil, p.Errorf(v, "currency", "%q is not an ISO 4217 code such as CNY", pr.Currency)
	}
	if v, ok := f["monthly_budget"]; ok {
		if pr.MonthlyBudget, err = p.number(v, "monthly_budget"); err != nil {
			return nil, err
		}
		pr.HasBudget = true
	}
	if v, ok := f["unit_price"]; ok {
		if v.Kind != yaml.MappingNode {
			return nil, p.Errorf(v, "unit_price", "must be a mapping of channel to price, got %s", yamlstrict.KindName(v))
		}
		for i := 0; i+1 < len(v.Content); i += 2 {
			k, val := v.Content[i], v.Content[i+1]
			if _, ok := cat.Channel(k.Value); !ok {
				names := make([]string, 0, len(cat.Channels))
				for _, ch := range cat.Channels {
					names = append(names, ch.Name)
				}
				return nil, p.Errorf(k, "unit_price", "%q is not a channel (channels: %s)", k.Value, strings.Join(names, ", "))
			}
			if _, dup := pr.UnitPrice[k.Value]; dup {
				return nil, p.Errorf(k, "unit_price", "channel %q is priced twice", k.Value)
			}
			if pr.UnitPrice[k.Value], err = p.number(val, "unit_price"); err != nil {
				return nil, err
			}
		}
	}
	return pr, nil
}
