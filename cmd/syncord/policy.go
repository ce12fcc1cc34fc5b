package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/syncord/syncord/bpf"
	"github.com/syncord/syncord/internal/cli"
	"github.com/syncord/syncord/internal/pseudofs"
	"github.com/syncord/syncord/runtime"
)

// policyGroup is `syncord policy SUBCOMMAND`.
var policyGroup = &cli.Group{Prog: "syncord", Name: "policy", Synopsis: "install|uninstall|status|reconcile|build|list [ARGS...]",
	Help: "Install, remove and inspect SynCord lock policies."}

func init() {
	for _, c := range []cli.Command{
		{Name: "install", Summary: "NAME|DIR: load and pin a policy, insert its livepatch module", Run: policyInstallCmd, Mutating: true},
		{Name: "uninstall", Summary: "[NAME]: disable the livepatch, remove the module and the pins", Run: policyUninstallCmd, Mutating: true},
		{Name: "status", Summary: "what is installed, checked against the system", Run: policyStatusCmd},
		{Name: "reconcile", Summary: "make the install records tell the truth (agent start)", Run: policyReconcileCmd, Mutating: true},
		{Name: "build", Summary: "DIR: compile a policy source directory", Run: policyBuildCmd, Mutating: true},
		{Name: "list", Summary: "the built-in policies, their hooks, pins, parameters", Run: policyListCmd},
	} {
		policyGroup.Add(c)
	}
	register(cli.Command{Name: "policy", Summary: "install, uninstall, build and list lock policies", Mutating: true, Group: policyGroup})
}

// policyCmd runs `syncord policy ARGS...`.
func policyCmd(ctx context.Context, env *Env, args []string) error {
	return policyGroup.Run(ctx, env, args)
}

// runtimeFlags are the roots every policy subcommand takes.
type runtimeFlags struct {
	fs           *flag.FlagSet
	bpffs, state *string
	timeout      *time.Duration
	rootFlags    rootFlags
	// roots are the checked --proc-root and --sys-root, set by resolve.
	roots pseudofs.Roots
}

func addRuntimeFlags(fs *flag.FlagSet) *runtimeFlags {
	return &runtimeFlags{
		fs:        fs,
		bpffs:     fs.String("bpffs", bpf.DefaultBPFFS, "bpffs `DIR` the pins go to (mounted if it is not)"),
		state:     fs.String("state-dir", runtime.DefaultStateDir, "`DIR` where installs are recorded"),
		rootFlags: addRootFlags(fs, nil, nil),
		timeout:   fs.Duration("timeout", 60*time.Second, "how long to wait for a livepatch transition"),
	}
}

// resolve checks the roots and resolves the paths given on the command
// line of an agent request (their defaults are the system's own
// locations). --sys-root and --proc-root are for tests: the runtime writes
// livepatch attributes under the sysfs root, so a client may not move
// them.
func (f *runtimeFlags) resolve(env *Env) error {
	roots, err := f.rootFlags.roots(env)
	if err != nil {
		return err
	}
	f.roots = roots
	if env.Paths == nil {
		return nil
	}
	if err := resolveFlag(env, f.fs, kindBPF, "bpffs", f.bpffs, ""); err != nil {
		return err
	}
	return resolveFlag(env, f.fs, kindPolicy, "state-dir", f.state, "")
}

func (f *runtimeFlags) runtime(env *Env) *runtime.Runtime {
	return runtime.New(runtime.Config{
		BPFFS: *f.bpffs, StateDir: *f.state, Roots: f.roots,
		TransitionTimeout: *f.timeout,
		Progress:          func(line string) { fmt.Fprintf(env.Stderr, "syncord: %s\n", line) },
	})
}

// paramFlags collects repeated --param name=value.
type paramFlags map[string]uint64

func (p paramFlags) String() string {
	var s []string
	for k, v := range p {
		s = append(s, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(s)
	return strings.Join(s, ",")
}

func (p paramFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want name=value, got %q", s)
	}
	n, err := strconv.ParseUint(v, 0, 64)
	if err != nil {
		return fmt.Errorf("parameter %s: %q is not an unsigned integer", k, v)
	}
	p[k] = n
	return nil
}

const policyInstallHelp = `
Install a policy: NAME is a built-in policy (syncord policy list), DIR a
directory with manifest.json (syncord policy build output), the artifact's
output/<p> directory, or a policy source directory with <p>_kern.o.

Steps: check the kernel (lock policies need a SynCord kernel), mount bpffs if
needed, load and pin every program at <bpffs>/<pfile name> and the map at
<bpffs>/hash_map, check that every /sys/fs/bpf path named in the livepatch
module is pinned, insert the module, wait for the livepatch transition, and
record the install under --state-dir. Any failure undoes every earlier step:
no pin and no module are left behind. Progress goes to stderr.

One livepatch per lock target (the manifest's target: rename_lock, rwsem,
s_vfs_rename, all_spinlocks): a policy whose target an installed policy's
livepatch holds is refused before anything is pinned (the newer livepatch
would hide the older one's programs); uninstall that policy first.

--stats turns kernel.bpf_stats_enabled on, so the kernel counts each hook
program's runs and run time (syncord policy status shows them); the record
keeps the value before, and the uninstall of the last policy installed with
--stats restores it.`

func policyInstallCmd(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "policy install", "policy install NAME|DIR [--livepatch KO] [--param name=value]... [--bpffs DIR] [--json]", policyInstallHelp)
	rf := addRuntimeFlags(fs)
	ko := fs.String("livepatch", "", "livepatch module `KO` to insert (default: LivePatchGen/livepatch-concord.ko of an artifact output directory)")
	modParams := fs.String("module-params", "", "parameters of the livepatch module (\"name=value ...\")")
	params := paramFlags{}
	fs.Var(params, "param", "set a policy parameter, `name=value` (repeatable)")
	skipPinCheck := fs.Bool("skip-pin-check", false, "insert the module without checking that the bpffs paths it names are pinned")
	force := fs.Bool("force-transition", false, "force the livepatch transition if it does not finish in --timeout (unsafe)")
	jsonOut := fs.Bool("json", false, "print the install record as JSON")
	stats := fs.Bool("stats", false, "turn kernel.bpf_stats_enabled on so the hooks' run counts and run times are counted (restored on uninstall)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		cli.ShortUsage(fs)
		return fmt.Errorf("policy install: want one policy name or directory: %w", errUsage)
	}
	if err := rf.resolve(env); err != nil {
		return err
	}
	// A name without a slash that names a built-in policy is that policy
	// (runtime.Resolve); anything else is a directory, under the agent
	// relative to the first policy root (./NAME for a directory that has
	// a built-in's name).
	if !runtime.IsBuiltinName(pos[0]) {
		if pos[0], err = resolvePath(env, kindPolicy, "", pos[0]); err != nil {
			return err
		}
	}
	res, err := runtime.Resolve(pos[0], nil)
	if err != nil {
		return err
	}
	if err := resolveFlag(env, fs, kindPolicy, "livepatch", ko, ""); err != nil {
		return err
	}
	// What the policy directory names (its manifest's object, the
	// artifact's LivePatchGen module) must lie under the roots too.
	if res.Policy.ObjectPath != "" && !runtime.IsBuiltinName(pos[0]) {
		if res.Policy.ObjectPath, err = resolvePath(env, kindPolicy, "", res.Policy.ObjectPath); err != nil {
			return err
		}
	}
	if res.Livepatch != "" {
		if res.Livepatch, err = resolvePath(env, kindPolicy, "", res.Livepatch); err != nil {
			return err
		}
	}
	vals, err := runtime.Params(res.Params, params, rf.roots.Sys)
	if pe := (*runtime.ParamError)(nil); errors.As(err, &pe) {
		return fmt.Errorf("%w (pass --param %s=VALUE)", err, pe.Name)
	}
	if err != nil {
		return err
	}
	res.Policy.Params = vals
	if *ko == "" {
		*ko = res.Livepatch
	}
	rec, err := rf.runtime(env).Install(ctx, runtime.InstallRequest{
		Policy: res.Policy, Source: res.Source, Livepatch: *ko, ModuleParams: *modParams,
		SkipPinCheck: *skipPinCheck, ForceTransition: *force, Stats: *stats,
	})
	if err != nil {
		if log := bpf.VerifierLog(err); log != "" {
			fmt.Fprintln(env.Stderr, log)
		}
		return err
	}
	if *jsonOut {
		return writeJSON(env.Stdout, rec)
	}
	fmt.Fprintf(env.Stdout, "installed %s: %d pins", rec.Name, len(rec.Pins))
	if rec.Module != "" {
		fmt.Fprintf(env.Stdout, ", livepatch %s", rec.Module)
	}
	fmt.Fprintln(env.Stdout)
	return nil
}

const policyUninstallHelp = `
Uninstall a policy (NAME may be left out when only one is installed):
disable its livepatch, wait for the transition to finish, remove the module,
then remove the pins this install made, and no others. Also cleans up what
an interrupted install left.`

func policyUninstallCmd(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "policy uninstall", "policy uninstall [NAME] [--json]", policyUninstallHelp)
	rf := addRuntimeFlags(fs)
	force := fs.Bool("force-transition", false, "force the livepatch transition if it does not finish in --timeout (unsafe)")
	jsonOut := fs.Bool("json", false, "print the removed record as JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		cli.ShortUsage(fs)
		return fmt.Errorf("policy uninstall: at most one policy name: %w", errUsage)
	}
	if err := rf.resolve(env); err != nil {
		return err
	}
	name := ""
	if len(pos) == 1 {
		name = pos[0]
	}
	rec, err := rf.runtime(env).Uninstall(ctx, name, runtime.UninstallOptions{ForceTransition: *force})
	if err != nil {
		return err
	}
	if *jsonOut {
		return writeJSON(env.Stdout, rec)
	}
	fmt.Fprintf(env.Stdout, "uninstalled %s\n", rec.Name)
	return nil
}

const policyStatusHelp = `
Show the kernel kind, each recorded policy checked against the system (its
pins in bpffs, its module in /proc/modules, its livepatch's enabled and
transition), every loaded livepatch, and bpffs entries no policy recorded.
For each hook program it shows the kernel's run count and run time
(bpf_prog_info; JSON run_count, run_time_ns): they grow only while
kernel.bpf_stats_enabled is 1 (policy install --stats turns it on).
Health is installed, in-progress, interrupted (the installer died), degraded,
failed or gone. Changes nothing.`

func policyStatusCmd(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "policy status", "policy status [--json]", policyStatusHelp)
	rf := addRuntimeFlags(fs)
	jsonOut := fs.Bool("json", false, "print the status as JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		cli.ShortUsage(fs)
		return fmt.Errorf("policy status: unexpected argument %q: %w", pos[0], errUsage)
	}
	if err := rf.resolve(env); err != nil {
		return err
	}
	st, err := rf.runtime(env).Status()
	if err != nil {
		return err
	}
	if *jsonOut {
		return writeJSON(env.Stdout, st)
	}
	printPolicyStatus(env.Stdout, st)
	return nil
}

const policyReconcileHelp = `
Compare every install record with bpffs, /proc/modules and
/sys/kernel/livepatch, as the agent does when it starts, and correct the
records: a record of which nothing is left is dropped; an interrupted
install whose steps had all finished is recorded as installed; otherwise the
record keeps only what is really there, marked failed, for uninstall to
remove. Removes no pin and no module itself. Prints one line per record it
changed.`

func policyReconcileCmd(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "policy reconcile", "policy reconcile [--json]", policyReconcileHelp)
	rf := addRuntimeFlags(fs)
	jsonOut := fs.Bool("json", false, "print the findings as JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		cli.ShortUsage(fs)
		return fmt.Errorf("policy reconcile: unexpected argument %q: %w", pos[0], errUsage)
	}
	if err := rf.resolve(env); err != nil {
		return err
	}
	found, err := rf.runtime(env).Reconcile()
	if err != nil {
		return err
	}
	if *jsonOut {
		if found == nil {
			found = []runtime.Finding{}
		}
		return writeJSON(env.Stdout, found)
	}
	for _, f := range found {
		fmt.Fprintln(env.Stdout, f)
	}
	return nil
}

func printPolicyStatus(w io.Writer, st *runtime.Status) {
	lp := "no livepatch support"
	if st.Kernel.Livepatch {
		lp = "livepatch"
	}
	mounted := "not mounted"
	if st.BPFFSMounted {
		mounted = "mounted"
	}
	fmt.Fprintf(w, "kernel %s (%s, %s)\n", st.Kernel.Release, st.Kernel.Kind, lp)
	if st.Kernel.Branch != "" {
		fmt.Fprintf(w, "branch %s (%s)\n", st.Kernel.Branch, st.Kernel.BranchFrom)
	}
	fmt.Fprintf(w, "bpffs %s (%s), state %s\n", st.BPFFS, mounted, st.StateDir)
	if len(st.Policies) == 0 {
		fmt.Fprintln(w, "no policy installed")
	}
	for _, ps := range st.Policies {
		fmt.Fprintf(w, "policy %s\n", ps.Summary())
		for _, p := range ps.Pins {
			state := "present"
			if !p.Present {
				state = "missing"
			}
			fmt.Fprintf(w, "  pin %s %s\n", p.Path, state)
		}
		for _, pr := range ps.Programs {
			if pr.Error != "" {
				fmt.Fprintf(w, "  hook %s %s: no run counts: %s\n", hookName(pr.Hook), pr.Pin, pr.Error)
				continue
			}
			fmt.Fprintf(w, "  hook %s %s: run_count=%d run_time_ns=%d\n", hookName(pr.Hook), pr.Pin, pr.RunCount, pr.RunTimeNs)
		}
		if len(ps.Programs) > 0 && !st.Kernel.BPFStats {
			fmt.Fprintf(w, "  (run counts are not counting: kernel.bpf_stats_enabled is 0; install with --stats to turn it on)\n")
		}
		for _, pr := range ps.Problems {
			fmt.Fprintf(w, "  ! %s\n", pr)
		}
	}
	for _, p := range st.Livepatches {
		fmt.Fprintf(w, "livepatch %s enabled=%d transition=%d\n", p.Name, b2i(p.Enabled), b2i(p.Transition))
	}
	for _, p := range st.OtherPins {
		fmt.Fprintf(w, "other bpffs entry %s\n", p)
	}
}

func hookName(h string) string {
	if h == "" {
		return "-"
	}
	return h
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
