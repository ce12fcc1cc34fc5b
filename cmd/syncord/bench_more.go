package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/syncord/syncord/internal/cli"
	"github.com/syncord/syncord/kernel"
	"github.com/syncord/syncord/workloads"
	"github.com/syncord/syncord/workloads/leveldb"
	"github.com/syncord/syncord/workloads/metis"
	"github.com/syncord/syncord/workloads/xdir"
)

func init() {
	xdirGroup := &cli.Group{Prog: "syncord", Name: "bench xdir", Help: xdirHelp}
	xdirGroup.Add(cli.Command{Name: "prepare", Summary: "make the directories (or an ext4 image without dir_index)", Run: runXDirPrepare, Mutating: true})
	xdirGroup.Add(cli.Command{Name: "run", Summary: "run the bullies and victims", Run: runXDirRun, Mutating: true})
	registerBench("xdir", "xDir-rename bully/victim rename workload (prepare, run)", xdirGroup.Run)
	metisGroup := &cli.Group{Prog: "syncord", Name: "bench metis", Synopsis: "APPLICATION [ARGS...]", Noun: "metis application"}
	metisGroup.Add(cli.Command{Name: "wrmem", Summary: "the word reverse index, input in memory", Run: runMetis, Mutating: true})
	registerBench("metis", "Metis wrmem word reverse index map-reduce", metisGroup.Run)
	leveldbGroup := &cli.Group{Prog: "syncord", Name: "bench leveldb", Synopsis: "BENCHMARK [ARGS...]", Noun: "leveldb benchmark"}
	leveldbGroup.Add(cli.Command{Name: "readrandom", Summary: "db_bench readrandom on a filled database", Run: runLevelDB, Mutating: true})
	registerBench("leveldb", "LevelDB db_bench readrandom (goleveldb)", leveldbGroup.Run)
}

const xdirHelp = `
xDir-rename, the SCL paper's bully/victim workload as the SynCord artifact
runs it.

  syncord bench xdir prepare --dir D -n FILES [--json]
      Make D/src_empty and D/dst_empty (emptied if present) and
      D/dst_FILES_files holding FILES empty files with 36-letter names
      (topped up or trimmed when it exists). Then report the filesystem
      under D: the workload needs ext4 with dir_index OFF, so a rename into
      the big directory scans it linearly while holding the rename lock.
      dir_index is read from the ext4 superblock (s_feature_compat bit
      0x20) of the device /proc/self/mountinfo names (needs root).

  syncord bench xdir prepare --make-image PATH [--size 256M]
      Create PATH as an ext4 image with -O ^dir_index (mkfs.ext4 from
      e2fsprogs) to attach or loop-mount where no spare partition exists.

  syncord bench xdir run SRC DST_DIRTY DST DURATION BULLIES VICTIMS [--json]
      BULLIES+VICTIMS tasks, task i pinned to CPU i; even tasks (bullies)
      rename into DST_DIRTY, odd ones (victims) into DST; each loop creates
      SRC/<36 random chars>, renames it and unlinks the target. Prints
      "[b] task ...", "[v] task ...", "fairness=", "Ops/sec:",
      "Bully  Ops/sec:", "Victim Ops/sec:" exactly as the artifact, with
      Jain's fairness over the bully and victim mean lock hold times, on
      stdout. While it runs, a status line a second goes to stderr (not
      printed by the artifact):
        xdir: ELAPSED/DURATION s: bullies B renames (R/s), victims V renames (R/s)

lock_hold: on a SynCord kernel (a SynCord-only symbol in /proc/kallsyms)
with syscall 436 (stock-syncord, shfllock-syncord), the run uses that
rename variant, which returns how long the caller held the rename lock
(lock_rename to unlock_rename) in TSC CYCLES (rdtsc), not ns. lock_hold=
stays the raw number, as the artifact prints it (fairness does not depend
on the unit); the JSON says "lock_hold_unit": "tsc_cycles" and gives ns
too ("lock_hold_ns", "bully_mean_lock_hold_ns", ...) converted with the TSC
frequency the kernel calibrated (its log line "tsc: Refined TSC
clocksource calibration", else "tsc: Detected ... MHz"; without either,
RDTSC measured against CLOCK_MONOTONIC_RAW), named in "tsc_hz_source";
the text output prints that on stderr. On cna-syncord (no syscall 436,
ENOSYS) and on any other kernel (436 is close_range there and is never
called) lock_hold is the duration of each rename(2) in ns, measured in
userspace around the call: it includes the wait for the lock and the
system call's own cost. "lock_hold_source" says which ("syscall436" or
"rename_duration"); --hold duration forces the measured duration on a
SynCord kernel too.
`

func runXDirPrepare(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "bench xdir prepare", "bench xdir prepare --dir D -n FILES [--json] | --make-image PATH [--size 256M]", xdirHelp)
	dir := fs.String("dir", "", "`directory` to prepare the three directories in")
	n := fs.Int("n", 1000000, "number of `files` in dst_<n>_files")
	img := fs.String("make-image", "", "create an ext4 image without dir_index at `path` instead")
	size := fs.String("size", "256M", "image `size` (K, M, G suffixes) for --make-image")
	rf := addRootFlags(fs, nil, []string{"proc"})
	asJSON := fs.Bool("json", false, "print the result as JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	roots, err := rf.roots(env)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		cli.ShortUsage(fs)
		return errUsage
	}
	if err := resolveFlag(env, fs, kindBench, "make-image", img, ""); err != nil {
		return err
	}
	if err := resolveFlag(env, fs, kindBench, "dir", dir, ""); err != nil {
		return err
	}
	if *img != "" {
		sz, err := parseSize(*size)
		if err != nil {
			return fmt.Errorf("bench xdir prepare: --size: %w", err)
		}
		if err := xdir.MakeImage(ctx, *img, sz); err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(env.Stdout, map[string]any{"image": *img, "size": sz, "dir_index": false})
		}
		fmt.Fprintf(env.Stdout, "%s: ext4 image of %d bytes without dir_index (mount it, then prepare with --dir)\n", *img, sz)
		return nil
	}
	if *dir == "" {
		cli.ShortUsage(fs)
		return errUsage
	}
	r, err := xdir.Prepare(string(roots.Proc), *dir, *n)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(env.Stdout, struct {
			*xdir.PrepareResult
			Suitable bool `json:"suitable"`
		}{r, r.FS.Suitable()})
	}
	w := env.Stdout
	fmt.Fprintf(w, "src:       %s (empty)\n", r.Src)
	fmt.Fprintf(w, "dst:       %s (empty)\n", r.Dst)
	fmt.Fprintf(w, "dst_dirty: %s (%d files; created %d, removed %d)\n", r.DstDirty, r.Files, r.Created, r.Removed)
	state := "unknown"
	if r.FS.Superblock {
		state = "off"
		if r.FS.DirIndex {
			state = "on"
		}
	}
	fmt.Fprintf(w, "filesystem: %s on %s at %s, dir_index %s\n", r.FS.FSType, r.FS.Source, r.FS.MountPoint, state)
	if r.FS.Note != "" {
		fmt.Fprintf(w, "note: %s\n", r.FS.Note)
	}
	fmt.Fprintf(w, "run: syncord bench xdir run %s %s %s 30 BULLIES VICTIMS\n", r.Src, r.DstDirty, r.Dst)
	return nil
}

// parseSize parses "256M", "1G", "4096" (bytes), refusing overflow.
func parseSize(s string) (int64, error) { return cli.ParseSize(s) }

func runXDirRun(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "bench xdir run", "bench xdir run SRC DST_DIRTY DST DURATION BULLIES VICTIMS [--json] [--hold auto|duration]", xdirHelp)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	hold := fs.String("hold", "auto", "lock_hold `source`: auto (syscall 436 on a SynCord kernel, else the rename duration) or duration")
	rf := addRootFlags(fs, nil, []string{"proc"})
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	roots, err := rf.roots(env)
	if err != nil {
		return err
	}
	if len(pos) != 6 {
		cli.ShortUsage(fs)
		return errUsage
	}
	for i := range pos[:3] {
		p, err := resolvePath(env, kindBench, "", pos[i])
		if err != nil {
			return err
		}
		pos[i] = p
	}
	var num [3]int
	for i, s := range pos[3:] {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			return exitErr(2, fmt.Errorf("bench xdir run: %q is not a non-negative integer (DURATION BULLIES VICTIMS)", s))
		}
		num[i] = v
	}
	var syncord bool
	switch *hold {
	case "auto":
		info, err := kernel.NewFS(roots).Probe()
		if err != nil {
			return fmt.Errorf("bench xdir run: probe kernel: %w (use --hold duration to skip)", err)
		}
		syncord = info.SynCord
	case "duration":
	default:
		return exitErr(2, fmt.Errorf("bench xdir run: --hold %q: want auto or duration", *hold))
	}
	res, err := xdir.Run(ctx, xdir.Config{
		Src: pos[0], DstDirty: pos[1], Dst: pos[2],
		Duration: time.Duration(num[0]) * time.Second, Bullies: num[1], Victims: num[2],
		SynCord: syncord, Progress: env.Stderr,
	})
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(env.Stdout, res)
	}
	// stdout keeps the artifact's exact lines; the unit goes to stderr.
	switch {
	case res.HoldUnit == xdir.UnitCycles && res.TSCHz > 0:
		fmt.Fprintf(env.Stderr, "syncord: lock_hold is in TSC cycles (syscall 436); TSC %.3f MHz (%s): bully mean %.0f ns, victim mean %.0f ns per task\n",
			res.TSCHz/1e6, res.TSCSource, res.BullyMeanHoldNs, res.VictimMeanHoldNs)
	case res.Note != "":
		fmt.Fprintf(env.Stderr, "syncord: %s\n", res.Note)
	}
	return res.WriteText(env.Stdout)
}

const metisHelp = `
Metis wrmem, the word reverse index of the Metis MapReduce library: the
input (default 2 GiB) is generated in memory as 3-letter upper-case words
from the LCG seed=seed*1103515245+12345, letter=(seed&0x7fffffff)%26;
sample, map, reduce and merge run on -p worker threads pinned by the
placement rule (-n cores per socket, default from the topology); the result
is sorted by key. Output as the original: "Starting mapreduce",
"Finished mapreduce", "Runtime in milliseconds [P cores]", the tab line
with Sample/Map/Reduce/Merge/Sum/Real (users read Real:), "Number of
Tasks", and unless -q the TOP keys with their counts. The input and the
workers' intermediate data live in anonymous mmap'd memory faulted in by
the workers and unmapped at phase end, so page faults and mmap/munmap
contend on the address-space lock as in the original.
`

func runMetis(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "bench metis wrmem", "bench metis wrmem -p CORES [-s MB] [-l TOP] [-m MAPTASKS] [-r REDUCETASKS] [-q] [-n CORES_PER_SOCKET] [--json]", metisHelp)
	procs := fs.Int("p", 0, "number of `cores` (worker threads; 0: all)")
	size := fs.Int("s", 2048, "input size in `MB`")
	top := fs.Int("l", 5, "number of top keys to display")
	mapTasks := fs.Int("m", 0, "number of map `tasks` (0: 16 per core)")
	reduceTasks := fs.Int("r", 0, "number of reduce `tasks` (0: by sampling)")
	quiet := fs.Bool("q", false, "quiet output (no top keys)")
	cps := fs.Int("n", 0, "`cores per socket` for placement (default: from the topology)")
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
	if len(pos) != 0 {
		cli.ShortUsage(fs)
		return errUsage
	}
	p := *procs
	if p == 0 {
		online, err := workloads.OnlineCPUs(roots.Sys)
		if err != nil {
			return err
		}
		p = online.Len()
	}
	n, err := defaultCPS(*cps, roots.Sys)
	if err != nil {
		return err
	}
	cfg := metis.Config{Procs: p, InputMB: *size, Top: *top, MapTasks: *mapTasks, ReduceTasks: *reduceTasks, CoresPerSocket: n,
		SysRoot: roots.Sys, Quiet: *quiet}
	if !*asJSON {
		cfg.Progress = env.Stdout
	}
	res, err := metis.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(env.Stdout, res)
	}
	return res.WriteText(env.Stdout)
}

const leveldbHelp = `
LevelDB db_bench readrandom as the SynCord artifact runs it, on
github.com/syndtr/goleveldb (the Go port of LevelDB, default options): the
database at --db is filled by fillseq on one thread (--num keys "%016d",
--value-size byte values) unless --use-existing finds one there; then
--threads readers, pinned by the placement rule (-n cores per socket,
default from the topology) and seeded with Park-Miller Random(1000+i),
read random keys for --duration. Prints db_bench's two report lines
("per-thread stat : X micros/op; (F of C found)" and
"readrandom   : X (N / S) ops/s") for the fast threads, the slow threads
(left out when there are none) and all, then the summary
"#num_threads, fast, slow, tot ops/s" and "n, fast, slow, total".
Without --use-existing an existing database in --db is destroyed first; a
non-empty directory that holds no database is never touched.
`

func runLevelDB(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "bench leveldb readrandom", "bench leveldb readrandom --threads N [--duration 30] [--num 1000000] [--value-size 100] [--db DIR] [--use-existing] [-n CORES_PER_SOCKET] [--json]", leveldbHelp)
	threads := fs.Int("threads", 1, "number of reader `threads`")
	dur := fs.String("duration", "30", "readrandom `duration` (seconds, or a Go duration like 1500ms)")
	num := fs.Int("num", 1000000, "number of `keys`")
	vsize := fs.Int("value-size", 100, "value size in `bytes`")
	db := fs.String("db", filepath.Join(os.TempDir(), fmt.Sprintf("leveldbtest-%d", os.Getuid()), "dbbench"), "database `directory`")
	useExisting := fs.Bool("use-existing", false, "keep an existing database (fill only when there is none)")
	cps := fs.Int("n", 0, "`cores per socket` for placement and fast/slow (default: from the topology)")
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
	if len(pos) != 0 {
		cli.ShortUsage(fs)
		return errUsage
	}
	d, err := parseSeconds(*dur)
	if err != nil {
		return exitErr(2, fmt.Errorf("bench leveldb readrandom: --duration: %w", err))
	}
	// Under the agent the default database goes under the first bench
	// root, not /tmp.
	if err := resolveFlag(env, fs, kindBench, "db", db, filepath.Join(fmt.Sprintf("leveldbtest-%d", os.Getuid()), "dbbench")); err != nil {
		return err
	}
	n, err := defaultCPS(*cps, roots.Sys)
	if err != nil {
		return err
	}
	res, err := leveldb.Run(ctx, leveldb.Config{
		Threads: *threads, Duration: d, Num: *num, ValueSize: *vsize, DB: *db,
		UseExisting: *useExisting, CoresPerSocket: n, SysRoot: roots.Sys, Progress: env.Stderr,
	})
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(env.Stdout, res)
	}
	return res.WriteText(env.Stdout)
}

// parseSeconds accepts whole seconds ("30") or a Go duration ("1500ms").
func parseSeconds(s string) (time.Duration, error) {
	if v, err := strconv.Atoi(s); err == nil {
		if v <= 0 {
			return 0, errors.New("must be > 0")
		}
		return time.Duration(v) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is neither whole seconds nor a positive duration", s)
	}
	return d, nil
}
