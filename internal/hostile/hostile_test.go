package hostile

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/faceid-observability/faceid-exporter/internal/refmodel"
)

func options(t *testing.T, seed uint64) Options {
	t.Helper()
	cat, err := os.ReadFile("../../pkg/classify/catalog.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := refmodel.New(refmodel.Config{CatalogYAML: cat})
	if err != nil {
		t.Fatal(err)
	}
	return WithCatalog(Options{Seed: seed, N: 2000, Now: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC), DedupeCapacity: 100}, m)
}

// TestReproducible: the same seed gives the same stream, another seed another.
func TestReproducible(t *testing.T) {
	a, b, c := Generate(options(t, 7)), Generate(options(t, 7)), Generate(options(t, 8))
	if len(a) != len(b) {
		t.Fatalf("seed 7: %d then %d messages", len(a), len(b))
	}
	for i := range a {
		if a[i].Subject != b[i].Subject || !bytes.Equal(a[i].Data, b[i].Data) || a[i].Class != b[i].Class {
			t.Fatalf("seed 7, message %d differs: %s %q / %s %q", i, a[i].Subject, a[i].Data, b[i].Subject, b[i].Data)
		}
	}
	same := len(a) == len(c)
	for i := 0; same && i < len(a); i++ {
		same = bytes.Equal(a[i].Data, c[i].Data)
	}
	if same {
		t.Fatal("seeds 7 and 8 gave the same stream")
	}
}

// TestEveryClass: every class is produced, and each alone gives a stream.
func TestEveryClass(t *testing.T) {
	seen := map[Class]int{}
	for _, m := range Generate(options(t, 1)) {
		seen[m.Class]++
	}
	for _, c := range AllClasses() {
		if seen[c] == 0 {
			t.Errorf("class %s: no message in 2000", c)
		}
		o := options(t, 2)
		o.Classes, o.N = []Class{c}, 50
		got := 0
		for _, m := range Generate(o) {
			if m.Class == c {
				got++
			}
		}
		if got == 0 {
			t.Errorf("class %s alone: none of its messages", c)
		}
	}
}
