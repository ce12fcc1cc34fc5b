// Package e2e boots Debian's stock kernel under QEMU with a multi-socket NUMA
// layout and an initramfs holding busybox, the static syncord binaries and the
// modules the tests need, and drives the guest through a virtio-serial command
// channel. The tests run only when SYNCORD_E2E=1 (make e2e); plain go test
// skips them with that remedy.
package e2e
