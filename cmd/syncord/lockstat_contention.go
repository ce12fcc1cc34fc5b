package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/syncord/syncord/bpf/contention"
	"github.com/syncord/syncord/internal/cli"
	"github.com/syncord/syncord/internal/pseudofs"
	"github.com/syncord/syncord/kernel"
)

const lockstatContentionHelp = `
Profile kernel lock contention on a stock kernel (Linux 5.19+) from the
lock:contention_begin/_end tracepoints, without a SynCord kernel or policy.
Prints the SynCord lockstat table sorted by wait total; the acquisition and
hold columns print "-" (the tracepoints only see contention). Runs for
--duration, or until interrupted (SIGINT); --interval prints a table per
interval. Nothing stays attached or pinned afterwards.

--json writes one JSON object per line (fields and units: go doc
github.com/syncord/syncord/bpf/contention). --symbols names global locks
from /proc/kallsyms (needs CONFIG_KALLSYMS_ALL for data symbols).
--while "CMD ARGS" profiles exactly while another syncord command runs
(for example --while "bench fxmark --type MWRL --ncore 4 --duration 5
--root /tmp"): the profiler attaches first, the command's output goes to
stderr, and the table follows on stdout when it ends. This is how to
profile a workload through the agent, which runs one request per
connection.

On a kernel without the tracepoints (SynCord 5.4 kernels) use the SynCord
lockstat policy instead: syncord policy install lockstat.`

// lockstatContention is `syncord lockstat --contention`.
func lockstatContention(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "lockstat", "lockstat --contention [--duration D | --while CMD] [--interval I] [--lock SYMBOL|ADDR] [--type T] [--pid P] [--top N] [--callers K] [--symbols] [--json]", lockstatContentionHelp)
	fs.Bool("contention", true, "profile from the contention tracepoints (this mode)")
	var durationF, intervalF secondsFlag
	fs.Var(&durationF, "duration", "how long to profile, `D` in seconds or as 1m30s (0: until SIGINT)")
	fs.Var(&intervalF, "interval", "print a table every `I` (seconds or 500ms; 0: once at the end)")
	duration, interval := (*time.Duration)(&durationF), (*time.Duration)(&intervalF)
	lock := fs.String("lock", "", "only the lock at `SYMBOL|ADDR` (a kallsyms data symbol, or a hex address)")
	types := fs.String("type", "", "only locks of these comma-separated `types`: "+strings.Join(contentionTypeNames(), ", "))
	pid := fs.Uint("pid", 0, "only contention by threads of process `P`")
	top := fs.Int("top", 0, "print the `N` locks with the most wait time (0: all)")
	callers := fs.Int("callers", 0, "add the top `K` call sites per lock (from kernel stacks)")
	symbols := fs.Bool("symbols", false, "name global locks from /proc/kallsyms")
	jsonOut := fs.Bool("json", false, "one JSON object per line instead of the table")
	maxLocks := fs.Uint("max-locks", contention.DefaultMaxLocks, "size of the per-lock map; more locks are counted as dropped")
	maxStacks := fs.Uint("max-stacks", contention.DefaultMaxStacks, "size of the stack map (with --callers)")
	while := fs.String("while", "", "profile while the syncord command `CMD` (quoted, with its arguments) runs")
	rf := addRootFlags(fs, nil, nil)
	if err := parse(fs, args); err != nil {
		return err
	}
	roots, err := rf.roots(env)
	if err != nil {
		return err
	}
	whileArgs, err := whileCommand(*while)
	if err != nil {
		return err
	}
	if whileArgs != nil && *duration > 0 {
		return fmt.Errorf("lockstat --contention: give --duration or --while, not both: %w", errUsage)
	}
	if fs.NArg() > 0 {
		cli.ShortUsage(fs)
		return fmt.Errorf("lockstat --contention: unexpected argument %q: %w", fs.Arg(0), errUsage)
	}
	if *duration < 0 || *interval < 0 || *top < 0 || *callers < 0 {
		return fmt.Errorf("lockstat --contention: --duration, --interval, --top and --callers must not be negative: %w", errUsage)
	}
	if *pid > 1<<22 {
		return fmt.Errorf("lockstat --contention: --pid %d is above the kernel's pid_max limit: %w", *pid, errUsage)
	}
	allowed, err := contention.ParseTypes(*types)
	if err != nil {
		return fmt.Errorf("lockstat --contention: --type: %v: %w", err, errUsage)
	}
	if err := contention.Check(roots); err != nil {
		return err
	}

	opts := contention.Options{PID: uint32(*pid), AllowedFlags: allowed, Callers: *callers > 0,
		MaxLocks: uint32(*maxLocks), MaxStacks: uint32(*maxStacks)}
	ropts := contention.ReportOptions{Symbols: *symbols, Top: *top, Callers: *callers, Kernel: kernelRelease(roots)}

	var syms *kernel.Symbols
	if *symbols || *callers > 0 || contention.NeedsSymbols(*lock) {
		syms, err = kernel.NewFS(roots).Kallsyms()
		if err != nil {
			return fmt.Errorf("lockstat --contention: %w (run as root, or drop --symbols/--callers and give --lock as an address)", err)
		}
	}
	if *lock != "" {
		f, err := contention.ResolveLock(*lock, syms)
		if err != nil {
			return fmt.Errorf("lockstat --contention: %w", err)
		}
		opts.LockLo, opts.LockHi, ropts.LockSymbol = f.Lo, f.Hi, f.Symbol
	}

	pctx := ctx
	var whileStatus <-chan int
	if whileArgs != nil {
		var stop context.CancelFunc
		pctx, stop = context.WithCancel(ctx)
		defer stop()
		st := make(chan int, 1)
		whileStatus = st
		opts.Attached = func() {
			go func() {
				defer stop()
				fmt.Fprintf(env.Stderr, "syncord: lockstat: profiling while: syncord %s\n", strings.Join(whileArgs, " "))
				// CMD's paths are resolved as if it had been sent on its own.
				st <- Run(ctx, &Env{Stdout: env.Stderr, Stderr: env.Stderr, Remote: env.Remote, Paths: env.Paths}, whileArgs)
			}()
		}
	}
	err = contention.Run(pctx, opts, *duration, *interval, func(p *contention.Period) error {
		r := contention.NewReport(p, syms, ropts)
		if d := p.Snapshot.Drops; d.Uncounted() > 0 {
			fmt.Fprintf(env.Stderr, "syncord: lockstat: %d contentions not counted, maps full (%+v): raise --max-locks or --max-stacks\n", d.Uncounted(), d)
		}
		if *jsonOut {
			return r.WriteJSON(env.Stdout)
		}
		if *interval > 0 && p.Index > 0 {
			fmt.Fprintln(env.Stdout)
		}
		return r.WriteTable(env.Stdout, *symbols)
	})
	if whileStatus != nil {
		if code := <-whileStatus; code != 0 && err == nil {
			err = exitErr(code, fmt.Errorf("lockstat --contention: the profiled command exited %d", code))
		}
	}
	return err
}

// whileCommand splits --while's value into a syncord command line; a
// profiler or an agent cannot be the profiled command.
func whileCommand(s string) ([]string, error) {
	args := strings.Fields(s)
	if len(args) == 0 {
		return nil, nil
	}
	switch args[0] {
	case "lockstat", "agent":
		return nil, fmt.Errorf("lockstat --contention: --while %q: cannot profile %s itself; give a workload such as \"bench fxmark ...\": %w", s, args[0], errUsage)
	}
	if _, ok := commands.Lookup(args[0]); !ok {
		return nil, fmt.Errorf("lockstat --contention: --while %q: %q is not a syncord command (see syncord help): %w", s, args[0], errUsage)
	}
	return args, nil
}

func contentionTypeNames() []string {
	var out []string
	for _, n := range contention.TypeNames() {
		if n != "unknown" {
			out = append(out, n)
		}
	}
	return out
}

// kernelRelease is the running kernel's release, "" when unreadable.
func kernelRelease(roots pseudofs.Roots) string {
	rel, _ := kernel.NewFS(roots).Release()
	return rel
}

// secondsFlag is a duration given as plain seconds ("3", "0.5") or in Go
// syntax ("3s", "1m30s").
type secondsFlag time.Duration

func (f *secondsFlag) String() string { return time.Duration(*f).String() }

func (f *secondsFlag) Set(s string) error {
	if v, err := strconv.ParseFloat(s, 64); err == nil {
		if v < 0 || v > 1e9 {
			return fmt.Errorf("%q seconds out of range", s)
		}
		*f = secondsFlag(v * float64(time.Second))
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is neither seconds nor a duration like 1m30s", s)
	}
	*f = secondsFlag(d)
	return nil
}
