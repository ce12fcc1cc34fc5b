package main

import (
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/syncord/syncord/experiment"
	"github.com/syncord/syncord/internal/cli"
)

func init() {
	experimentGroup.Add(cli.Command{Name: "list", Summary: "the built-in specs and what each reproduces", Run: func(_ context.Context, env *Env, args []string) error { return experimentList(env, args) }})
	for _, sub := range []string{"plan", "run"} {
		summary := "print every step of SPEC with an estimated time"
		if sub == "run" {
			summary = "run SPEC into --out DIR (resumes, skipping finished runs)"
		}
		experimentGroup.Add(cli.Command{Name: sub, Summary: summary, Run: func(ctx context.Context, env *Env, args []string) error {
			return experimentPlanRun(ctx, env, sub, args)
		}})
	}
	register(&command{Name: "experiment", Summary: "run a kernels x policies x benchmarks matrix in VMs into a results dir, with figures", Group: experimentGroup})
}

const experimentHelp = `
  syncord-host experiment list [--json]
  syncord-host experiment plan SPEC [--out DIR] [LAYOUT] [--json]
  syncord-host experiment run SPEC --out DIR [--syncord BIN] [--cache DIR] [LAYOUT]

SPEC is a built-in spec (see list: fig5, fig7, fig9, fig12, fig13, the
paper's figures) or a TOML file:

  name = "lock1-small"
  duration = 5                  # measured seconds per point
  repetitions = 3               # figures: median, min/max error bars
  points = [1, 2, 4]            # default: the layout's sweep points

  [vm]                          # sockets, cores, mem_per_node (MiB), kvm,
  sockets = 2                   # pin = numa|identity|none, boot_timeout (s)
  cores = 2

  [[kernel]]                    # one VM per kernel
  name = "debian"
  path = "debian"               # debian | BZIMAGE | IMAGE.deb | FOLDER | kernels:BRANCH
  policies = ["none"]

  [[kernel]]
  name = "stock-syncord"
  path = "kernels:stock-syncord"   # $SYNCORD_KERNELS or ../shared/kernels
  policies = ["none", "lockstat"]

  [policy.lockstat]             # how a policy is installed through the agent:
  livepatch = "build"           # build: syncord policy build NAME --livepatch --kdir
                                #   (the kernel's headers .deb), then policy install;
                                # none: the built-in's programs only (pinned, not attached);
                                # PATH: a built folder (eBPFGen/, LivePatchGen/)
  params = ["k=v"]

  [[benchmark]]                 # driver: will-it-scale (test = lock1 ...),
  driver = "will-it-scale"      # fxmark (test = MWRL ...), leveldb, metis, xdir
  test = "lock1"                # also: name, args = [...], duration, points, files (xdir)

plan prints every step it would take (boot, install, setup, each run,
uninstall) with an estimated time; with --out it marks what DIR has done.

run boots one VM per kernel (syncord-host vm's code: initramfs with busybox,
the static syncord and its agent on virtio-serial), pins its vCPUs through
QMP, and for each policy installs it through the agent, runs every point
and uninstalls it. DIR gets spec.toml, manifest.json (host CPU and count,
QEMU version, kernel releases, syncord revision, guest topology, start and
end times, every command), raw/ outputs in the drivers' formats, one tidy
CSV per complete cell in cells/, and figures/<benchmark>.svg and .png.
Progress is one line per point on stderr, with done/total and an ETA.

Run it again on the same DIR to resume: every run already there is
skipped, a kernel whose runs are all done is not booted, and a killed run
loses at most the point in flight. Another spec's DIR is refused.

LAYOUT flags (--sockets, --cores, --mem-per-node, --kvm) scale a spec to
your machine; the points follow unless the spec lists them.`

// experimentGroup is `syncord-host experiment list|plan|run`.
var experimentGroup = &cli.Group{Prog: "syncord-host", Name: "experiment", Synopsis: "list|plan|run [ARGS...]", Help: experimentHelp}

func experimentList(env *Env, args []string) error {
	fs := newFlags(env, "experiment list", "experiment list [--json]", "List the built-in specs and what each reproduces.")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	bs, err := experiment.Builtins()
	if err != nil {
		return err
	}
	if *asJSON {
		type item struct {
			experiment.Builtin
			Kernels    []string `json:"kernels"`
			Benchmarks []string `json:"benchmarks"`
		}
		var out []item
		for _, b := range bs {
			it := item{Builtin: b}
			for _, k := range b.Spec.Kernels {
				it.Kernels = append(it.Kernels, k.Path)
			}
			for _, x := range b.Spec.Benchmarks {
				it.Benchmarks = append(it.Benchmarks, x.Name)
			}
			out = append(out, it)
		}
		return json.NewEncoder(env.Stdout).Encode(out)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SPEC\tRUNS\tREPRODUCES")
	for _, b := range bs {
		n := 0
		for _, c := range b.Spec.Cells() {
			n += len(c.Runs())
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\n", b.Name, n, b.Reproduces)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, "\n(runs at the spec's 2-socket layout; syncord-host experiment plan NAME --sockets S --cores C scales one)")
	return nil
}

func experimentPlanRun(ctx context.Context, env *Env, sub string, args []string) error {
	fs := newFlags(env, "experiment "+sub, "experiment "+sub+" SPEC --out DIR [--sockets S] [--cores C] [--mem-per-node MB] [--kvm] [--json]", experimentHelp)
	out := fs.String("out", "", "results `dir` (run: required; plan: marks what it has done)")
	sockets := fs.Int("sockets", 0, "override the spec's guest `sockets`")
	cores := fs.Int("cores", 0, "override the spec's `cores` per socket")
	mem := fs.Int("mem-per-node", 0, "override the spec's memory per node in `MiB`")
	kvm := fs.Bool("kvm", false, "use KVM instead of TCG")
	asJSON := fs.Bool("json", false, "plan: print the steps as JSON; run: print the manifest")
	syncordBin := fs.String("syncord", "", "static syncord `binary` for the guest (default: syncord beside this binary)")
	cache := fs.String("cache", "", "kernel cache `dir` (default $SYNCORD_CACHE or ~/.cache/syncord/kernels)")
	qemu := fs.String("qemu", "", "QEMU `binary` (default qemu-system-x86_64)")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return fmt.Errorf("experiment %s: give one SPEC (a built-in name or a TOML file): %w", sub, errUsage)
	}
	s, err := experiment.Load(rest[0])
	if err != nil {
		return err
	}
	if *sockets != 0 || *cores != 0 || *mem != 0 || *kvm {
		if *sockets != 0 {
			s.VM.Sockets = *sockets
		}
		if *cores != 0 {
			s.VM.Cores = *cores
		}
		if *mem != 0 {
			s.VM.MemPerNode = *mem
		}
		s.VM.KVM = s.VM.KVM || *kvm
		if s.VM.Sockets < 1 || s.VM.Cores < 1 || s.VM.MemPerNode < 64 {
			return fmt.Errorf("experiment: layout %dx%d with %d MiB per node is not a VM (sockets, cores >= 1, mem-per-node >= 64): %w", s.VM.Sockets, s.VM.Cores, s.VM.MemPerNode, errUsage)
		}
	}
	if sub == "plan" {
		var done func(experiment.Run) bool
		if *out != "" {
			done = func(r experiment.Run) bool { return experiment.Done(*out, r) }
		}
		plan := s.Plan(done)
		if *asJSON {
			return json.NewEncoder(env.Stdout).Encode(map[string]any{"spec": s.Name, "vm": s.VM, "steps": plan})
		}
		return experiment.WritePlan(env.Stdout, s, plan)
	}
	if *out == "" {
		return fmt.Errorf("experiment run: --out DIR is required (where results go; rerun with the same DIR to resume): %w", errUsage)
	}
	bin := *syncordBin
	if bin == "" {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("experiment run: %w (give --syncord)", err)
		}
		bin = filepath.Join(filepath.Dir(self), "syncord")
	}
	if err := checkStatic(bin); err != nil {
		return fmt.Errorf("experiment run: guest binary: %w", err)
	}
	host := ""
	if self, err := os.Executable(); err == nil && checkStatic(self) == nil {
		host = self
	}
	m, err := experiment.RunSpec(ctx, s, experiment.Options{Out: *out, Syncord: bin, SyncordHost: host, Cache: *cache,
		QEMU: *qemu, Progress: env.Stderr, Revision: version + " " + revision})
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(env.Stdout).Encode(m)
	}
	for _, f := range m.Figures {
		fmt.Fprintln(env.Stdout, filepath.Join(*out, f))
	}
	return nil
}

// checkStatic refuses a missing or dynamically linked binary: the guest
// has no libc.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%w (build it: make build, or give --syncord bin/syncord)", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked; the guest needs a static binary (CGO_ENABLED=0 go build, or make build)", path)
		}
	}
	return nil
}
