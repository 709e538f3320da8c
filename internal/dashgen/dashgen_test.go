package dashgen

import (
	"flag"
	"path/filepath"
	"testing"

	"github.com/faceid-observability/faceid-exporter/internal/golden"
)

var update = flag.Bool("update", false, "rewrite dashboards/*.json from the generator")

const dir = "../../dashboards"

// TestGolden renders every dashboard and compares it with dashboards/;
// -update rewrites them.
func TestGolden(t *testing.T) {
	ds, err := Dashboards()
	if err != nil {
		t.Fatal(err)
	}
	uids := map[string]bool{}
	for _, d := range ds {
		t.Run(d.UID, func(t *testing.T) {
			if uids[d.UID] {
				t.Fatalf("uid %s used twice", d.UID)
			}
			uids[d.UID] = true
			want, err := d.JSON()
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join(dir, d.File), want, *update, "go test ./internal/dashgen -update")
		})
	}
}
