package e2e

import (
	"bufio"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/syncord/syncord/experiment"
)

// TestExperimentResume runs a small spec with the built syncord-host the
// way a user does: Debian's kernel (and stock-syncord, none vs lockstat
// with its livepatch, when ../shared/kernels has it), lock1 and MWRL at
// 1 s points on a 2x2 VM. The first run is killed with SIGKILL after its third point; the
// second run resumes on the same dir and completes without redoing a
// finished run, leaving CSVs, a manifest and figures; a third run finds
// everything done and boots nothing.
func TestExperimentResume(t *testing.T) {
	_, host := Binaries(t)
	Kernel(t) // fetch Debian's kernel into the cache before timing anything
	cache, err := CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	spec := `name = "e2e-small"
duration = 1
points = [1, 4]

[vm]
sockets = 2
cores = 2
mem_per_node = 256

[[kernel]]
name = "debian"
path = "debian"
`
	kdir, kerr := KernelsDir()
	cells := 2
	if _, err := os.Stat(filepath.Join(kdir, StockSynCord)); kerr == nil && err == nil {
		// lockstat with syncord's concord livepatch, built on the host
		// against the kernel's headers .deb (syncord policy build
		// lockstat --livepatch --kdir), installed through the agent and
		// uninstalled after its cells. Without gcc-11 (the kernel's
		// compiler) only its programs are pinned, not attached.
		livepatch := "build"
		if _, err := exec.LookPath("gcc-11"); err != nil {
			livepatch = "none"
			t.Logf("e2e: no gcc-11 (apt-get install gcc-11): lockstat's livepatch is not built, its programs are only pinned")
		}
		spec += fmt.Sprintf(`
[[kernel]]
name = "stock-syncord"
path = %q
policies = ["none", "lockstat"]

[policy.lockstat]
livepatch = %q
`, filepath.Join(kdir, StockSynCord), livepatch)
		cells = 6
	} else {
		t.Logf("e2e: no %s kernel in %s: Debian's kernel only", StockSynCord, kdir)
	}
	spec += `
[[benchmark]]
driver = "will-it-scale"
test = "lock1"

[[benchmark]]
driver = "fxmark"
test = "MWRL"
`
	dir := t.TempDir()
	specPath := filepath.Join(dir, "small.toml")
	if err := os.WriteFile(specPath, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	total := cells * 2
	syncordBin := filepath.Join(filepath.Dir(host), "syncord")
	cmdline := func() *exec.Cmd {
		c := exec.Command(host, "experiment", "run", specPath, "--out", out, "--syncord", syncordBin, "--cache", cache)
		c.Env = append(os.Environ(), "SYNCORD_KERNELS="+kdir)
		return c
	}
	reDone := regexp.MustCompile(`^experiment: \[(\d+)/(\d+)\] `)

	// 1. Killed after its fourth point.
	start := time.Now()
	c := cmdline()
	stderr, err := c.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	var first []string
	sc := bufio.NewScanner(stderr)
	killed := false
	for sc.Scan() {
		first = append(first, sc.Text())
		if m := reDone.FindStringSubmatch(sc.Text()); m != nil && m[1] == "4" {
			if m[2] != fmt.Sprint(total) {
				t.Errorf("progress %q: want %d runs in all", sc.Text(), total)
			}
			c.Process.Kill() // SIGKILL: no cleanup of its own
			killed = true
			break
		}
	}
	c.Wait()
	if !killed {
		t.Fatalf("the first run ended before its fourth point:\n%s", strings.Join(first, "\n"))
	}
	t.Logf("e2e: first run killed after 4 points at %v", time.Since(start).Round(time.Second))
	// Its QEMU dies with it (SIGTERM on parent death): no agent socket of
	// it answers (each boot has a run dir of its own under .run).
	deadline := time.Now().Add(30 * time.Second)
	for {
		socks, _ := filepath.Glob(filepath.Join(out, ".run", "*", "agent.sock"))
		alive := ""
		for _, sock := range socks {
			if cn, err := net.DialTimeout("unix", sock, time.Second); err == nil {
				cn.Close()
				alive = sock
			}
		}
		if alive == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("QEMU of the killed run still serves %s after 30s", alive)
		}
		time.Sleep(200 * time.Millisecond)
	}
	raws := rawFiles(t, out)
	if len(raws) != 4 {
		t.Fatalf("the killed run left %d finished runs, want 4: %v", len(raws), raws)
	}
	mtimes := map[string]time.Time{}
	for _, p := range raws {
		fi, _ := os.Stat(p)
		mtimes[p] = fi.ModTime()
	}

	// 2. Resumed: it says 4 are done, runs only the rest.
	c = cmdline()
	var errBuf strings.Builder
	c.Stderr = &errBuf
	o, err := c.Output()
	second := errBuf.String()
	if err != nil {
		t.Fatalf("resumed run: %v\n%s", err, second)
	}
	if !strings.Contains(second, fmt.Sprintf("%d runs in %d cells, 4 already done", total, cells)) || !strings.Contains(second, fmt.Sprintf("[5/%d]", total)) || strings.Contains(second, fmt.Sprintf("[4/%d]", total)) {
		t.Errorf("the resumed run's progress does not start after the 4 done runs:\n%s", second)
	}
	if cells == 6 && (!strings.Contains(second, "kernel debian: every run done, not booting it") || strings.Contains(second, "kernel debian (")) {
		t.Errorf("the resumed run booted Debian's kernel, whose runs were all done:\n%s", second)
	}
	m, err := experiment.ReadManifest(out)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Complete || len(m.Sessions) != 2 || !m.Sessions[0].Ended.IsZero() || m.Sessions[1].Runs != total-4 {
		t.Fatalf("manifest: complete %v, sessions %+v; want complete, 2 sessions: the killed one without an end, the second with %d runs", m.Complete, m.Sessions, total-4)
	}
	if len(m.Runs) != total {
		t.Errorf("manifest has %d run records, want %d (each run once)", len(m.Runs), total)
	}
	for p, mt := range mtimes {
		fi, err := os.Stat(p)
		if err != nil || !fi.ModTime().Equal(mt) {
			t.Errorf("%s was redone by the resumed run", p)
		}
	}
	if got := len(rawFiles(t, out)); got != total {
		t.Errorf("%d finished runs after the resumed run, want %d", got, total)
	}
	csvs, _ := filepath.Glob(filepath.Join(out, "cells", "*.csv"))
	if len(csvs) != cells || len(m.Cells) != cells {
		t.Errorf("%d CSVs, %d cells in the manifest, want %d", len(csvs), len(m.Cells), cells)
	}
	for _, f := range []string{"lock1.svg", "lock1.png", "MWRL.svg", "MWRL.png"} {
		if fi, err := os.Stat(filepath.Join(out, "figures", f)); err != nil || fi.Size() < 1000 {
			t.Errorf("figure %s: %v", f, err)
		}
	}
	if !strings.Contains(string(o), filepath.Join(out, "figures", "lock1.svg")) {
		t.Errorf("run printed %q, want the figures' paths", o)
	}
	for _, k := range m.Kernels {
		if k.Release == "" || len(k.Topology) == 0 || len(k.QEMU) == 0 || k.Pin == "" {
			t.Errorf("kernel record %+v lacks release, topology, QEMU command or pinning", k)
		}
	}
	if h := m.Sessions[1].Host; h.CPUs == 0 || h.QEMU == "" {
		t.Errorf("host record %+v", h)
	}
	if cells == 6 {
		b, err := os.ReadFile(filepath.Join(out, "raw", "stock-syncord", "lockstat", "install.out"))
		if err != nil || !strings.Contains(string(b), "installed lockstat") {
			t.Errorf("lockstat install through the agent: %q, %v", b, err)
		}
		if b, err := os.ReadFile(filepath.Join(out, "raw", "stock-syncord", "lockstat", "uninstall.out")); err != nil || !strings.Contains(string(b), "uninstalled lockstat") {
			t.Errorf("lockstat uninstall through the agent: %q, %v", b, err)
		}
	}
	// Overhead per point: time outside the benchmark itself.
	var over []float64
	for _, r := range m.Runs {
		if r.CommandSeconds <= 0 {
			t.Errorf("run %+v has no command time", r)
		}
		over = append(over, r.OverheadSeconds)
	}
	sort.Float64s(over)
	t.Logf("e2e: experiment overhead per point: median %.3fs, max %.3fs over %d points (TCG, 2x2 VM on %d host CPUs)", over[len(over)/2], over[len(over)-1], len(over), m.Sessions[1].Host.CPUs)
	// The target is < 2 s a point; how far a busy 2-core host misses it is
	// weather, so the test fails only at what no weather explains: half a
	// VM boot of overhead per point (a boot, or a hang, per point).
	boot := math.Inf(1)
	for _, k := range m.Kernels {
		if k.BootSeconds > 0 {
			boot = math.Min(boot, k.BootSeconds)
		}
	}
	if med := over[len(over)/2]; med >= 2 {
		t.Logf("e2e: median overhead per point %.2fs misses the 2 s target on this machine (a VM boot took %.1fs)", med, boot)
		if med >= boot/2 {
			t.Errorf("median overhead per point %.2fs is half a VM boot (%.1fs) or more: a point pays for a boot or a stall", med, boot)
		}
	}

	if _, err := os.Stat(filepath.Join(out, ".run")); err == nil {
		t.Errorf("a complete results dir still has its .run dir (initramfs, sockets)")
	}

	// 3. Everything done: no VM, same results.
	t3 := time.Now()
	c = cmdline()
	b, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("third run: %v\n%s", err, b)
	}
	if n := strings.Count(string(b), "not booting it"); n != len(m.Kernels) || strings.Contains(string(b), "booting a") {
		t.Errorf("third run booted a VM:\n%s", b)
	}
	t.Logf("e2e: completed dir rerun in %v", time.Since(t3).Round(time.Millisecond))
}

func rawFiles(t *testing.T, out string) []string {
	t.Helper()
	var l []string
	filepath.Walk(filepath.Join(out, "raw"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".out") && regexp.MustCompile(`/n\d+-r\d+\.out$`).MatchString(p) {
			l = append(l, p)
		}
		return nil
	})
	return l
}
