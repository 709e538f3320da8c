package main

import (
	"bytes"
	"github.com/alecthomas/kingpin/v2"
	"io"
	"runtime/debug"
	"strings"
	"testing"
)

// TestEveryFlagParseErrorNamesItsFlag gives every flag of every subcommand
// a value its type cannot hold; each refusal must name the flag.
func TestEveryFlagParseErrorNamesItsFlag(t *testing.T) {
	app, _ := newApp(env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard})
	type target struct{ cmd, flag string }
	var targets []target
	for _, f := range app.Model().Flags {
		targets = append(targets, target{"", f.Name})
	}
	for _, c := range app.Model().Commands {
		for _, f := range c.Flags {
			targets = append(targets, target{c.Name, f.Name})
		}
	}
	refused := 0
	for _, tg := range targets {
		if strings.HasPrefix(tg.flag, "help") || tg.flag == "version" || tg.flag == "completion-bash" || strings.HasPrefix(tg.flag, "completion-script") {
			continue
		}
		t.Run(strings.TrimPrefix(tg.cmd+"/"+tg.flag, "/"), func(t *testing.T) {
			const bad = "not:a_value!"
			app, _ := newApp(env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard})
			var model *kingpin.FlagModel
			for _, f := range app.Model().FlagGroupModel.Flags {
				if f.Name == tg.flag {
					model = f
				}
			}
			for _, c := range app.Model().Commands {
				for _, f := range c.Flags {
					if c.Name == tg.cmd && f.Name == tg.flag {
						model = f
					}
				}
			}
			if model == nil || model.Value.Set(bad) == nil {
				return // a string flag: any value parses
			}
			// A fresh application: the one above has the bad value set.
			app, _ = newApp(env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard})
			var args []string
			if tg.cmd != "" {
				args = append(args, tg.cmd)
			}
			for _, a := range required[tg.cmd] {
				if !strings.HasPrefix(a, "--"+tg.flag+"=") {
					args = append(args, a)
				}
			}
			args = append(args, "--"+tg.flag+"="+bad)
			_, err := app.Parse(args)
			if err == nil {
				t.Fatalf("%v parses", args)
			}
			refused++
			if got := nameFlag(app, args, err).Error(); !strings.Contains(got, "--"+tg.flag) {
				t.Errorf("%v: %q does not name --%s", args, got, tg.flag)
			}
		})
	}
	if refused < 20 {
		t.Errorf("only %d flags refused a bad value: the test is not exercising the typed flags", refused)
	}
}

// required are the flags a subcommand cannot parse without.
var required = map[string][]string{
	"ledger":    {"--nats.url=nats://h:4222", "--jetstream.stream=S", "--from=2026-01-01", "--to=2026-01-01"},
	"reconcile": {"--from=2026-01-01", "--to=2026-01-01"},
}

// TestFlagErrorThroughCommandLine runs the example through the real
// command line.
func TestFlagErrorThroughCommandLine(t *testing.T) {
	var stderr bytes.Buffer
	code := runContext(t.Context(), []string{"--config.check", "--shutdown.timeout", "banana"}, env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: &stderr})
	if code != 2 || !strings.Contains(stderr.String(), `--shutdown.timeout: time: invalid duration "banana"`) {
		t.Errorf("exit %d: %s", code, stderr.String())
	}
}

// TestNATSURLChecked runs --config.check and the other subcommands that
// connect with URLs that are not NATS URLs: each is refused naming
// --nats.url, before any connection; NATS URLs pass.
func TestNATSURLChecked(t *testing.T) {
	tests := []struct {
		name, url string
		want      string // "" : accepted
	}{
		{"no_scheme", "not-a-url", `--nats.url "not-a-url" is not a NATS URL`},
		{"http", "http://x:4222", `--nats.url "http://x:4222": scheme "http" is not nats, tls, ws or wss`},
		{"port_out_of_range", "nats://h:99999", `--nats.url "nats://h:99999": port 99999 is not between 1 and 65535`},
		{"port_zero", "nats://h:0", `port 0 is not between 1 and 65535`},
		{"no_host", "nats://:4222", `--nats.url "nats://:4222": no host`},
		{"path", "nats://h:4222/x", `no path or query`},
		{"second_bad", "nats://a:4222,b:4222", `--nats.url "b:4222" is not a NATS URL`},
		{"nats", "nats://h:4222", ""},
		{"tls_no_port_list", "tls://a, nats://b:4223", ""},
		{"ws", "wss://h:443", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			runs := [][]string{{"--config.check", "--nats.url", tc.url}}
			if tc.want != "" {
				runs = append(runs,
					[]string{"simulate", "--nats.url", tc.url, "--duration=1ms"},
					[]string{"ledger", "--nats.url", tc.url, "--jetstream.stream=FACEID", "--from=2026-01-01", "--to=2026-01-01"})
			}
			for _, args := range runs {
				var stdout, stderr bytes.Buffer
				code := runContext(t.Context(), args, env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr})
				if tc.want == "" {
					if code != 0 {
						t.Errorf("%v: exit %d: %s", args, code, stderr.String())
					}
					continue
				}
				if code == 0 || !strings.Contains(stderr.String(), tc.want) {
					t.Errorf("%v: exit %d, stderr %q, want %q", args, code, stderr.String(), tc.want)
				}
			}
		})
	}
}

// TestBuildVersion: without -ldflags the version is the module's.
func TestBuildVersion(t *testing.T) {
	tests := []struct {
		name string
		info *debug.BuildInfo
		ok   bool
		want string
	}{
		{"released", &debug.BuildInfo{Main: debug.Module{Path: "github.com/faceid-observability/faceid-exporter", Version: "v1.4.0"}}, true, "v1.4.0"},
		{"checkout", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261206112257-e735a8b0f00d+dirty"}}, true, "v0.0.0-20261206112257-e735a8b0f00d+dirty"},
		{"none", nil, false, "(devel)"},
		{"empty", &debug.BuildInfo{}, true, "(devel)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := buildVersion(tc.info, tc.ok); got != tc.want {
				t.Errorf("buildVersion = %q, want %q", got, tc.want)
			}
		})
	}
}
