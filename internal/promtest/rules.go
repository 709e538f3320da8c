package promtest

import (
	"os"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"
)

// Rule is one rule of a rule file: an alert or a recorded series.
type Rule struct {
	Alert  string `yaml:"alert"`
	Record string `yaml:"record"`
}

// RuleGroups returns the rule groups of the rule files dir/*.yml, in file
// order; it fails the test when there are none.
func RuleGroups(t testing.TB, dir string) [][]Rule {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("%s/*.yml: no rule files (%v)", dir, err)
	}
	var groups [][]Rule
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var rf struct {
			Groups []struct {
				Rules []Rule `yaml:"rules"`
			} `yaml:"groups"`
		}
		if err := yaml.Unmarshal(data, &rf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, g := range rf.Groups {
			groups = append(groups, g.Rules)
		}
	}
	return groups
}

// RuleNames returns the alert names and the recorded series of the rule
// files dir/*.yml, in file order; it fails the test when there are none.
func RuleNames(t testing.TB, dir string) (alerts, records []string) {
	t.Helper()
	for _, g := range RuleGroups(t, dir) {
		for _, r := range g {
			if r.Alert != "" {
				alerts = append(alerts, r.Alert)
			}
			if r.Record != "" {
				records = append(records, r.Record)
			}
		}
	}
	return alerts, records
}
