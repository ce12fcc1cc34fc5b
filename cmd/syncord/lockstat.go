package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/syncord/syncord/bpf"
	"github.com/syncord/syncord/bpf/contention"
	"github.com/syncord/syncord/internal/cli"
	"github.com/syncord/syncord/kernel"
)

const lockstatHelp = `
Print the per-lock profile that the lockstat policy (syncord policy install
lockstat) collects in its map pinned at /sys/fs/bpf/hash_map: key the lock
address, value 11 u64 (prev_cpu, contentions, con_bounces, wait_min,
wait_max, wait_total, acquisitions, acq_bounces, hold_min, hold_max,
hold_total; times in ns). The default output is byte-for-byte the
artifact's table, in map order. --sort orders by a field (largest first;
addr ascending), --top keeps the first N (sorted by contentions when no
--sort is given), --symbols adds the kallsyms name of global locks
(rename_lock), --json prints the rows as JSON.

On stock kernels (5.19+) without a SynCord kernel, --contention profiles
from the lock contention tracepoints instead (syncord lockstat --contention
--help).`

func init() {
	register(cli.Command{Name: "lockstat", Summary: "print the lockstat policy's per-lock profile (or --contention on stock kernels)", Mutating: false,
		Run: lockstatCmd})
}

func lockstatCmd(ctx context.Context, env *Env, args []string) error {
	// --contention is the stock-kernel profiler; its flags and branch
	// live in lockstat_contention.go (bpf/contention).
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "--contention" || a == "-contention" || strings.HasPrefix(a, "--contention=") || strings.HasPrefix(a, "-contention=") {
			if a == "--contention=false" || a == "-contention=false" {
				continue
			}
			return lockstatContention(ctx, env, args)
		}
	}
	fs := newFlags(env, "lockstat", "lockstat [--map PATH] [--sort FIELD] [--top N] [--symbols] [--json] | lockstat --contention ...", lockstatHelp)
	mapPath := fs.String("map", bpf.DefaultLockstatMap, "pinned lockstat map `PATH`")
	sortBy := fs.String("sort", "", "order by `FIELD`: "+strings.Join(bpf.LockStatSortFields, ", ")+" (default: map order)")
	top := fs.Int("top", 0, "print only the first `N` locks (0: all)")
	symbols := fs.Bool("symbols", false, "add the kallsyms name of global locks")
	jsonOut := fs.Bool("json", false, "print the rows as JSON")
	fs.Bool("contention", false, "profile from the stock-kernel contention tracepoints instead (see lockstat --contention --help)")
	rf := addRootFlags(fs, nil, nil)
	if err := parse(fs, args); err != nil {
		return err
	}
	roots, err := rf.roots(env)
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError(env, "lockstat: unexpected argument %q", fs.Arg(0))
	}
	if err := resolveFlag(env, fs, kindBPF, "map", mapPath, ""); err != nil {
		return err
	}
	if *top < 0 {
		return usageError(env, "lockstat: --top must not be negative")
	}
	if *sortBy == "" && *top > 0 {
		*sortBy = "contentions"
	}
	if *sortBy != "" {
		if err := bpf.SortLockStats(nil, *sortBy); err != nil {
			return usageError(env, "lockstat: --sort: %v", err)
		}
	}
	m, err := bpf.OpenLockstatMap(*mapPath)
	if err != nil {
		return err
	}
	defer m.Close()
	rows, batched, err := bpf.ReadLockStats(m)
	if err != nil {
		return err
	}
	if *sortBy != "" {
		if err := bpf.SortLockStats(rows, *sortBy); err != nil {
			return err
		}
	}
	if *top > 0 && len(rows) > *top {
		rows = rows[:*top]
	}
	if *symbols {
		syms, err := kernel.NewFS(roots).Kallsyms()
		if err != nil {
			return fmt.Errorf("lockstat --symbols: %w", err)
		}
		for i := range rows {
			rows[i].Symbol = contention.LockLabel(syms, rows[i].Addr)
		}
	}
	if *jsonOut {
		if rows == nil {
			rows = []bpf.LockStat{}
		}
		enc := json.NewEncoder(env.Stdout)
		return enc.Encode(struct {
			Map     string         `json:"map"`
			Batched bool           `json:"batched"`
			Locks   []bpf.LockStat `json:"locks"`
		}{*mapPath, batched, rows})
	}
	return bpf.WriteLockstatTable(env.Stdout, rows, bpf.TableOptions{Symbols: *symbols})
}
