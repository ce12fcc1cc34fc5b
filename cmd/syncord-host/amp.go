package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/syncord/syncord/numa"
	"github.com/syncord/syncord/vm"
)

func init() {
	register(&command{Name: "amp", Summary: "emulate an asymmetric machine with cpufreq (fast and slow halves of each socket)", Run: runAMP})
}

const ampHelp = `
Emulates AMP as the artifact did (SYNCORD-ABI.md section 5): on every
online CPU, cpufreq scaling_min_freq and scaling_max_freq are both set to
the fast frequency on the first half of each socket (cpu % N < N/2) and to
the slow frequency on the rest. 'amp restore' sets max = fast and
min = slow on every CPU; without the frequencies it restores each CPU's
full range (cpuinfo_min_freq .. cpuinfo_max_freq).

Frequencies are kHz, or carry a unit: 2200000, 2200MHz, 2.2GHz. Run it on
the host that runs the VM (guests rarely have cpufreq); it refuses where
cpufreq is absent. --dry-run prints the writes, in order, and makes none.
Needs root to write.`

func runAMP(ctx context.Context, env *Env, args []string) error {
	restore := len(args) > 0 && args[0] == "restore"
	name, synopsis := "amp", "amp --fast-freq F --slow-freq S [--cores-per-socket N] [--dry-run] [--sys-root DIR] [--json]\n       syncord-host amp restore [--fast-freq F --slow-freq S] [--dry-run] [--sys-root DIR] [--json]"
	if restore {
		args, name = args[1:], "amp restore"
	}
	fs := newFlags(env, name, synopsis, ampHelp)
	fast := fs.String("fast-freq", "", "fast `frequency` (kHz, or with MHz/GHz)")
	slow := fs.String("slow-freq", "", "slow `frequency` (kHz, or with MHz/GHz)")
	cps := fs.Int("cores-per-socket", 0, "cores per socket deciding the fast half (default: from the topology)")
	dry := fs.Bool("dry-run", false, "print the cpufreq writes, make none")
	root := fs.String("sys-root", numa.DefaultRoot, "sysfs `root` (a copy for testing)")
	asJSON := fs.Bool("json", false, "print the settings as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", name, fs.Arg(0))
	}
	var opt vm.AMPOptions
	var err error
	if *fast != "" {
		if opt.FastKHz, err = vm.ParseFreq(*fast); err != nil {
			return fmt.Errorf("%s: --fast-freq: %v", name, err)
		}
	}
	if *slow != "" {
		if opt.SlowKHz, err = vm.ParseFreq(*slow); err != nil {
			return fmt.Errorf("%s: --slow-freq: %v", name, err)
		}
	}
	if !restore && (opt.FastKHz == 0 || opt.SlowKHz == 0) {
		return fmt.Errorf("amp: --fast-freq and --slow-freq are required (or run 'amp restore')")
	}
	opt.CoresPerSocket = *cps
	sys, err := numa.NewFS(*root)
	if err != nil {
		return fmt.Errorf("%s: %v", name, err)
	}
	top, err := sys.Topology()
	if err != nil {
		return fmt.Errorf("%s: %v", name, err)
	}
	var settings []vm.AMPSetting
	if restore {
		settings, err = vm.PlanAMPRestore(sys, top, opt)
	} else {
		settings, err = vm.PlanAMP(sys, top, opt)
	}
	if err != nil {
		return err
	}
	if !*dry {
		if err := vm.ApplyAMP(sys, settings); err != nil {
			return err
		}
	}
	if *asJSON {
		return json.NewEncoder(env.Stdout).Encode(map[string]any{"dry_run": *dry, "restore": restore, "cpus": settings})
	}
	if *dry {
		return vm.WriteAMPPlan(env.Stdout, settings)
	}
	for _, s := range settings {
		fmt.Fprintf(env.Stdout, "cpu%d %-7s scaling_min_freq %d kHz, scaling_max_freq %d kHz\n", s.CPU, s.Role, s.MinKHz, s.MaxKHz)
	}
	return nil
}
