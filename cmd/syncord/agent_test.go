package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/syncord/syncord/runtime/control"
)

// startTestAgent serves the real commands (agentConfig, as syncord agent
// does) on a unix socket in t.TempDir().
func startTestAgent(t testing.TB, roots *control.Roots) string {
	t.Helper()
	cfg := agentConfig(t.Logf)
	cfg.Roots = roots
	return serveTestAgent(t, filepath.Join(t.TempDir(), "agent.sock"), cfg)
}

// serveTestAgent serves cfg on a unix socket at sock until the test ends
// and returns the agent's address.
func serveTestAgent(t testing.TB, sock string, cfg control.Config) string {
	t.Helper()
	l, err := control.ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := control.NewServer(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ctx, l)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return "unix://" + sock
}

type agentResult struct {
	code           int
	stdout, stderr string
	err            error
}

func remote(t testing.TB, ctx context.Context, addr string, args ...string) agentResult {
	t.Helper()
	c, err := control.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var o, e bytes.Buffer
	code, err := c.Run(ctx, args, &o, &e)
	return agentResult{code, o.String(), e.String(), err}
}

func local(args ...string) agentResult {
	var o, e bytes.Buffer
	code := Run(context.Background(), &Env{Stdout: &o, Stderr: &e}, args)
	return agentResult{code: code, stdout: o.String(), stderr: e.String()}
}

// TestAgentRunsRealCommands runs real syncord commands through the agent
// and compares them with the same commands run locally.
func TestAgentRunsRealCommands(t *testing.T) {
	root := t.TempDir()
	addr := startTestAgent(t, &control.Roots{Policy: []string{root}, Bench: []string{root}, BPF: []string{root}})
	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		sameAs   bool   // output equals the local run's
		errPart  string // in stderr
		outEmpty bool
	}{
		{"version", []string{"version"}, 0, true, "", false},
		{"topology json", []string{"topology", "--json"}, 0, true, "", false},
		{"topology table", []string{"topology"}, 0, true, "", false},
		{"bench list", []string{"bench", "will-it-scale", "--list"}, 0, true, "", false},
		{"unknown command", []string{"frobnicate"}, 2, true, `unknown command "frobnicate"`, true},
		{"bad flag", []string{"topology", "--no-such-flag"}, 2, true, "flag provided but not defined", true},
		{"agent refused", []string{"agent", "--listen", "unix:///tmp/x.sock"}, control.ExitRefused, false, "cannot run over the control connection", true},
		{"path outside root", []string{"lockstat", "--map", "/sys/fs/bpf/x"}, control.ExitRefused, false, "outside the bpf roots", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := remote(t, context.Background(), addr, tc.args...)
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.code != tc.code {
				t.Fatalf("status %d, want %d; stderr: %s", r.code, tc.code, r.stderr)
			}
			if tc.errPart != "" && !strings.Contains(r.stderr, tc.errPart) {
				t.Fatalf("stderr %q, want %q", r.stderr, tc.errPart)
			}
			if tc.outEmpty != (r.stdout == "") {
				t.Fatalf("stdout %q", r.stdout)
			}
			if tc.sameAs {
				l := local(tc.args...)
				if l.code != r.code || l.stdout != r.stdout || l.stderr != r.stderr {
					t.Fatalf("remote and local runs differ:\nremote %d %q %q\nlocal  %d %q %q", r.code, r.stdout, r.stderr, l.code, l.stdout, l.stderr)
				}
			}
		})
	}
}

func TestMutatingRequest(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"topology", "--json"}, false},
		{[]string{"lockstat"}, false},
		{[]string{"policy", "status"}, false},
		{[]string{"policy", "list"}, false},
		{[]string{"policy", "install", "lockstat"}, true},
		{[]string{"policy", "uninstall"}, true},
		{[]string{"policy", "reconcile"}, true},
		{[]string{"policy"}, true},
		{[]string{"bench", "will-it-scale", "lock1"}, true},
		{[]string{"bench", "xdir", "run", "a", "b", "c", "1", "1", "1"}, true},
		// Help of a command with subcommands only reads (the registry
		// says which subcommands do).
		{[]string{"bench", "--help"}, false},
		{[]string{"policy", "help"}, false},
		{[]string{"nosuch"}, false},
		{nil, false},
	} {
		if got := mutatingRequest(tc.args); got != tc.want {
			t.Errorf("mutatingRequest(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}

// TestAgentBusyAndCancel runs a real will-it-scale through the agent, checks
// that a second mutating command is refused while it runs and a read-only
// one is not, then cancels it: the workload stops and its temp directory is
// gone.
func TestAgentBusyAndCancel(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping workload run in -short mode")
	}
	root := t.TempDir()
	addr := startTestAgent(t, &control.Roots{Bench: []string{root}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan agentResult, 1)
	start := time.Now()
	go func() {
		done <- remote(t, ctx, addr, "bench", "will-it-scale", "open1", "-t", "1", "-s", "60", "--no-affinity", "--tmpdir", root)
	}()
	// Wait until the run's private temp directory exists.
	deadline := time.Now().Add(20 * time.Second)
	for {
		ents, _ := os.ReadDir(root)
		if len(ents) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("will-it-scale made no temp directory in 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	r := remote(t, context.Background(), addr, "bench", "will-it-scale", "lock1", "-t", "1", "-s", "1")
	if r.code != control.ExitBusy || !strings.Contains(r.stderr, "busy: bench will-it-scale is running (started ") {
		t.Fatalf("second bench: %+v, want busy", r)
	}
	if r := remote(t, context.Background(), addr, "topology"); r.code != 0 {
		t.Fatalf("topology while a bench runs: %+v", r)
	}
	cancel()
	var res agentResult
	select {
	case res = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("cancelled will-it-scale still running after 30s")
	}
	if !errors.Is(res.err, control.ErrCanceled) {
		t.Fatalf("cancelled run: %+v, want ErrCanceled with the command's status", res)
	}
	ents, _ := os.ReadDir(root)
	if len(ents) != 0 {
		t.Fatalf("temp files left after cancel: %v", ents)
	}
	t.Logf("cancelled after %v with status %d", time.Since(start).Round(time.Millisecond), res.code)
}

// BenchmarkAgentStatusRoundTrip runs the real `version` command through
// the agent over a unix socket on one connection: the agent's own overhead
// per request (median, target < 1 ms). (`policy status` itself reads
// /proc/kallsyms and takes as long remotely as locally.)
func BenchmarkAgentStatusRoundTrip(b *testing.B) {
	addr := startTestAgent(b, control.DefaultRoots())
	c, err := control.Dial(context.Background(), addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var lat []time.Duration
	for b.Loop() {
		var o bytes.Buffer
		start := time.Now()
		code, err := c.Run(context.Background(), []string{"version"}, &o, &o)
		lat = append(lat, time.Since(start))
		if err != nil || code != 0 {
			b.Fatalf("version: %d %v %s", code, err, o.String())
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "median-µs")
}

// BenchmarkAgentIdleRSS builds syncord, starts `syncord agent --listen
// unix://...`, runs one request, lets it idle and reports its VmRSS from
// /proc/PID/status (target < 20 MB). The agent is killed by its PID.
func BenchmarkAgentIdleRSS(b *testing.B) {
	dir := b.TempDir()
	bin := filepath.Join(dir, "syncord")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	var rss []float64
	for b.Loop() {
		sock := filepath.Join(dir, "agent.sock")
		cmd := exec.Command(bin, "agent", "--reconcile=false", "--listen", "unix://"+sock)
		var logs bytes.Buffer
		cmd.Stderr = &logs
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		pid := cmd.Process.Pid
		stop := func() {
			syscall.Kill(pid, syscall.SIGTERM)
			cmd.Wait()
		}
		deadline := time.Now().Add(10 * time.Second)
		var r agentResult
		for {
			c, err := control.Dial(context.Background(), "unix://"+sock)
			if err == nil {
				var o bytes.Buffer
				code, err := c.Run(context.Background(), []string{"topology"}, &o, &o)
				c.Close()
				r = agentResult{code: code, err: err, stdout: o.String()}
				break
			}
			if time.Now().After(deadline) {
				stop()
				b.Fatalf("agent did not listen in 10s: %s", logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		if r.err != nil || r.code != 0 {
			stop()
			b.Fatalf("topology through the agent: %+v", r)
		}
		time.Sleep(2 * time.Second)
		st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		stop()
		if err != nil {
			b.Fatal(err)
		}
		for _, line := range strings.Split(string(st), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				rss = append(rss, kb/1024)
			}
		}
	}
	if len(rss) == 0 {
		b.Fatal("no VmRSS line in /proc/PID/status")
	}
	slices.Sort(rss)
	b.ReportMetric(rss[len(rss)/2], "idle-RSS-MB")
}

// TestAgentCommand runs `syncord agent` itself in-process on a unix socket,
// serves a request, and stops when its context is cancelled (SIGTERM).
func TestAgentCommand(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "a.sock")
	ctx, cancel := context.WithCancel(context.Background())
	var logs bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, &Env{Stdout: &logs, Stderr: &logs}, []string{"agent", "--reconcile=false", "--listen", "unix://" + sock})
	}()
	var r agentResult
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := control.Dial(context.Background(), "unix://"+sock)
		if err == nil {
			var o, e bytes.Buffer
			code, err := c.Run(context.Background(), []string{"version"}, &o, &e)
			c.Close()
			r = agentResult{code, o.String(), e.String(), err}
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("agent not listening after 10s (status %d): %s", <-done, logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r.err != nil || r.code != 0 || !strings.HasPrefix(r.stdout, "syncord ") {
		t.Fatalf("version through the agent: %+v", r)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("agent exited %d: %s", code, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("agent still running 10s after cancel")
	}
	for _, want := range []string{"listening on unix://" + sock, `request "version": exit status 0`, "stopped"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("agent log lacks %q:\n%s", want, logs.String())
		}
	}
}

func TestAgentCommandErrors(t *testing.T) {
	fakeSys := t.TempDir()
	for _, tc := range []struct {
		name   string
		env    Env
		args   []string
		code   int
		errMsg string
	}{
		{"remote", Env{Remote: true}, []string{"agent"}, control.ExitRefused, "refused over the control connection"},
		{"bad cid", Env{}, []string{"agent", "--allow-cid", "x"}, 2, "not a context id"},
		{"bad scheme", Env{}, []string{"agent", "--listen", "tcp://127.0.0.1:1"}, 1, "unknown scheme"},
		{"missing port", Env{}, []string{"agent", "--listen", "virtio-serial://org.example.none"}, 1, `find virtio-serial port "org.example.none"`},
		{"positional", Env{}, []string{"agent", "unix:///x"}, 2, "listen addresses go to --listen"},
		// The virtio-serial port is looked up under --sys-root.
		{"sysfs root", Env{}, []string{"agent", "--sys-root", fakeSys, "--listen", "virtio-serial://org.example.none"}, 1, fakeSys + "/class/virtio-ports"},
		{"missing sysfs root", Env{}, []string{"agent", "--sys-root", fakeSys + "/none", "--listen", "virtio-serial://org.example.none"}, 1, "sysfs root " + fakeSys + "/none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			env := tc.env
			env.Stdout, env.Stderr = &b, &b
			if code := Run(context.Background(), &env, tc.args); code != tc.code || !strings.Contains(b.String(), tc.errMsg) {
				t.Fatalf("status %d output %q, want %d and %q", code, b.String(), tc.code, tc.errMsg)
			}
		})
	}
}

// TestAgentUnit checks dist/syncord-agent.service: it waits for and
// requires the device unit systemd makes for udev's
// /dev/virtio-ports/org.syncord.agent link, its ExecStart is a valid agent
// command line for the default port, it restarts on failure and bounds its
// capabilities; where systemd-analyze exists it verifies the unit (with
// ExecStart pointing at a built binary).
func TestAgentUnit(t *testing.T) {
	unitPath := filepath.Join("..", "..", "dist", "syncord-agent.service")
	b, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	keys := map[string][]string{}
	for _, line := range strings.Split(unit, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("unit line %q", line)
		}
		keys[k] = append(keys[k], v)
	}
	const device = `dev-virtio\x2dports-org.syncord.agent.device` // systemd-escape --path /dev/virtio-ports/org.syncord.agent
	for _, k := range []string{"Requires", "After"} {
		if !slices.Contains(keys[k], device) {
			t.Errorf("%s= lacks %s: %q", k, device, keys[k])
		}
	}
	if got := keys["Restart"]; len(got) != 1 || got[0] != "on-failure" {
		t.Errorf("Restart=%q, want on-failure", got)
	}
	caps := strings.Fields(strings.Join(keys["CapabilityBoundingSet"], " "))
	for _, c := range []string{"CAP_SYS_ADMIN", "CAP_BPF", "CAP_PERFMON", "CAP_SYS_MODULE", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_DAC_OVERRIDE", "CAP_MKNOD"} {
		if !slices.Contains(caps, c) {
			t.Errorf("CapabilityBoundingSet lacks %s", c)
		}
	}
	for _, c := range []string{"CAP_NET_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_RAWIO", "CAP_SETUID"} {
		if slices.Contains(caps, c) {
			t.Errorf("CapabilityBoundingSet has %s, which the agent does not need", c)
		}
	}
	start := keys["ExecStart"]
	if len(start) != 1 {
		t.Fatalf("ExecStart=%q", start)
	}
	argv := strings.Fields(start[0])
	if len(argv) < 2 || filepath.Base(argv[0]) != "syncord" || argv[1] != "agent" {
		t.Fatalf("ExecStart=%q, want syncord agent ...", start[0])
	}
	if !strings.Contains(start[0], "virtio-serial://"+control.DefaultPortName) {
		t.Errorf("ExecStart=%q does not listen on the default port %s", start[0], control.DefaultPortName)
	}
	// The flags parse: only the missing port may fail on this machine.
	// A cancelled context: where the port exists the agent opens it and
	// returns at once.
	var out bytes.Buffer
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	Run(cctx, &Env{Stdout: &out, Stderr: &out}, append(argv[1:], "--reconcile=false"))
	if s := out.String(); !strings.Contains(s, `find virtio-serial port "`+control.DefaultPortName+`"`) && !strings.Contains(s, "listening on") {
		t.Errorf("ExecStart's arguments: %s", s)
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("skipping systemd-analyze verify: not installed (apt-get install systemd)")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "syncord")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(dir, "syncord-agent.service")
	if err := os.WriteFile(copyPath, []byte(strings.ReplaceAll(unit, "/usr/local/bin/syncord", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	v := exec.Command(analyze, "verify", copyPath)
	v.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=warning")
	if o, err := v.CombinedOutput(); err != nil || len(bytes.TrimSpace(o)) != 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, o)
	}
}
