package classify

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// sampleEvent is the input contract's example event.
var sampleEvent = []byte(`{"id":"b6f1c0de-7a51-4c1e-9f0a-3d2b1c0e9f77","ts":"2026-11-26T10:15:30.123+08:00","channel":"wechat_h5","code":"2006","req_id":"",` +
	`"risk":{"device_level":3,"risk_level":1,"device_tags":["202","5012"],"risk_tags":["02"],"platform":"android"}}`)

// referenceEvent is what a straightforward consumer decodes with encoding/json.
type referenceEvent struct {
	ID      string          `json:"id"`
	TS      json.RawMessage `json:"ts"`
	Channel string          `json:"channel"`
	Code    json.RawMessage `json:"code"`
	ReqID   string          `json:"req_id"`
	Risk    *struct {
		DeviceLevel *int     `json:"device_level"`
		RiskLevel   *int     `json:"risk_level"`
		DeviceTags  []string `json:"device_tags"`
		RiskTags    []string `json:"risk_tags"`
		Platform    string   `json:"platform"`
	} `json:"risk"`
}

// referenceClassify is the straightforward path: encoding/json, time.Parse and
// string-keyed lookups. It is the baseline the scanner is measured against.
func referenceClassify(cat *Catalog, msg []byte) (billable Billable, risk Risk, ok bool) {
	var ev referenceEvent
	if err := json.Unmarshal(msg, &ev); err != nil {
		return 0, 0, false
	}
	ch, found := cat.Channel(ev.Channel)
	if !found {
		return 0, 0, false
	}
	code := strings.Trim(string(ev.Code), `"`)
	ts := time.Now()
	var s string
	if json.Unmarshal(ev.TS, &s) == nil {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return 0, 0, false
		}
		ts = t
	}
	k, found := cat.Lookup(ch.Family.Name, code)
	billable = BillableUnknown
	if found {
		billable = k.BillableAt(ts)
	}
	if ev.Risk != nil {
		risk = RiskLow
		if (ev.Risk.DeviceLevel != nil && *ev.Risk.DeviceLevel >= 3) || (ev.Risk.RiskLevel != nil && *ev.Risk.RiskLevel >= 5) {
			risk = RiskHigh
		}
		for _, tag := range ev.Risk.DeviceTags {
			cat.DeviceTag(tag)
		}
		for _, tag := range ev.Risk.RiskTags {
			cat.IdentityTag(tag)
		}
	}
	return billable, risk, true
}

// cpuClock measures the CPU time of the benchmark's thread, reported next to
// wall time as cpu-ns/op: on a busy machine it shows the work itself.
type cpuClock struct{ start int64 }

func startCPU() *cpuClock {
	runtime.LockOSThread()
	return &cpuClock{start: threadCPUNanos()}
}

func (c *cpuClock) report(b *testing.B) {
	b.ReportMetric(float64(threadCPUNanos()-c.start)/float64(b.N), "cpu-ns/op")
	runtime.UnlockOSThread()
}

func threadCPUNanos() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return ts.Nano()
}

// BenchmarkDecodeClassify compares, in one run, the straightforward
// encoding/json path with the purpose-built scanner on the sample event.
// Run on one core: go test -run '^$' -bench DecodeClassify -cpu 1 -count 10 ./pkg/classify
func BenchmarkDecodeClassify(b *testing.B) {
	cat := mustDefault(b)
	b.Run("reference=encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(sampleEvent)))
		clock := startCPU()
		for b.Loop() {
			if bl, _, ok := referenceClassify(cat, sampleEvent); !ok || bl != BillableTrue {
				b.Fatal("reference failed")
			}
		}
		clock.report(b)
	})
	b.Run("scanner", func(b *testing.B) {
		c := New(cat, Options{})
		var r Result
		now := time.Now()
		b.ReportAllocs()
		b.SetBytes(int64(len(sampleEvent)))
		clock := startCPU()
		for b.Loop() {
			if err := c.Classify(sampleEvent, nil, now, &r); err != nil || r.Billable != BillableTrue {
				b.Fatal(err)
			}
		}
		clock.report(b)
	})
}

// TestClassifyZeroAlloc pins the steady-state allocation count of the hot path.
func TestClassifyZeroAlloc(t *testing.T) {
	cat := mustDefault(t)
	c := New(cat, Options{})
	var r Result
	now := time.Now()
	msgs := [][]byte{
		sampleEvent,
		[]byte(`{"channel":"nfc_server","code":0,"req_id":"abc","ts":1764123330123,"risk":{"device_tags":"202,5012","platform":"ios"}}`),
		[]byte(`{"channel":"app_sdk","code":"\u0030","name":"\u5f20\u4e09","risk":{"risk_tags":["02","19"]}}`),
	}
	for _, m := range msgs {
		for i := 0; i < 10; i++ { // warm scratch space and maps
			if err := c.Classify(m, nil, now, &r); err != nil {
				t.Fatal(err)
			}
		}
		if n := testing.AllocsPerRun(1000, func() { _ = c.Classify(m, nil, now, &r) }); n != 0 {
			t.Errorf("%s: %v allocations per event, want 0", m, n)
		}
	}
}
