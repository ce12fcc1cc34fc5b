// Command syncord is the guest side of SynCord: topology, lock policies,
// lock profiling, workload drivers and the agent. Each subcommand lives in a
// file of its own and registers itself with register; main only dispatches,
// and the agent runs requests through the same Run function.
package main

import (
	"context"
	"flag"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/syncord/syncord/internal/cli"
	"github.com/syncord/syncord/runtime/control"
)

// Set with -ldflags "-X main.version=... -X main.revision=...".
var (
	version  = "dev"
	revision = "unknown"
)

// Env is what a subcommand gets besides its arguments.
type Env = cli.Env

// commands is syncord's registry: every command file registers its
// command (and its subcommands' groups) from init.
var commands = &cli.Group{Prog: "syncord"}

func register(c cli.Command) { commands.Add(c) }

var app = &cli.App{
	Name:    "syncord",
	Tagline: "install and profile kernel lock policies, run lock benchmarks",
	Lookup:  commands.Lookup,
	List:    commands.List,
	Flags:   settingFlags,
}

// settingFlags names the flag of syncord that sets each library setting
// (package setting): library errors speak of Go names, the user reads
// the flag.
var settingFlags = map[string]string{
	// policy
	"StateDir": "--state-dir",
	"Stats":    "--stats",
	"Object":   "--object",
	"Clang":    "--clang",
	"KDir":     "--kdir",
	"CC":       "--cc",
	// agent
	"Roots.Policy": "--policy-root",
	"Roots.Bench":  "--bench-root",
	"Roots.BPF":    "--bpf-root",
	// bench: the engine and every driver
	"CoresPerSocket": "-n",
	"NoAffinity":     "--no-affinity",
	"Duration":       "--duration", // will-it-scale: -s (wisFlags)
	// will-it-scale and sweep
	"Tasks":  "-t",
	"Tests":  "--list",
	"Points": "--points",
	"TmpDir": "--tmpdir",
	// fxmark
	"Root":     "--root",
	"Clean":    "--clean",
	"NCore":    "--ncore",
	"NBg":      "--nbg",
	"DirectIO": "--directio",
	// xdir prepare
	"Dir": "--dir",
	// metis wrmem
	"Procs":       "-p",
	"InputMB":     "-s",
	"MapTasks":    "-m",
	"ReduceTasks": "-r",
	"Top":         "-l",
	// leveldb readrandom
	"Threads":     "--threads",
	"Num":         "--num",
	"ValueSize":   "--value-size",
	"DB":          "--db",
	"UseExisting": "--use-existing",
}

// wisFlags are where bench will-it-scale's flags differ from
// settingFlags: its Duration is -s, as the suite's.
var wisFlags = map[string]string{"Duration": "-s"}

// Run runs syncord with args (without the program name) and returns the exit
// status. It is the one code path for the CLI and for agent requests.
func Run(ctx context.Context, env *Env, args []string) int {
	app.Version, app.Revision = version, revision
	return app.Run(ctx, env, args)
}

// status turns a command's error into its exit status, printing it.
func status(env *Env, err error) int { return app.Status(env, err) }

// errUsage marks an error already explained by flag's usage output (bare)
// or a usage error with its own message (wrapped): exit status 2.
var errUsage = cli.ErrUsage

// exitErr makes syncord exit with code, printing err when it is not nil.
func exitErr(code int, err error) error { return cli.Exit(code, err) }

// newFlags returns a FlagSet whose usage names the command and explains it.
func newFlags(env *Env, name, synopsis, help string) *flag.FlagSet {
	return cli.NewFlags(env, "syncord", name, synopsis, help)
}

// parse parses args into fs; a usage problem becomes errUsage (already
// reported by flag), -h becomes flag.ErrHelp (exit 0).
func parse(fs *flag.FlagSet, args []string) error { return cli.Parse(fs, args) }

// requestChild runs one agent request in a child process the agent
// started (control.ExecRunner), as the command line would with Remote set.
func requestChild(ctx context.Context, stdout, stderr io.Writer, args []string) int {
	env := &Env{Stdout: stdout, Stderr: stderr, Remote: true}
	// The child opened the agent's roots when it started (the request
	// runs now); the command resolves its paths through them.
	if z := control.ResolverFrom(ctx); z != nil {
		env.Paths = z
	}
	return Run(ctx, env, args)
}

func main() {
	if control.IsRequestChild() {
		os.Exit(control.ChildMain(requestChild))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(Run(ctx, &Env{Stdout: os.Stdout, Stderr: os.Stderr}, os.Args[1:]))
}
