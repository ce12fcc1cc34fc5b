// Package bpf loads SynCord lock policies (eBPF objects whose lock_* sections
// become BPF_PROG_TYPE_LOCK_POLICY programs, type 26 on SynCord kernels) and
// pins them at the paths the livepatch module looks up, reads the lockstat
// map, and holds the built-in policy sources and compiled objects and the
// portable contention profiler for stock kernels.
package bpf
