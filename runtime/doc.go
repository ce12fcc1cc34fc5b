// Package runtime installs, uninstalls and reports SynCord policies.
//
// Install checks the kernel (kernel.Probe: a lock policy needs a SynCord
// kernel), mounts bpffs if needed, loads and pins the policy (package bpf),
// reads the strings of the livepatch module to find the /sys/fs/bpf paths
// it looks up and refuses it when one is not pinned, inserts the module
// (finit_module, package kmod), waits for the livepatch transition (package
// livepatch) and records the install atomically in
// <state>/policies/<name>.json (default /run/syncord). Every step has an
// undo run in reverse on any later failure. Uninstall disables the
// livepatch, waits, removes the module and only the pins the install made.
// Status compares the records with bpffs, /proc/modules and
// /sys/kernel/livepatch without changing anything; Reconcile (on agent
// start) makes the records tell the truth after a crash. Every root (bpffs,
// /sys, /proc, the state directory) is configurable.
//
// The control protocol of the agent and its transports are in
// runtime/control, a package of its own because both sides share it: the
// agent (cmd/syncord) serves it in the guest and syncord-host, the e2e
// harness and experiment runs speak it from the host. Keeping the frames,
// transports and client there, with no import of this package, lets the
// host binary link the protocol without the install machinery (bpf, kmod,
// livepatch, cilium/ebpf) it never runs, and gives both ends one
// definition of the wire format (runtime/control/doc.go), so they cannot
// drift apart.
package runtime
