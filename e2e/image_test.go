package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/syncord/syncord/vm"
	"github.com/syncord/syncord/vm/image"
)

// testLogWriter sends image build progress to the test log.
type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestGuestImage builds the Debian guest image (cached base), boots it
// under TCG with 2 sockets, waits for systemd to start the agent from its
// unit, drives the agent from the host over virtio-serial, checks the unit
// comes back after a restart and after SIGKILL (Restart=on-failure), and
// powers the guest down cleanly through QMP system_powerdown.
func TestGuestImage(t *testing.T) {
	syncord, host := Binaries(t)
	top, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(top, "dist", "syncord-agent.service")
	if _, err := os.Stat(unit); err != nil {
		t.Fatalf("agent unit: %v", err)
	}
	cache, err := CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files, enable, err := ImageFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	m, err := image.Build(ctx, image.Options{
		Output: filepath.Join(dir, "guest.img"), SizeMB: 2048,
		Syncord: syncord, SyncordHost: host, Unit: unit,
		Files: files, Enable: enable,
		CacheDir: filepath.Join(cache, "image"),
		Progress: testLogWriter{t},
	})
	if err != nil {
		t.Fatal(err)
	}
	used := diskUsage(t, m.Image)
	t.Logf("image: %.1fs (base cached: %v), apparent %d MiB, allocated %d MiB, kernel %s",
		m.BuildSecs, m.BaseCached, m.SizeBytes>>20, used>>20, m.KernelVer)

	g := Boot(t, Config{Sockets: 2, Cores: 2, MemPerNodeMB: 512, Image: m.Image, BootTimeout: 5 * time.Minute})
	waitActive := func(what string, notPID string) string {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			out, _ := g.Run(t, "systemctl is-active syncord-agent; systemctl show -p MainPID --value syncord-agent")
			f := strings.Fields(out)
			if len(f) == 2 && f[0] == "active" && f[1] != "0" && f[1] != notPID {
				return f[1]
			}
			if time.Now().After(deadline) {
				st, _ := g.Run(t, "systemctl status syncord-agent --no-pager; journalctl -u syncord-agent --no-pager | tail -20")
				t.Fatalf("%s: agent unit not active within 90s (last: %q)\n%s", what, out, st)
			}
			time.Sleep(time.Second)
		}
	}
	guest := func(args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(host, append([]string{"guest", "--serial", g.AgentSerialPath(), "--timeout", "2m", "--"}, args...)...)
		out, err := cmd.CombinedOutput()
		code := 0
		if err != nil {
			ee, ok := err.(*exec.ExitError)
			if !ok {
				t.Fatalf("syncord-host guest %v: %v", args, err)
			}
			code = ee.ExitCode()
		}
		return string(out), code
	}

	pid := waitActive("boot", "")
	t.Logf("agent active under systemd, MainPID %s, %v after QEMU start", pid, g.BootTime)
	out, code := guest("topology", "--json")
	if code != 0 {
		t.Fatalf("guest topology exited %d:\n%s", code, out)
	}
	var topo struct {
		CPUs []struct {
			CPU    int  `json:"cpu"`
			Online bool `json:"online"`
		} `json:"cpus"`
		Nodes          []json.RawMessage `json:"nodes"`
		Sockets        int               `json:"sockets"`
		CoresPerSocket int               `json:"cores_per_socket"`
	}
	if err := json.Unmarshal([]byte(out), &topo); err != nil {
		t.Fatalf("topology --json: %v\n%s", err, out)
	}
	if len(topo.CPUs) != 4 || len(topo.Nodes) != 2 || topo.Sockets != 2 || topo.CoresPerSocket != 2 {
		t.Fatalf("guest topology over the agent: %d cpus, %d nodes, %d sockets, %d cores/socket; want 4, 2, 2, 2",
			len(topo.CPUs), len(topo.Nodes), topo.Sockets, topo.CoresPerSocket)
	}
	if out, code := guest("bench", "will-it-scale", "getppid1", "-t", "2", "-s", "1"); code != 0 || !strings.Contains(out, "average:") {
		t.Fatalf("short bench through the agent: status %d\n%s", code, out)
	}

	g.MustRun(t, "systemctl restart syncord-agent")
	pid2 := waitActive("after systemctl restart", pid)
	if out, code := guest("version"); code != 0 {
		t.Fatalf("agent after restart: status %d %s", code, out)
	}
	g.MustRun(t, "kill -9 "+pid2)
	pid3 := waitActive("after SIGKILL", pid2)
	if out, code := guest("version"); code != 0 {
		t.Fatalf("agent after SIGKILL: status %d %s", code, out)
	}
	t.Logf("agent MainPID %s -> %s (restart) -> %s (SIGKILL, Restart=on-failure)", pid, pid2, pid3)

	qctx, qcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer qcancel()
	q, err := vm.DialQMP(qctx, g.QMPPath())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if _, err := q.Execute(qctx, "system_powerdown", nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-g.exited:
	case <-time.After(2 * time.Minute):
		t.Fatal("guest did not power off within 2 minutes of system_powerdown")
	}
	console, _ := os.ReadFile(g.ConsolePath())
	if !strings.Contains(string(console), "reboot: Power down") {
		t.Fatalf("no clean power down on the console:\n%s", g.tail(30))
	}
}

func diskUsage(t testing.TB, path string) int64 {
	out, err := exec.Command("du", "-B1", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	fmt.Sscan(string(out), &n)
	return n
}
