package rulegen

import (
	"bytes"
	_ "embed"
	"fmt"
	"strings"
	"text/template"
)

//go:embed alerts.md.tmpl
var docsTemplate string

type docAlert struct {
	Name, Severity, For, Help, Runbook, File string
}

type docRecord struct {
	Name, Help, File string
}

type docCode struct {
	Family, Code, Meaning, Why string
}

// RenderDocs renders docs/alerts.md: every alert with its severity and
// runbook, every recording rule, the upstream codes and the wiring.
func RenderDocs() ([]byte, error) {
	cat := mustCatalog()
	data := struct {
		Alerts            []docAlert
		Records           []docRecord
		Codes             []docCode
		Files             []File
		AttackTags        string
		JobSelector       string
		Exempt            []string
		InhibitionTargets string
		Thresholds        map[string]string
	}{
		Files:             Files(),
		AttackTags:        strings.Join(attackTagNames, ", "),
		JobSelector:       DefaultJobSelector,
		Exempt:            InhibitionExempt(),
		InhibitionTargets: strings.Join(append([]string{"FaceIDExporterDown"}, InhibitionExempt()...), "|"),
		Thresholds: map[string]string{
			"SurgeFactor":               fmt.Sprint(SurgeFactor),
			"MinSurgeRate":              fmt.Sprint(MinSurgeRate),
			"BillableFailureRatio":      fmt.Sprintf("%g%%", BillableFailureRatio*100),
			"MinBilledRate":             fmt.Sprint(MinBilledRate),
			"SuccessRateDrop":           fmt.Sprintf("%g", SuccessRateDrop*100),
			"UpstreamErrorRatio":        fmt.Sprintf("%g%%", UpstreamErrorRatio*100),
			"UnknownCodeRate":           fmt.Sprint(UnknownCodeRate),
			"PartitionOwnerlessSeconds": fmt.Sprint(PartitionOwnerlessSeconds),
			"LostInputLookback":         LostInputLookback,
		},
	}
	for _, f := range Files() {
		for _, g := range f.Groups {
			for _, r := range g.Rules {
				if r.Alert != "" {
					data.Alerts = append(data.Alerts, docAlert{Name: r.Alert, Severity: r.Severity, For: r.For, Help: r.Help,
						Runbook: r.RunbookPath(), File: f.Name})
				} else {
					data.Records = append(data.Records, docRecord{Name: r.Record, Help: r.Help, File: f.Name})
				}
			}
		}
	}
	for _, c := range upstreamCodes {
		code, ok := cat.Lookup(c.Family, c.Code)
		if !ok {
			return nil, fmt.Errorf("upstream code %s/%s is not in the catalog", c.Family, c.Code)
		}
		data.Codes = append(data.Codes, docCode{Family: c.Family, Code: c.Code, Meaning: code.Meaning, Why: c.Why})
	}
	tmpl, err := template.New("alerts.md").Parse(docsTemplate)
	if err != nil {
		return nil, fmt.Errorf("parse docs template: %w", err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("render docs: %w", err)
	}
	return buf.Bytes(), nil
}
