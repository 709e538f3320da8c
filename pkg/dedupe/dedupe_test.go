package dedupe

import (
	"math/rand/v2"
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
		// An event of the same id a day in the past is no duplicate, and
		// does not replace the newer record: its redeliveries are caught.
		{"far_past_same_id_keeps_the_record", []step{{1, 24 * time.Hour, false}, {1, 0, false}, {1, 24 * time.Hour, true}, {1, 24*time.Hour + time.Minute, true}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := NewWindow(10*time.Minute, 100)
			for i, s := range tc.steps {
				if got := w.Seen(s.key, t0.Add(s.at).UnixNano()); got != s.want {
					t.Fatalf("step %d: Seen(%d, +%s) = %v, want %v", i, s.key, s.at, got, s.want)
				}
			}
		})
	}
}

func TestWindowCapacityBound(t *testing.T) {
	w := NewWindow(time.Hour, 10)
	for i := uint64(0); i < 1000; i++ {
		w.Seen(i, t0.UnixNano())
		if w.Len() > 10 {
			t.Fatalf("holds %d keys, capacity 10", w.Len())
		}
	}
	if w.Evicted() != 990 {
		t.Errorf("evicted %d, want 990", w.Evicted())
	}
	if !w.Seen(999, t0.UnixNano()) {
		t.Error("the newest key must still be remembered")
	}
	if w.Seen(0, t0.UnixNano()) {
		t.Error("the oldest key must have been forgotten")
	}
}

func TestWindowDisabled(t *testing.T) {
	for _, w := range []*Window{NewWindow(0, 10), NewWindow(time.Minute, 0)} {
		if w.Seen(1, t0.UnixNano()) || w.Seen(1, t0.UnixNano()) {
			t.Fatal("a disabled window reports duplicates")
		}
	}
}

// TestSnapshotRestoreDecidesAlike checks that a window and anchors restored
// from a snapshot taken at any point go on to decide every later event exactly
// as the uninterrupted ones do: the property a checkpoint relies on.
func TestSnapshotRestoreDecidesAlike(t *testing.T) {
	for _, tc := range []struct {
		name     string
		capacity int
		keys     uint64
	}{
		{"roomy", 1000, 300},
		{"evicting", 50, 400},
		{"tiny", 1, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, uint64(tc.capacity)))
			type ev struct {
				key uint64
				at  int64
			}
			evs := make([]ev, 5000)
			now := t0.UnixNano()
			for i := range evs {
				now += rng.Int64N(int64(3 * time.Second))
				at := now - rng.Int64N(int64(time.Minute)) // out of order by up to a minute
				evs[i] = ev{rng.Uint64N(tc.keys), at}
			}
			ref, refA := NewWindow(time.Minute, tc.capacity), NewAnchors(5*time.Minute, tc.capacity)
			var want []bool
			for _, e := range evs {
				want = append(want, ref.Seen(e.key, e.at), refA.Bill(e.key, e.at))
			}
			for _, cut := range []int{0, 1, 17, 2500, 4999} {
				w, a := NewWindow(time.Minute, tc.capacity), NewAnchors(5*time.Minute, tc.capacity)
				for _, e := range evs[:cut] {
					w.Seen(e.key, e.at)
					a.Bill(e.key, e.at)
				}
				w2, a2 := NewWindow(time.Minute, tc.capacity), NewAnchors(5*time.Minute, tc.capacity)
				if err := w2.UnmarshalBinary(w.AppendBinary(nil)); err != nil {
					t.Fatal(err)
				}
				if err := a2.UnmarshalBinary(a.AppendBinary(nil)); err != nil {
					t.Fatal(err)
				}
				for i, e := range evs[cut:] {
					j := 2 * (cut + i)
					if got := w2.Seen(e.key, e.at); got != want[j] {
						t.Fatalf("cut %d: event %d: duplicate %v after restore, %v uninterrupted", cut, cut+i, got, want[j])
					}
					if got := a2.Bill(e.key, e.at); got != want[j+1] {
						t.Fatalf("cut %d: event %d: billed %v after restore, %v uninterrupted", cut, cut+i, got, want[j+1])
					}
				}
				if w2.Evicted() != ref.Evicted() || a2.Evicted() != refA.Evicted() {
					t.Fatalf("cut %d: evicted %d/%d after restore, %d/%d uninterrupted", cut, w2.Evicted(), a2.Evicted(), ref.Evicted(), refA.Evicted())
				}
			}
		})
	}
}

func TestUnmarshalBinaryErrors(t *testing.T) {
	good := NewWindow(time.Minute, 4).AppendBinary(nil)
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"short", good[:10], "dedupe state: 10 bytes, want at least 32"},
		{"version", append([]byte{9}, good[1:]...), "dedupe state: version 9, want 1"},
		{"count", append(append([]byte{}, good...), 1, 2, 3), "dedupe state: 0 entries in 3 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := NewWindow(time.Minute, 4).UnmarshalBinary(tc.data)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
