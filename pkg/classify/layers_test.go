package classify_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// pureDeps are the only packages outside the standard library that the pure
// layer may import: scanners and hashes that hold no state. Duplicate tables,
// books, streams and metrics (pkg/dedupe, pkg/books, pkg/stream, ...) are
// stateful and are reached through interfaces declared here (Prefetcher).
var pureDeps = []string{
	"github.com/faceid-observability/faceid-exporter/internal/jsonscan",
	"github.com/faceid-observability/faceid-exporter/internal/yamlstrict",
	"github.com/faceid-observability/faceid-exporter/pkg/redact",
	"github.com/cespare/xxhash/v2",
	"go.yaml.in/yaml/v3",
}

// TestImportsNothingStateful lists pkg/classify's dependencies (not its
// tests') with the go tool and fails on any package outside the standard
// library that pureDeps does not name.
func TestImportsNothingStateful(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	const self = "github.com/faceid-observability/faceid-exporter/pkg/classify"
	seen := 0
	for _, p := range strings.Fields(string(out)) {
		if p == self {
			seen++
			continue
		}
		if !slices.Contains(pureDeps, p) {
			t.Errorf("pkg/classify imports %s: the pure layer imports nothing that holds state (declare the interface it needs in classify)", p)
		}
	}
	if seen != 1 {
		t.Fatalf("go list -deps did not list %s itself: %q", self, out)
	}
}
