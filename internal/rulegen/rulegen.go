// Package rulegen is the single source of the project's Prometheus recording
// and alerting rules. It renders them for production (alerts/*.yml) and, with
// every window, offset, `for` and group interval divided by a scale factor,
// for the end-to-end test, so no second copy of a rule is ever written by hand.
// The label matchers that select the exporter's series (the scrape job) are a
// rendering option too.
package rulegen

import (
	"bytes"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

// DocsBase is the web address of the repository's docs/ directory.
const DocsBase = "https://github.com/faceid-observability/faceid-exporter/blob/main/docs/"

// RunbookBase is where runbook_url annotations point; an alert's runbook is
// RunbookBase + "<Alert>.md" and lives in docs/runbooks/ of this repository,
// unless the alert names a section of another document (Rule.Runbook).
const RunbookBase = DocsBase + "runbooks/"

// DefaultJobSelector selects the exporter's series in the committed rules:
// the scrape job of deploy/prometheus/prometheus.yml and of the Helm chart's
// ServiceMonitor.
const DefaultJobSelector = `job="faceid-exporter"`

// Severities an alert may carry.
const (
	SeverityPage   = "page"
	SeverityTicket = "ticket"
)

// Profile says how to render the rule source.
type Profile struct {
	// Name appears in the generated files' header.
	Name string
	// Scale divides every marked window and offset, every `for` and every group
	// interval. 1 renders the production rules.
	Scale int
	// JobSelector holds the label matchers, without braces, added to every
	// selector of an exporter metric (and of up): `job="faceid-exporter"`, or
	// for example `namespace="faceid",job=~"faceid-.*"`. At least one matcher.
	JobSelector string
}

// Production renders the rules shipped in alerts/.
var Production = Profile{Name: "production", Scale: 1, JobSelector: DefaultJobSelector}

// Fast returns the profile used by the end-to-end test: the same rules with
// all time windows divided by scale.
func Fast(scale int) Profile {
	return Profile{Name: fmt.Sprintf("fast (windows / %d)", scale), Scale: scale, JobSelector: DefaultJobSelector}
}

// File is one generated rule file.
type File struct {
	Name   string // base name, such as "verification.rules.yml"
	Groups []Group
}

// Group is one Prometheus rule group.
type Group struct {
	Name     string
	Interval string // "" = the global evaluation interval
	Rules    []Rule
}

// Rule is a recording rule (Record set) or an alerting rule (Alert set).
type Rule struct {
	Record string
	Alert  string
	Expr   string
	For    string
	// Alerts only.
	Severity    string
	Summary     string
	Description string
	// Labels beyond severity, for alerts and recording rules.
	Labels map[string]string
	// Help says, for docs/alerts.md, what a recording rule holds and by which
	// labels, or when an alert fires.
	Help string
	// OutlivesExporterDown exempts an alert from the Alertmanager inhibition by
	// FaceIDExporterDown: it is about the group's committed books, which the
	// live replicas take over, not about one replica's partial rates.
	OutlivesExporterDown bool
	// Runbook, for alerts whose runbook is a section of another document,
	// is that document and anchor under docs/ ("reconcile.md#faceidbillmismatch");
	// empty means docs/runbooks/<Alert>.md.
	Runbook string
}

// Files returns the rule source: every rule file, group and rule, unrendered.
func Files() []File { return ruleFiles() }

// Alerts returns every alerting rule of the source, in file order.
func Alerts() []Rule {
	var out []Rule
	for _, f := range Files() {
		for _, g := range f.Groups {
			for _, r := range g.Rules {
				if r.Alert != "" {
					out = append(out, r)
				}
			}
		}
	}
	return out
}

// InhibitionExempt returns the alerts FaceIDExporterDown does not inhibit
// (besides itself), in source order.
func InhibitionExempt() []string {
	var out []string
	for _, a := range Alerts() {
		if a.OutlivesExporterDown {
			out = append(out, a.Alert)
		}
	}
	return out
}

// Records returns the name of every recording rule of the source, sorted.
func Records() []string {
	var out []string
	for _, f := range Files() {
		for _, g := range f.Groups {
			for _, r := range g.Rules {
				if r.Record != "" {
					out = append(out, r.Record)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// RunbookPath returns where under docs/ the runbook of an alert is:
// "runbooks/<Alert>.md", or the rule's Runbook.
func (r Rule) RunbookPath() string {
	if r.Runbook != "" {
		return r.Runbook
	}
	return "runbooks/" + r.Alert + ".md"
}

// RunbookURL returns the runbook_url of an alert.
func (r Rule) RunbookURL() string { return DocsBase + r.RunbookPath() }

// markerRe matches the window markers of the rule source: $(5m) renders as a
// scaled duration, $secs(5m) as the scaled duration in seconds.
var markerRe = regexp.MustCompile(`\$(secs)?\(([0-9]+[smhdwy][0-9smhdwy]*)\)`)

// jobMarker stands, in expressions and descriptions of the rule source, for
// the profile's job selector: up{$job}, x{$job,reason="fenced"}.
const jobMarker = "$job"

// checkJobSelector refuses a selector that is not a non-empty list of label
// matchers or that names a metric.
func checkJobSelector(sel string) error {
	if strings.TrimSpace(sel) == "" {
		return fmt.Errorf("job selector is empty: give at least one label matcher, such as %s", DefaultJobSelector)
	}
	ms, err := parser.ParseMetricSelector("{" + sel + "}")
	if err != nil {
		return fmt.Errorf("job selector %q: %w", sel, err)
	}
	for _, m := range ms {
		if m.Name == model.MetricNameLabel {
			return fmt.Errorf("job selector %q names a metric; give label matchers only", sel)
		}
	}
	return nil
}

// Render renders the rule source with the profile, one YAML document per file.
func Render(p Profile) (map[string][]byte, error) {
	if p.Scale < 1 {
		return nil, fmt.Errorf("profile %q: scale %d must be at least 1", p.Name, p.Scale)
	}
	if err := checkJobSelector(p.JobSelector); err != nil {
		return nil, fmt.Errorf("profile %q: %w", p.Name, err)
	}
	out := map[string][]byte{}
	for _, f := range Files() {
		data, err := renderFile(p, f)
		if err != nil {
			return nil, fmt.Errorf("render %s: %w", f.Name, err)
		}
		out[f.Name] = data
	}
	return out, nil
}

type yamlRuleFile struct {
	Groups []yamlGroup `yaml:"groups"`
}

type yamlGroup struct {
	Name     string     `yaml:"name"`
	Interval string     `yaml:"interval,omitempty"`
	Rules    []yamlRule `yaml:"rules"`
}

type yamlRule struct {
	Record      string            `yaml:"record,omitempty"`
	Alert       string            `yaml:"alert,omitempty"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
}

func renderFile(p Profile, f File) ([]byte, error) {
	doc := yamlRuleFile{}
	for _, g := range f.Groups {
		yg := yamlGroup{Name: g.Name}
		if g.Interval != "" {
			d, err := scaleDuration(g.Interval, p.Scale)
			if err != nil {
				return nil, fmt.Errorf("group %s interval: %w", g.Name, err)
			}
			yg.Interval = d
		}
		for _, r := range g.Rules {
			yr, err := renderRule(p, r)
			if err != nil {
				return nil, fmt.Errorf("group %s: %w", g.Name, err)
			}
			yg.Rules = append(yg.Rules, yr)
		}
		doc.Groups = append(doc.Groups, yg)
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# Code generated by internal/rulegen (profile %s). DO NOT EDIT.\n", p.Name)
	fmt.Fprintf(&buf, "# Source: internal/rulegen/rules.go. Regenerate: go test ./internal/rulegen -run TestGolden -update\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encode yaml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode yaml: %w", err)
	}
	return buf.Bytes(), nil
}

func renderRule(p Profile, r Rule) (yamlRule, error) {
	name := r.Record + r.Alert
	expr, err := expand(strings.ReplaceAll(strings.TrimSpace(r.Expr), jobMarker, p.JobSelector), p.Scale)
	if err != nil {
		return yamlRule{}, fmt.Errorf("rule %s: %w", name, err)
	}
	yr := yamlRule{Record: r.Record, Alert: r.Alert, Expr: expr}
	if r.For != "" {
		if yr.For, err = scaleDuration(r.For, p.Scale); err != nil {
			return yamlRule{}, fmt.Errorf("rule %s for: %w", name, err)
		}
	}
	if len(r.Labels) > 0 || r.Alert != "" {
		yr.Labels = map[string]string{}
		for k, v := range r.Labels {
			yr.Labels[k] = v
		}
	}
	if r.Alert != "" {
		yr.Labels["severity"] = r.Severity
		summary, err := expand(r.Summary, p.Scale)
		if err != nil {
			return yamlRule{}, fmt.Errorf("rule %s summary: %w", name, err)
		}
		desc, err := expand(strings.ReplaceAll(strings.Join(strings.Fields(r.Description), " "), jobMarker, p.JobSelector), p.Scale)
		if err != nil {
			return yamlRule{}, fmt.Errorf("rule %s description: %w", name, err)
		}
		yr.Annotations = map[string]string{
			"summary":     summary,
			"description": desc,
			"runbook_url": r.RunbookURL(),
		}
	}
	return yr, nil
}

// expand replaces the window markers of s with their scaled values.
func expand(s string, scale int) (string, error) {
	var firstErr error
	out := markerRe.ReplaceAllStringFunc(s, func(m string) string {
		sub := markerRe.FindStringSubmatch(m)
		d, err := model.ParseDuration(sub[2])
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("marker %s: %w", m, err)
			}
			return m
		}
		scaled := time.Duration(d) / time.Duration(scale)
		if scaled*time.Duration(scale) != time.Duration(d) || scaled < time.Second {
			if firstErr == nil {
				firstErr = fmt.Errorf("marker %s: %s does not divide into whole seconds by %d", m, sub[2], scale)
			}
			return m
		}
		if sub[1] == "secs" {
			return strconv.FormatInt(int64(scaled/time.Second), 10)
		}
		return model.Duration(scaled).String()
	})
	return out, firstErr
}

func scaleDuration(s string, scale int) (string, error) {
	return expand("$("+s+")", scale)
}
