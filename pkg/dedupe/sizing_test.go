package dedupe

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"
	"testing"
	"unsafe"
)

// TestTableBytesIsTheLayout: TableBytes is what a table really allocates, and
// never more than BytesPerID per id: it fails when an entry grows past the
// figure the memory limit and the docs use.
func TestTableBytesIsTheLayout(t *testing.T) {
	for _, capacity := range []int{0, 1, 2, 3, 7, 64, 65, 1000, 65536, 65537, 100000} {
		t.Run(fmt.Sprint(capacity), func(t *testing.T) {
			tt := NewTimeTable(capacity)
			layout := int64(len(tt.slots))*int64(unsafe.Sizeof(tt.slots[0])) + int64(len(tt.fifo))*int64(unsafe.Sizeof(tt.fifo[0]))
			if got := TableBytes(capacity); got != layout {
				t.Errorf("TableBytes(%d) = %d, the table holds %d", capacity, got, layout)
			}
		})
	}
	for capacity := 1; capacity <= 1<<14; capacity++ {
		if b := TableBytes(capacity); b > BytesPerID*int64(capacity) {
			t.Fatalf("TableBytes(%d) = %d: %.1f bytes per id, over BytesPerID (%d)", capacity, b, float64(b)/float64(capacity), BytesPerID)
		}
	}
	for _, capacity := range []int{1 << 20, 1<<20 + 1, 5000000} {
		if b := TableBytes(capacity); b > BytesPerID*int64(capacity) {
			t.Errorf("TableBytes(%d) = %d, over BytesPerID (%d) per id", capacity, b, BytesPerID)
		}
	}
}

// TestTableBytesOnTheHeap: a table of 100,000 ids costs TableBytes of heap,
// measured, not computed.
func TestTableBytesOnTheHeap(t *testing.T) {
	const capacity = 100000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tt := NewTimeTable(capacity)
	for i := uint64(1); i <= capacity; i++ {
		tt.Put(i*0x9E3779B97F4A7C15, int64(i))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(tt)
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	want := TableBytes(capacity)
	if grew > want+want/100+64<<10 || grew < want-want/100 {
		t.Errorf("a full table of %d ids grew the heap by %d bytes, TableBytes says %d", capacity, grew, want)
	}
}

// TestDocsStateTheSizes: docs/service.md gives the per-id figures these
// functions compute.
func TestDocsStateTheSizes(t *testing.T) {
	doc, err := os.ReadFile("../../docs/service.md")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(string(doc)), " ")
	perID := int64(math.Round(float64(TableBytes(100000)) / 100000))
	for _, want := range []string{
		fmt.Sprintf("%d to %d bytes per id, %d with the default 100,000 ids", TableBytes(1), BytesPerID, perID),
		fmt.Sprintf("of %d-byte slots and a %d-byte put-order entry per id", entryBytes, entryBytes),
	} {
		if !strings.Contains(text, want) {
			t.Errorf("docs/service.md does not say %q", want)
		}
	}
}
