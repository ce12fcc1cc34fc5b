// Package boot is what a syncord guest boots from: a kernel (Debian's
// current stock kernel fetched with apt-get into a cache, a kernel package
// .deb unpacked there, such as the SynCord kernels, or a bare bzImage) and
// an initramfs holding busybox, the static syncord binaries, the kernel's
// modules the guest needs and an init that runs a given shell (the agent,
// the e2e harness's command loop). The e2e harness, make demo and
// syncord-host experiment share it.
package boot
