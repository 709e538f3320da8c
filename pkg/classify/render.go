package classify

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// catalogJSON is the public JSON form of a catalog (`exporter catalog --format json`
// and GET /api/v1/catalog).
type catalogJSON struct {
	Version        int                 `json:"version"`
	Source         string              `json:"source"`
	Families       []familyJSON        `json:"families"`
	BillingChanges []billingChangeJSON `json:"billing_changes"`
	ReqIDRule      *reqIDRuleJSON      `json:"req_id_rule,omitempty"`
	Risk           riskJSON            `json:"risk"`
	Codes          []codeJSON          `json:"codes"`
	DeviceTags     []deviceTagJSON     `json:"device_tags"`
	IdentityTags   []identityTagJSON   `json:"identity_tags"`
}

type familyJSON struct {
	Name     string   `json:"name"`
	Title    string   `json:"title"`
	Channels []string `json:"channels"`
}

type billingChangeJSON struct {
	Family         string   `json:"family"`
	Codes          []string `json:"codes"`
	Effective      string   `json:"effective"`
	BillableBefore *bool    `json:"billable_before"`
	Note           string   `json:"note,omitempty"`
}

type reqIDRuleJSON struct {
	Family        string  `json:"family"`
	Code          string  `json:"code"`
	WindowSeconds float64 `json:"window_seconds"`
}

type levelJSON struct {
	Max      int `json:"max"`
	HighFrom int `json:"high_from"`
}

type riskJSON struct {
	DeviceLevel levelJSON `json:"device_level"`
	RiskLevel   levelJSON `json:"risk_level"`
}

type codeJSON struct {
	Family           string `json:"family"`
	Code             string `json:"code"`
	Meaning          string `json:"meaning"`
	Category         string `json:"category"`
	Billable         *bool  `json:"billable"`
	BillingSource    string `json:"billing_source"`
	BillableBefore   *bool  `json:"billable_before,omitempty"`
	BillingChangedAt string `json:"billing_changed_at,omitempty"`
	Action           string `json:"action,omitempty"`
	Note             string `json:"note,omitempty"`
}

type deviceTagJSON struct {
	Tag       string   `json:"tag"`
	Name      string   `json:"name"`
	Meaning   string   `json:"meaning"`
	Platforms []string `json:"platforms"`
	Note      string   `json:"note,omitempty"`
}

type identityTagJSON struct {
	Tag  string `json:"tag"`
	Type string `json:"type"`
}

func boolPtr(b Billable) *bool {
	switch b {
	case BillableTrue:
		v := true
		return &v
	case BillableFalse:
		v := false
		return &v
	}
	return nil
}

func (c *Catalog) toJSON() catalogJSON {
	out := catalogJSON{
		Version: c.Version, Source: c.Source,
		Risk: riskJSON{
			DeviceLevel: levelJSON{Max: c.DeviceLevel.Max, HighFrom: c.DeviceLevel.HighFrom},
			RiskLevel:   levelJSON{Max: c.RiskLevel.Max, HighFrom: c.RiskLevel.HighFrom},
		},
		Families: []familyJSON{}, BillingChanges: []billingChangeJSON{}, Codes: []codeJSON{},
		DeviceTags: []deviceTagJSON{}, IdentityTags: []identityTagJSON{},
	}
	for _, f := range c.Families {
		out.Families = append(out.Families, familyJSON{Name: f.Name, Title: f.Title, Channels: f.Channels})
	}
	for _, b := range c.BillingChanges {
		out.BillingChanges = append(out.BillingChanges, billingChangeJSON{
			Family: b.Family, Codes: b.Codes, Effective: b.Effective.Format(time.RFC3339), BillableBefore: boolPtr(b.BillableBefore), Note: b.Note,
		})
	}
	if r := c.ReqIDRule; r.Family != "" {
		out.ReqIDRule = &reqIDRuleJSON{Family: r.Family, Code: r.Code, WindowSeconds: r.Window.Seconds()}
	}
	for _, k := range c.Codes {
		cj := codeJSON{
			Family: k.Family, Code: k.Code, Meaning: k.Meaning, Category: k.Category, Billable: boolPtr(k.Billable),
			BillingSource: k.Billing, Action: k.Action, Note: k.Note,
		}
		if !k.ChangedAt.IsZero() {
			cj.BillableBefore = boolPtr(k.BillableBefore)
			cj.BillingChangedAt = k.ChangedAt.Format(time.RFC3339)
		}
		out.Codes = append(out.Codes, cj)
	}
	for _, t := range c.DeviceTags {
		out.DeviceTags = append(out.DeviceTags, deviceTagJSON{Tag: t.Tag, Name: t.Name, Meaning: t.Meaning, Platforms: t.Platforms, Note: t.Note})
	}
	for _, t := range c.IdentityTags {
		out.IdentityTags = append(out.IdentityTags, identityTagJSON{Tag: t.Tag, Type: t.Type})
	}
	return out
}

// WriteJSON writes the catalog as indented JSON.
func (c *Catalog) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(c.toJSON()); err != nil {
		return fmt.Errorf("write catalog json: %w", err)
	}
	return nil
}

// WriteCSV writes one row per code.
func (c *Catalog) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	rows := [][]string{{"family", "code", "category", "billable", "billing_source", "billable_before", "billing_changed_at", "meaning", "action", "note"}}
	for _, k := range c.Codes {
		before, changed := "", ""
		if !k.ChangedAt.IsZero() {
			before, changed = k.BillableBefore.String(), k.ChangedAt.Format(time.RFC3339)
		}
		rows = append(rows, []string{k.Family, k.Code, k.Category, k.Billable.String(), k.Billing, before, changed, k.Meaning, k.Action, k.Note})
	}
	if err := cw.WriteAll(rows); err != nil {
		return fmt.Errorf("write catalog csv: %w", err)
	}
	return nil
}

// WriteMarkdown writes the catalog as the Markdown reference page docs/codes.md.
func (c *Catalog) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("# FaceID return codes, billing and risk tags\n\n")
	b.WriteString("<!-- Generated by `exporter catalog --format markdown`; do not edit. A test fails when this file is stale. -->\n\n")
	fmt.Fprintf(&b, "Source: %s. Catalog version %d. Where the table and this page disagree, the table is right.\n\n", c.Source, c.Version)
	b.WriteString("`billable` is `true`, `false` or `unknown`. `source` says where that answer comes from:\n\n")
	b.WriteString("- `seed`: the table's 是否收费 column.\n")
	b.WriteString("- `no_column`: the table has **no** 是否收费 column; the answer is this project's reading of the table's other text (see the note). Confirm it against your invoices.\n")
	b.WriteString("- `not_in_seed`: the code is not in the table; billing is `unknown`.\n")
	b.WriteString("- `override`: set by a `--catalog.file` override.\n\n")
	b.WriteString("Outcome is `success` for code `0` and `failure` for every other code.\n\n")

	b.WriteString("## Billing rules\n\n")
	for _, bc := range c.BillingChanges {
		fmt.Fprintf(&b, "- **Dated change** (%s): codes %s were billable=%s before %s and follow their own `billable` from then on. "+
			"The date is Beijing time (UTC+08:00), so an event at %s is already under the new rule. Rules are keyed by the event's `ts`, not by the time of processing.\n",
			bc.Family, strings.Join(bc.Codes, ", "), bc.BillableBefore, bc.Effective.Format(time.RFC3339), bc.Effective.UTC().Format(time.RFC3339))
	}
	if r := c.ReqIDRule; r.Family != "" {
		fmt.Fprintf(&b, "- **reqId rule** (%s): a success (code %s) is billed once per `req_id`; a further success with the same `req_id` less than %s after the billed one is not billed; "+
			"the window is anchored at the billed success, and the first success at or after its end is billed again and opens a new window. A success without `req_id` is billed. "+
			"Events that arrive out of order: a success earlier than the open window's anchor is billed only when it lies a whole window before it.\n", r.Family, r.Code, r.Window)
	}
	b.WriteString("- **Duplicates**: an event whose `id` was already seen is a redelivery; it is never counted or billed twice.\n")
	b.WriteString("- **Unknown codes** (not in the table of the channel's family) have billable `unknown`.\n\n")

	b.WriteString("## What the table leaves open\n\n")
	b.WriteString("- The NFC tables (实证 NFC 服务端 / 终端) have no 是否收费 column. Server code 0's 处理措施 (\"相同的 reqId 有效期为5分钟，有效期内重复查询不重复计费\") implies a success is billed per reqId; the other server codes are read as not billed. Terminal codes are client-side results and are read as never billed.\n")
	b.WriteString("- The 意愿核身 table lists only 66666004, 66666006 and 66666010: it has no success row. A willingness success (code 0) is counted as a success with billable `unknown`.\n")
	b.WriteString("- 66664027/66664029 and 66664028/66664030 share one row each in the terminal table; each code is listed here on its own.\n")
	b.WriteString("- Several meanings repeat across codes (2009 and 2014; 1004 and 2010; 1210 and 2013; 66660016 and 400601; 66660023 and 66665001); they are kept as written.\n")
	b.WriteString("- PaaS return codes are not in this table; add them with a `--catalog.file` override.\n\n")

	for _, f := range c.Families {
		fmt.Fprintf(&b, "## %s (`%s`)\n\nChannels: %s.\n\n", f.Title, f.Name, "`"+strings.Join(f.Channels, "`, `")+"`")
		b.WriteString("| code | meaning | category | billable | source | notes |\n|---|---|---|---|---|---|\n")
		for _, k := range c.Codes {
			if k.Family != f.Name {
				continue
			}
			billable := k.Billable.String()
			if !k.ChangedAt.IsZero() {
				billable += fmt.Sprintf(" (%s before %s)", k.BillableBefore, k.ChangedAt.Format("2006-01-02"))
			}
			notes := strings.TrimSpace(strings.Join(nonEmpty(k.Action, k.Note), " — "))
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s |\n", k.Code, mdCell(k.Meaning), k.Category, billable, k.Billing, mdCell(notes))
		}
		b.WriteString("\n")
	}

	b.WriteString("## Risk levels\n\n")
	fmt.Fprintf(&b, "- deviceInfoLevel `device_level`: 0–%d; %d and above is **high** (intercepted).\n", c.DeviceLevel.Max, c.DeviceLevel.HighFrom)
	fmt.Fprintf(&b, "- riskInfoLevel `risk_level`: 0–%d; %d and above is **high** (intercepted).\n", c.RiskLevel.Max, c.RiskLevel.HighFrom)
	b.WriteString("- An event's risk is `high` when either level is high, `low` when a level is present and neither is high, `unknown` when it carries neither. A level outside its range (such as -1, \"not obtained\") counts as absent and is reported.\n\n")
	b.WriteString("## Device risk tags (deviceInfoTag)\n\n| tag | name | meaning | platforms |\n|---|---|---|---|\n")
	for _, t := range c.DeviceTags {
		meaning := t.Meaning
		if t.Note != "" {
			meaning += " (" + t.Note + ")"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", t.Tag, t.Name, mdCell(meaning), strings.Join(t.Platforms, ", "))
	}
	b.WriteString("\nDevice tag 1001 and WeChat code 1001, device tag 3 and system code 3, and tags 202, 203 and 1005 are different namespaces: a tag never matches a code.\n\n")
	b.WriteString("## Identity risk tags (riskInfoTag)\n\n| tag | type |\n|---|---|\n")
	for _, t := range c.IdentityTags {
		fmt.Fprintf(&b, "| `%s` | %s |\n", t.Tag, t.Type)
	}
	b.WriteString("\n`attack` = 攻击风险, `business` = 综合业务风险.\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write catalog markdown: %w", err)
	}
	return nil
}

func nonEmpty(s ...string) []string {
	var out []string
	for _, v := range s {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

func mdCell(s string) string {
	s = strings.ReplaceAll(s, "|", "\\|")
	return strings.ReplaceAll(s, "\n", " ")
}
