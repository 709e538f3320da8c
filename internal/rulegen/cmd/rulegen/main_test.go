package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/faceid-observability/faceid-exporter/internal/rulegen"
)

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		want     string
		contains string
	}{
		{name: "default selector", want: rulegen.DefaultJobSelector, contains: `up{job="faceid-exporter"} == 0`},
		{name: "namespace and job", args: []string{`--job.selector=namespace="faceid",job="faceid"`}, want: `namespace="faceid",job="faceid"`,
			contains: `up{namespace="faceid",job="faceid"} == 0`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "rules")
			var out bytes.Buffer
			if err := run(append(tc.args, "--out.dir="+dir), &out); err != nil {
				t.Fatal(err)
			}
			files, err := rulegen.Render(rulegen.Production)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Count(out.String(), "\n"); got != len(files) {
				t.Errorf("listed %d files, the rule source has %d:\n%s", got, len(files), out.String())
			}
			data, err := os.ReadFile(filepath.Join(dir, "exporter.rules.yml"))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(data), tc.contains) {
				t.Errorf("exporter.rules.yml lacks %s", tc.contains)
			}
			if !strings.Contains(string(data), "job selector "+tc.want) {
				t.Errorf("the header does not name the selector %s", tc.want)
			}
		})
	}
}

func TestRunRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no output directory", nil, "required flag(s) '--out.dir' not provided"},
		{"empty selector", []string{"--job.selector=", "--out.dir=" + t.TempDir()}, "job selector is empty"},
		{"bad selector", []string{"--job.selector=job", "--out.dir=" + t.TempDir()}, `job selector "job"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := run(tc.args, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
