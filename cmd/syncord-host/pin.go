package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/syncord/syncord/vm"
)

func init() {
	register(&command{Name: "pin", Summary: "pin the guest's vCPU threads to host CPUs through QMP", Run: runPin})
}

const pinHelp = `
Asks the VM's QMP monitor for its vCPUs (query-cpus-fast: host thread id,
guest socket and node), reads the host's NUMA nodes from sysfs and pins
each vCPU thread to one host CPU with sched_setaffinity, then reads every
thread's affinity back (sched_getaffinity and /proc/PID/task/TID/status)
and fails when it differs from the plan.

Plans:
  numa      each guest socket on one host node: socket k on node k while
            the host has nodes enough (else equal blocks of sockets per
            node), the next node with room when that one is full, and
            spread over the fewest nodes only when no node has room (said
            in a note)
  identity  vCPU i on host CPU i, as the artifact's pinning script did

Two vCPUs never share a host CPU unless --allow-oversubscribe. Only threads
of a QEMU process are touched. --dry-run prints the plan and changes nothing.`

func runPin(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "pin", "pin --qmp PATH|tcp:127.0.0.1:PORT [--plan numa|identity] [--dry-run] [--allow-oversubscribe] [--json]", pinHelp)
	qmp := fs.String("qmp", "", "QMP monitor of the VM: socket `path` or tcp:127.0.0.1:PORT (required)")
	kind := fs.String("plan", string(vm.PlanNUMA), "pinning `plan`: numa or identity")
	dry := fs.Bool("dry-run", false, "print the plan, pin nothing")
	over := fs.Bool("allow-oversubscribe", false, "allow two vCPUs on one host CPU")
	asJSON := fs.Bool("json", false, "print the plan and the read-back as JSON")
	sysRoot := fs.String("sys-root", "/sys", "sysfs `root` to read the host topology from")
	timeout := fs.Duration("timeout", 10*time.Second, "QMP `timeout`")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *qmp == "" {
		return fmt.Errorf("pin: --qmp is required (the VM's monitor, as given to syncord-host vm --qmp)")
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("pin: unexpected argument %q", fs.Arg(0))
	}
	opt := vm.PlanOptions{Kind: vm.PlanKind(*kind), AllowOversubscribe: *over}
	if opt.Kind != vm.PlanNUMA && opt.Kind != vm.PlanIdentity {
		return fmt.Errorf("pin: unknown plan %q (want numa or identity)", *kind)
	}
	qctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	c, err := vm.DialQMP(qctx, *qmp)
	if err != nil {
		return fmt.Errorf("pin: %v", err)
	}
	defer c.Close()
	cpus, err := c.QueryCPUsFast(qctx)
	if err != nil {
		return fmt.Errorf("pin: %v", err)
	}
	host, err := vm.ReadHostTopology(*sysRoot)
	if err != nil {
		return fmt.Errorf("pin: %v", err)
	}
	plan, err := vm.NewPlan(cpus, host, opt)
	if err != nil {
		return err
	}
	out := struct {
		*vm.Plan
		DryRun bool          `json:"dry_run"`
		PID    int           `json:"qemu_pid,omitempty"`
		Checks []vm.PinCheck `json:"verified,omitempty"`
	}{Plan: plan, DryRun: *dry}
	if *dry {
		if *asJSON {
			return json.NewEncoder(env.Stdout).Encode(out)
		}
		return plan.WriteTable(env.Stdout)
	}
	pid, err := vm.QEMUProcess("", cpus[0].ThreadID)
	if err != nil {
		return fmt.Errorf("pin: %v", err)
	}
	checks, err := vm.Apply(plan, vm.ApplyOptions{PID: pid})
	out.PID, out.Checks = pid, checks
	if *asJSON {
		if jerr := json.NewEncoder(env.Stdout).Encode(out); jerr != nil {
			return jerr
		}
	} else {
		if werr := plan.WriteTable(env.Stdout); werr != nil {
			return werr
		}
	}
	if err != nil {
		return err
	}
	if !*asJSON {
		fmt.Fprintf(env.Stdout, "pinned %d vCPU threads of QEMU pid %d; read back from sched_getaffinity and /proc/%d/task/*/status: all match\n", len(checks), pid, pid)
	}
	return nil
}
