package api_test

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/faceid-observability/faceid-exporter/pkg/api"
	"github.com/faceid-observability/faceid-exporter/pkg/classify"
)

// TestRecordBytesOnTheHeap: full rings cost RecordBytes per slot, measured on
// the heap with the largest records (longest id, most tags), so that a field
// that holds memory of its own outside the slot fails here.
func TestRecordBytesOnTheHeap(t *testing.T) {
	cat, err := classify.Default()
	if err != nil {
		t.Fatal(err)
	}
	c := classify.New(cat, classify.Options{})
	tags := strings.Repeat(`"202",`, classify.MaxTags)
	msg := fmt.Sprintf(`{"id":%q,"channel":"app_sdk","code":"99999999","risk":{"device_level":3,"device_tags":[%s"202"],"risk_tags":[%s"02"]}}`,
		strings.Repeat("x", 4*api.MaxIDBytes), tags, strings.Repeat(`"02",`, classify.MaxTags))
	var res classify.Result
	if err := c.Classify([]byte(msg), nil, time.Now(), &res); err != nil {
		t.Fatal(err)
	}
	if res.Code != nil || res.NDeviceTags == 0 || res.NIdentityTags == 0 {
		t.Fatalf("the test event is not an unknown, high-risk event with tags: %+v", res)
	}
	const slots = 4000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ev := api.NewEvents(api.Sizes{BillableFailure: slots, HighRisk: slots, UnknownCode: slots})
	for range slots {
		ev.Observe(&res, time.Now().UnixNano())
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(ev)
	if n := len(ev.Newest(api.KindUnknownCode, slots)); n != slots {
		t.Fatalf("%d records kept, want %d", n, slots)
	}
	// TotalAlloc counts what was allocated, whatever other tests free meanwhile.
	grew := int64(after.TotalAlloc) - int64(before.TotalAlloc)
	want := 3 * slots * api.RecordBytes
	if grew > want+want/50+256<<10 || grew < want-want/50 {
		t.Errorf("%d full ring slots grew the heap by %d bytes (%.0f per slot), RecordBytes is %d", 3*slots, grew, float64(grew)/(3*slots), api.RecordBytes)
	}
}

// TestDocsStateRecordBytes: docs/service.md gives the ring-slot size the
// memory limit uses.
func TestDocsStateRecordBytes(t *testing.T) {
	doc, err := os.ReadFile("../../docs/service.md")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(string(doc)), " ")
	for _, want := range []string{
		fmt.Sprintf("%d bytes × the ring-buffer slots", api.RecordBytes),
		fmt.Sprintf("one event record by value, %d bytes (`api.RecordBytes`)", api.RecordBytes),
		fmt.Sprintf("%d bytes per slot", api.RecordBytes),
	} {
		if !strings.Contains(text, want) {
			t.Errorf("docs/service.md does not say %q", want)
		}
	}
}
