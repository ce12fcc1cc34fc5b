package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/syncord/syncord/internal/cli"
	"github.com/syncord/syncord/internal/pseudofs"
	"github.com/syncord/syncord/internal/setting"
	"github.com/syncord/syncord/numa"
	"github.com/syncord/syncord/workloads/fxmark"
	"github.com/syncord/syncord/workloads/wis"
)

// benchGroup is `syncord bench DRIVER`: drivers in other files
// (bench_more.go) register with registerBench from init.
var benchGroup = &cli.Group{Prog: "syncord", Name: "bench", Synopsis: "DRIVER [ARGS...]", Noun: "bench driver"}

func registerBench(name, summary string, run func(ctx context.Context, env *Env, args []string) error) {
	benchGroup.Add(cli.Command{Name: name, Summary: summary, Run: run, Mutating: true})
}

func init() {
	// A will-it-scale --processes task is this binary re-executed.
	if wis.IsChild() {
		os.Exit(wis.ChildMain())
	}
	register(cli.Command{Name: "bench", Summary: "run workload drivers (will-it-scale, sweep, fxmark, ...)", Mutating: true, Group: benchGroup})
	registerBench("will-it-scale", "one will-it-scale test, output as the artifact's threads build", runWillItScale)
	registerBench("sweep", "runtest.py: a will-it-scale test over core counts", runSweep)
	registerBench("fxmark", "FxMark metadata workloads (MWRL, ...), one run or a sweep to .dat rows", runFxMark)
}

// parseArgs parses flags that may come before or after positional
// arguments ("will-it-scale lock1 -t 4" as well as "-t 4 lock1"); "--"
// ends the flags (cli.ParseArgs).
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) { return cli.ParseArgs(fs, args) }

// benchTopology reads the machine's topology for defaults.
func benchTopology(sys pseudofs.FS) (*numa.Topology, error) {
	return numa.New(sys).Topology()
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// cpsFlag is the -n flag of fs: as given (it must be > 0), or when not
// given the topology's cores per socket.
func cpsFlag(fs *flag.FlagSet, n int, sysRoot pseudofs.FS) (int, error) {
	if flagSet(fs, "n") && n <= 0 {
		return 0, fmt.Errorf("-n (cores per socket) must be > 0, got %d", n)
	}
	return defaultCPS(n, sysRoot)
}

// defaultCPS is n when > 0, else the topology's cores per socket.
func defaultCPS(n int, sysRoot pseudofs.FS) (int, error) {
	if n > 0 {
		return n, nil
	}
	if n < 0 {
		return 0, fmt.Errorf("-n (cores per socket) must be > 0, got %d", n)
	}
	top, err := benchTopology(sysRoot)
	if err != nil {
		return 0, fmt.Errorf("cores per socket from the topology: %w (pass -n)", err)
	}
	if c := top.CoresPerSocket(); c > 0 {
		return c, nil
	}
	return 0, fmt.Errorf("cannot tell cores per socket from %s (pass -n)", sysRoot)
}

func parsePoints(s string) ([]int, error) {
	var pts []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("--points %q: %q is not a positive core count", s, f)
		}
		pts = append(pts, n)
	}
	return pts, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

const wisHelp = `
Run one will-it-scale test in threads mode (--processes: one process per
task, the suite's _processes build), as the SynCord artifact's
<test>_threads -t TASKS -s SECONDS -n CORES_PER_SOCKET: TASKS threads, each
locked to an OS thread and pinned by the placement rule (with fewer tasks
than a socket, half on the socket's fast half and half on its slow half),
released together; every second one line
"min:.. max:.. total:.. fast:.. slow:.." of the per-task operation deltas;
"measurement" after the 6th line; after SECONDS more lines
"average:TOTAL:FAST:SLOW". -s 0 runs until interrupted (SIGINT) and then
prints the average of what was measured. Temp files go to a private
directory under --tmpdir, removed on every exit.
`

func runWillItScale(ctx context.Context, env *Env, args []string) (err error) {
	defer func() { err = setting.Render(err, wisFlags) }()
	fs := newFlags(env, "bench will-it-scale", "bench will-it-scale TEST -t TASKS -s SECONDS [-n CORES_PER_SOCKET] [--no-affinity] [--json] | --list", wisHelp)
	tasks := fs.Int("t", 1, "number of `tasks` (threads)")
	secs := fs.Int("s", 5, "measured `seconds` after the 6 warmup samples (0: until SIGINT)")
	cps := fs.Int("n", 0, "`cores per socket` for placement and fast/slow (default: from the topology)")
	noAff := fs.Bool("no-affinity", false, "do not pin tasks (roles still follow the placement rule)")
	procs := fs.Bool("processes", false, "run each task as a process (the suite's _processes build) instead of a thread")
	tmp := fs.String("tmpdir", os.TempDir(), "`dir` for the run's private temp directory")
	rf := addRootFlags(fs, []string{"sysfs"}, nil)
	list := fs.Bool("list", false, "list the tests and their descriptions")
	asJSON := fs.Bool("json", false, "print the result as JSON (no progress lines)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	roots, err := rf.roots(env)
	if err != nil {
		return err
	}
	if *list {
		for _, t := range wis.Tests() {
			fmt.Fprintf(env.Stdout, "%-16s %s\n", t.Name, t.Description)
		}
		return nil
	}
	if len(pos) != 1 {
		cli.ShortUsage(fs)
		return errUsage
	}
	// Under the agent the private temp directory goes under the first
	// bench root unless --tmpdir says where.
	if err := resolveFlag(env, fs, kindBench, "tmpdir", tmp, "."); err != nil {
		return err
	}
	n, err := cpsFlag(fs, *cps, roots.Sys)
	if err != nil {
		return err
	}
	o := wis.Config{Test: pos[0], Tasks: *tasks, Duration: time.Duration(*secs) * time.Second, CoresPerSocket: n, NoAffinity: *noAff, Processes: *procs, SysRoot: roots.Sys, TmpDir: *tmp}
	if !*asJSON {
		o.Progress = env.Stdout
	}
	res, err := wis.Run(ctx, o)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(env.Stdout, res)
	}
	return res.WriteText(env.Stdout)
}

// fxmarkNSEnv marks the re-executed fxmark --tmpfs run inside its mount
// namespace.
const fxmarkNSEnv = "SYNCORD_FXMARK_MOUNTNS"

// fxmarkInNamespace runs `bench fxmark args... --root root` again as a
// child in a new mount namespace (unshare CLONE_NEWNS; Go makes / private
// in it, so nothing mounted there propagates back). The child mounts the
// tmpfs there; when it ends (SIGKILL included: PR_SET_PDEATHSIG kills it
// with this process) the namespace and its mount go with it. root is the
// resolved --root (over the agent: the path checked against the roots).
func fxmarkInNamespace(ctx context.Context, env *Env, args []string, root string) error {
	argv := append([]string{"syncord", "bench", "fxmark"}, args...)
	argv = append(argv, "--root", root) // the last --root wins
	cmd := exec.CommandContext(ctx, "/proc/self/exe")
	cmd.Args = argv
	cmd.Env = append(os.Environ(), fxmarkNSEnv+"=1")
	cmd.Stdout, cmd.Stderr = env.Stdout, env.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	// PR_SET_PDEATHSIG fires when the thread that started the child
	// exits: keep this goroutine on its thread until the child is done.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return exitErr(128+int(ws.Signal()), fmt.Errorf("bench fxmark --tmpfs: the run in its mount namespace was killed by %v", ws.Signal()))
		}
		return exitErr(ee.ExitCode(), nil) // the child said why
	}
	if err != nil {
		return fmt.Errorf("bench fxmark --tmpfs: run in a private mount namespace: %w (needs root / CAP_SYS_ADMIN)", err)
	}
	return nil
}

const sweepHelp = `
Run runtest.py: one will-it-scale test at every point (task count) for
--duration measured seconds each, printing
"(num_cores, num_nodes, cores_per_socket) = (C, N, P)", "# core,total,fast,slow"
and one "core,total,fast,slow" row per point (-1 for a failed run). The
points default to the topology's sweep points (powers of two below a
socket, then socket multiples). Progress goes to stderr; stdout stays
parseable.
`

func runSweep(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "bench sweep", "bench sweep will-it-scale TEST [--points LIST] [--duration 5] [-n CORES_PER_SOCKET] [--no-affinity] [--json]", sweepHelp)
	points := fs.String("points", "", "comma-separated task `counts` (default: the topology's sweep points)")
	dur := fs.Int("duration", 5, "measured `seconds` per point (-s of each run)")
	cps := fs.Int("n", 0, "`cores per socket` (default: from the topology)")
	noAff := fs.Bool("no-affinity", false, "do not pin tasks")
	procs := fs.Bool("processes", false, "run each task as a process instead of a thread")
	tmp := fs.String("tmpdir", os.TempDir(), "`dir` for temp files")
	rf := addRootFlags(fs, []string{"sysfs"}, nil)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	roots, err := rf.roots(env)
	if err != nil {
		return err
	}
	if len(pos) != 2 || pos[0] != "will-it-scale" {
		cli.ShortUsage(fs)
		return errUsage
	}
	if *dur <= 0 {
		return fmt.Errorf("--duration must be > 0, got %d", *dur)
	}
	if err := resolveFlag(env, fs, kindBench, "tmpdir", tmp, "."); err != nil {
		return err
	}
	top, err := benchTopology(roots.Sys)
	if err != nil {
		return fmt.Errorf("sweep header from the topology: %w", err)
	}
	hdr := top.RuntestHeader()
	n, err := cpsFlag(fs, *cps, roots.Sys)
	if err != nil {
		return err
	}
	if flagSet(fs, "n") {
		hdr.CoresPerSocket = n
	}
	var pts []int
	if *points != "" {
		if pts, err = parsePoints(*points); err != nil {
			return err
		}
	} else {
		pts = numa.SweepPoints(top.Online.Len(), n)
	}
	o := wis.SweepConfig{
		Run:      wis.Config{Test: pos[1], CoresPerSocket: n, NoAffinity: *noAff, Processes: *procs, SysRoot: roots.Sys, TmpDir: *tmp},
		Points:   pts,
		Duration: time.Duration(*dur) * time.Second,
		Header:   hdr,
		Progress: env.Stderr,
	}
	res, err := wis.Sweep(ctx, o)
	if *asJSON {
		if err != nil {
			return err
		}
		return writeJSON(env.Stdout, res)
	}
	if res != nil {
		// The rows so far, also of an interrupted sweep.
		if werr := res.WriteText(env.Stdout); err == nil {
			err = werr
		}
	}
	return err
}

const fxHelp = `
Run an FxMark microbenchmark (the SynCord fork): NCORE workers pinned by
the placement rule and tagged fast/slow, each doing the type's setup in
--root, released together, working for --duration seconds. Prints
fxmark's report on stdout:
  # ncpu secs works works/sec  fast_works/sec, slow_works/sec
  NCPU SECS WORKS WORKS/SEC FAST/SEC SLOW/SEC
While the workers work, a status line a second goes to stderr (not
printed by fxmark; stdout has the report only):
  fxmark: TYPE ELAPSED/DURATION s: WORKS works, RATE works/s
--root must exist and must not hold what the run makes (<root>/<id> per
worker, MRPH's and MRPM's <root>/0..7, the root-level files of MWCM,
MWUM, MWRM, DWOM, DWTL, DRBM, DRBH, MRDM, MRPM_bg); that is removed
afterwards, anything else there is left alone. While it runs,
<root>/.syncord-fxmark marks the root; a run that was killed leaves it,
and --clean removes what that run made (and nothing else) first.
--tmpfs mounts a tmpfs on --root for the run (needs root) in a mount
namespace of the run's own: no other process sees it, and it is gone when
the run ends, even killed with SIGKILL. --directio sets O_DIRECT on the
data files of the types that have them (DW*, DRBL, DRBL_bg, DRBM, DRBH),
as fxmark's --directio 1; the _bg types' last --nbg workers are the
background ones.

--sweep runs every --points core count (default: the topology's sweep
points) and prints the plotter's .dat rows instead:
  # MEDIA:FS:TYPE:IOMODE:*
  # core, total, fast, slow
  NCPU WORKS/SEC/1e6 FAST/1e6 SLOW/1e6      (sorted by NCPU)
with a line per point and each run's report on stderr (no status lines).

Types:
`

func runFxMark(ctx context.Context, env *Env, args []string) error {
	var types strings.Builder
	for _, t := range fxmark.Types() {
		fmt.Fprintf(&types, "  %s: %s\n", t.Name, t.Description)
	}
	fs := newFlags(env, "bench fxmark", "bench fxmark --type TYPE --ncore N --duration S --root DIR [--nbg B] [--directio] [--tmpfs] [--sweep [--points LIST]] [--json]", fxHelp+types.String())
	typ := fs.String("type", "", "benchmark `type` (MWRL, ...)")
	ncore := fs.Int("ncore", 1, "number of `workers` (background ones included)")
	nbg := fs.Int("nbg", 0, "number of background `workers` (left out of the report)")
	directio := fs.Bool("directio", false, "open the data files with O_DIRECT (DW*, DRBL, DRBM, DRBH; fxmark's --directio 1)")
	dur := fs.Int("duration", 30, "`seconds` to run")
	root := fs.String("root", "", "test root `dir` (must exist)")
	cps := fs.Int("n", 0, "`cores per socket` (default: from the topology)")
	noAff := fs.Bool("no-affinity", false, "do not pin workers")
	tmpfs := fs.Bool("tmpfs", false, "mount a private tmpfs on --root for the run")
	tmpfsSize := fs.Int64("tmpfs-size", 0, "tmpfs size in `bytes` (0: kernel default, half of RAM)")
	clean := fs.Bool("clean", false, "first remove what an unfinished run left in --root (recognised by its .syncord-fxmark)")
	sweep := fs.Bool("sweep", false, "run every --points core count and print .dat rows")
	points := fs.String("points", "", "comma-separated core `counts` for --sweep (default: the topology's sweep points)")
	media := fs.String("media", "mem", "media name for the .dat header")
	fsName := fs.String("fs", "", "file system name for the .dat header (default: detected from --root)")
	iomode := fs.String("iomode", "bufferedio", "I/O mode for the .dat header")
	rf := addRootFlags(fs, []string{"sysfs"}, nil)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	roots, err := rf.roots(env)
	if err != nil {
		return err
	}
	if len(pos) != 0 || (*typ == "" && !*clean) || *root == "" {
		cli.ShortUsage(fs)
		return errUsage
	}
	if *tmpfsSize < 0 {
		return exitErr(2, fmt.Errorf("bench fxmark: --tmpfs-size %d is negative (0: the kernel's default)", *tmpfsSize))
	}
	if *dur <= 0 {
		return fmt.Errorf("--duration must be > 0, got %d", *dur)
	}
	n, err := cpsFlag(fs, *cps, roots.Sys)
	if err != nil {
		return err
	}
	if err := resolveFlag(env, fs, kindBench, "root", root, ""); err != nil {
		return err
	}
	if st, err := os.Stat(*root); err != nil || !st.IsDir() {
		return fmt.Errorf("fxmark --root %s must be an existing directory (create it first)", *root)
	}
	if *clean && os.Getenv(fxmarkNSEnv) == "" {
		had, err := fxmark.CleanRoot(*root)
		if err != nil {
			return err
		}
		if had {
			fmt.Fprintf(env.Stderr, "syncord: removed what an unfinished fxmark run left in %s\n", *root)
		} else {
			fmt.Fprintf(env.Stderr, "syncord: nothing to clean in %s (no %s marker)\n", *root, fxmark.Marker)
		}
		if *typ == "" {
			return nil
		}
	}
	if *tmpfs && os.Getenv(fxmarkNSEnv) == "" {
		// Run again in a mount namespace of its own, where the tmpfs
		// lives and dies with the run.
		return fxmarkInNamespace(ctx, env, args, *root)
	}
	if *tmpfs {
		unmount, err := fxmark.MountTmpfs(*root, *tmpfsSize)
		if err != nil {
			return err
		}
		defer func() {
			if err := unmount(); err != nil {
				fmt.Fprintf(env.Stderr, "syncord: %v\n", err)
			}
		}()
	}
	o := fxmark.Config{Type: *typ, NCore: *ncore, NBg: *nbg, Duration: time.Duration(*dur) * time.Second, Root: *root,
		CoresPerSocket: n, NoAffinity: *noAff, SysRoot: roots.Sys, DirectIO: *directio}
	if !*sweep {
		o.Progress = env.Stderr
		res, err := fxmark.Run(ctx, o)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(env.Stdout, res)
		}
		return res.WriteText(env.Stdout)
	}

	var pts []int
	if *points != "" {
		if pts, err = parsePoints(*points); err != nil {
			return err
		}
	} else {
		top, err := benchTopology(roots.Sys)
		if err != nil {
			return err
		}
		pts = numa.SweepPoints(top.Online.Len(), n)
	}
	mode := *iomode
	if *directio && !flagSet(fs, "iomode") {
		mode = "directio" // run-fxmark.py's name for it
	}
	res, err := fxmark.Sweep(ctx, fxmark.SweepConfig{Run: o, Points: pts, Media: *media, FS: *fsName, IOMode: mode, Progress: env.Stderr})
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(env.Stdout, res)
	}
	return res.WriteText(env.Stdout)
}
