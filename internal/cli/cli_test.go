package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"

	"github.com/syncord/syncord/internal/setting"
)

func testApp() *App {
	cmds := map[string]Command{
		"ok":    {Name: "ok", Summary: "succeeds", Run: func(context.Context, *Env, []string) error { return nil }},
		"fail":  {Name: "fail", Summary: "fails", Run: func(context.Context, *Env, []string) error { return errors.New("boom") }},
		"exit3": {Name: "exit3", Summary: "exits 3", Run: func(context.Context, *Env, []string) error { return Exit(3, nil) }},
		"cancelled": {Name: "cancelled", Summary: "cancelled", Run: func(ctx context.Context, _ *Env, _ []string) error {
			<-ctx.Done()
			return fmt.Errorf("wait: %w", ctx.Err())
		}},
		"usage": {Name: "usage", Summary: "usage", Run: func(context.Context, *Env, []string) error { return fmt.Errorf("bad --x: %w", ErrUsage) }},
		"flags": {Name: "flags", Summary: "parses", Run: func(_ context.Context, env *Env, args []string) error {
			fs := NewFlags(env, "prog", "flags", "flags [--n N]", "Takes a number.")
			fs.Int("n", 0, "a `number`")
			return Parse(fs, args)
		}},
	}
	return &App{Name: "prog", Tagline: "a test", Version: "v1", Revision: "abc",
		Lookup: func(n string) (Command, bool) { c, ok := cmds[n]; return c, ok },
		List: func() []Command {
			var l []Command
			for _, c := range cmds {
				l = append(l, c)
			}
			return l
		}}
}

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name      string
		args      []string
		code      int
		out, errs string
	}{
		{"no args lists commands", nil, 2, "  exit3        exits 3\n", ""},
		{"help", []string{"help"}, 0, "Usage: prog COMMAND", ""},
		{"version", []string{"version"}, 0, "prog v1 (revision abc)\n", ""},
		{"ok", []string{"ok"}, 0, "", ""},
		{"error", []string{"fail"}, 1, "", "prog: boom\n"},
		{"exit code", []string{"exit3"}, 3, "", ""},
		{"wrapped usage", []string{"usage"}, 2, "", "prog: bad --x: usage\n"},
		{"unknown", []string{"nope"}, 2, "", `unknown command "nope"`},
		{"flag error", []string{"flags", "--n", "x"}, 2, "", "invalid value"},
		{"flag help", []string{"flags", "-h"}, 0, "", "Usage: prog flags [--n N]\n\nTakes a number."},
		{"help command", []string{"help", "flags"}, 0, "", "Usage: prog flags"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := testApp().Run(context.Background(), &Env{Stdout: &out, Stderr: &errb}, tc.args)
			if code != tc.code || !strings.Contains(out.String(), tc.out) || !strings.Contains(errb.String(), tc.errs) {
				t.Fatalf("code %d stdout %q stderr %q; want %d, %q, %q", code, out.String(), errb.String(), tc.code, tc.out, tc.errs)
			}
		})
	}
}

// TestFlagErrorIsShort: a flag error prints flag's complaint and the
// one-line synopsis pointing to --help, not the whole help (issue 11 item
// 16); --help still prints all of it.
func TestFlagErrorIsShort(t *testing.T) {
	for _, args := range [][]string{{"flags", "--n", "x"}, {"flags", "--bogus"}} {
		var out, errb bytes.Buffer
		code := testApp().Run(context.Background(), &Env{Stdout: &out, Stderr: &errb}, args)
		lines := strings.Split(strings.TrimSuffix(errb.String(), "\n"), "\n")
		if code != 2 || len(lines) != 2 || lines[1] != "Usage: prog flags [--n N] (see 'prog flags --help')" {
			t.Errorf("%q: code %d stderr %q; want 2 and two lines: the complaint, the synopsis with see --help", args, code, errb.String())
		}
	}
	var errb bytes.Buffer
	testApp().Run(context.Background(), &Env{Stdout: &bytes.Buffer{}, Stderr: &errb}, []string{"flags", "--help"})
	if !strings.Contains(errb.String(), "Takes a number.") || !strings.Contains(errb.String(), "a number") {
		t.Errorf("--help: %q, want the help text and the flags", errb.String())
	}
}

// TestCancelledExits130: a command whose context was cancelled exits 130
// with one line, not 1 with "context canceled".
func TestCancelledExits130(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var errb bytes.Buffer
	code := testApp().Run(ctx, &Env{Stdout: &bytes.Buffer{}, Stderr: &errb}, []string{"cancelled"})
	if code != ExitCanceled || errb.String() != "prog: cancelled: cancelled\n" {
		t.Fatalf("code %d stderr %q, want %d and %q", code, errb.String(), ExitCanceled, "prog: cancelled: cancelled\n")
	}
	// A command that chose its own status keeps it.
	code = testApp().Run(ctx, &Env{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}}, []string{"exit3"})
	if code != 3 {
		t.Fatalf("exit3 under a cancelled context: %d, want 3", code)
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  string
	}{
		{"4096", 4096, ""},
		{"256M", 256 << 20, ""},
		{"1g", 1 << 30, ""},
		{"2T", 2 << 40, ""},
		{"8589934591G", 8589934591 << 30, ""},
		{"9999999999G", 0, "too large (at most 8589934591G"},
		{"17592186044432M", 0, "too large"},
		{"99999999999999999999", 0, "too large"},
		{"0", 0, "must be positive"},
		{"-5M", 0, "must be positive"},
		{"", 0, "not a number"},
		{"12X", 0, "not a number"},
		{"M", 0, "not a number"},
	} {
		got, err := ParseSize(tc.in)
		if tc.err == "" && (err != nil || got != tc.want) || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, error containing %q", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// TestAlias: an old spelling sets the same flag and --help shows only
// the one spelling, with the flag's default (not the value parsed before
// -h).
func TestAlias(t *testing.T) {
	var errb bytes.Buffer
	env := &Env{Stdout: &bytes.Buffer{}, Stderr: &errb}
	fs := NewFlags(env, "prog", "roots", "roots [--sys-root DIR]", "Reads sysfs.")
	sys := fs.String("sys-root", "/sys", "sysfs mount `DIR`")
	Alias(fs, "sysfs", "sys-root")
	if err := Parse(fs, []string{"--sysfs", "/tmp/fixture"}); err != nil || *sys != "/tmp/fixture" {
		t.Fatalf("--sysfs: %q, %v; want it to set --sys-root", *sys, err)
	}
	if _, ok := IsAlias(fs.Lookup("sysfs")); !ok {
		t.Error("IsAlias(sysfs) = false")
	}
	if err := Parse(fs, []string{"--sysfs", "/x", "-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	help := errb.String()
	if !strings.Contains(help, "-sys-root DIR") || !strings.Contains(help, `(default "/sys")`) || strings.Contains(help, "sysfs DIR") || strings.Contains(help, "alias") {
		t.Errorf("--help = %q; want --sys-root with its default, no alias", help)
	}
}

// TestSettingsRenderedAsFlags: a library error naming a setting prints
// with the flag of App.Flags, also inside an ExitError.
func TestSettingsRenderedAsFlags(t *testing.T) {
	app := testApp()
	app.Flags = map[string]string{"NCore": "--ncore"}
	for name, err := range map[string]error{
		"plain":      fmt.Errorf("fxmark: %w", setting.Invalid("{NCore} must be > 0, got %d", 0)),
		"exit error": Exit(3, fmt.Errorf("fxmark: %w", setting.Invalid("{NCore} must be > 0, got %d", 0))),
	} {
		var errb bytes.Buffer
		app.Status(&Env{Stdout: &bytes.Buffer{}, Stderr: &errb}, err)
		if got := errb.String(); got != "prog: fxmark: --ncore must be > 0, got 0\n" {
			t.Errorf("%s: stderr %q", name, got)
		}
	}
}
