package config

import (
	_ "embed"
	"errors"

	"github.com/faceid-observability/faceid-exporter/pkg/classify"
)

//go:embed demo_pricing.yaml
var demoPricing []byte

// DemoPricingFile is the name DemoPricing's errors give the embedded file.
const DemoPricingFile = "demo_pricing.yaml (embedded)"

// DemoPricing returns the example pricing `exporter --demo` uses when the
// config file has none. Its unit prices are illustrative, not Tencent's
// (demo_pricing.yaml says why).
func DemoPricing(cat *classify.Catalog) (*Pricing, error) {
	cfg, err := Parse(DemoPricingFile, demoPricing, cat)
	if err != nil {
		return nil, err
	}
	if cfg.Pricing == nil {
		return nil, errors.New("demo_pricing.yaml has no pricing section")
	}
	return cfg.Pricing, nil
}

// DemoPricingYAML returns the embedded example pricing file, comments and all.
func DemoPricingYAML() []byte { return append([]byte(nil), demoPricing...) }
