// Command syncord-host is the host side of SynCord: it starts the NUMA VM,
// pins its vCPUs through QMP, emulates AMP through cpufreq and runs syncord
// commands in the guest. Each subcommand lives in a file of its own and
// registers itself with register; main only dispatches.
package main

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"syscall"

	"github.com/syncord/syncord/internal/cli"
)

// Set with -ldflags "-X main.version=... -X main.revision=...".
var (
	version  = "dev"
	revision = "unknown"
)

// Env is what a subcommand gets besides its arguments.
type Env = cli.Env

type command = cli.Command

// commands is syncord-host's registry: every command file registers its
// command from init.
var commands = &cli.Group{Prog: "syncord-host"}

func register(c *command) { commands.Add(*c) }

var app = &cli.App{
	Name:    "syncord-host",
	Tagline: "start and pin the SynCord NUMA VM, run syncord in it",
	Lookup:  commands.Lookup,
	List:    commands.List,
	Flags:   settingFlags,
}

// settingFlags names the flag of syncord-host that sets each library
// setting (package setting): library errors speak of Go names, the user
// reads the flag.
var settingFlags = map[string]string{
	"Out":                "--out",
	"SizeMB":             "--size",
	"Suite":              "--suite",
	"Sources":            "--sources",
	"Kernel":             "--kernel",
	"ModulesDir":         "--modules",
	"CoresPerSocket":     "--cores-per-socket",
	"Kind":               "--plan",
	"AllowOversubscribe": "--allow-oversubscribe",
}

// Run runs syncord-host with args and returns the exit status.
func Run(ctx context.Context, env *Env, args []string) int {
	app.Version, app.Revision = version, revision
	return app.Run(ctx, env, args)
}

var errUsage = cli.ErrUsage

// exitErr makes syncord-host exit with code (for example the guest
// command's own status), printing err when it is not nil.
func exitErr(code int, err error) error { return cli.Exit(code, err) }

func newFlags(env *Env, name, synopsis, help string) *flag.FlagSet {
	return cli.NewFlags(env, "syncord-host", name, synopsis, help)
}

func parse(fs *flag.FlagSet, args []string) error { return cli.Parse(fs, args) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(Run(ctx, &Env{Stdout: os.Stdout, Stderr: os.Stderr}, os.Args[1:]))
}
