// Command syncord is the guest side of SynCord: topology, lock policies,
// lock profiling, workload drivers and the agent. Each subcommand lives in a
// file of its own and registers itself with register; main only dispatches,
// and the agent runs requests through the same Run function.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// Set with -ldflags "-X main.version=... -X main.revision=...".
var (
	version  = "dev"
	revision = "unknown"
)

// Env is what a subcommand gets besides its arguments.
type Env struct {
	Stdout io.Writer
	Stderr io.Writer
	// Remote is true when the command runs on behalf of an agent client.
	Remote bool
}

// command is one top-level subcommand.
type command struct {
	name    string
	summary string
	// mutating commands change kernel state or load the machine; the agent
	// runs them one at a time.
	mutating bool
	run      func(ctx context.Context, env *Env, args []string) error
}

var commands = map[string]*command{}

func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("duplicate command " + c.name)
	}
	commands[c.name] = c
}

// exitError carries an exit status other than 1.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

// errUsage marks an error that was already explained by flag's usage output.
var errUsage = errors.New("usage")

const progName = "syncord"

// Run runs syncord with args (without the program name) and returns the exit
// status. It is the one code path for the CLI and for agent requests.
func Run(ctx context.Context, env *Env, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				return status(env, c.run(ctx, env, []string{"--help"}))
			}
		}
		usage(env.Stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "version" || args[0] == "--version" {
		fmt.Fprintf(env.Stdout, "syncord %s (revision %s)\n", version, revision)
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(env.Stderr, "syncord: unknown command %q (run 'syncord help' for the list)\n", args[0])
		return 2
	}
	return status(env, c.run(ctx, env, args[1:]))
}

func status(env *Env, err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		err = ee.err
	}
	if errors.Is(err, errUsage) {
		// flag already printed its own complaint for a bare errUsage; a
		// wrapped one carries a message of its own.
		if err != errUsage {
			fmt.Fprintf(env.Stderr, "%s: %v\n", progName, err)
		}
		return 2
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "syncord: %v\n", err)
	}
	return code
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "syncord %s: install and profile kernel lock policies, run lock benchmarks\n\n", version)
	fmt.Fprintln(w, "Usage: syncord COMMAND [ARGS...]   (syncord help COMMAND for details)")
	fmt.Fprintln(w)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(w, "  %-12s %s\n", "version", "print version and revision")
}

// newFlags returns a FlagSet whose usage names the command and explains it.
func newFlags(env *Env, name, synopsis, help string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "Usage: syncord %s\n\n%s\n", synopsis, strings.TrimSpace(help))
		var has bool
		fs.VisitAll(func(*flag.Flag) { has = true })
		if has {
			fmt.Fprintln(env.Stderr, "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parse parses args into fs; a usage problem becomes errUsage (already
// reported by flag), -h becomes flag.ErrHelp (exit 0).
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(Run(ctx, &Env{Stdout: os.Stdout, Stderr: os.Stderr}, os.Args[1:]))
}
