package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/faceid-observability/faceid-exporter/internal/fixtures"
	"github.com/faceid-observability/faceid-exporter/pkg/classify"
)

func baseCatalog(t testing.TB) *classify.Catalog {
	t.Helper()
	cat, err := classify.Default()
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

func TestValid(t *testing.T) {
	cat := baseCatalog(t)
	t.Run("full", func(t *testing.T) {
		cfg, err := LoadFile("testdata/valid/full.yaml", cat)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Dedupe != (Dedupe{Window: 5 * time.Minute, Capacity: 5000}) {
			t.Errorf("dedupe = %+v", cfg.Dedupe)
		}
		if !slices.Equal(cfg.Business.AppID, []string{"app-a", "app-b"}) || !slices.Equal(cfg.Business.RuleID, []string{"r1"}) {
			t.Errorf("business = %+v", cfg.Business)
		}
		if cfg.Events != (Events{BillableFailure: 50, HighRisk: 60, UnknownCode: 70, FutureTolerance: 90 * time.Second}) {
			t.Errorf("events = %+v", cfg.Events)
		}
		if cfg.Ledger != (Ledger{RetentionDays: 800}) {
			t.Errorf("ledger = %+v", cfg.Ledger)
		}
		if p := cfg.Pricing; p == nil || p.Currency != "CNY" || p.MonthlyBudget != 50000 || !p.HasBudget || p.UnitPrice["app_sdk"] != 1.5 || p.UnitPrice["wechat_h5"] != 1 || len(p.UnitPrice) != 2 {
			t.Errorf("pricing = %+v", cfg.Pricing)
		}
		if !cfg.CatalogOverrides {
			t.Error("catalog overrides not reported")
		}
		code, ok := cfg.Catalog.Lookup("sdk", "99990001")
		if !ok || code.Category != "custom" || code.Billing != classify.BillingOverride {
			t.Errorf("override code = %+v, %v", code, ok)
		}
		if _, ok := cat.Lookup("sdk", "99990001"); ok {
			t.Error("the base catalog was modified")
		}
	})
	t.Run("empty", func(t *testing.T) {
		cfg, err := LoadFile("testdata/valid/empty.yaml", cat)
		if err != nil {
			t.Fatal(err)
		}
		def := Default(cat)
		if cfg.Dedupe != def.Dedupe || cfg.Events != def.Events || cfg.Ledger != def.Ledger || cfg.Business.Enabled() || cfg.Pricing != nil || cfg.Catalog != cat {
			t.Errorf("empty file gave %+v, want the defaults", cfg)
		}
	})
	t.Run("flow_catalog", func(t *testing.T) {
		cfg, err := LoadFile("testdata/valid/flow_catalog.yaml", cat)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Dedupe.Window != 0 || cfg.Dedupe.Capacity != DefaultDedupeCapacity || !cfg.CatalogOverrides {
			t.Errorf("got %+v", cfg)
		}
	})
	t.Run("flow_catalog_multiline", func(t *testing.T) {
		// A flow mapping over several lines whose values hold braces of their
		// own: the catalog is read from the config's node, not cut out as text.
		cfg, err := LoadFile("testdata/valid/flow_catalog_multiline.yaml", cat)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Dedupe.Window != 0 || !cfg.CatalogOverrides {
			t.Errorf("got %+v", cfg)
		}
		code, ok := cfg.Catalog.Lookup("sdk", "99990002")
		if !ok || code.Category != "custom" || code.Billable != classify.BillableFalse || code.Meaning != "a flow-style override" {
			t.Errorf("override code = %+v, %v", code, ok)
		}
	})
}

// TestInvalid checks that every invalid fixture fails with its exact error.
func TestInvalid(t *testing.T) {
	cat := baseCatalog(t)
	want := map[string]string{
		"allowlist_bad_chars":       "testdata/invalid/allowlist_bad_chars.yaml:2: field \"app_id\": \"app a\" holds characters other than letters, digits and . _ : / @ -",
		"allowlist_duplicate":       "testdata/invalid/allowlist_duplicate.yaml:2: field \"rule_id\": \"r1\" is listed twice",
		"allowlist_not_list":        "testdata/invalid/allowlist_not_list.yaml:2: field \"app_id\": must be a list, got \"app-a\"",
		"allowlist_reserved":        "testdata/invalid/allowlist_reserved.yaml:2: field \"app_id\": \"other\" is reserved for values not allowlisted or absent",
		"allowlist_too_long":        "testdata/invalid/allowlist_too_long.yaml:3: field \"app_id\": lists 101 values, more than the limit of 100",
		"bad_duration":              "testdata/invalid/bad_duration.yaml:2: field \"window\": \"ten minutes\" is not a duration such as 10m",
		"business_too_many":         "testdata/invalid/business_too_many.yaml:2: field \"business_dimensions\": (30 app_id + 2) × (30 rule_id + 2) = 1024 label combinations, over the limit of 1000: shorten the allowlists",
		"dedupe_store_removed":      "testdata/invalid/dedupe_store_removed.yaml:3: field \"store\": was removed: in JetStream mode the duplicate window is part of each partition's checkpoint, exact across replicas and restarts; delete this line",
		"dedupe_bucket_removed":     "testdata/invalid/dedupe_bucket_removed.yaml:2: field \"bucket\": was removed: in JetStream mode the duplicate window is part of each partition's checkpoint, exact across replicas and restarts; delete this line",
		"capacity_not_integer":      "testdata/invalid/capacity_not_integer.yaml:2: field \"capacity\": must be an integer, got \"100\"",
		"catalog_bad_category":      "testdata/invalid/catalog_bad_category.yaml:10: field \"category\": \"nonsense\" is not one of system, wechat, liveness_common, liveness_digital, liveness_action, liveness_silent, compare, sdk, willingness, nfc_server, nfc_terminal, paas, custom",
		"catalog_flow_bad_category": "testdata/invalid/catalog_flow_bad_category.yaml:3: field \"category\": \"nonsense\" is not one of system, wechat, liveness_common, liveness_digital, liveness_action, liveness_silent, compare, sdk, willingness, nfc_server, nfc_terminal, paas, custom",
		"catalog_bad_version":       "testdata/invalid/catalog_bad_version.yaml:2: field \"version\": unsupported version 2 (this exporter reads version 1)",
		"catalog_not_mapping":       "testdata/invalid/catalog_not_mapping.yaml:1: field \"catalog\": must be a mapping, got a list",
		"duplicate_field":           "testdata/invalid/duplicate_field.yaml:3: field \"dedupe\": duplicate field in config",
		"invalid_yaml":              "testdata/invalid/invalid_yaml.yaml: invalid YAML: yaml: line 1: did not find expected ',' or ']'",
		"negative_capacity":         "testdata/invalid/negative_capacity.yaml:2: field \"capacity\": -1 is out of range 0..5000000",
		"pricing_bad_currency":      "testdata/invalid/pricing_bad_currency.yaml:2: field \"currency\": \"yuan\" is not an ISO 4217 code such as CNY",
		"pricing_budget_not_number": "testdata/invalid/pricing_budget_not_number.yaml:3: field \"monthly_budget\": must be a number, got \"lots\"",
		"pricing_negative":          "testdata/invalid/pricing_negative.yaml:4: field \"unit_price\": must be a finite number ≥ 0, got -1",
		"pricing_no_currency":       "testdata/invalid/pricing_no_currency.yaml:2: field \"currency\": required in pricing",
		"pricing_unknown_channel":   "testdata/invalid/pricing_unknown_channel.yaml:5: field \"unit_price\": \"telegram\" is not a channel (channels: wechat_h5, wechat_miniprogram, eid, app_sdk, standalone_h5, pc_h5, willingness, nfc_server, nfc_terminal)",
		"ring_too_large":            "testdata/invalid/ring_too_large.yaml:2: field \"high_risk\": 1000000 is out of range 1..100000",
		"ring_zero":                 "testdata/invalid/ring_zero.yaml:2: field \"billable_failure\": 0 is out of range 1..100000",
		"top_not_mapping":           "testdata/invalid/top_not_mapping.yaml:1: field \"config\": must be a mapping, got a list",
		"two_documents":             "testdata/invalid/two_documents.yaml:3: field \"---\": a config file holds one YAML document",
		"unknown_dedupe_field":      "testdata/invalid/unknown_dedupe_field.yaml:3: field \"size\": unknown field in dedupe (known: window, capacity)",
		"unknown_top_field":         "testdata/invalid/unknown_top_field.yaml:3: field \"retention\": unknown field in config (known: catalog, dedupe, business_dimensions, events, ledger, pricing)",
		"future_tolerance_too_long": "testdata/invalid/future_tolerance_too_long.yaml:2: field \"future_tolerance\": 48h0m0s is out of range 0s..24h0m0s",
		"future_tolerance_negative": "testdata/invalid/future_tolerance_negative.yaml:2: field \"future_tolerance\": -1m0s is out of range 0s..24h0m0s",
		"retention_zero":            "testdata/invalid/retention_zero.yaml:2: field \"retention_days\": 0 is out of range 1..3660",
		"retention_not_integer":     "testdata/invalid/retention_not_integer.yaml:2: field \"retention_days\": must be an integer, got \"400d\"",
		"window_too_long":           "testdata/invalid/window_too_long.yaml:2: field \"window\": 48h0m0s is out of range 0s..24h0m0s",
	}
	fixtures.Each(t, "testdata/invalid", ".yaml", want, func(t *testing.T, f, want string) {
		_, err := LoadFile(f, cat)
		if err == nil {
			t.Fatalf("no error, want %q", want)
		}
		if err.Error() != want {
			t.Errorf("error\n got %q\nwant %q", err.Error(), want)
		}
	})
}

func TestMissingFile(t *testing.T) {
	_, err := LoadFile(filepath.Join(t.TempDir(), "nope.yaml"), baseCatalog(t))
	if err == nil || !os.IsNotExist(errorsUnwrap(err)) {
		t.Fatalf("got %v, want a not-exist error", err)
	}
}

func errorsUnwrap(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

func FuzzParse(f *testing.F) {
	for _, dir := range []string{"testdata/valid/*.yaml", "testdata/invalid/*.yaml"} {
		files, _ := filepath.Glob(dir)
		for _, p := range files {
			data, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	cat := baseCatalog(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data, cat)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if cfg.Catalog == nil || cfg.Events.BillableFailure < 1 || len(cfg.Business.AppID) > MaxAllowlist ||
			cfg.Events.FutureTolerance < 0 || cfg.Events.FutureTolerance > MaxFutureTolerance || cfg.Ledger.RetentionDays < 1 {
			t.Fatalf("accepted an invalid config: %+v", cfg)
		}
	})
}
