// Package cli is what syncord and syncord-host share on the command line:
// dispatch to registered subcommands, help and version, exit statuses from
// errors, and flag sets whose usage explains the command. Commands write
// only to the Env's writers, so the agent can run them remotely.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/syncord/syncord/internal/setting"
)

// Env is what a subcommand gets besides its arguments.
type Env struct {
	Stdout io.Writer
	Stderr io.Writer
	// Remote is true when the command runs on behalf of an agent client.
	Remote bool
	// Paths, when not nil, resolves every path argument of a remote
	// request before the command uses it (the agent's roots); nil: paths
	// are used as given.
	Paths Paths
}

// Paths resolves the path argument value of flag ("" for a positional
// argument) against the roots of kind ("policy", "bench", "bpf"): it
// returns the path the command must use instead, or an error refusing it.
type Paths interface {
	Resolve(kind, flag, value string) (string, error)
}

// Command is one top-level subcommand as the dispatcher sees it.
type Command struct {
	Name    string
	Summary string
	Run     func(ctx context.Context, env *Env, args []string) error
	// Mutating commands change kernel state or load the machine; the
	// agent runs them one at a time (see Group.Mutates).
	Mutating bool
	// Group, when set, holds the command's subcommands; Run (when left
	// nil) dispatches to them.
	Group *Group
}

// App dispatches a program's arguments to its commands.
type App struct {
	// Name is the program name, used in messages ("syncord").
	Name string
	// Tagline follows the name and version in the command list.
	Tagline           string
	Version, Revision string
	// Lookup finds a command by name; List returns them all.
	Lookup func(name string) (Command, bool)
	List   func() []Command
	// Flags names the flag that sets each library setting (Go name ->
	// "--flag"): errors naming settings (package setting) are printed
	// with the flags instead.
	Flags map[string]string
}

// ErrUsage marks a usage error: exit status 2. A bare ErrUsage was already
// explained (flag printed its complaint); a wrapped one carries a message.
var ErrUsage = errors.New("usage")

// ExitError carries an exit status other than 1, with an optional message.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// Exit returns an error that makes the program exit with code, printing
// err when it is not nil.
func Exit(code int, err error) error { return &ExitError{Code: code, Err: err} }

// Run runs the program with args (without the program name) and returns
// its exit status.
func (a *App) Run(ctx context.Context, env *Env, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) > 1 {
			if c, ok := a.Lookup(args[1]); ok {
				return a.Status(env, c.Run(ctx, env, []string{"--help"}))
			}
		}
		a.Usage(env.Stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "version" || args[0] == "--version" {
		fmt.Fprintf(env.Stdout, "%s %s (revision %s)\n", a.Name, a.Version, a.Revision)
		return 0
	}
	c, ok := a.Lookup(args[0])
	if !ok {
		fmt.Fprintf(env.Stderr, "%s: unknown command %q (run '%s help' for the list)\n", a.Name, args[0], a.Name)
		return 2
	}
	err := setting.Render(c.Run(ctx, env, args[1:]), a.Flags)
	var ee *ExitError
	if err != nil && ctx.Err() != nil && !errors.Is(err, flag.ErrHelp) && !errors.As(err, &ee) {
		// Interrupted (SIGINT, SIGTERM, or the agent's client went away)
		// and the command chose no status of its own: the shell's
		// 128+SIGINT, and no "context canceled" noise.
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			fmt.Fprintf(env.Stderr, "%s: %s: cancelled\n", a.Name, args[0])
		} else {
			fmt.Fprintf(env.Stderr, "%s: %v (cancelled)\n", a.Name, err)
		}
		return ExitCanceled
	}
	return a.Status(env, err)
}

// ExitCanceled is the exit status of a command cancelled by its context
// (SIGINT or SIGTERM on the command line, a client that went away or
// cancelled over the agent): 128+SIGINT, as a shell reports it.
const ExitCanceled = 130

// Status turns a command's error into its exit status, printing it.
func (a *App) Status(env *Env, err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	code := 1
	var ee *ExitError
	if errors.As(err, &ee) {
		code = ee.Code
		err = ee.Err
	}
	err = setting.Render(err, a.Flags)
	if errors.Is(err, ErrUsage) {
		if err != ErrUsage {
			fmt.Fprintf(env.Stderr, "%s: %v\n", a.Name, err)
		}
		return 2
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "%s: %v\n", a.Name, err)
	}
	return code
}

// Usage prints the command list.
func (a *App) Usage(w io.Writer) {
	fmt.Fprintf(w, "%s %s: %s\n\n", a.Name, a.Version, a.Tagline)
	fmt.Fprintf(w, "Usage: %s COMMAND [ARGS...]   (%s help COMMAND for details)\n\n", a.Name, a.Name)
	cmds := a.List()
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].Name < cmds[j].Name })
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-12s %s\n", c.Name, c.Summary)
	}
	fmt.Fprintf(w, "  %-12s %s\n", "version", "print version and revision")
}

// NewFlags returns a FlagSet for "prog name" whose usage shows the
// synopsis, the help text and the flags, on env's stderr. That full usage
// is for --help; a usage error (Parse, ShortUsage) prints the synopsis in
// one line and points to --help.
func NewFlags(env *Env, prog, name, synopsis, help string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		switch o := fs.Output().(type) {
		case *parsing:
			// Inside Parse: flag calls Usage for -h and after its
			// complaint; Parse decides what to print afterwards.
			o.usage = true
			return
		case *short:
			fmt.Fprintf(o.w, "Usage: %s %s (see '%s %s --help')\n", prog, synopsis, prog, name)
			return
		}
		fmt.Fprintf(env.Stderr, "Usage: %s %s\n\n%s\n", prog, synopsis, strings.TrimSpace(help))
		if shown := visibleFlags(fs); shown != nil {
			fmt.Fprintln(env.Stderr, "\nFlags:")
			shown.SetOutput(env.Stderr)
			shown.PrintDefaults()
		}
	}
	return fs
}

// aliasUsage starts the usage of a flag Alias registered: --help leaves
// it out.
const aliasUsage = "\x00alias of -"

// Alias registers old as another name of fs's flag name (an earlier
// spelling that scripts still use): it sets the same value, and --help
// does not show it, so the help documents one spelling.
func Alias(fs *flag.FlagSet, old, name string) {
	f := fs.Lookup(name)
	if f == nil {
		panic("cli.Alias: no flag " + name)
	}
	fs.Var(f.Value, old, aliasUsage+name)
	fs.Lookup(old).DefValue = f.DefValue
}

// IsAlias reports whether f is a name Alias registered, and of which flag.
func IsAlias(f *flag.Flag) (string, bool) {
	return strings.CutPrefix(f.Usage, aliasUsage)
}

// visibleFlags returns a copy of fs without its aliases (nil when no flag
// is left), for PrintDefaults.
func visibleFlags(fs *flag.FlagSet) *flag.FlagSet {
	var shown *flag.FlagSet
	fs.VisitAll(func(f *flag.Flag) {
		if _, ok := IsAlias(f); ok {
			return
		}
		if shown == nil {
			shown = flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
		}
		shown.Var(f.Value, f.Name, f.Usage)
		shown.Lookup(f.Name).DefValue = f.DefValue
	})
	return shown
}

// parsing is fs's output while Parse runs: flag's complaint passes
// through, its call of Usage is only noted.
type parsing struct {
	w     io.Writer
	usage bool
}

func (p *parsing) Write(b []byte) (int, error) { return p.w.Write(b) }

// short is fs's output while ShortUsage runs.
type short struct{ w io.Writer }

func (s *short) Write(b []byte) (int, error) { return s.w.Write(b) }

// Parse parses args into fs: a usage problem becomes ErrUsage after
// flag's one-line complaint and the one-line synopsis pointing to --help;
// -h prints the full usage and becomes flag.ErrHelp (exit status 0).
func Parse(fs *flag.FlagSet, args []string) error {
	out := fs.Output()
	p := &parsing{w: out}
	fs.SetOutput(p)
	err := fs.Parse(args)
	fs.SetOutput(out)
	if err == nil {
		return nil
	}
	if errors.Is(err, flag.ErrHelp) {
		fs.Usage()
		return err
	}
	ShortUsage(fs)
	return ErrUsage
}

// ShortUsage prints fs's synopsis in one line with a pointer to --help,
// for a usage error found after parsing (a missing argument).
func ShortUsage(fs *flag.FlagSet) {
	out := fs.Output()
	fs.SetOutput(&short{w: out})
	fs.Usage()
	fs.SetOutput(out)
}

// ParseSize parses a size in bytes with an optional binary suffix: "4096",
// "256K", "256M", "1G", "2T" (case-insensitive, K = 1024). It refuses
// zero, negative and anything that does not fit in an int64 byte count,
// naming the limit, instead of wrapping around.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	shift, suffix := uint(0), ""
	if t != "" {
		suffix = strings.ToUpper(t[len(t)-1:])
		switch suffix {
		case "K":
			shift = 10
		case "M":
			shift = 20
		case "G":
			shift = 30
		case "T":
			shift = 40
		}
		if shift != 0 {
			t = t[:len(t)-1]
		} else {
			suffix = ""
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, fmt.Errorf("size %q is too large (at most %d bytes, 8 EiB)", s, int64(math.MaxInt64))
		}
		return 0, fmt.Errorf("size %q is not a number of bytes with an optional K, M, G or T suffix (like 256M)", s)
	}
	if v <= 0 {
		return 0, fmt.Errorf("size %q must be positive", s)
	}
	if v > math.MaxInt64>>shift {
		return 0, fmt.Errorf("size %q is too large (at most %d%s, 8 EiB)", s, int64(math.MaxInt64>>shift), suffix)
	}
	return v << shift, nil
}
