// Package livepatch reads and drives /sys/kernel/livepatch: the patches that
// are loaded, their enabled and transition files, disabling a patch and
// waiting for its transition (Wait), nudging stuck tasks through the signal
// file where the kernel has it and naming the tasks that block, from
// /proc/<pid>/task/<tid>/patch_state. The force file is written only when a
// caller asks for it explicitly. A patch whose directory disappears after
// disable has finished: the kernel frees a disabled patch.
package livepatch
