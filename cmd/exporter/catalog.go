package main

import (
	"context"
	"fmt"

	"github.com/alecthomas/kingpin/v2"
)

func addCatalog(app *kingpin.Application, c *cli) (*kingpin.CmdClause, func(context.Context) error) {
	cmd := app.Command("catalog", "Print the return-code catalog (with --catalog.file applied).")
	format := cmd.Flag("format", "Output format: markdown, json or csv.").Default("markdown").Enum("markdown", "json", "csv")
	return cmd, func(context.Context) error {
		cat, err := c.catalog()
		if err != nil {
			return err
		}
		switch *format {
		case "json":
			return cat.WriteJSON(c.stdout)
		case "csv":
			return cat.WriteCSV(c.stdout)
		case "markdown":
			return cat.WriteMarkdown(c.stdout)
		}
		return fmt.Errorf("unknown format %q", *format)
	}
}
