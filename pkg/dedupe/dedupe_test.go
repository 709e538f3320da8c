package dedupe

import (
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

type step struct {
	key  uint64
	at   time.Duration
	want bool
}

func TestWindow(t *testing.T) {
	cases := []struct {
		name  string
		steps []step
	}{
		{"repeat_inside_window", []step{{1, 0, false}, {1, time.Minute, true}, {1, 9 * time.Minute, true}}},
		{"repeat_after_window", []step{{1, 0, false}, {2, 10 * time.Minute, false}, {1, 10*time.Minute + time.Second, false}, {1, 11 * time.Minute, true}}},
		{"distinct_keys", []step{{1, 0, false}, {2, 0, false}, {3, time.Second, false}, {2, 2 * time.Second, true}}},
		{"late_redelivery_inside_window", []step{{1, 5 * time.Minute, false}, {2, 6 * time.Minute, false}, {1, 5 * time.Minute, true}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := NewWindow(10*time.Minute, 100)
			for i, s := range tc.steps {
				if got := w.Seen(s.key, t0.Add(s.at)); got != s.want {
					t.Fatalf("step %d: Seen(%d, +%s) = %v, want %v", i, s.key, s.at, got, s.want)
				}
			}
		})
	}
}

func TestWindowCapacityBound(t *testing.T) {
	w := NewWindow(time.Hour, 10)
	for i := uint64(0); i < 1000; i++ {
		w.Seen(i, t0)
		if w.Len() > 10 {
			t.Fatalf("holds %d keys, capacity 10", w.Len())
		}
	}
	if w.Evicted() != 990 {
		t.Errorf("evicted %d, want 990", w.Evicted())
	}
	if !w.Seen(999, t0) {
		t.Error("the newest key must still be remembered")
	}
	if w.Seen(0, t0) {
		t.Error("the oldest key must have been forgotten")
	}
}

func TestWindowDisabled(t *testing.T) {
	for _, w := range []*Window{NewWindow(0, 10), NewWindow(time.Minute, 0)} {
		if w.Seen(1, t0) || w.Seen(1, t0) {
			t.Fatal("a disabled window reports duplicates")
		}
	}
}

func TestWindowConcurrent(t *testing.T) {
	w := NewWindow(time.Hour, 1<<16)
	var wg sync.WaitGroup
	dups := make([]int, 4)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := uint64(0); i < 5000; i++ {
				if w.Seen(i, t0) {
					dups[g]++
				}
			}
		}(g)
	}
	wg.Wait()
	total := dups[0] + dups[1] + dups[2] + dups[3]
	if total != 3*5000 {
		t.Fatalf("%d duplicates, want exactly %d (each key first seen once)", total, 3*5000)
	}
}

var _ Store = (*Window)(nil)
