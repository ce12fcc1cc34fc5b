package main

import (
	"flag"
	"fmt"

	"github.com/syncord/syncord/internal/cli"
	"github.com/syncord/syncord/internal/pseudofs"
	"github.com/syncord/syncord/runtime/control"
)

// rootFlags are the --proc-root and --sys-root flags every command that
// reads procfs or sysfs takes (fixture trees in tests), turned into one
// checked pseudofs.Roots.
type rootFlags struct {
	fs        *flag.FlagSet
	proc, sys *string
}

// addRootFlags registers --proc-root and --sys-root on fs, and the earlier
// spellings of this command (sysAliases for --sys-root: "sysfs", "root";
// procAliases for --proc-root: "proc") as hidden aliases so scripts keep
// working.
func addRootFlags(fs *flag.FlagSet, sysAliases, procAliases []string) rootFlags {
	r := rootFlags{
		fs:   fs,
		proc: fs.String("proc-root", pseudofs.DefaultProcMountPoint, "procfs mount `DIR` (a fixture tree in tests)"),
		sys:  fs.String("sys-root", pseudofs.DefaultSysMountPoint, "sysfs mount `DIR` (a fixture tree in tests)"),
	}
	for _, a := range sysAliases {
		cli.Alias(fs, a, "sys-root")
	}
	for _, a := range procAliases {
		cli.Alias(fs, a, "proc-root")
	}
	return r
}

// roots checks the roots once. For an agent client they must be the
// defaults: the agent runs as root, and files it reads under a root the
// client chose (links to any file) would come back in error messages and
// captures.
func (r rootFlags) roots(env *Env) (pseudofs.Roots, error) {
	if env.Paths != nil {
		for _, f := range []struct {
			name, val, def string
		}{{"proc-root", *r.proc, pseudofs.DefaultProcMountPoint}, {"sys-root", *r.sys, pseudofs.DefaultSysMountPoint}} {
			if f.val != f.def {
				return pseudofs.Roots{}, exitErr(control.ExitRefused, fmt.Errorf("%w: --%s %q: only %s over the agent (a root the client chooses would let the agent read any file for it)", control.ErrRefused, r.given(f.name), f.val, f.def))
			}
		}
	}
	return pseudofs.NewRoots(*r.proc, *r.sys)
}

// given is the spelling of flag name (or of one of its aliases) that was
// on the command line, for messages.
func (r rootFlags) given(name string) string {
	given := name
	r.fs.Visit(func(f *flag.Flag) {
		if of, ok := cli.IsAlias(f); ok && of == name {
			given = f.Name
		}
	})
	return given
}
