// Package simulate generates realistic synthetic FaceID verification-result
// events and publishes them to NATS at a steady rate, keeping the ground truth
// of what a correct exporter must count for them.
package simulate

import (
	"fmt"
	"strings"
)

// Scenario names a traffic mix.
type Scenario string

// Scenarios.
const (
	// Baseline is normal traffic: ~90 % successes, a plausible failure mix per
	// channel, ~2 % billable failures, ~1 % high risk.
	Baseline Scenario = "baseline"
	// BillableFailureSpike is baseline with ~40 % billable failures (2006/2016
	// on wechat, 66660004/66660010 on sdk, 66666006 on willingness).
	BillableFailureSpike Scenario = "billable-failure-spike"
	// HighRiskDeviceSurge is baseline with ~40 % of events at device level 3–4
	// (a quarter of them also at risk level 5) carrying attack tags.
	HighRiskDeviceSurge Scenario = "high-risk-device-surge"
	// UnknownCodes is baseline with ~20 % codes that are not in the catalog.
	UnknownCodes Scenario = "unknown-codes"
	// Malformed is baseline with ~20 % messages the exporter must reject.
	Malformed Scenario = "malformed"
)

var scenarios = []Scenario{Baseline, BillableFailureSpike, HighRiskDeviceSurge, UnknownCodes, Malformed}

// Scenarios lists every scenario.
func Scenarios() []Scenario { return append([]Scenario(nil), scenarios...) }

// ScenarioNames lists every scenario name.
func ScenarioNames() []string {
	out := make([]string, len(scenarios))
	for i, s := range scenarios {
		out[i] = string(s)
	}
	return out
}

// ParseScenario returns the scenario named s.
func ParseScenario(s string) (Scenario, error) {
	for _, sc := range scenarios {
		if string(sc) == s {
			return sc, nil
		}
	}
	return "", fmt.Errorf("unknown scenario %q (want one of %s)", s, strings.Join(ScenarioNames(), ", "))
}

// Kind is the part of a scenario an event was drawn from.
type Kind uint8

// Kinds.
const (
	KindBaseline        Kind = iota // the baseline mix
	KindBillableFailure             // injected billable failure (billable-failure-spike)
	KindHighRisk                    // injected high-risk device (high-risk-device-surge)
	KindUnknownCode                 // injected code not in the catalog (unknown-codes)
	KindMalformed                   // injected malformed message (malformed)
)

var kindNames = [...]string{"baseline", "billable_failure", "high_risk", "unknown_code", "malformed"}

// String returns the kind's name.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Shares of events a scenario injects on top of the baseline mix. Chosen so
// the scenario totals land near the contract's figures once the baseline's
// own billable failures and high-risk events are added.
const (
	shareBillableFailure = 0.39
	shareHighRisk        = 0.40
	shareUnknownCode     = 0.20
	shareMalformed       = 0.20
)

// injectShare returns the share of events sc draws from its injected kind.
func injectShare(sc Scenario) (Kind, float64) {
	switch sc {
	case BillableFailureSpike:
		return KindBillableFailure, shareBillableFailure
	case HighRiskDeviceSurge:
		return KindHighRisk, shareHighRisk
	case UnknownCodes:
		return KindUnknownCode, shareUnknownCode
	case Malformed:
		return KindMalformed, shareMalformed
	}
	return KindBaseline, 0
}

// channelWeights is each channel's share of traffic. Channels an override
// catalog might add weigh 1.
var channelWeights = map[string]float64{
	"wechat_h5": 25, "wechat_miniprogram": 15, "eid": 5,
	"app_sdk": 25, "standalone_h5": 8, "pc_h5": 4,
	"willingness": 6, "nfc_server": 7, "nfc_terminal": 5,
}

// familyShape is the baseline outcome mix of a family: the share of successes
// and the share of failures that are billable.
type familyShape struct {
	success          float64
	billableFailures float64
}

var familyShapes = map[string]familyShape{
	"wechat":       {success: 0.90, billableFailures: 0.22},
	"sdk":          {success: 0.90, billableFailures: 0.25},
	"willingness":  {success: 0.88, billableFailures: 0.30},
	"nfc_server":   {success: 0.93},
	"nfc_terminal": {success: 0.88},
}

var defaultShape = familyShape{success: 0.90, billableFailures: 0.20}

// codeWeights makes the common failures common. Catalog codes not listed weigh
// defaultCodeWeight; listed codes missing from the catalog are ignored.
var codeWeights = map[string]map[string]float64{
	"wechat": {
		"1005": 8, "1301": 5, "1004": 4, "1302": 4, "17": 4, "1002": 3, "1201": 3, "1210": 3,
		"15": 3, "2011": 3, "1101": 2, "1303": 2, "16": 2, "2013": 2, "2015": 2,
		"2016": 2, "2006": 1,
	},
	"sdk": {
		"66660018": 6, "66660023": 5, "66660035": 5, "-5018": 4, "999999": 4, "66660041": 3,
		"-5008": 2, "-5023": 2, "66660011": 2, "66660017": 2, "66660016": 2,
		"66660004": 3, "66660010": 1,
	},
	"willingness":  {"66666004": 2, "66666010": 1, "66666006": 1},
	"nfc_server":   {"66664005": 3, "66664003": 2, "66664002": 2},
	"nfc_terminal": {"600101": 8, "66664020": 4, "600103": 3, "66664026": 3, "600104": 2, "66664021": 2},
}

const defaultCodeWeight = 0.5

// unknownCodes are plausible codes that the embedded catalog does not hold,
// per family. Any that an override adds to the catalog are skipped.
var unknownCodes = map[string][]string{
	"wechat":       {"18", "2019", "3001", "9999"},
	"sdk":          {"66660099", "-5099", "400999", "66669999"},
	"willingness":  {"66666001", "66666099"},
	"nfc_server":   {"66664001", "66664099"},
	"nfc_terminal": {"600199", "66664099"},
}

// unknownTextCodes are non-numeric codes, unknown in every family.
var unknownTextCodes = []string{"ERR_TIMEOUT", "E-UNKNOWN"}

// Device tag names by purpose.
var (
	surgeTagNames    = []string{"emulator", "injection", "hook", "camera_hijack"}
	highRiskTagNames = []string{"emulator", "injection", "hook", "camera_hijack", "root_jailbreak", "virtual_environment"}
	lowRiskTagNames  = []string{"tampering", "risky_rom", "parameter_tampering", "modified_device"}
)

// Channel names a malformed message may carry that are not catalog channels.
var bogusChannels = []string{"kiosk_h5", "wechat_mini", "alipay_h5"}

// appIDs and ruleIDs are the business dimensions events carry.
var (
	appIDs  = []string{"app-a", "app-b", "app-c"}
	appW    = []float64{60, 30, 10}
	ruleIDs = []string{"r1", "r2", "r3"}
	ruleW   = []float64{70, 20, 10}
)
