#!/usr/bin/env bash
# Installs what building, testing and the demo need on a Debian machine:
# QEMU, busybox-static, clang/llvm/libbpf for BPF generation, e2fsprogs,
# mmdebstrap for the guest image, and the headers of Debian's current kernel
# (for the e2e livepatch modules), and gcc-11, the compiler the real SynCord
# 5.4 kernels in ../shared/kernels were built with (their out-of-tree modules).
# Idempotent: installs only what is missing. Needs root (or sudo).
set -euo pipefail
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
pkgs=(qemu-system-x86 busybox-static clang llvm libbpf-dev bpftool e2fsprogs gcc gcc-11 make
      dpkg-dev kmod xz-utils zstd mmdebstrap file util-linux)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
updated=0
if [ ${#missing[@]} -gt 0 ] || ! apt-cache depends linux-image-amd64 >/dev/null 2>&1; then
	$SUDO apt-get update -q
	updated=1
fi
if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# The kernel the e2e VM boots is Debian's current one; its headers build
# the test livepatch module. The image itself is only downloaded (e2e/).
kver=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ {sub("linux-image-", "", $2); print $2; exit}')
if [ -z "$kver" ] && [ $updated = 0 ]; then
	$SUDO apt-get update -q
	kver=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ {sub("linux-image-", "", $2); print $2; exit}')
fi
[ -n "$kver" ] || { echo "deps: cannot resolve linux-image-amd64 (is this Debian with apt sources?)" >&2; exit 1; }
if [ ! -d "/usr/src/linux-headers-$kver" ]; then
	echo "deps: installing linux-headers-$kver"
	$SUDO apt-get install -y -q --no-install-recommends "linux-headers-$kver"
fi
