// Package exactly proves the exactly-once promise of the checkpointed
// JetStream mode from the outside: the exporter binary, built from this
// checkout, runs as child processes against in-process NATS servers (one
// server, or a three-node cluster) while the test injects real faults (kill
// -9, SIGSTOP past the takeover timeout, NATS restarts, leader stepdowns,
// messages removed from the stream). What the disturbed replicas count, summed
// over the live ones, and the ledger they commit must equal what one
// undisturbed process counts on the same stream.
package exactly

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// repoRoot is the module root, relative to this package.
const repoRoot = "../.."

var (
	buildDir  string
	buildOnce sync.Once
	buildBin  string
	buildErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "faceid-exactly-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "exactly: temp dir:", err)
		os.Exit(1)
	}
	buildDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// exporterBinary returns the path of the exporter built from this checkout,
// building it the first time a test asks.
func exporterBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("the go tool is not in PATH: %w", err)
			return
		}
		bin := filepath.Join(buildDir, "exporter")
		cmd := exec.Command(goBin, "build", "-o", bin, "./cmd/exporter")
		cmd.Dir = repoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/exporter: %w\n%s", err, out)
			return
		}
		buildBin = bin
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}
