package simulate

import (
	"math/rand/v2"
	"sort"
)

// weighted picks items with probability proportional to their weights.
type weighted[T any] struct {
	items []T
	cum   []float64
}

func (w *weighted[T]) add(item T, weight float64) {
	if weight <= 0 {
		return
	}
	total := 0.0
	if n := len(w.cum); n > 0 {
		total = w.cum[n-1]
	}
	w.items = append(w.items, item)
	w.cum = append(w.cum, total+weight)
}

func (w *weighted[T]) len() int { return len(w.items) }

// pick returns a random item; w must not be empty.
func (w *weighted[T]) pick(r *rand.Rand) T {
	x := r.Float64() * w.cum[len(w.cum)-1]
	i := sort.SearchFloat64s(w.cum, x)
	if i < len(w.cum) && w.cum[i] == x {
		i++ // cum[i] is the item's upper bound, exclusive
	}
	if i >= len(w.items) {
		i = len(w.items) - 1
	}
	return w.items[i]
}
