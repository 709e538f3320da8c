package simulate

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/faceid-observability/faceid-exporter/pkg/classify"
)

var t0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

type generated struct {
	msg     []byte
	subject string
	truth   Truth
}

func generate(t testing.TB, g *Generator, n int, step time.Duration) []generated {
	t.Helper()
	out := make([]generated, n)
	var buf []byte
	for i := range out {
		msg, subject, truth := g.Next(buf, t0.Add(time.Duration(i)*step))
		out[i] = generated{msg: append([]byte(nil), msg...), subject: subject, truth: truth}
		buf = msg[:0]
	}
	return out
}

func TestGeneratorDeterministic(t *testing.T) {
	cat := defaultCatalog(t)
	for _, sc := range Scenarios() {
		t.Run(string(sc), func(t *testing.T) {
			g1, err := NewGenerator(cat, sc, 42)
			if err != nil {
				t.Fatal(err)
			}
			g2, _ := NewGenerator(cat, sc, 42)
			g3, _ := NewGenerator(cat, sc, 43)
			g4, _ := NewGenerator(cat, sc, 42, WithRunID("other-run"))
			a, b := generate(t, g1, 3000, time.Millisecond), generate(t, g2, 3000, time.Millisecond)
			c, d := generate(t, g3, 3000, time.Millisecond), generate(t, g4, 3000, time.Millisecond)
			differ := 0
			for i := range a {
				if !bytes.Equal(a[i].msg, b[i].msg) || a[i].subject != b[i].subject || a[i].truth != b[i].truth {
					t.Fatalf("event %d differs with the same seed:\n%s\n%s", i, a[i].msg, b[i].msg)
				}
				if !bytes.Equal(a[i].msg, c[i].msg) {
					differ++
				}
				// Another run id changes the ids and nothing else.
				want := bytes.ReplaceAll(a[i].msg, []byte(g1.RunID()+"-"), []byte("other-run-"))
				if !bytes.Equal(want, d[i].msg) || a[i].truth != d[i].truth {
					t.Fatalf("event %d: a run id changed more than the id:\n%s\n%s", i, a[i].msg, d[i].msg)
				}
			}
			if differ < len(a)/2 {
				t.Errorf("seeds 42 and 43 gave %d different events out of %d", differ, len(a))
			}
		})
	}
}

// share bounds one measured share of events.
type share struct {
	name     string
	min, max float64
}

func TestScenarioMixes(t *testing.T) {
	cat := defaultCatalog(t)
	spikeCodes := map[string]bool{"wechat/2006": true, "wechat/2016": true, "sdk/66660004": true, "sdk/66660010": true, "willingness/66666006": true}
	tests := []struct {
		scenario Scenario
		shares   map[string][2]float64
	}{
		{Baseline, map[string][2]float64{
			"success": {0.86, 0.94}, "billable_failure": {0.01, 0.035}, "high_risk": {0.004, 0.02},
			"unknown_code": {0, 0}, "rejected": {0, 0},
		}},
		{BillableFailureSpike, map[string][2]float64{
			"billable_failure": {0.30, 0.50}, "high_risk": {0.004, 0.02}, "unknown_code": {0, 0}, "rejected": {0, 0},
		}},
		{HighRiskDeviceSurge, map[string][2]float64{
			"high_risk": {0.30, 0.50}, "billable_failure": {0.01, 0.035}, "unknown_code": {0, 0}, "rejected": {0, 0},
		}},
		{UnknownCodes, map[string][2]float64{
			"unknown_code": {0.15, 0.25}, "high_risk": {0.004, 0.02}, "rejected": {0, 0},
		}},
		{Malformed, map[string][2]float64{
			"rejected": {0.15, 0.25}, "unknown_code": {0, 0},
		}},
	}
	const n = 20000
	for _, tc := range tests {
		t.Run(string(tc.scenario), func(t *testing.T) {
			g, err := NewGenerator(cat, tc.scenario, 7)
			if err != nil {
				t.Fatal(err)
			}
			c := newCounter(cat)
			counts := map[string]int{}
			tagNames := map[string]int{}
			flaws := map[classify.Reason]int64{}
			riskLevel5 := 0
			for i, ev := range generate(t, g, n, time.Millisecond) {
				res, reason := c.add(ev.msg, ev.subject, t0.Add(time.Duration(i)*time.Millisecond))
				tr := ev.truth
				// The truth is what an independent classifier makes of the message.
				if reason != tr.Reject {
					t.Fatalf("event %d: classifier says %s, truth %s: %s", i, reason, tr.Reject, ev.msg)
				}
				if tr.Flaw != classify.ReasonNone {
					flaws[tr.Flaw]++
					if reason != tr.Flaw {
						t.Fatalf("event %d: built to be rejected for %s, classifier says %q: %s", i, tr.Flaw, reason, ev.msg)
					}
				} else if reason != classify.ReasonNone {
					t.Fatalf("event %d: well-formed message rejected for %s: %s", i, reason, ev.msg)
				}
				if (tr.Kind == KindMalformed) != (tr.Flaw != classify.ReasonNone) {
					t.Fatalf("event %d: kind %s with flaw %s", i, tr.Kind, tr.Flaw)
				}
				if res == nil {
					counts["rejected"]++
					continue
				}
				if res.Channel != tr.Channel || res.Code != tr.Code || res.Billable != tr.Billable || res.Outcome != tr.Outcome || res.Risk != tr.Risk {
					t.Fatalf("event %d: classifier %s/%s/%s/%s, truth %s/%s/%s/%s: %s", i,
						res.Channel.Name, res.CodeRaw, res.Billable, res.Risk, tr.Channel.Name, tr.CodeLabel(), tr.Billable, tr.Risk, ev.msg)
				}
				if lastToken(ev.subject) != res.Channel.Name {
					t.Fatalf("event %d: subject %s for channel %s", i, ev.subject, res.Channel.Name)
				}
				if res.Outcome == classify.OutcomeSuccess {
					counts["success"]++
				}
				if res.Outcome == classify.OutcomeFailure && res.Billable == classify.BillableTrue {
					counts["billable_failure"]++
					if tr.Kind == KindBillableFailure && !spikeCodes[res.Family.Name+"/"+res.Code.Code] {
						t.Fatalf("event %d: spike code %s/%s is not one of the contract's", i, res.Family.Name, res.Code.Code)
					}
				}
				if res.Risk == classify.RiskHigh {
					counts["high_risk"]++
				}
				if res.Code == nil {
					counts["unknown_code"]++
				}
				if res.RiskLevel == cat.RiskLevel.Max {
					riskLevel5++
				}
				for _, dt := range res.DeviceTags[:res.NDeviceTags] {
					if tr.Kind == KindHighRisk {
						tagNames[dt.Name]++
					}
				}
				if res.Problems&classify.ProblemTagPlatform != 0 || res.UnknownDeviceTags+res.UnknownIdentityTags > 0 {
					t.Fatalf("event %d: tags not in the catalog or not for the platform (%v): %s", i, res.Problems.Names(), ev.msg)
				}
			}
			t.Logf("of %d events: success %d, billable failures %d, high risk %d, unknown codes %d, rejected %d",
				n, counts["success"], counts["billable_failure"], counts["high_risk"], counts["unknown_code"], counts["rejected"])
			for name, bounds := range tc.shares {
				got := float64(counts[name]) / n
				if got < bounds[0] || got > bounds[1] {
					t.Errorf("%s: %.2f %% of events, want %.1f–%.1f %%", name, got*100, bounds[0]*100, bounds[1]*100)
				}
			}
			switch tc.scenario {
			case HighRiskDeviceSurge:
				for _, name := range surgeTagNames {
					if tagNames[name] == 0 {
						t.Errorf("no surge event carries a %s tag (got %v)", name, tagNames)
					}
				}
				if float64(riskLevel5)/n < 0.05 {
					t.Errorf("only %d events at risk level %d", riskLevel5, cat.RiskLevel.Max)
				}
			case Malformed:
				for _, r := range []classify.Reason{classify.ReasonInvalidJSON, classify.ReasonNotObject, classify.ReasonUnknownChannel,
					classify.ReasonMissingCode, classify.ReasonInvalidTS, classify.ReasonInvalidCode, classify.ReasonOversize} {
					if flaws[r] == 0 || c.rejected[r.String()] != flaws[r] {
						t.Errorf("%s: built %d, rejected %d", r, flaws[r], c.rejected[r.String()])
					}
				}
			case UnknownCodes:
				if c.by[[3]string{"app_sdk", "unknown", "unknown"}] == 0 || c.by[[3]string{"wechat_h5", "unknown", "unknown"}] == 0 {
					t.Errorf("no unknown codes on app_sdk or wechat_h5: %v", c.by)
				}
			}
		})
	}
}

// TestBaselineShape checks the per-channel mix and the forms events are
// written in.
func TestBaselineShape(t *testing.T) {
	cat := defaultCatalog(t)
	g, err := NewGenerator(cat, Baseline, 11)
	if err != nil {
		t.Fatal(err)
	}
	const n = 30000
	c := newCounter(cat)
	perChannel := map[string]int{}
	failureCodes := map[string]map[string]bool{}
	forms := map[string]int{}
	ids := map[string]bool{}
	for i, ev := range generate(t, g, n, 10*time.Millisecond) {
		var raw struct {
			ID      string          `json:"id"`
			TS      json.RawMessage `json:"ts"`
			Channel *string         `json:"channel"`
			Code    json.RawMessage `json:"code"`
			ReqID   *string         `json:"req_id"`
			AppID   string          `json:"app_id"`
			Risk    *struct {
				DeviceLevel json.RawMessage `json:"device_level"`
				RiskLevel   json.RawMessage `json:"risk_level"`
				DeviceTags  json.RawMessage `json:"device_tags"`
				RiskTags    json.RawMessage `json:"risk_tags"`
				Platform    *string         `json:"platform"`
			} `json:"risk"`
		}
		if err := json.Unmarshal(ev.msg, &raw); err != nil {
			t.Fatalf("event %d is not JSON: %v: %s", i, err, ev.msg)
		}
		if ids[raw.ID] {
			t.Fatalf("event %d repeats id %s", i, raw.ID)
		}
		ids[raw.ID] = true
		res, reason := c.add(ev.msg, ev.subject, t0.Add(time.Duration(i)*10*time.Millisecond))
		if res == nil {
			t.Fatalf("event %d rejected (%s): %s", i, reason, ev.msg)
		}
		ch := res.Channel.Name
		perChannel[ch]++
		if res.Outcome == classify.OutcomeFailure {
			if failureCodes[ch] == nil {
				failureCodes[ch] = map[string]bool{}
			}
			failureCodes[ch][res.Code.Code] = true
		}
		switch {
		case len(raw.TS) == 0:
			forms["ts_absent"]++
		case raw.TS[0] == '"':
			forms["ts_rfc3339"]++
			if !bytes.HasSuffix(raw.TS, []byte(`+08:00"`)) {
				t.Fatalf("event %d: ts %s is not at +08:00", i, raw.TS)
			}
		default:
			forms["ts_unix_ms"]++
		}
		if raw.Channel == nil {
			forms["channel_absent"]++
		}
		if raw.Code[0] == '"' {
			forms["code_string"]++
		} else {
			forms["code_number"]++
		}
		if (raw.ReqID != nil) != (ch == "nfc_server") {
			t.Fatalf("event %d: req_id on %s: %s", i, ch, ev.msg)
		}
		if res.BillingRule == "req_id_repeat" {
			forms["req_id_repeat"]++
		}
		if !contains(appIDs, raw.AppID) {
			t.Fatalf("event %d: app_id %q", i, raw.AppID)
		}
		if raw.Risk == nil {
			forms["risk_absent"]++
			continue
		}
		if string(raw.Risk.DeviceLevel) == "-1" || string(raw.Risk.RiskLevel) == "-1" {
			forms["level_minus_one"]++
		}
		if raw.Risk.DeviceLevel == nil {
			forms["device_level_absent"]++
		}
		for _, tags := range []json.RawMessage{raw.Risk.DeviceTags, raw.Risk.RiskTags} {
			switch {
			case len(tags) == 0:
			case tags[0] == '[':
				forms["tags_list"]++
			case tags[0] == '"':
				forms["tags_string"]++
			}
		}
		if p := raw.Risk.Platform; p != nil {
			if !contains([]string{"android", "ios", "iOS"}, *p) {
				t.Fatalf("event %d: platform %q", i, *p)
			}
			forms["platform_"+strings.ToLower(*p)]++
		}
	}
	for _, ch := range cat.Channels {
		if perChannel[ch.Name] < n/50 {
			t.Errorf("channel %s has %d events", ch.Name, perChannel[ch.Name])
		}
		if len(failureCodes[ch.Name]) < 2 {
			t.Errorf("channel %s has failure codes %v", ch.Name, failureCodes[ch.Name])
		}
	}
	for _, ch := range []string{"wechat_h5", "app_sdk"} {
		if len(failureCodes[ch]) < 10 {
			t.Errorf("channel %s has only %d distinct failure codes", ch, len(failureCodes[ch]))
		}
	}
	t.Logf("forms of %d events: %v", n, forms)
	for name, bounds := range map[string][2]float64{
		"ts_rfc3339": {0.5, 0.7}, "ts_unix_ms": {0.3, 0.5}, "ts_absent": {0.002, 0.02},
		"channel_absent": {0.03, 0.07}, "code_string": {0.55, 0.75}, "code_number": {0.25, 0.45},
		"risk_absent": {0.05, 0.11}, "level_minus_one": {0.02, 0.08}, "device_level_absent": {0.02, 0.08},
		"tags_list": {0.01, 0.2}, "tags_string": {0.005, 0.1}, "req_id_repeat": {0.003, 0.05},
		"platform_android": {0.4, 0.7}, "platform_ios": {0.25, 0.5},
	} {
		got := float64(forms[name]) / n
		if got < bounds[0] || got > bounds[1] {
			t.Errorf("%s: %.2f %% of events, want %.1f–%.1f %%", name, got*100, bounds[0]*100, bounds[1]*100)
		}
	}
}

func TestNewGeneratorErrors(t *testing.T) {
	cat := defaultCatalog(t)
	tests := []struct {
		name     string
		cat      *classify.Catalog
		scenario Scenario
		opts     []Option
		want     string
	}{
		{"no catalog", nil, Baseline, nil, "no catalog"},
		{"unknown scenario", cat, "storm", nil, `unknown scenario "storm" (want one of baseline, billable-failure-spike, high-risk-device-surge, unknown-codes, malformed)`},
		{"wildcard prefix", cat, Baseline, []Option{WithSubjectPrefix("faceid.>")}, `subject prefix "faceid.>" is not a NATS subject of literal tokens`},
		{"empty token", cat, Baseline, []Option{WithSubjectPrefix("faceid..results")}, `subject prefix "faceid..results" is not a NATS subject of literal tokens`},
		{"whitespace", cat, Baseline, []Option{WithSubjectPrefix("faceid.re sults")}, `subject prefix "faceid.re sults" is not a NATS subject of literal tokens`},
		{"trailing dot", cat, Baseline, []Option{WithSubjectPrefix("faceid.")}, `subject prefix "faceid." is not a NATS subject of literal tokens`},
		{"bad run id", cat, Baseline, []Option{WithRunID(`a"b`)}, `run id "a\"b" may hold only letters, digits, '_', '.' and '-'`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewGenerator(tc.cat, tc.scenario, 1, tc.opts...)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("got %v, want %s", err, tc.want)
			}
		})
	}
}

func TestSubjectPrefix(t *testing.T) {
	g, err := NewGenerator(defaultCatalog(t), Baseline, 1, WithSubjectPrefix("acme.faceid"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range generate(t, g, 100, time.Millisecond) {
		if !strings.HasPrefix(ev.subject, "acme.faceid.") || ev.truth.Channel.Name != lastToken(ev.subject) {
			t.Fatalf("subject %s for channel %s", ev.subject, ev.truth.Channel.Name)
		}
	}
}

// FuzzGenerator checks that whatever the seed, every message is what the
// generator says it is.
func FuzzGenerator(f *testing.F) {
	f.Add(int64(1), uint8(0))
	f.Add(int64(-5), uint8(4))
	f.Add(int64(1<<40), uint8(2))
	cat := defaultCatalog(f)
	f.Fuzz(func(t *testing.T, seed int64, sc uint8) {
		scenario := scenarios[int(sc)%len(scenarios)]
		g, err := NewGenerator(cat, scenario, seed)
		if err != nil {
			t.Fatal(err)
		}
		c := newCounter(cat)
		for i, ev := range generate(t, g, 200, time.Millisecond) {
			_, reason := c.add(ev.msg, ev.subject, t0.Add(time.Duration(i)*time.Millisecond))
			if reason != ev.truth.Flaw || reason != ev.truth.Reject {
				t.Fatalf("event %d: built with flaw %s, truth %s, classifier %s: %s", i, ev.truth.Flaw, ev.truth.Reject, reason, ev.msg)
			}
		}
	})
}

func BenchmarkGeneratorNext(b *testing.B) {
	cat := defaultCatalog(b)
	for _, sc := range Scenarios() {
		b.Run(string(sc), func(b *testing.B) {
			g, err := NewGenerator(cat, sc, 1)
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 0, 1024)
			now := time.Now()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				msg, _, _ := g.Next(buf, now)
				buf = msg[:0]
			}
		})
	}
}
