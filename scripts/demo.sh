#!/usr/bin/env bash
# The main job on an embedded default (make demo): boot a 2-socket x 2-core
# NUMA VM with Debian's stock kernel under QEMU TCG, pin its vCPUs through
# QMP, then, through the agent over virtio-serial: show the topology the
# guest sees, profile lock contention (rename_lock) while FxMark MWRL runs,
# run a will-it-scale lock1 sweep, and plot it with syncord-host plot.
# Everything it starts is stopped and its temp dir removed on exit; the
# sweep and its figure stay in OUT (default demo-results/). Override the
# layout with SOCKETS, CORES, MEM_PER_NODE (MiB), and the sweep length
# with DURATION (s).
set -euo pipefail
cd "$(dirname "$0")/.."
SOCKETS=${SOCKETS:-2}
CORES=${CORES:-2}
MEM_PER_NODE=${MEM_PER_NODE:-512}
DURATION=${DURATION:-2}
OUT=${OUT:-demo-results}
host=bin/syncord-host

run=$(mktemp -d /tmp/syncord-demo.XXXXXX)
qpid=
cleanup() {
	if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
		kill -TERM "$qpid" 2>/dev/null || true
		wait "$qpid" 2>/dev/null || true
	fi
	rm -rf "$run"
}
trap cleanup EXIT INT TERM

step() { printf '\n==> %s\n' "$*"; }

step "guest initramfs: Debian's current kernel (cached in .cache/e2e), busybox, static syncord, agent on virtio-serial"
boot=$(go run ./e2e/cmd/mkinitramfs -o "$run/initramfs.cpio" -syncord bin/syncord -syncord-host bin/syncord-host)
kernel=$(printf '%s' "$boot" | sed -n 's/.*"kernel":"\([^"]*\)".*/\1/p')
echo "$boot"

step "booting a ${SOCKETS}-socket x ${CORES}-core NUMA VM under QEMU TCG (console: $run/console.log)"
$host vm --sockets "$SOCKETS" --cores "$CORES" --mem-per-node "$MEM_PER_NODE" \
	--kernel "$kernel" --initrd "$run/initramfs.cpio" \
	--qmp "$run/qmp.sock" --serial "$run/agent.sock" --console "$run/console.log" &
qpid=$!

guest() { $host guest --serial "$run/agent.sock" "$@"; }

printf 'waiting for the agent'
start=$(date +%s)
until guest --connect-timeout 2s --timeout 10s -- version >/dev/null 2>&1; do
	if ! kill -0 "$qpid" 2>/dev/null; then echo; echo "QEMU exited; console:"; tail -30 "$run/console.log"; exit 1; fi
	if [ $(( $(date +%s) - start )) -gt 300 ]; then echo; echo "agent not up after 300s; console:"; tail -30 "$run/console.log"; exit 1; fi
	printf '.'; sleep 2
done
echo " up after $(( $(date +%s) - start ))s"
guest -- version

step "pinning vCPU threads to host CPUs through QMP (query-cpus-fast)"
if [ "$(nproc)" -ge $(( SOCKETS * CORES )) ]; then
	$host pin --qmp "$run/qmp.sock" --plan numa
else
	echo "(this host has $(nproc) CPUs for $(( SOCKETS * CORES )) vCPUs: identity plan, oversubscribed)"
	$host pin --qmp "$run/qmp.sock" --plan identity --allow-oversubscribe
fi

step "what the agent sees: syncord topology"
guest -- topology

step "policy status (stock kernel: SynCord lock policies need a -syncord kernel)"
guest -- policy status

step "lock profile from the contention tracepoints while FxMark MWRL renames on every vCPU"
guest -- lockstat --contention --symbols --top 8 --while "bench fxmark --type MWRL --ncore $(( SOCKETS * CORES )) --duration 5 --root /tmp"

step "will-it-scale lock1 sweep (runtest.py format; progress on stderr)"
mkdir -p "$OUT"
guest -- bench sweep will-it-scale lock1 --duration "$DURATION" | tee "$OUT/lock1.sweep"

step "plotting the sweep (syncord-host plot)"
title="lock1 on a ${SOCKETS}x${CORES} VM (TCG), $(date -u +%Y-%m-%d)"
$host plot -o "$OUT/lock1.svg" --title "$title" "$OUT/lock1.sweep"
$host plot -o "$OUT/lock1.png" --title "$title" "$OUT/lock1.sweep" >/dev/null
echo "figure: $(cd "$OUT" && pwd)/lock1.svg (and lock1.png; data in lock1.sweep)"

step "done; stopping the VM"
