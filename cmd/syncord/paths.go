package main

import (
	"errors"
	"flag"

	"github.com/syncord/syncord/runtime/control"
)

// Kinds of path arguments (the agent's --policy-root, --bench-root,
// --bpf-root).
const (
	kindPolicy = control.KindPolicy
	kindBench  = control.KindBench
	kindBPF    = control.KindBPF
)

// resolvePath resolves the path argument value of flag ("" for a
// positional argument) when the command runs for an agent client: it
// returns the checked real path the command must use, or a refusal (exit
// status 77). Run locally, value is returned as given.
func resolvePath(env *Env, kind, flag, value string) (string, error) {
	if env.Paths == nil {
		return value, nil
	}
	p, err := env.Paths.Resolve(kind, flag, value)
	if err != nil {
		if errors.Is(err, control.ErrRefused) {
			return "", exitErr(control.ExitRefused, err)
		}
		return "", err
	}
	return p, nil
}

// resolveFlag resolves the string flag name of fs in place. A flag left at
// an empty default is left alone. A flag not given on the command line:
// with remoteDefault "" its default is a fixed system location the client
// cannot choose (the state directory, the bpffs mount) and is used as is;
// otherwise, for an agent client, remoteDefault (relative: under the first
// root of kind) replaces the local default, which would lie in the agent's
// working directory or in /tmp.
func resolveFlag(env *Env, fs *flag.FlagSet, kind, name string, p *string, remoteDefault string) error {
	if env.Paths == nil {
		return nil
	}
	if !flagSet(fs, name) {
		if remoteDefault == "" {
			return nil
		}
		*p = remoteDefault
	}
	if *p == "" {
		return nil
	}
	v, err := resolvePath(env, kind, "--"+name, *p)
	if err != nil {
		return err
	}
	*p = v
	return nil
}
