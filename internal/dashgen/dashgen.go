// Package dashgen generates the Grafana dashboards of dashboards/ from Go, so
// that their queries name the recording rules of internal/rulegen and the
// exporter's metrics in one place; a golden test keeps the committed JSON equal
// to what it generates.
package dashgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/faceid-observability/faceid-exporter/internal/rulegen"
)

// PluginDatasourceType is the Grafana plugin datasource of grafana-plugin/
// (the id in its src/plugin.json); its dashboards' targets are not PromQL.
const PluginDatasourceType = "faceid-verification-datasource"

// PluginAnyValue is the filter value the plugin reads as every value: the
// custom All value of the plugin dashboard's variables.
const PluginAnyValue = "*"

// SchemaVersion is the dashboard schema version of the Grafana the plugin
// is built for (12.4): Grafana migrates dashboards with an older one on load.
const SchemaVersion = 42

// upSelector selects the exporter's scrape targets, as the rules do.
const upSelector = `up{` + rulegen.DefaultJobSelector + `}`

// Dashboard is one generated dashboard file.
type Dashboard struct {
	File  string // base name in dashboards/
	UID   string
	Title string
	Desc  string
	Tags  []string
	Rows  []Row
	// Plugin makes the dashboard read the FaceID verification datasource
	// (PluginDatasourceType) instead of Prometheus; Channels are then the
	// values of its channel variable.
	Plugin   bool
	Channels []string
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
	// Thresholds colour the value (stat, gauge, bargauge); the first step's
	// Value is nil (the base colour).
	Thresholds []Step
	// DisplayName names each field (e.g. "${__field.labels.channel}").
	DisplayName string
	// Horizontal draws a bar gauge as horizontal gradient bars, names left.
	Horizontal bool
	// Tables of the plugin: columns hidden, columns 80 px wide, and the column
	// sorted newest first ("" = no sort); every column is filterable.
	Hidden   []string
	Narrow   []string
	SortDesc string
}

// Step is one threshold step.
type Step struct {
	Color string
	Value *float64
}

// Target is one query of a panel: PromQL (Expr, Legend), or the query model
// of the FaceID verification datasource (Plugin: queryType and its fields).
type Target struct {
	Expr   string
	Legend string
	Plugin map[string]any
}

var (
	promDS   = map[string]any{"type": "prometheus", "uid": "${datasource}"}
	pluginDS = map[string]any{"type": PluginDatasourceType, "uid": "${datasource}"}
)

// datasource is the datasource of every panel and target of the dashboard.
func (d Dashboard) datasource() map[string]any {
	if d.Plugin {
		return pluginDS
	}
	return promDS
}

func (d Dashboard) variables() []any {
	all := map[string]any{"selected": true, "text": []any{"All"}, "value": []any{"$__all"}}
	if d.Plugin {
		options := []any{map[string]any{"selected": true, "text": "All", "value": "$__all"}}
		for _, c := range d.Channels {
			options = append(options, map[string]any{"selected": false, "text": c, "value": c})
		}
		return []any{
			map[string]any{"name": "datasource", "label": "FaceID datasource", "type": "datasource", "query": PluginDatasourceType,
				"refresh": 1, "hide": 0, "regex": "", "current": map[string]any{}, "options": []any{}},
			// All is "*", the plugin's filter for every value (grafana-plugin's
			// plugin.AnyValue); a multi-value selection reaches it as a list.
			map[string]any{"name": "channel", "label": "Channel", "type": "custom", "query": strings.Join(d.Channels, ","),
				"includeAll": true, "allValue": PluginAnyValue, "multi": true, "hide": 0, "current": all, "options": options},
		}
	}
	return variables()
}

func variables() []any {
	query := func(name, label, q string, multi bool) map[string]any {
		return map[string]any{
			"name": name, "label": label, "type": "query", "datasource": promDS,
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
		query("instance", "Instance", `label_values(`+upSelector+`, instance)`, true),
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
			panels = append(panels, p.json(d.datasource(), id, x, y, w, h))
			id++
			x += w
			if h > rowH {
				rowH = h
			}
		}
		y += rowH
	}
	var links []any
	// The plugin dashboard's datasource variable selects another kind of
	// datasource: it passes no variables on.
	links = append(links, map[string]any{"title": "FaceID dashboards", "type": "dashboards", "tags": []any{"faceid"},
		"asDropdown": true, "includeVars": !d.Plugin, "keepTime": true, "icon": "external link", "targetBlank": false})
	tags := make([]any, 0, len(d.Tags))
	for _, t := range d.Tags {
		tags = append(tags, t)
	}
	doc := map[string]any{
		"uid": d.UID, "title": d.Title, "description": d.Desc, "tags": tags,
		"schemaVersion": SchemaVersion, "version": 1, "editable": true, "graphTooltip": 1,
		"timezone": "browser", "refresh": "30s", "time": map[string]any{"from": "now-6h", "to": "now"},
		"fiscalYearStartMonth": 0, "liveNow": false, "weekStart": "",
		"timepicker": map[string]any{},
		"templating": map[string]any{"list": d.variables()},
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

func (p Panel) json(ds map[string]any, id, x, y, w, h int) map[string]any {
	var targets []any
	plugin := ds["type"] == PluginDatasourceType
	for i, t := range p.Targets {
		tj := map[string]any{"refId": string(rune('A' + i)), "datasource": ds}
		if plugin {
			for k, v := range t.Plugin {
				tj[k] = v
			}
		} else {
			tj["expr"], tj["legendFormat"] = t.Expr, t.Legend
			tj["range"], tj["instant"], tj["editorMode"] = !p.Instant, p.Instant, "code"
			if p.Type == "table" {
				tj["format"] = "table"
			}
		}
		targets = append(targets, tj)
	}
	defaults := map[string]any{}
	if p.Unit != "" || !plugin {
		defaults["unit"] = p.Unit
	}
	if p.Min != nil {
		defaults["min"] = *p.Min
	}
	if p.Max != nil {
		defaults["max"] = *p.Max
	}
	if p.DisplayName != "" {
		defaults["displayName"] = p.DisplayName
	}
	if len(p.Thresholds) > 0 {
		var steps []any
		for _, st := range p.Thresholds {
			steps = append(steps, map[string]any{"color": st.Color, "value": st.Value})
		}
		defaults["color"] = map[string]any{"mode": "thresholds"}
		defaults["thresholds"] = map[string]any{"mode": "absolute", "steps": steps}
	}
	overrides := []any{}
	column := func(name, prop string, value any) {
		overrides = append(overrides, map[string]any{"matcher": map[string]any{"id": "byName", "options": name},
			"properties": []any{map[string]any{"id": prop, "value": value}}})
	}
	for _, c := range p.Hidden {
		column(c, "custom.hidden", true)
	}
	for _, c := range p.Narrow {
		column(c, "custom.width", 80)
	}
	out := map[string]any{
		"id": id, "type": p.Type, "title": p.Title, "description": p.Desc, "datasource": ds,
		"gridPos":     map[string]any{"h": h, "w": w, "x": x, "y": y},
		"targets":     targets,
		"fieldConfig": map[string]any{"defaults": defaults, "overrides": overrides},
	}
	reduce := map[string]any{"calcs": []any{"lastNotNull"}, "fields": "", "values": false}
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
	// Each panel type gets its own options (Grafana's schema: the stat,
	// gauge and bargauge panelcfg types; dashboards/schema_test.go decodes
	// them strictly).
	case "bargauge":
		opts := map[string]any{"reduceOptions": reduce, "orientation": "auto", "displayMode": "gradient",
			"showUnfilled": true, "valueMode": "color", "namePlacement": "auto", "sizing": "auto",
			"minVizHeight": 16, "minVizWidth": 8, "maxVizHeight": 300}
		if p.Horizontal {
			opts["orientation"], opts["namePlacement"], opts["minVizHeight"], opts["minVizWidth"] = "horizontal", "left", 10, 0
		}
		out["options"] = opts
	case "gauge":
		out["options"] = map[string]any{"reduceOptions": reduce, "orientation": "auto",
			"showThresholdLabels": false, "showThresholdMarkers": true, "sizing": "auto", "minVizWidth": 75, "minVizHeight": 75}
	case "stat":
		out["options"] = map[string]any{"reduceOptions": reduce,
			"orientation": "auto", "textMode": "auto", "colorMode": "value", "graphMode": "area", "justifyMode": "auto",
			"wideLayout": true, "showPercentChange": false, "percentChangeColorMode": "standard"}
	case "table":
		opts := map[string]any{"showHeader": true, "cellHeight": "sm"}
		if plugin {
			defaults["custom"] = map[string]any{"filterable": true, "align": "auto", "cellOptions": map[string]any{"type": "auto"}}
			sortBy := []any{}
			if p.SortDesc != "" {
				sortBy = append(sortBy, map[string]any{"displayName": p.SortDesc, "desc": true})
			}
			opts["sortBy"] = sortBy
			opts["footer"] = map[string]any{"show": false, "reducer": []any{"sum"}, "fields": ""}
		} else {
			out["transformations"] = []any{map[string]any{"id": "organize", "options": map[string]any{
				"excludeByName": map[string]any{"Time": true, "__name__": true, "job": true}}}}
		}
		out["options"] = opts
	}
	return out
}
