// Command rulegen writes the project's Prometheus rule files rendered with
// another job selector, for a Prometheus whose scrape job of the exporter is
// not job="faceid-exporter" (a different job name, a namespace label).
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/alecthomas/kingpin/v2"

	"github.com/faceid-observability/faceid-exporter/internal/rulegen"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "rulegen:", err)
		os.Exit(1)
	}
}

// run parses args and writes one rule file per file of the rule source into
// the output directory, listing them on out.
func run(args []string, out io.Writer) error {
	app := kingpin.New("rulegen", "Write the FaceID exporter's Prometheus rule files (alerts/*.yml) rendered with a job selector of your own.")
	selector := app.Flag("job.selector", "Label matchers, without braces, that select the exporter's series, e.g. namespace=\"faceid\",job=\"faceid\".").Default(rulegen.DefaultJobSelector).String()
	dir := app.Flag("out.dir", "Directory to write the rule files to (created if missing).").Required().String()
	if _, err := app.Parse(args); err != nil {
		return fmt.Errorf("parse flags: %w", err)
	}
	files, err := rulegen.Render(rulegen.Profile{Name: "production, job selector " + *selector, Scale: 1, JobSelector: *selector})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return fmt.Errorf("create output directory: %w", err)
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		path := filepath.Join(*dir, name)
		if err := os.WriteFile(path, files[name], 0o644); err != nil {
			return fmt.Errorf("write rule file: %w", err)
		}
		fmt.Fprintln(out, path)
	}
	return nil
}
