package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/syncord/syncord/bpf"
	"github.com/syncord/syncord/livepatch/concord"
)

const policyBuildHelp = `
Build a lock policy, as the artifact's concord.py did, into
OUTPUT/<p>/eBPFGen/<p>_kern.o (+ manifest.json) and, with --livepatch,
OUTPUT/<p>/LivePatchGen/livepatch-concord.ko. Install the result with:
syncord policy install OUTPUT/<p> (it uses that module by default).

NAME is a built-in policy (syncord policy list): its compiled object and
manifest are written as they are, no clang needed. DIR is a policy source
directory: one or more *.pfile (one eBPF program each, SEC("lock_...")), at
most one *.map (a legacy SEC("maps") struct bpf_map_def) and at most one *.h
(the policy's struct __lock_policy_args; ${NCPU} is replaced by --ncpu).

A DIR is checked (sections start with lock_, each function's return type
fits its hook: bool or int for lock_enable_fastpath, should_reorder,
skip_reorder, lock_bypass_acquire, lock_bypass_release; int for the void
hooks), C is generated with syncord's SynCord helper table (bpf_back_off=1,
upstream ids + 1) and compiled with clang -target bpf -O2 without BTF, with
manifest.json beside it naming each program's section, pin (the .pfile
basename) and hook, the lock the policy targets (--target, default:
rwsem for lock_rwsem_ sections, else rename_lock), the map and the load-time
parameters.

A load-time parameter is declared in a .pfile as
  SYNCORD_PARAM(name, default); // [from=cores_per_socket|nr_cpus] help
(a read-only global the installer rewrites: --param name=value, or the
machine fact named by from=). Helpers: bpf_back_off(lock, timeout_ns),
bpf_map_lookup_elem, bpf_map_update_elem, bpf_map_delete_elem,
bpf_ktime_get_ns, bpf_get_smp_processor_id, bpf_get_current_pid_tgid,
bpf_get_numa_node_id, bpf_printk, ... (syncord's syncord_helpers.h).

--livepatch --kdir KDIR also builds syncord's own concord livepatch (GPL C
embedded in syncord, no kpatch) for the policy with kbuild against the
SynCord kernel build tree KDIR (for example the kernel's extracted
linux-headers package, usr/src/linux-headers-<release>). KDIR is only read:
kbuild runs on a copy of the module in a temporary directory. The compiler is
--cc, else $CC, else the one the kernel was built with (gcc-11 for the
SynCord kernels of ../shared/kernels). The module is configured for this
policy: its pins, its target lock, and its own module name
livepatch_concord_<policy>, so that policies stack. It attaches policies on
rename_lock (lockstat, amp), rwsem (bravo, stock-syncord) and all_spinlocks
on shfllock-syncord (numa-grouping) and cna-syncord (numa-grouping-cna); an
all_spinlocks program must take no lock: hash and queue maps are refused.
Other targets are refused with a reason. The
kernel's branch is read from KDIR (Module.symvers, else the release).`

// policyBuildCmd is `syncord policy build`; the policy command (policy.go)
// routes "build" here with the arguments after it.
func policyBuildCmd(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "policy build", "policy build NAME|DIR [--out OUTPUT] [--ncpu N] [--clang PATH] [--target LOCK] [--livepatch --kdir KDIR [--cc CC]] [--json]", policyBuildHelp)
	out := fs.String("out", "output", "write OUTPUT/<policy>/eBPFGen/... under `OUTPUT`")
	ncpu := fs.Int("ncpu", 0, "value of ${NCPU} in the policy header (0: CPUs of this machine)")
	clang := fs.String("clang", "", "clang binary (default: clang in PATH)")
	target := fs.String("target", "", "the `LOCK` a source policy targets: "+strings.Join(bpf.Targets, ", ")+" (default: from its sections)")
	lp := fs.Bool("livepatch", false, "also build the concord livepatch into OUTPUT/<policy>/LivePatchGen/livepatch-concord.ko (needs --kdir)")
	kdir := fs.String("kdir", "", "SynCord kernel build tree `KDIR` for --livepatch (read only)")
	cc := fs.String("cc", "", "compiler `CC` for --livepatch (default: $CC, else the kernel's own, e.g. gcc-11)")
	jsonOut := fs.Bool("json", false, "print the result as JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError(env, "policy build: want exactly one policy name or directory (syncord policy build --help)")
	}
	if *lp != (*kdir != "") {
		return usageError(env, "policy build: --livepatch and --kdir KDIR go together")
	}
	if *cc != "" && !*lp {
		return usageError(env, "policy build: --cc is for --livepatch")
	}
	// Under the agent the default OUTPUT is "output" under the first policy
	// root, not in the agent's working directory; KDIR is under a policy
	// root too (kbuild runs its Makefile).
	for _, f := range []struct {
		name, remoteDefault string
		p                   *string
	}{{"out", "output", out}, {"clang", "", clang}, {"kdir", "", kdir}, {"cc", "", cc}} {
		if err := resolveFlag(env, fs, kindPolicy, f.name, f.p, f.remoteDefault); err != nil {
			return err
		}
	}
	builtin := !strings.ContainsRune(pos[0], '/') && bpf.IsBuiltin(pos[0])
	if !builtin {
		if pos[0], err = resolvePath(env, kindPolicy, "", pos[0]); err != nil {
			return err
		}
	}
	var res *bpf.BuildResult
	if st, serr := os.Stat(pos[0]); serr != nil && builtin {
		if *target != "" {
			return usageError(env, "policy build: --target is for a source directory; built-in %s targets its own lock", pos[0])
		}
		res, err = bpf.WriteBuiltin(pos[0], *out)
	} else if serr == nil && !st.IsDir() {
		return fmt.Errorf("policy build: %s is not a directory (give a built-in policy name or a policy source directory)", pos[0])
	} else {
		res, err = bpf.Build(ctx, pos[0], *out, bpf.BuildOptions{Clang: *clang, NCPU: *ncpu, Target: *target})
	}
	if err != nil {
		return err
	}
	var ko *concord.Result
	if *lp {
		c := *cc
		if c == "" {
			c = os.Getenv("CC")
		}
		start := time.Now()
		ko, err = concord.Build(ctx, res.Manifest, *kdir, filepath.Join(filepath.Dir(res.Dir), "LivePatchGen"), concord.Options{CC: c, Object: res.Object})
		if err != nil {
			return fmt.Errorf("policy build %s: %w", res.Manifest.Name, err)
		}
		if !*jsonOut {
			fmt.Fprintf(env.Stderr, "built livepatch %s for %s with %s in %s\n", ko.Name, ko.Release, ko.CC, time.Since(start).Round(time.Millisecond))
		}
	}
	if *jsonOut {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		v := struct {
			Object    string        `json:"object"`
			Manifest  string        `json:"manifest"`
			Livepatch string        `json:"livepatch,omitempty"`
			Module    string        `json:"module,omitempty"`
			Kernel    string        `json:"kernel,omitempty"`
			Policy    *bpf.Manifest `json:"policy"`
		}{Object: res.Object, Manifest: res.ManifestPath, Policy: res.Manifest}
		if ko != nil {
			v.Livepatch, v.Module, v.Kernel = ko.Module, ko.Name, ko.Release
		}
		return enc.Encode(v)
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
	if res.CSource != "" {
		fmt.Fprintf(env.Stdout, "wrote %s\n", res.Object)
	} else {
		fmt.Fprintf(env.Stdout, "wrote %s (built-in)\n", res.Object)
	}
	fmt.Fprintf(env.Stdout, "wrote %s\n", res.ManifestPath)
	if ko != nil {
		fmt.Fprintf(env.Stdout, "wrote %s (module %s, kernel %s)\n", ko.Module, ko.Name, ko.Release)
	}
	fmt.Fprintf(env.Stdout, "install: syncord policy install %s\n", filepath.Dir(res.Dir))
	return nil
}

// usageError prints msg (status() does not print usage errors) and returns
// errUsage, for exit status 2.
func usageError(env *Env, format string, args ...any) error {
	fmt.Fprintf(env.Stderr, "syncord: "+format+"\n", args...)
	return errUsage
}
