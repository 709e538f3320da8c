// Command exporter turns FaceID verification results published on NATS into
// Prometheus and OpenTelemetry metrics. Its subcommands classify logs, print the
// code catalog and publish synthetic traffic.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"

	"github.com/faceid-observability/faceid-exporter/pkg/classify"
)

// env is the process's surroundings: streams and clock.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	now            func() time.Time
	// setMemoryLimit is runtime/debug.SetMemoryLimit in the real process;
	// nil in tests, which share one process.
	setMemoryLimit func(int64) int64
}

// cli is what every subcommand shares: its environment and the global flags.
type cli struct {
	env
	catalogFile *string
	logConfig   *promslog.Config
}

// logger returns the slog logger configured by --log.level and --log.format.
func (c *cli) logger() *slog.Logger {
	cfg := *c.logConfig
	cfg.Writer = c.stderr
	return promslog.New(&cfg)
}

// catalog returns the embedded catalog with --catalog.file applied.
func (c *cli) catalog() (*classify.Catalog, error) {
	cat, err := classify.Default()
	if err != nil {
		return nil, fmt.Errorf("load embedded catalog: %w", err)
	}
	if *c.catalogFile == "" {
		return cat, nil
	}
	data, err := os.ReadFile(*c.catalogFile)
	if err != nil {
		return nil, fmt.Errorf("read catalog overrides: %w", err)
	}
	return cat.WithOverrides(*c.catalogFile, data)
}

// subcommand registers itself on the application and returns its action.
type subcommand func(app *kingpin.Application, c *cli) (*kingpin.CmdClause, func(ctx context.Context) error)

func main() {
	if version.Version == "" {
		// No -ldflags: the landing page, the build-info metric, OTLP and
		// --version take the module's version from the build information.
		version.Version = buildVersion(debug.ReadBuildInfo())
	}
	os.Exit(runMain(os.Args[1:], env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, now: time.Now, setMemoryLimit: debug.SetMemoryLimit}))
}

// runMain parses args, runs the chosen subcommand until it ends or a signal
// arrives, and returns the process exit code.
func runMain(args []string, e env) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runContext(ctx, args, e)
}

// runContext is runMain with the context given: tests cancel it to stop a
// long-running subcommand.
func runContext(ctx context.Context, args []string, e env) int {
	// The logger and a subcommand's own output (simulate's progress) write
	// stderr from different goroutines: one lock keeps their lines whole.
	e.stderr = &lockedWriter{w: e.stderr}
	stderr := e.stderr
	app, actions := newApp(e)
	chosen, err := app.Parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "exporter: %v\n", nameFlag(app, args, err))
		return 2
	}
	if err := actions[chosen](ctx); err != nil {
		fmt.Fprintf(stderr, "exporter %s: %v\n", chosen, err)
		var ec interface{ ExitCode() int }
		if errors.As(err, &ec) {
			return ec.ExitCode()
		}
		return 1
	}
	return 0
}

// newApp builds the command line: the global flags and every subcommand,
// with each subcommand's action by its full name.
func newApp(e env) (app *kingpin.Application, actions map[string]func(context.Context) error) {
	stdout, stderr := e.stdout, e.stderr
	app = kingpin.New("exporter", "FaceID (慧眼人脸核身) verification-result exporter: NATS in, Prometheus and OpenTelemetry out.")
	app.Version(version.Print("faceid_exporter"))
	app.HelpFlag.Short('h')
	app.UsageWriter(stdout)
	app.ErrorWriter(stderr)
	if e.now == nil {
		e.now = time.Now
	}
	c := &cli{env: e, logConfig: &promslog.Config{}}
	c.catalogFile = app.Flag("catalog.file", "YAML file that adds or overrides return codes and risk tags of the embedded catalog (see docs/catalog-overrides.md).").PlaceHolder("FILE").String()
	promslogflag.AddFlags(app, c.logConfig)

	actions = map[string]func(context.Context) error{}
	for _, add := range subcommands {
		cmd, action := add(app, c)
		actions[cmd.FullCommand()] = action
	}
	return app, actions
}

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// nameFlag returns err, the error of app.Parse(args), prefixed with the flag
// whose value it refused: kingpin reports a bad value with the value's error
// alone (`time: invalid duration "banana"`). It parses args again without
// applying them and sets each flag's value in turn; the first one refused is
// the culprit. Errors that already name a flag are returned as they are.
func nameFlag(app *kingpin.Application, args []string, err error) error {
	if strings.Contains(err.Error(), "--") {
		return err
	}
	if v, ok := strings.CutPrefix(err.Error(), "unexpected "); ok {
		// --flag=value on a boolean flag: kingpin reads the value as an argument.
		for _, a := range args {
			if name, val, eq := strings.Cut(strings.TrimPrefix(a, "--"), "="); eq && strings.HasPrefix(a, "--") && val == v {
				return fmt.Errorf("--%s: a boolean flag takes no value (--%s or --no-%s): %w", name, name, name, err)
			}
		}
	}
	pc, perr := app.ParseContext(args)
	if perr != nil || pc == nil {
		return err
	}
	for _, el := range pc.Elements {
		f, ok := el.Clause.(*kingpin.FlagClause)
		if !ok || el.Value == nil {
			continue
		}
		m := f.Model()
		if m.Value == nil {
			continue
		}
		if serr := m.Value.Set(*el.Value); serr != nil {
			return fmt.Errorf("--%s: %w", m.Name, err)
		}
	}
	return err
}
