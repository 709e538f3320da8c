package dashgen

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
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
			path := filepath.Join(dir, d.File)
			if *update {
				if err := os.WriteFile(path, want, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/dashgen -update)", err)
			}
			if string(got) != string(want) {
				t.Errorf("%s differs from the generator; run go test ./internal/dashgen -update", path)
			}
		})
	}
}
