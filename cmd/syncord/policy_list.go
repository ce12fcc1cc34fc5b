package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/syncord/syncord/bpf"
)

const policyListHelp = `
List the built-in policies: for each its hooks (ELF section and SynCord
hook API), the bpffs names its programs and map are pinned under
(/sys/fs/bpf/<pin>), the SynCord kernel branches it works on (JSON
"branches"; absent: any SynCord kernel; install refuses it on another
branch), and its load-time parameters with their defaults
(set with syncord policy install NAME --param name=value; a parameter
marked "from" is set from the machine's topology when not given).`

// policyListCmd is `syncord policy list`; the policy command (policy.go)
// routes "list" here with the arguments after it.
func policyListCmd(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "policy list", "policy list [--json]", policyListHelp)
	jsonOut := fs.Bool("json", false, "print the manifests as a JSON array")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError(env, "policy list: unexpected argument %q", fs.Arg(0))
	}
	bs, err := bpf.Builtins()
	if err != nil {
		return err
	}
	if *jsonOut {
		ms := make([]*bpf.Manifest, len(bs))
		for i, b := range bs {
			ms[i] = b.Manifest
		}
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(ms)
	}
	for i, b := range bs {
		m := b.Manifest
		if i > 0 {
			fmt.Fprintln(env.Stdout)
		}
		fmt.Fprintf(env.Stdout, "%s: %s\n", m.Name, m.Description)
		fmt.Fprintf(env.Stdout, "  target %s\n", m.TargetOrDefault())
		for _, p := range m.Programs {
			fmt.Fprintf(env.Stdout, "  hook %-24s section %-28s pin %s\n", p.Hook, p.Section, p.Pin)
		}
		if m.Map != nil {
			fmt.Fprintf(env.Stdout, "  map  %-24s pin %s\n", "", m.Map.Name)
		}
		if len(m.Branches) > 0 {
			fmt.Fprintf(env.Stdout, "  kernel %s\n", strings.Join(m.Branches, " or "))
		} else {
			fmt.Fprintf(env.Stdout, "  kernel any SynCord branch (stock-syncord, shfllock-syncord, cna-syncord)\n")
		}
		for _, p := range m.Params {
			line := fmt.Sprintf("  param %s=%d", p.Name, p.Default)
			var notes []string
			if p.From != "" {
				notes = append(notes, "from "+p.From)
			}
			if p.Help != "" {
				notes = append(notes, p.Help)
			}
			if len(notes) > 0 {
				line += "  (" + strings.Join(notes, "; ") + ")"
			}
			fmt.Fprintln(env.Stdout, line)
		}
	}
	return nil
}
