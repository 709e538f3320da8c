package simulate

import (
	"testing"
	"time"
)

// TestPacerSchedule checks Run's schedule without a clock: what is due at
// each tick, for steady ticks, a stall, the end of the run and runs without
// an end. The wall-clock rate a loaded machine reaches is a benchmark's
// business (BenchmarkRunCore).
func TestPacerSchedule(t *testing.T) {
	// ticks returns the elapsed times of a tick every step, from step to end.
	ticks := func(step, end time.Duration) []time.Duration {
		var out []time.Duration
		for e := step; e <= end; e += step {
			out = append(out, e)
		}
		return out
	}
	tests := []struct {
		name     string
		rate     float64
		duration time.Duration
		at       []time.Duration
		// perTick bounds what one tick hands out, [min, max];
		perTick [2]int64
		// total is what all ticks hand out together.
		total int64
	}{
		{"steady 1000/s, 5ms ticks", 1000, 2 * time.Second, ticks(pacerTick, 2*time.Second), [2]int64{4, 6}, 2000},
		{"steady 100000/s, 5ms ticks", 100000, time.Second, ticks(pacerTick, time.Second), [2]int64{499, 501}, 100000},
		{"stops at the total", 1000, 1500 * time.Millisecond, ticks(pacerTick, 3*time.Second), [2]int64{0, 6}, 1500},
		{"rounds the total", 3, 500 * time.Millisecond, ticks(pacerTick, time.Second), [2]int64{0, 2}, 2},
		{"slow rate", 0.5, 10 * time.Second, ticks(pacerTick, 10*time.Second), [2]int64{0, 1}, 5},
		{"a stall catches up at most maxBurst at a time", 1000, 2 * time.Second,
			[]time.Duration{10 * time.Millisecond, time.Second, 1005 * time.Millisecond, 1010 * time.Millisecond}, [2]int64{5, 101}, 10 + 101 + 101 + 101},
		{"no end", 200, 0, ticks(pacerTick, 3*time.Second), [2]int64{0, 2}, 600},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPacer(tc.rate, tc.duration)
			var given int64
			for _, e := range tc.at {
				n := p.due(e)
				if n < tc.perTick[0] || n > tc.perTick[1] {
					t.Fatalf("at %s: %d due, want %d..%d", e, n, tc.perTick[0], tc.perTick[1])
				}
				given += n
				// Never ahead of rate × elapsed (nor of the total).
				if limit := int64(tc.rate*e.Seconds()) + 1; given > limit {
					t.Fatalf("at %s: %d given, ahead of rate × elapsed %d", e, given, limit)
				}
			}
			if given != tc.total {
				t.Fatalf("%d given in all, want %d", given, tc.total)
			}
		})
	}
}

// TestPacerEvenWithinTheRun checks that the schedule holds inside the run,
// not only on average: every one-second window of a 3 s run at 1000/s holds
// 1000 events, give or take the events of one tick.
func TestPacerEvenWithinTheRun(t *testing.T) {
	p := newPacer(1000, 3*time.Second)
	var at []time.Duration // the time of each event
	for e := pacerTick; e <= 3*time.Second; e += pacerTick {
		for range p.due(e) {
			at = append(at, e)
		}
	}
	for from := time.Duration(0); from+time.Second <= 3*time.Second; from += 100 * time.Millisecond {
		n := 0
		for _, e := range at {
			if e > from && e <= from+time.Second {
				n++
			}
		}
		if n < 995 || n > 1005 {
			t.Errorf("(%s, %s]: %d events, want 1000 ± 5", from, from+time.Second, n)
		}
	}
}
