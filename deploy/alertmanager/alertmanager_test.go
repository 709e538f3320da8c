// Package alertmanager holds the shipped Alertmanager configuration and the
// test that amtool accepts it and routes every alert by its severity.
package alertmanager

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/faceid-observability/faceid-exporter/internal/rulegen"
)

const config = "alertmanager.yml"

func amtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("amtool")
	if err != nil {
		t.Fatalf("amtool not found in PATH (install the Debian package prometheus-alertmanager): %v", err)
	}
	return p
}

func TestCheckConfig(t *testing.T) {
	out, err := exec.Command(amtool(t), "check-config", config).CombinedOutput()
	if err != nil {
		t.Fatalf("amtool check-config: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("amtool check-config did not succeed:\n%s", out)
	}
}

// TestRoutes routes every alert of the rule source, with its severity, and
// checks pages reach faceid-page and tickets faceid-ticket.
func TestRoutes(t *testing.T) {
	bin := amtool(t)
	want := map[string]string{rulegen.SeverityPage: "faceid-page", rulegen.SeverityTicket: "faceid-ticket"}
	for _, a := range rulegen.Alerts() {
		t.Run(a.Alert, func(t *testing.T) {
			out, err := exec.Command(bin, "config", "routes", "test", "--config.file="+config,
				"alertname="+a.Alert, "severity="+a.Severity, "channel=app_sdk", "job=faceid-exporter").Output()
			if err != nil {
				t.Fatalf("amtool config routes test: %v\n%s", err, out)
			}
			if got := strings.TrimSpace(string(out)); got != want[a.Severity] {
				t.Errorf("severity %s routes to %q, want %q", a.Severity, got, want[a.Severity])
			}
		})
	}
}

// TestGroupingAndInhibition checks the route groups by alert and channel and
// that FaceIDExporterDown inhibits the job's other FaceID alerts, except those
// the rule source marks as outliving it.
func TestGroupingAndInhibition(t *testing.T) {
	data, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Route struct {
			GroupBy []string `yaml:"group_by"`
		} `yaml:"route"`
		InhibitRules []struct {
			SourceMatchers []string `yaml:"source_matchers"`
			TargetMatchers []string `yaml:"target_matchers"`
			Equal          []string `yaml:"equal"`
		} `yaml:"inhibit_rules"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Route.GroupBy, ",") != "alertname,channel" {
		t.Errorf("group_by %v, want [alertname channel]", cfg.Route.GroupBy)
	}
	exempt := append([]string{"FaceIDExporterDown"}, rulegen.InhibitionExempt()...)
	if len(exempt) < 2 {
		t.Fatal("the rule source exempts no alert from the inhibition: the test below would not check the list")
	}
	wantTargets := `alertname=~"FaceID.+",alertname!~"` + strings.Join(exempt, "|") + `"`
	found := false
	for _, r := range cfg.InhibitRules {
		if strings.Join(r.SourceMatchers, ",") == `alertname="FaceIDExporterDown"` &&
			strings.Join(r.TargetMatchers, ",") == wantTargets &&
			strings.Join(r.Equal, ",") == "job" {
			found = true
		}
	}
	if !found {
		t.Errorf("no inhibit rule from FaceIDExporterDown with target_matchers %s and equal [job]: %+v", wantTargets, cfg.InhibitRules)
	}
}
