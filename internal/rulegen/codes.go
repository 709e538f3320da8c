package rulegen

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/faceid-observability/faceid-exporter/pkg/classify"
)

// UpstreamCode is a return code that means Tencent's side (its system, a
// liveness or comparison engine, an authority data source or its network)
// failed, not the user or the caller.
type UpstreamCode struct {
	Family string
	Code   string
	Why    string
}

// UpstreamCodes lists the codes FaceIDUpstreamErrors counts. The catalog's
// categories cannot express this (category "system" also holds caller errors
// such as 1–3), so the list is explicit; a test checks every entry against the
// catalog.
var upstreamCodes = []UpstreamCode{
	{"wechat", "4", "Tencent system error"},
	{"wechat", "6", "Tencent storage write failed"},
	{"wechat", "7", "Tencent storage update failed"},
	{"wechat", "8", "Tencent file storage failed"},
	{"wechat", "10", "Tencent file system error"},
	{"wechat", "11", "Tencent file system timeout"},
	{"wechat", "13", "Tencent CKV service error"},
	{"wechat", "1001", "Liveness engine error"},
	{"wechat", "1006", "ID photo library error"},
	{"wechat", "2001", "Comparison engine error"},
	{"wechat", "2008", "Authority photo source failed"},
	{"wechat", "2017", "Authority data source upgrading"},
	{"sdk", "999999", "Tencent network error"},
	{"nfc_server", "66664006", "Tencent network error (contact support)"},
	{"nfc_server", "66664007", "Tencent network error (contact support)"},
}

// UpstreamCodes returns the codes FaceIDUpstreamErrors counts.
func UpstreamCodes() []UpstreamCode { return append([]UpstreamCode(nil), upstreamCodes...) }

// AttackTagNames are the device tag names FaceIDDeviceAttackTagSurge watches.
var attackTagNames = []string{"camera_hijack", "emulator", "hook", "injection"}

// AttackTagNames returns the device tag names FaceIDDeviceAttackTagSurge watches.
func AttackTagNames() []string { return append([]string(nil), attackTagNames...) }

func mustCatalog() *classify.Catalog {
	cat, err := classify.Default()
	if err != nil {
		// The embedded catalog is validated by pkg/classify's tests.
		panic(fmt.Sprintf("rulegen: embedded catalog: %v", err))
	}
	return cat
}

// upstreamSelector returns a PromQL selector set (joined with "or") matching
// the upstream codes on the channels of their family, over metric.
func upstreamSelector(cat *classify.Catalog, metric string) string {
	byFamily := map[string][]string{}
	var families []string
	for _, c := range upstreamCodes {
		if _, ok := byFamily[c.Family]; !ok {
			families = append(families, c.Family)
		}
		byFamily[c.Family] = append(byFamily[c.Family], regexp.QuoteMeta(c.Code))
	}
	var parts []string
	for _, fam := range families {
		f, ok := cat.Family(fam)
		if !ok {
			panic(fmt.Sprintf("rulegen: upstream code family %q not in the catalog", fam))
		}
		parts = append(parts, fmt.Sprintf(`%s{channel=~"%s",code=~"%s"}`,
			metric, strings.Join(f.Channels, "|"), strings.Join(byFamily[fam], "|")))
	}
	return strings.Join(parts, "\n    or\n    ")
}

// attackTagFill returns zero series for every watched attack tag name on every
// channel with traffic, so a tag never seen before still has a baseline.
func attackTagFill(channelRate string) string {
	names := append([]string(nil), attackTagNames...)
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf(`label_replace(0 * %s, "name", "%s", "", "")`, channelRate, n))
	}
	return strings.Join(parts, "\n  or ")
}
