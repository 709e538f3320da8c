// Package prometheus holds the shipped Prometheus configuration and the test
// that promtool accepts it together with every rule file of alerts/.
package prometheus

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestCheckConfig(t *testing.T) {
	for _, f := range []string{"prometheus.yml", "prometheus.local.yml"} {
		t.Run(f, func(t *testing.T) { checkConfig(t, f) })
	}
}

// checkConfig runs promtool on the file f of this directory: the compose
// stack's configuration and its local variant (scripts/stack.sh).
func checkConfig(t *testing.T, f string) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found in PATH (install the Debian package prometheus): %v", err)
	}
	out, err := exec.Command(promtool, "check", "config", f).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
	rules, _ := filepath.Glob("../../alerts/*.yml")
	if len(rules) == 0 {
		t.Fatal("no rule files in alerts/")
	}
	for _, r := range rules {
		if !strings.Contains(string(out), filepath.Base(r)) {
			t.Errorf("promtool check config did not load %s:\n%s", r, out)
		}
	}
	data, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		ScrapeConfigs []struct {
			JobName string `yaml:"job_name"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.ScrapeConfigs) == 0 || cfg.ScrapeConfigs[0].JobName != "faceid-exporter" {
		t.Errorf("the alerts expect the scrape job faceid-exporter, got %+v", cfg.ScrapeConfigs)
	}
}
