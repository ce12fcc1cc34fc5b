package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func testApp() *App {
	cmds := map[string]Command{
		"ok":    {Name: "ok", Summary: "succeeds", Run: func(context.Context, *Env, []string) error { return nil }},
		"fail":  {Name: "fail", Summary: "fails", Run: func(context.Context, *Env, []string) error { return errors.New("boom") }},
		"exit3": {Name: "exit3", Summary: "exits 3", Run: func(context.Context, *Env, []string) error { return Exit(3, nil) }},
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
