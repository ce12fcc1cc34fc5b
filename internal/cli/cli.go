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
	"sort"
	"strings"
)

// Env is what a subcommand gets besides its arguments.
type Env struct {
	Stdout io.Writer
	Stderr io.Writer
	// Remote is true when the command runs on behalf of an agent client.
	Remote bool
}

// Command is one top-level subcommand as the dispatcher sees it.
type Command struct {
	Name    string
	Summary string
	Run     func(ctx context.Context, env *Env, args []string) error
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
	return a.Status(env, c.Run(ctx, env, args[1:]))
}

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
// synopsis, the help text and the flags, on env's stderr.
func NewFlags(env *Env, prog, name, synopsis, help string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "Usage: %s %s\n\n%s\n", prog, synopsis, strings.TrimSpace(help))
		var has bool
		fs.VisitAll(func(*flag.Flag) { has = true })
		if has {
			fmt.Fprintln(env.Stderr, "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// Parse parses args into fs: a usage problem becomes ErrUsage (flag has
// reported it), -h becomes flag.ErrHelp (exit status 0).
func Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return ErrUsage
	}
	return nil
}
