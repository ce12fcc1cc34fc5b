package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"path/filepath"

	"github.com/syncord/syncord/bpf"
)

const policyBuildHelp = `
Build a lock policy from its source directory, as the artifact's concord.py
did: DIR holds one or more *.pfile (one eBPF program each, SEC("lock_...")),
at most one *.map (a legacy SEC("maps") struct bpf_map_def) and at most one
*.h (the policy's struct __lock_policy_args; ${NCPU} is replaced by --ncpu).

The directory is checked (sections start with lock_, each function's return
type fits its hook: bool or int for lock_enable_fastpath, should_reorder,
skip_reorder, lock_bypass_acquire, lock_bypass_release; int for the void
hooks), C is generated with syncord's SynCord helper table (bpf_back_off=1,
upstream ids + 1) and compiled with clang -target bpf -O2 without BTF into
OUTPUT/<p>/eBPFGen/<p>_kern.o, with manifest.json beside it naming each
program's section, pin (the .pfile basename) and hook, the map and the
load-time parameters. Install it with: syncord policy install OUTPUT/<p>.

A load-time parameter is declared in a .pfile as
  SYNCORD_PARAM(name, default); // [from=cores_per_socket|nr_cpus] help
(a read-only global the installer rewrites: --param name=value, or the
machine fact named by from=). Helpers: bpf_back_off(lock, timeout_ns),
bpf_map_lookup_elem, bpf_map_update_elem, bpf_map_delete_elem,
bpf_ktime_get_ns, bpf_get_smp_processor_id, bpf_get_current_pid_tgid,
bpf_get_numa_node_id, bpf_printk, ... (syncord's syncord_helpers.h).

With --livepatch PATCH --linux-src SRC it also runs kpatch-build on the
built SynCord kernel tree SRC and writes
OUTPUT/<p>/LivePatchGen/livepatch-concord.ko.`

// policyBuildCmd is `syncord policy build`; the policy command (policy.go)
// routes "build" here with the arguments after it.
func policyBuildCmd(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "policy build", "policy build DIR [--out OUTPUT] [--ncpu N] [--clang PATH] [--livepatch PATCH --linux-src SRC] [--json]", policyBuildHelp)
	out := fs.String("out", "output", "write OUTPUT/<policy>/eBPFGen/... under `OUTPUT`")
	ncpu := fs.Int("ncpu", 0, "value of ${NCPU} in the policy header (0: CPUs of this machine)")
	clang := fs.String("clang", "", "clang binary (default: clang in PATH)")
	patch := fs.String("livepatch", "", "kernel `PATCH` to build into livepatch-concord.ko with kpatch-build")
	linuxSrc := fs.String("linux-src", "", "built SynCord kernel tree `SRC` for --livepatch")
	jsonOut := fs.Bool("json", false, "print the result as JSON")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError(env, "policy build: want exactly one policy directory (syncord policy build --help)")
	}
	if (*patch == "") != (*linuxSrc == "") {
		return usageError(env, "policy build: --livepatch and --linux-src go together")
	}
	// Under the agent the default OUTPUT is "output" under the first policy
	// root, not in the agent's working directory.
	for _, f := range []struct {
		name, remoteDefault string
		p                   *string
	}{{"out", "output", out}, {"clang", "", clang}, {"livepatch", "", patch}, {"linux-src", "", linuxSrc}} {
		if err := resolveFlag(env, fs, kindPolicy, f.name, f.p, f.remoteDefault); err != nil {
			return err
		}
	}
	if pos[0], err = resolvePath(env, kindPolicy, "", pos[0]); err != nil {
		return err
	}
	res, err := bpf.Build(ctx, pos[0], *out, bpf.BuildOptions{Clang: *clang, NCPU: *ncpu})
	if err != nil {
		return err
	}
	var ko string
	if *patch != "" {
		src, _ := bpf.ParseSource(pos[0])
		ko, err = bpf.BuildLivepatch(ctx, res.Manifest.Name, *out, bpf.KpatchOptions{
			Patch: *patch, LinuxSrc: *linuxSrc, Header: src.Header, NCPU: *ncpu, Log: env.Stderr})
		if err != nil {
			return err
		}
	}
	if *jsonOut {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Object    string        `json:"object"`
			Manifest  string        `json:"manifest"`
			Livepatch string        `json:"livepatch,omitempty"`
			Policy    *bpf.Manifest `json:"policy"`
		}{res.Object, res.ManifestPath, ko, res.Manifest})
	}
	if res.Warnings != "" {
		fmt.Fprintln(env.Stderr, res.Warnings)
	}
	m := res.Manifest
	fmt.Fprintf(env.Stdout, "policy %s: %d programs", m.Name, len(m.Programs))
	if m.Map != nil {
		fmt.Fprintf(env.Stdout, ", map pinned at %s", m.Map.Name)
	}
	fmt.Fprintln(env.Stdout)
	for _, p := range m.Programs {
		fmt.Fprintf(env.Stdout, "  %-32s %-28s %s\n", p.Pin, p.Section, p.Hook)
	}
	for _, p := range m.Params {
		fmt.Fprintf(env.Stdout, "  param %s=%d\n", p.Name, p.Default)
	}
	fmt.Fprintf(env.Stdout, "wrote %s\nwrote %s\n", res.Object, res.ManifestPath)
	if ko != "" {
		fmt.Fprintf(env.Stdout, "wrote %s\n", ko)
	}
	fmt.Fprintf(env.Stdout, "install: syncord policy install %s\n", filepath.Dir(res.Dir))
	return nil
}

// parseInterspersed parses flags that may come before or after the
// positional arguments and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parse(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// usageError prints msg (status() does not print usage errors) and returns
// errUsage, for exit status 2.
func usageError(env *Env, format string, args ...any) error {
	fmt.Fprintf(env.Stderr, "syncord: "+format+"\n", args...)
	return errUsage
}
