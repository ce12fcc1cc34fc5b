package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/syncord/syncord/runtime/control"
)

// agentInit starts the agent from the guest's init as systemd would start
// dist/syncord-agent.service, plus vsock with loopback allowed.
const agentInit = `syncord agent --listen virtio-serial://org.syncord.agent,vsock://:5250 --allow-cid 1 >>/tmp/agent.log 2>&1 &
echo $! >/tmp/agent.pid`

type guestResult struct {
	stdout, stderr string
	code           int
}

// hostGuest runs the built `syncord-host guest --serial <agent socket>
// -- args` on the host.
func hostGuest(t *testing.T, vm *VM, args ...string) guestResult {
	t.Helper()
	_, hostBin := Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, hostBin, append([]string{"guest", "--serial", vm.AgentSerialPath(), "--"}, args...)...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("syncord-host guest %q: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return guestResult{o.String(), e.String(), code}
}

// TestAgent boots a 2x2 guest whose init starts the agent on the
// virtio-serial port org.syncord.agent and on vsock, and drives it from the
// host with syncord-host guest --serial: the guest's topology comes back
// identical to a local run, a short will-it-scale exits 0, a bad command
// exits non-zero, a client killed mid-run stops the workload (its temp
// directory disappears) and the agent keeps serving, SIGINT cancels a run;
// inside the guest, syncord-host guest --vsock 1:5250 reaches the agent over
// vsock loopback, and the control package's vsock tests run for real.
func TestAgent(t *testing.T) {
	skipUnlessEnabled(t)
	// The control package's tests, static, to run in the guest where
	// vsock_loopback exists.
	ctlTest := filepath.Join(t.TempDir(), "control.test")
	build := exec.Command("go", "test", "-c", "-o", ctlTest, "../runtime/control")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go test -c runtime/control: %v\n%s", err, out)
	}
	vm := Boot(t, Config{Sockets: 2, Cores: 2, MemPerNodeMB: 256,
		Modules: []string{"vsock_loopback"},
		Files:   map[string]string{"/bin/control.test": ctlTest},
		Init:    agentInit})
	defer func() {
		if t.Failed() {
			out, _ := vm.Run(t, "cat /tmp/agent.log")
			t.Logf("agent log:\n%s", out)
		}
	}()

	t.Run("topology over serial", func(t *testing.T) {
		r := hostGuest(t, vm, "topology", "--json")
		if r.code != 0 {
			t.Fatalf("status %d, stderr:\n%s", r.code, r.stderr)
		}
		local := vm.MustRun(t, "syncord topology --json 2>/dev/null")
		if r.stdout != local {
			t.Fatalf("topology over the agent differs from the guest's own:\nagent:\n%s\nlocal:\n%s", r.stdout, local)
		}
		var rep struct {
			CPUs []struct {
				Socket int `json:"socket"`
			} `json:"cpus"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatalf("topology --json: %v\n%s", err, r.stdout)
		}
		sockets := map[int]bool{}
		for _, c := range rep.CPUs {
			sockets[c.Socket] = true
		}
		if len(rep.CPUs) != 4 || len(sockets) != 2 {
			t.Fatalf("guest layout: %d cpus on %d sockets, want 4 on 2\n%s", len(rep.CPUs), len(sockets), r.stdout)
		}
	})

	t.Run("serial resync after garbage and a half frame", func(t *testing.T) {
		req, err := control.EncodeArgs([]string{"version"})
		if err != nil {
			t.Fatal(err)
		}
		frame, err := control.AppendFrame(nil, control.Frame{Type: control.TypeRequest, ID: 99, Payload: req})
		if err != nil {
			t.Fatal(err)
		}
		// A host client that leaves half a frame behind.
		c1, err := net.Dial("unix", vm.AgentSerialPath())
		if err != nil {
			t.Fatal(err)
		}
		c1.Write(frame[:10])
		c1.Close()
		// The next one sends garbage, a false magic and half a frame first.
		c2, err := net.Dial("unix", vm.AgentSerialPath())
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		c2.Write(append([]byte("\x00\xff garbage SCRD\x01\x03 "), frame[:12]...))
		var o, e bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		code, err := control.NewClient(c2, true).Run(ctx, []string{"version"}, &o, &e)
		if err != nil || code != 0 || !strings.HasPrefix(o.String(), "syncord ") {
			t.Fatalf("request after garbage: %d %v %q %q", code, err, o.String(), e.String())
		}
	})

	t.Run("will-it-scale", func(t *testing.T) {
		r := hostGuest(t, vm, "bench", "will-it-scale", "lock1", "-t", "2", "-s", "1")
		if r.code != 0 || !strings.Contains(r.stdout, "average:") {
			t.Fatalf("status %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("bad commands", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			code int
			msg  string
		}{
			{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
			{[]string{"topology", "--bogus"}, 2, "flag provided but not defined"},
			{[]string{"agent"}, 77, "cannot run over the control connection"},
			{[]string{"bench", "fxmark", "--type", "MWRL", "--root", "/etc"}, 77, "outside the bench roots"},
		} {
			r := hostGuest(t, vm, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.msg) {
				t.Errorf("%q: status %d stderr %q, want %d and %q", tc.args, r.code, r.stderr, tc.code, tc.msg)
			}
		}
	})

	t.Run("rapid host reconnects", func(t *testing.T) {
		// One host client after another, as a shell loop makes them: no
		// request or reply may be lost between sessions.
		for i := range 40 {
			args := []string{"version"}
			want := 0
			if i%3 == 2 {
				args, want = []string{"topology", "--bogus"}, 2
			}
			if r := hostGuest(t, vm, args...); r.code != want {
				t.Fatalf("client %d %q: status %d, want %d\n%s", i, args, r.code, want, r.stderr)
			}
		}
	})

	// A run until interrupted, writing temp files under /tmp/wis.
	longRun := func(t *testing.T) (*exec.Cmd, *bytes.Buffer) {
		_, hostBin := Binaries(t)
		vm.MustRun(t, "rm -rf /tmp/wis && mkdir -p /tmp/wis")
		cmd := exec.Command(hostBin, "guest", "--serial", vm.AgentSerialPath(), "--",
			"bench", "will-it-scale", "open1", "-t", "2", "-s", "0", "--tmpdir", "/tmp/wis")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				cmd.Process.Kill()
				cmd.Wait()
			}
		})
		// Running once its temp directory exists.
		deadline := time.Now().Add(2 * time.Minute)
		for {
			if out, _ := vm.Run(t, "ls /tmp/wis"); strings.TrimSpace(out) != "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("will-it-scale did not start in 2 minutes:\n%s", out.String())
			}
			time.Sleep(200 * time.Millisecond)
		}
		return cmd, &out
	}
	finished := func(t *testing.T) int {
		out := vm.MustRun(t, "grep -c 'request \"bench will-it-scale open1' /tmp/agent.log || true")
		n := 0
		for _, c := range strings.TrimSpace(out) {
			n = n*10 + int(c-'0')
		}
		return n
	}
	// waitStopped waits until the agent logged one more finished open1
	// request than before and the run's temp directory is gone.
	waitStopped := func(t *testing.T, before int) {
		deadline := time.Now().Add(time.Minute)
		for {
			out, _ := vm.Run(t, "ls -A /tmp/wis")
			if strings.TrimSpace(out) == "" && finished(t) > before {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("workload not stopped a minute after its client went away: /tmp/wis holds %q", out)
			}
			time.Sleep(300 * time.Millisecond)
		}
	}

	t.Run("dropped connection stops the workload", func(t *testing.T) {
		before := finished(t)
		cmd, _ := longRun(t)
		// SIGKILL: no cancel frame, the connection just drops.
		cmd.Process.Kill()
		cmd.Wait()
		waitStopped(t, before)
		r := hostGuest(t, vm, "topology")
		if r.code != 0 || !strings.Contains(r.stdout, "sockets:     2") {
			t.Fatalf("agent after a dropped client: status %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("SIGINT cancels", func(t *testing.T) {
		before := finished(t)
		cmd, out := longRun(t)
		start := time.Now()
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Fatal("syncord-host guest still running a minute after SIGINT")
		}
		t.Logf("syncord-host guest exited %d %v after SIGINT:\n%s", cmd.ProcessState.ExitCode(), time.Since(start).Round(time.Millisecond), out.String())
		// -s 0 runs until interrupted and then prints the average.
		if !strings.Contains(out.String(), "average:") {
			t.Errorf("no average after SIGINT:\n%s", out.String())
		}
		waitStopped(t, before)
	})

	t.Run("vsock loopback in the guest", func(t *testing.T) {
		out, code := vm.Run(t, "syncord-host guest --vsock 1:5250 -- topology")
		if code != 0 || !strings.Contains(out, "sockets:     2") {
			t.Fatalf("status %d:\n%s", code, out)
		}
		out, code = vm.Run(t, "/bin/control.test -test.run 'Vsock' -test.v 2>&1")
		if code != 0 || strings.Contains(out, "SKIP") || !strings.Contains(out, "--- PASS: TestVsockLocal") {
			t.Fatalf("control vsock tests in the guest: status %d\n%s", code, out)
		}
	})

	t.Run("agent idle RSS", func(t *testing.T) {
		out := vm.MustRun(t, "grep VmRSS /proc/$(cat /tmp/agent.pid)/status")
		t.Logf("guest agent after the runs: %s", strings.TrimSpace(out))
		t.Logf("agent log:\n%s", vm.MustRun(t, "cat /tmp/agent.log"))
	})
}
