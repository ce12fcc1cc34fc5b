// Package vm is the host side of SynCord: the QEMU command line of a NUMA
// guest, a small QMP client, the plan that pins vCPU threads to host CPUs,
// and AMP emulation through cpufreq.
//
//   - Config.Args builds the command line: -smp with one -numa node per
//     socket, each backed by its own memory-backend-ram object; a QMP
//     monitor; a virtio-serial port named org.syncord.agent on a host unix
//     socket; vhost-vsock-pci only when DevRoot/vhost-vsock exists. Start
//     runs it and removes its sockets when QEMU exits.
//   - QMPClient speaks QMP over a unix socket or loopback TCP (other hosts
//     are refused before dialing): greeting, qmp_capabilities, Execute
//     skipping asynchronous events, and query-cpus-fast (query-cpus, which
//     the artifact used, was removed in QEMU 6.0).
//   - NewPlan maps vCPUs to host CPUs (plan numa: every guest socket on one
//     host node where it fits; plan identity: vCPU i on CPU i) from the host
//     topology that numa.FS reads under /sys/devices/system/node. Apply pins
//     with sched_setaffinity(2), only threads of a QEMU process, and Verify
//     reads the affinity back with sched_getaffinity(2) and
//     /proc/PID/task/TID/status (Cpus_allowed_list).
//   - PlanAMP and PlanAMPRestore compute the cpufreq scaling_min_freq and
//     scaling_max_freq of every CPU under a sysfs root; ApplyAMP writes
//     them through numa.FS.SetCPUFreqMinMax.
package vm
