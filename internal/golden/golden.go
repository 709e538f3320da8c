// Package golden compares generated output with a committed file, or rewrites
// the file when the test runs with its update flag.
package golden

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// Check fails t when the file at path does not hold got; with update it
// writes got to path instead. regen is the command that regenerates the file,
// shown in the failure.
func Check(t testing.TB, path string, got []byte, update bool, regen string) {
	t.Helper()
	if update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run %s)", err, regen)
	}
	if string(got) != string(want) {
		t.Errorf("%s is stale: run %s and review the diff:\n%s", path, regen, LineDiff(string(want), string(got)))
	}
}

// LineDiff shows the first lines (at most 20) that differ.
func LineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 20; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n- %s\n+ %s\n", i+1, wl, gl)
			shown++
		}
	}
	return b.String()
}
