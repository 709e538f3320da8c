package dedupe

import (
	"math/rand/v2"
	"testing"
)

// TestTimeTableMatchesMap drives the table and a plain map with the same
// random operations, including deletions that exercise backward shifting.
func TestTimeTableMatchesMap(t *testing.T) {
	for _, capacity := range []int{1, 7, 64, 1000} {
		tt := NewTimeTable(capacity)
		ref := map[uint64]int64{}
		var order []entry
		rng := rand.New(rand.NewPCG(1, uint64(capacity)))
		for step := 0; step < 20000; step++ {
			key := rng.Uint64N(uint64(capacity) * 3) // small key space: many repeats and collisions
			at := int64(step)
			if len(order) == capacity {
				old := order[0]
				order = order[1:]
				if ref[old.key] == old.at {
					delete(ref, old.key)
				}
			}
			tt.Put(key, at)
			ref[key] = at
			order = append(order, entry{key, at})
			if step%500 == 499 {
				cutoff := at - int64(capacity)/2
				tt.ExpireBefore(cutoff)
				for len(order) > 0 && order[0].at < cutoff {
					if ref[order[0].key] == order[0].at {
						delete(ref, order[0].key)
					}
					order = order[1:]
				}
			}
			for probe := uint64(0); probe < uint64(capacity)*3; probe += 1 + uint64(capacity)/16 {
				got, ok := tt.Get(probe)
				want, wok := ref[probe]
				if ok != wok || got != want {
					t.Fatalf("capacity %d step %d key %d: got (%d,%v), want (%d,%v)", capacity, step, probe, got, ok, want, wok)
				}
			}
			if tt.Len() != len(order) {
				t.Fatalf("len %d, want %d", tt.Len(), len(order))
			}
		}
	}
}

func TestTimeTableNoAllocs(t *testing.T) {
	tt := NewTimeTable(1024)
	i := uint64(0)
	if n := testing.AllocsPerRun(10000, func() { i++; tt.Put(i*0x9E3779B97F4A7C15, int64(i)); tt.Get(i) }); n != 0 {
		t.Fatalf("%v allocations per put", n)
	}
}
