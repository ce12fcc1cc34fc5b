package boot

// InitScript is the guest's PID 1. It mounts the pseudo filesystems, loads
// the modules, runs the test's Init, then serves the command channel: a
// line "<id> <base64 shell>" runs the shell, and the reply is one line
// "@@E2E <id> <status> <base64 combined output>".
const InitScript = `#!/bin/busybox sh
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm && mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /dev/shm
mount -t bpf bpf /sys/fs/bpf
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
hostname syncord-e2e
ip link set lo up 2>/dev/null
while read -r m; do insmod "$m" || echo "e2e: insmod $m failed" >/dev/console; done </etc/e2e/modules
echo "e2e: modules loaded" >/dev/console
cd /root
. /etc/e2e/init.sh
exec sh /etc/e2e/loop.sh
`

// CommandLoop serves the harness's command channel on the virtio port
// org.syncord.e2e: a line "<id> <base64 shell>" runs the shell (cwd /root),
// and the reply is one line "@@E2E <id> <status> <base64 combined output>".
// The initramfs's init execs it; a guest image runs it as a systemd
// service (see ImageFiles). Without the port it idles.
const CommandLoop = `#!/bin/sh
dev=
i=0
while [ -z "$dev" ] && [ $i -lt 300 ]; do
	for p in /sys/class/virtio-ports/*; do
		[ -e "$p/name" ] && [ "$(cat "$p/name")" = "org.syncord.e2e" ] && dev=/dev/${p##*/}
	done
	[ -n "$dev" ] && [ -e "$dev" ] && break
	dev=
	sleep 0.1
	i=$((i+1))
done
if [ -z "$dev" ]; then
	echo "e2e: no command port" >/dev/console
	while true; do sleep 3600; done
fi
mkdir -p /root /tmp
exec 3<>"$dev"
echo "e2e: command channel on $dev" >/dev/console
echo @@E2E-READY >&3
while read -r id b64 <&3; do
	echo "$b64" | base64 -d >/tmp/.e2e-cmd
	(cd /root && exec sh /tmp/.e2e-cmd) </dev/null >/tmp/.e2e-out 2>&1
	rc=$?
	echo "e2e: command $id exit $rc" >/dev/console
	printf '@@E2E %s %s %s\n' "$id" "$rc" "$(base64 /tmp/.e2e-out | tr -d '\n')" >&3
done
echo "e2e: command channel closed" >/dev/console
poweroff -f
`
