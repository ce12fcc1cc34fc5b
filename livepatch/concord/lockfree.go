package concord

import (
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/syncord/syncord/bpf"
)

// lockFreeMaps are the map types whose lookup and update take no lock:
// arrays (also the .rodata/.data/.bss of global variables and load-time
// parameters) and the perf event array bpf_perf_event_output writes to.
var lockFreeMaps = map[ebpf.MapType]bool{
	ebpf.Array:          true,
	ebpf.PerCPUArray:    true,
	ebpf.PerfEventArray: true,
}

// Helpers that take a lock: bpf_spin_lock and bpf_spin_unlock (SynCord's
// ids: upstream + 1, bpf_back_off is 1).
var lockingHelpers = map[int64]string{94: "bpf_spin_lock", 95: "bpf_spin_unlock"}

// CheckLockFree refuses a policy whose programs could take a lock: on a
// target like all_spinlocks they run inside every contended spinlock of the
// kernel, also in interrupt context, and a program that takes a spinlock
// there (a hash map's bucket lock, a queue map's lock, bpf_spin_lock)
// re-enters the slow path it runs in and can deadlock. object is the
// policy's compiled object.
func CheckLockFree(m *bpf.Manifest, object string) error {
	p := m.Policy("", nil)
	p.ObjectPath = object
	spec, err := bpf.LoadSpec(p)
	if err != nil {
		return err
	}
	for _, pr := range m.Programs {
		ps, ok := spec.Programs[pr.Function]
		if !ok {
			for _, s := range spec.Programs {
				if s.SectionName == pr.Section {
					ps = s
				}
			}
		}
		if ps == nil {
			continue // LoadSpec checked every program is there
		}
		for _, ins := range ps.Instructions {
			if ins.IsBuiltinCall() {
				if h, bad := lockingHelpers[ins.Constant]; bad {
					return fmt.Errorf("policy %s: program %s (%s) calls %s: on target %s it runs inside every contended spinlock, where taking a lock can deadlock; the program must be lock-free", m.Name, pr.Pin, pr.Hook, h, m.TargetOrDefault())
				}
			}
			if ins.IsLoadFromMap() {
				name := ins.Reference()
				ms, ok := spec.Maps[name]
				if !ok {
					continue
				}
				if !lockFreeMaps[ms.Type] {
					return fmt.Errorf("policy %s: program %s (%s) uses map %s, a %s map: its updates take a spinlock, and on target %s the program runs inside every contended spinlock (also in interrupts), where that can deadlock; use an array or per-CPU array map", m.Name, pr.Pin, pr.Hook, name, ms.Type, m.TargetOrDefault())
				}
			}
		}
	}
	return nil
}
