package vm

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/syncord/syncord/internal/pseudofs"
	"github.com/syncord/syncord/numa"
	"golang.org/x/sys/unix"
)

// ErrNotQEMU is returned when a thread of a plan does not belong to a QEMU
// process; syncord-host pins QEMU's vCPU threads and nothing else.
var ErrNotQEMU = errors.New("not a QEMU process")

// ApplyOptions says where to find the threads of a plan.
type ApplyOptions struct {
	// ProcRoot is the procfs mount; "/proc" when empty.
	ProcRoot string
	// PID, when non-zero, is the QEMU process every thread must belong to;
	// otherwise it is the thread group of the first vCPU thread.
	PID int
}

// PinCheck is the affinity of one vCPU thread read back after pinning.
type PinCheck struct {
	VCPU     int         `json:"vcpu"`
	ThreadID int         `json:"thread_id"`
	Want     int         `json:"host_cpu"`
	Syscall  numa.CPUSet `json:"sched_getaffinity"` // sched_getaffinity(tid)
	Status   numa.CPUSet `json:"cpus_allowed_list"` // /proc/PID/task/TID/status
	OK       bool        `json:"ok"`
}

// QEMUProcess returns the process id owning vCPU thread tid, after checking
// that it is a QEMU process (ProcRoot/PID/exe or comm begins with "qemu"):
// the guard that keeps pinning off every other process.
func QEMUProcess(procRoot string, tid int) (int, error) {
	if procRoot == "" {
		procRoot = "/proc"
	}
	st, err := pseudofs.Read(filepath.Join(procRoot, strconv.Itoa(tid), "status"), 64<<10)
	if err != nil {
		return 0, fmt.Errorf("find process of thread %d: %w (has QEMU exited?)", tid, err)
	}
	v, ok := statusField(st, "Tgid")
	if !ok {
		return 0, fmt.Errorf("find process of thread %d: no Tgid in %s/%d/status", tid, procRoot, tid)
	}
	pid, err := strconv.Atoi(v)
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("find process of thread %d: bad Tgid %q", tid, v)
	}
	exe, _ := os.Readlink(filepath.Join(procRoot, strconv.Itoa(pid), "exe"))
	comm, _ := pseudofs.Read(filepath.Join(procRoot, strconv.Itoa(pid), "comm"), 64<<10)
	name := strings.TrimSpace(string(comm))
	if !strings.HasPrefix(filepath.Base(exe), "qemu") && !strings.HasPrefix(name, "qemu") {
		return 0, fmt.Errorf("pin thread %d: process %d (%s %s) is %w; refusing to change its affinity", tid, pid, name, exe, ErrNotQEMU)
	}
	return pid, nil
}

// Apply pins every vCPU thread of p with sched_setaffinity(2) and reads the
// result back with sched_getaffinity(2) and ProcRoot/PID/task/TID/status
// (Cpus_allowed_list). Every thread must be a task of the same QEMU
// process; nothing is changed unless all of them are. It returns one check
// per vCPU and an error when any read-back differs from the plan.
func Apply(p *Plan, opt ApplyOptions) ([]PinCheck, error) {
	if opt.ProcRoot == "" {
		opt.ProcRoot = "/proc"
	}
	if len(p.Assignments) == 0 {
		return nil, fmt.Errorf("pin: the plan is empty")
	}
	pid := opt.PID
	for _, a := range p.Assignments {
		owner, err := QEMUProcess(opt.ProcRoot, a.ThreadID)
		if err != nil {
			return nil, err
		}
		if pid == 0 {
			pid = owner
		}
		if owner != pid {
			return nil, fmt.Errorf("pin: vCPU %d thread %d belongs to process %d, not QEMU process %d; refusing to pin", a.VCPU, a.ThreadID, owner, pid)
		}
		if _, err := os.Stat(filepath.Join(opt.ProcRoot, strconv.Itoa(pid), "task", strconv.Itoa(a.ThreadID))); err != nil {
			return nil, fmt.Errorf("pin: vCPU %d thread %d is not a task of QEMU process %d: %w", a.VCPU, a.ThreadID, pid, err)
		}
	}
	for _, a := range p.Assignments {
		var set unix.CPUSet
		set.Set(a.HostCPU)
		if err := unix.SchedSetaffinity(a.ThreadID, &set); err != nil {
			return nil, fmt.Errorf("pin: sched_setaffinity vCPU %d thread %d to CPU %d: %w (needs CAP_SYS_NICE or the same user as QEMU; is CPU %d online and in this cpuset?)", a.VCPU, a.ThreadID, a.HostCPU, err, a.HostCPU)
		}
	}
	return Verify(p, pid, opt.ProcRoot)
}

// Verify reads back the affinity of every vCPU thread of p (QEMU process
// pid) and compares it with the plan.
func Verify(p *Plan, pid int, procRoot string) ([]PinCheck, error) {
	if procRoot == "" {
		procRoot = "/proc"
	}
	var checks []PinCheck
	var bad []string
	for _, a := range p.Assignments {
		c := PinCheck{VCPU: a.VCPU, ThreadID: a.ThreadID, Want: a.HostCPU}
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(a.ThreadID, &set); err != nil {
			return checks, fmt.Errorf("pin verify: sched_getaffinity thread %d: %w", a.ThreadID, err)
		}
		c.Syscall = fromUnixSet(&set)
		st, err := ThreadAffinity(procRoot, pid, a.ThreadID)
		if err != nil {
			return checks, fmt.Errorf("pin verify: %w", err)
		}
		c.Status = st
		want := numa.NewCPUSet(a.HostCPU)
		c.OK = slices.Equal(c.Syscall, want) && slices.Equal(c.Status, want)
		if !c.OK {
			bad = append(bad, fmt.Sprintf("vCPU %d thread %d: want %s, sched_getaffinity %s, Cpus_allowed_list %s", a.VCPU, a.ThreadID, want, c.Syscall, c.Status))
		}
		checks = append(checks, c)
	}
	if len(bad) > 0 {
		return checks, fmt.Errorf("pin verify: affinity differs from the plan: %s", strings.Join(bad, "; "))
	}
	return checks, nil
}

// ThreadAffinity reads Cpus_allowed_list of procRoot/PID/task/TID/status.
func ThreadAffinity(procRoot string, pid, tid int) (numa.CPUSet, error) {
	path := filepath.Join(procRoot, strconv.Itoa(pid), "task", strconv.Itoa(tid), "status")
	b, err := pseudofs.Read(path, 64<<10)
	if err != nil {
		return nil, err
	}
	v, ok := statusField(b, "Cpus_allowed_list")
	if !ok {
		return nil, fmt.Errorf("%s has no Cpus_allowed_list", path)
	}
	set, err := numa.ParseCPUList(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return set, nil
}

// statusField returns the value of "Key:\tvalue" in a /proc status file.
func statusField(b []byte, key string) (string, bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && k == key {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

func fromUnixSet(s *unix.CPUSet) numa.CPUSet {
	var cpus []int
	for c := 0; c < len(s)*64; c++ {
		if s.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return numa.NewCPUSet(cpus...)
}
