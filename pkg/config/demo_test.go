package config_test

import (
	"strings"
	"testing"

	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/config"
)

func TestDemoPricing(t *testing.T) {
	cat, err := classify.Default()
	if err != nil {
		t.Fatal(err)
	}
	p, err := config.DemoPricing(cat)
	if err != nil {
		t.Fatal(err)
	}
	if p.Currency != "CNY" || !p.HasBudget || p.MonthlyBudget <= 0 {
		t.Errorf("currency %q, budget %v (set %v)", p.Currency, p.MonthlyBudget, p.HasBudget)
	}
	// Every channel with a billable code has a price, so that the Billing &
	// cost dashboard shows every billed channel; no other channel has one.
	for _, ch := range cat.Channels {
		billable := false
		for _, c := range cat.Codes {
			if c.Family == ch.Family.Name && c.Billable == classify.BillableTrue {
				billable = true
			}
		}
		price, priced := p.UnitPrice[ch.Name]
		switch {
		case billable && (!priced || price <= 0):
			t.Errorf("%s has billable codes and no price", ch.Name)
		case !billable && priced:
			t.Errorf("%s has no billable code and a price %v", ch.Name, price)
		}
	}
	// The file says what its figures are.
	text := string(config.DemoPricingYAML())
	for _, want := range []string{"EXAMPLE", "ILLUSTRATIVE, NOT Tencent's", "publishes no unit"} {
		if !strings.Contains(text, want) {
			t.Errorf("demo_pricing.yaml does not say %q", want)
		}
	}
}
