package golden

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder captures failures instead of failing the outer test.
type recorder struct {
	testing.TB
	failed bool
	msg    string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.failed = true
	r.msg = format
}
func (r *recorder) Fatalf(format string, args ...any) { r.Errorf(format, args...) }
func (r *recorder) Fatal(args ...any)                 { r.failed = true }

func TestCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.txt")
	r := &recorder{TB: t}
	Check(r, path, []byte("a\nb\n"), false, "x")
	if !r.failed {
		t.Fatal("a missing golden file must fail")
	}
	Check(t, path, []byte("a\nb\n"), true, "x")
	if b, _ := os.ReadFile(path); string(b) != "a\nb\n" {
		t.Fatalf("update wrote %q", b)
	}
	Check(t, path, []byte("a\nb\n"), false, "x")
	r = &recorder{TB: t}
	Check(r, path, []byte("a\nc\n"), false, "x")
	if !r.failed {
		t.Fatal("a changed output must fail")
	}
	if d := LineDiff("a\nb\n", "a\nc\n"); !strings.Contains(d, "line 2:\n- b\n+ c") {
		t.Fatalf("diff %q", d)
	}
}
