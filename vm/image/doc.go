// Package image builds a bootable raw disk image for the SynCord guest from
// Debian packages, without loop devices or root mounts: mmdebstrap
// bootstraps a minimal systemd system (cached by suite, package set and apt
// sources), the static syncord binaries and the agent's systemd unit are
// installed and enabled, and mkfs.ext4 -d writes the tree into the image.
// The kernel and initramfs are copied out beside the image (IMG.vmlinuz,
// IMG.initrd) with a manifest (IMG.json) so QEMU boots it directly with
// root=/dev/vda, no bootloader needed.
package image
