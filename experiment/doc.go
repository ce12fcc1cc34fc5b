// Package experiment runs a declarative matrix of kernels x policies x
// benchmarks x points x repetitions in QEMU NUMA guests and keeps the
// results: syncord-host experiment. A Spec (TOML) names the kernels, the
// VM layout, the policies per kernel ("none" is the baseline), the
// benchmarks and their points. RunSpec boots one VM per kernel with the vm
// package (initramfs from vm/boot, the agent on virtio-serial), pins its
// vCPUs through QMP, installs each policy through the agent, runs every
// point as one agent request, and uninstalls the policy.
//
// A results dir holds:
//
//	spec.toml                 the spec it ran
//	manifest.json             host, QEMU, kernels, guest topology, every command and its times
//	raw/K/P/B/nN-rR.out       each run's output in its driver's own format (.err beside it)
//	cells/K-P-B.csv           one tidy CSV per complete cell (plot.TidyHeader)
//	figures/B.svg, B.png      one figure per benchmark: median with min/max error bars
//
// A run's .out file appears (atomically) only when the run succeeded, so a
// killed experiment loses at most the run in flight, and running it again
// skips every run already there (and boots no VM for a kernel that is
// done). While runs are left, .run/ holds each boot's initramfs and
// sockets and the livepatch builds; a complete dir has none.
package experiment
