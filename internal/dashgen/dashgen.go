// Package dashgen generates the Grafana dashboards of dashboards/ from Go, so
// that their queries name the recording rules of internal/rulegen and the
// exporter's metrics in one place; a golden test keeps the committed JSON equal
// to what it generates.
package dashgen

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// PluginDatasourceType is the Grafana plugin datasource of grafana-plugin/;
// its dashboards' targets are not PromQL.
const PluginDatasourceType = "faceid-verification-datasource"

// Dashboard is one generated dashboard file.
type Dashboard struct {
	File  string // base name in dashboards/
	UID   string
	Title string
	Desc  string
	Tags  []string
	Rows  []Row
}

// Row is a titled band of panels laid out left to right.
type Row struct {
	Title  string
	Panels []Panel
}

// Panel is one Grafana panel.
type Panel struct {
	Type    string // stat, timeseries, table, gauge, bargauge
	Title   string
	Desc    string
	Unit    string
	Width   int // of 24; 0 = 8
	Height  int // 0 = 8
	Targets []Target
	// Instant makes every target an instant query (tables, stats of "now").
	Instant bool
	Stack   bool
	Min     *float64
	Max     *float64
}

// Target is one PromQL query of a panel.
type Target struct {
	Expr   string
	Legend string
}

var ds = map[string]any{"type": "prometheus", "uid": "${datasource}"}

func variables() []any {
	query := func(name, label, q string, multi bool) map[string]any {
		return map[string]any{
			"name": name, "label": label, "type": "query", "datasource": ds,
			"definition": q, "query": map[string]any{"query": q, "refId": name},
			"includeAll": true, "multi": multi, "allValue": ".*", "refresh": 2, "sort": 1, "hide": 0, "regex": "",
			"current": map[string]any{"selected": true, "text": []any{"All"}, "value": []any{"$__all"}},
			"options": []any{},
		}
	}
	return []any{
		map[string]any{"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
			"refresh": 1, "hide": 0, "regex": "", "current": map[string]any{}, "options": []any{}},
		query("channel", "Channel", "label_values(faceid_verifications_total, channel)", true),
		query("instance", "Instance", `label_values(up{job="faceid-exporter"}, instance)`, true),
	}
}

// JSON renders the dashboard as provisioning-ready JSON.
func (d Dashboard) JSON() ([]byte, error) {
	var panels []any
	id, y := 1, 0
	for _, row := range d.Rows {
		panels = append(panels, map[string]any{
			"id": id, "type": "row", "title": row.Title, "collapsed": false, "panels": []any{},
			"gridPos": map[string]any{"h": 1, "w": 24, "x": 0, "y": y},
		})
		id++
		y++
		x, rowH := 0, 0
		for _, p := range row.Panels {
			w, h := p.Width, p.Height
			if w == 0 {
				w = 8
			}
			if h == 0 {
				h = 8
			}
			if x+w > 24 {
				x, y = 0, y+rowH
				rowH = 0
			}
			panels = append(panels, p.json(id, x, y, w, h))
			id++
			x += w
			if h > rowH {
				rowH = h
			}
		}
		y += rowH
	}
	var links []any
	links = append(links, map[string]any{"title": "FaceID dashboards", "type": "dashboards", "tags": []any{"faceid"},
		"asDropdown": true, "includeVars": true, "keepTime": true, "icon": "external link", "targetBlank": false})
	tags := make([]any, 0, len(d.Tags))
	for _, t := range d.Tags {
		tags = append(tags, t)
	}
	doc := map[string]any{
		"uid": d.UID, "title": d.Title, "description": d.Desc, "tags": tags,
		"schemaVersion": 39, "version": 1, "editable": true, "graphTooltip": 1,
		"timezone": "browser", "refresh": "30s", "time": map[string]any{"from": "now-6h", "to": "now"},
		"fiscalYearStartMonth": 0, "liveNow": false, "weekStart": "",
		"timepicker": map[string]any{},
		"templating": map[string]any{"list": variables()},
		"annotations": map[string]any{"list": []any{map[string]any{
			"builtIn": 1, "datasource": map[string]any{"type": "grafana", "uid": "-- Grafana --"},
			"enable": true, "hide": true, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts", "type": "dashboard",
		}}},
		"links":  links,
		"panels": panels,
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encode dashboard %s: %w", d.UID, err)
	}
	return buf.Bytes(), nil
}

func (p Panel) json(id, x, y, w, h int) map[string]any {
	var targets []any
	for i, t := range p.Targets {
		tj := map[string]any{
			"refId": string(rune('A' + i)), "datasource": ds, "expr": t.Expr, "legendFormat": t.Legend,
			"range": !p.Instant, "instant": p.Instant, "editorMode": "code",
		}
		if p.Type == "table" {
			tj["format"] = "table"
		}
		targets = append(targets, tj)
	}
	defaults := map[string]any{"unit": p.Unit}
	if p.Min != nil {
		defaults["min"] = *p.Min
	}
	if p.Max != nil {
		defaults["max"] = *p.Max
	}
	out := map[string]any{
		"id": id, "type": p.Type, "title": p.Title, "description": p.Desc, "datasource": ds,
		"gridPos":     map[string]any{"h": h, "w": w, "x": x, "y": y},
		"targets":     targets,
		"fieldConfig": map[string]any{"defaults": defaults, "overrides": []any{}},
	}
	switch p.Type {
	case "timeseries":
		stacking := "none"
		if p.Stack {
			stacking = "normal"
		}
		defaults["custom"] = map[string]any{"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never",
			"stacking": map[string]any{"mode": stacking, "group": "A"}}
		out["options"] = map[string]any{"legend": map[string]any{"displayMode": "table", "placement": "bottom", "calcs": []any{"mean", "max", "lastNotNull"}, "showLegend": true},
			"tooltip": map[string]any{"mode": "multi", "sort": "desc"}}
	case "stat", "gauge", "bargauge":
		out["options"] = map[string]any{"reduceOptions": map[string]any{"calcs": []any{"lastNotNull"}, "fields": "", "values": false},
			"orientation": "auto", "textMode": "auto", "colorMode": "value", "graphMode": "area", "justifyMode": "auto"}
	case "table":
		out["options"] = map[string]any{"showHeader": true, "cellHeight": "sm"}
		out["transformations"] = []any{map[string]any{"id": "organize", "options": map[string]any{
			"excludeByName": map[string]any{"Time": true, "__name__": true, "job": true}}}}
	}
	return out
}
