package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"slices"
	"strings"
	"testing"
)

// TestParseArgs: flags mixed with positional arguments in any order, and
// "--" ending the flags as POSIX says (everything after it positional,
// "--" itself not returned), while a flag's value may be "--".
func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		pos  []string
		n    int
		db   string
		q    bool
	}{
		{"flags after", []string{"lock1", "-n", "4"}, []string{"lock1"}, 4, "", false},
		{"flags before", []string{"-n", "4", "lock1"}, []string{"lock1"}, 4, "", false},
		{"mixed", []string{"a", "-q", "b", "--n=2", "c"}, []string{"a", "b", "c"}, 2, "", true},
		{"-- ends the flags", []string{"a", "--", "-n", "4"}, []string{"a", "-n", "4"}, 0, "", false},
		{"-- first", []string{"--", "-q", "a"}, []string{"-q", "a"}, 0, "", false},
		{"flags after -- stay positional", []string{"--", "a", "-q", "-n", "1"}, []string{"a", "-q", "-n", "1"}, 0, "", false},
		{"-- after flags", []string{"-n", "3", "--", "--", "x"}, []string{"--", "x"}, 3, "", false},
		{"-- after a bool flag", []string{"-q", "--", "-n"}, []string{"-n"}, 0, "", true},
		{"-- as a value", []string{"--db", "--", "a", "-n", "5"}, []string{"a"}, 5, "--", false},
		{"nothing", nil, nil, 0, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			n := fs.Int("n", 0, "")
			db := fs.String("db", "", "")
			q := fs.Bool("q", false, "")
			pos, err := ParseArgs(fs, tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(pos, tc.pos) || *n != tc.n || *db != tc.db || *q != tc.q {
				t.Fatalf("ParseArgs(%q) = %q, n=%d db=%q q=%v; want %q, n=%d db=%q q=%v", tc.args, pos, *n, *db, *q, tc.pos, tc.n, tc.db, tc.q)
			}
		})
	}
}

// TestGroup: one dispatcher for every level of subcommands: usage on
// stderr (status 2) without a subcommand, on stdout for help, unknown
// names refused naming the known ones, arguments passed on.
func TestGroup(t *testing.T) {
	var got []string
	g := &Group{Prog: "syncord", Name: "bench xdir", Help: "xDir-rename."}
	g.Add(Command{Name: "run", Summary: "run it", Run: func(_ context.Context, _ *Env, args []string) error {
		got = args
		return nil
	}})
	g.Add(Command{Name: "prepare", Summary: "prepare it"})
	var out, errb bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &errb}
	if err := g.Run(context.Background(), env, []string{"run", "a", "-b"}); err != nil || !slices.Equal(got, []string{"a", "-b"}) {
		t.Fatalf("run: %v, args %q", err, got)
	}
	want := "Usage: syncord bench xdir SUBCOMMAND [ARGS...]   (syncord bench xdir SUBCOMMAND --help for details)\n\nxDir-rename.\n\n  prepare        prepare it\n  run            run it\n"
	if err := g.Run(context.Background(), env, nil); !errors.Is(err, ErrUsage) || errb.String() != want {
		t.Fatalf("no subcommand: %v\n%q\nwant\n%q", err, errb.String(), want)
	}
	if err := g.Run(context.Background(), env, []string{"--help"}); err != nil || out.String() != want {
		t.Fatalf("--help: %v\n%q", err, out.String())
	}
	err := g.Run(context.Background(), env, []string{"fly"})
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 2 || !strings.Contains(err.Error(), `bench xdir: unknown subcommand "fly" (prepare, run;`) {
		t.Fatalf("unknown: %v", err)
	}
	if got := g.Mutates([]string{"run"}); got {
		t.Error("run is not marked mutating, Mutates says it is")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a duplicate subcommand did not panic")
		}
	}()
	g.Add(Command{Name: "run"})
}

// TestMutates: the deepest command a command line names decides whether
// it mutates; help never does; an unknown subcommand mutates as its
// parent, an unknown command not at all.
func TestMutates(t *testing.T) {
	root := &Group{Prog: "syncord"}
	policy := &Group{Prog: "syncord", Name: "policy"}
	policy.Add(Command{Name: "install", Mutating: true, Run: func(context.Context, *Env, []string) error { return nil }})
	policy.Add(Command{Name: "status", Run: func(context.Context, *Env, []string) error { return nil }})
	root.Add(Command{Name: "policy", Mutating: true, Group: policy})
	root.Add(Command{Name: "topology", Run: func(context.Context, *Env, []string) error { return nil }})
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"policy", "install", "amp"}, true},
		{[]string{"policy", "status", "--json"}, false},
		{[]string{"policy"}, true},
		{[]string{"policy", "fly"}, true},
		{[]string{"policy", "--help"}, false},
		{[]string{"help", "policy"}, false},
		{[]string{"topology"}, false},
		{[]string{"nosuch"}, false},
		{nil, false},
	} {
		if got := root.Mutates(tc.args); got != tc.want {
			t.Errorf("Mutates(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
	if c, _ := root.Lookup("policy"); c.Run == nil {
		t.Error("a command with a Group and no Run does not run the group")
	}
}
