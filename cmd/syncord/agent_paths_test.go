package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/syncord/syncord/bpf/contention"
	"github.com/syncord/syncord/internal/pseudofs"
	"github.com/syncord/syncord/internal/testutil"
	"github.com/syncord/syncord/runtime/control"
)

// pathsAgent is a real agent (agentConfig over a unix socket) started from
// the working directory cwd, with a policy root, a bench root and a bpf
// root, and a directory outside all of them.
type pathsAgent struct {
	addr                          string
	cwd, proot, broot, bpf, outer string
}

func startPathsAgent(t *testing.T, edit func(*control.Config)) *pathsAgent {
	t.Helper()
	base := t.TempDir()
	a := &pathsAgent{cwd: filepath.Join(base, "cwd"), proot: filepath.Join(base, "proot"), broot: filepath.Join(base, "broot"),
		bpf: filepath.Join(base, "bpf"), outer: filepath.Join(base, "outside")}
	for _, d := range []string{a.cwd, a.proot, a.broot, a.bpf, a.outer} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(a.cwd) // the agent runs in this process: its working directory
	cfg := agentConfig(t.Logf)
	cfg.Roots = &control.Roots{Policy: []string{a.proot}, Bench: []string{a.broot}, BPF: []string{a.bpf}}
	if edit != nil {
		edit(&cfg)
	}
	a.addr = serveTestAgent(t, filepath.Join(base, "agent.sock"), cfg)
	return a
}

func (a *pathsAgent) run(t *testing.T, args ...string) agentResult {
	t.Helper()
	r := remote(t, context.Background(), a.addr, args...)
	if r.err != nil {
		t.Fatalf("%q: %v", args, r.err)
	}
	return r
}

func mustNotExist(t *testing.T, p string) {
	t.Helper()
	if _, err := os.Lstat(p); err == nil {
		t.Errorf("%s was made", p)
	}
}

func mustExist(t *testing.T, p string) {
	t.Helper()
	if _, err := os.Lstat(p); err != nil {
		t.Errorf("%s: %v", p, err)
	}
}

// TestAgentWhileIsPathChecked (item 1): the command of lockstat --while is
// checked like one sent on its own.
func TestAgentWhileIsPathChecked(t *testing.T) {
	testutil.RequireBPF(t)
	if err := contention.Check(pseudofs.DefaultRoots()); err != nil {
		t.Skipf("skipping: %v", err)
	}
	a := startPathsAgent(t, nil)
	for _, while := range []string{"--while", "-while"} {
		target := filepath.Join(a.outer, "x"+while)
		r := a.run(t, "lockstat", "--contention", while, "bench xdir prepare --dir "+target+" -n 2")
		if r.code != control.ExitRefused || !strings.Contains(r.stderr, "outside the bench roots") {
			t.Errorf("%s: status %d, stderr %q; want refused", while, r.code, r.stderr)
		}
		mustNotExist(t, target)
	}
}

// TestAgentXDirLinkOutOfRoot (item 2): a dst_N_files link inside the bench
// root that leads out of it is not followed, and nothing it leads to is
// removed.
func TestAgentXDirLinkOutOfRoot(t *testing.T) {
	a := startPathsAgent(t, nil)
	victim := filepath.Join(a.outer, "victim")
	os.Mkdir(victim, 0o755)
	files := []string{"thesis.tex", "AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGhIj"}
	for _, f := range files {
		os.WriteFile(filepath.Join(victim, f), []byte("keep"), 0o644)
	}
	xd := filepath.Join(a.broot, "xd")
	os.Mkdir(xd, 0o755)
	if err := os.Symlink(victim, filepath.Join(xd, "dst_0_files")); err != nil {
		t.Fatal(err)
	}
	r := a.run(t, "bench", "xdir", "prepare", "--dir", xd, "-n", "0")
	if r.code == 0 || !strings.Contains(r.stderr, "dst_0_files is a symbolic link") {
		t.Errorf("prepare over a link: status %d, stderr %q; want an error", r.code, r.stderr)
	}
	for _, f := range files {
		mustExist(t, filepath.Join(victim, f))
	}
}

// TestAgentRelativePaths (items 3 and 4): relative paths, "-" included,
// lie under the first root of their kind, never in the agent's working
// directory.
func TestAgentRelativePaths(t *testing.T) {
	a := startPathsAgent(t, nil)
	for _, dir := range []string{"relx", "-"} {
		r := a.run(t, "bench", "xdir", "prepare", "--dir", dir, "-n", "1")
		if r.code != 0 {
			t.Fatalf("prepare --dir %s: status %d: %s", dir, r.code, r.stderr)
		}
		mustNotExist(t, filepath.Join(a.cwd, dir))
		mustExist(t, filepath.Join(a.broot, dir, "dst_1_files"))
		if !strings.Contains(r.stdout, filepath.Join(a.broot, dir, "src_empty")) {
			t.Errorf("prepare --dir %s reports other paths:\n%s", dir, r.stdout)
		}
	}
	// xdir run SRC DST_DIRTY DST: relative names without a slash too. The
	// working directory holds ready directories of those names; the root
	// holds none, so the run must fail naming the root's.
	for _, d := range []string{"srcx", "dirtyx", "dstx"} {
		os.Mkdir(filepath.Join(a.cwd, d), 0o755)
	}
	r := a.run(t, "bench", "xdir", "run", "srcx", "dirtyx", "dstx", "1", "1", "0", "--hold", "duration")
	if r.code == 0 || !strings.Contains(r.stderr, filepath.Join(a.broot, "srcx")) {
		t.Errorf("xdir run with relative names: status %d, stderr %q; want it to use %s", r.code, r.stderr, filepath.Join(a.broot, "srcx"))
	}
	// policy install NAME that is not a built-in: a directory under the
	// policy root, not the working directory's.
	os.Mkdir(filepath.Join(a.cwd, "evilpol"), 0o755)
	r = a.run(t, "policy", "install", "evilpol")
	if r.code == 0 || !strings.Contains(r.stderr, filepath.Join(a.proot, "evilpol")) {
		t.Errorf("policy install evilpol: status %d, stderr %q; want it looked up in %s", r.code, r.stderr, a.proot)
	}
}

// TestAgentDefaultPaths (item 5): defaults that would lie in the working
// directory or /tmp lie under the roots.
func TestAgentDefaultPaths(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping workload run in -short mode")
	}
	src, err := filepath.Abs("../../bpf/policies/amp")
	if err != nil {
		t.Fatal(err)
	}
	a := startPathsAgent(t, nil)
	r := a.run(t, "bench", "leveldb", "readrandom", "--threads", "1", "--duration", "200ms", "--num", "100", "-n", "1")
	if r.code != 0 {
		t.Fatalf("leveldb: status %d: %s", r.code, r.stderr)
	}
	mustExist(t, filepath.Join(a.broot, fmt.Sprintf("leveldbtest-%d", os.Getuid()), "dbbench"))

	if _, err := exec.LookPath("clang"); err != nil {
		t.Skip("skipping policy build: clang not installed (apt-get install clang llvm)")
	}
	if err := os.CopyFS(filepath.Join(a.proot, "amp"), os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	r = a.run(t, "policy", "build", "amp", "--ncpu", "8")
	if r.code != 0 {
		t.Fatalf("policy build: status %d: %s", r.code, r.stderr)
	}
	mustNotExist(t, filepath.Join(a.cwd, "output"))
	mustExist(t, filepath.Join(a.proot, "output", "amp", "eBPFGen", "manifest.json"))
}

// TestAgentDotDotAfterLink (item 7): ".." after a symbolic link is taken
// physically, as the kernel does, not cleaned away first.
func TestAgentDotDotAfterLink(t *testing.T) {
	a := startPathsAgent(t, nil)
	os.Mkdir(filepath.Join(a.outer, "sub"), 0o755)
	if err := os.Symlink(filepath.Join(a.outer, "sub"), filepath.Join(a.broot, "link")); err != nil {
		t.Fatal(err)
	}
	r := a.run(t, "bench", "xdir", "prepare", "--dir", a.broot+"/link/../x", "-n", "1")
	if r.code != control.ExitRefused || !strings.Contains(r.stderr, "outside the bench roots") || !strings.Contains(r.stderr, "(move it there or start the agent with --bench-root)") {
		t.Errorf("status %d, stderr %q; want refused, naming the agent's --bench-root", r.code, r.stderr)
	}
	mustNotExist(t, filepath.Join(a.outer, "x"))
	mustNotExist(t, filepath.Join(a.broot, "x"))
}

// TestAgentResolvesWhenRunning (item 6): fxmark queued behind a running
// bench has its --root swapped for a link out of the root while it waits;
// it must not run there.
func TestAgentResolvesWhenRunning(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping workload run in -short mode")
	}
	waiting := make(chan struct{}, 1)
	a := startPathsAgent(t, func(cfg *control.Config) {
		cfg.Queue = true
		mut := cfg.Mutating
		cfg.Mutating = func(args []string) bool {
			if len(args) > 1 && args[1] == "fxmark" {
				waiting <- struct{}{} // just before it waits for the running bench
			}
			return mut(args)
		}
	})
	fx := filepath.Join(a.broot, "fx")
	os.Mkdir(fx, 0o755)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := make(chan agentResult, 1)
	go func() {
		first <- remote(t, ctx, a.addr, "bench", "will-it-scale", "lock1", "-t", "1", "-s", "0", "-n", "1", "--no-affinity", "--tmpdir", a.broot)
	}()
	// The bench holds the mutating slot once its private temp directory
	// exists.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ents, _ := os.ReadDir(a.broot)
		if len(ents) > 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("will-it-scale made no temp directory in 2 minutes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	queued := make(chan agentResult, 1)
	go func() {
		queued <- remote(t, context.Background(), a.addr, "bench", "fxmark", "--type", "MWRL", "--ncore", "1", "--duration", "1", "-n", "1", "--no-affinity", "--root", fx)
	}()
	<-waiting
	if err := os.Rename(fx, fx+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(a.outer, fx); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-first
	r := <-queued
	if r.code != control.ExitRefused || !strings.Contains(r.stderr, "resolves to "+a.outer+", which is outside the bench roots") {
		t.Errorf("queued fxmark after the swap: status %d, stderr %q; want refused", r.code, r.stderr)
	}
	if ents, _ := os.ReadDir(a.outer); len(ents) != 0 {
		t.Errorf("fxmark ran outside the root: %d entries in %s", len(ents), a.outer)
	}
}

func TestAgentAllowGroup(t *testing.T) {
	gids, err := groupIDs([]string{"root", "54321"})
	if err != nil || len(gids) != 2 || gids[0] != 0 || gids[1] != 54321 {
		t.Fatalf("groupIDs = %v, %v", gids, err)
	}
	var out, errb strings.Builder
	code := Run(context.Background(), &Env{Stdout: &out, Stderr: &errb}, []string{"agent", "--allow-group", "no-such-group-xyz", "--listen", "unix://" + filepath.Join(t.TempDir(), "a.sock")})
	if code != 2 || !strings.Contains(errb.String(), `--allow-group "no-such-group-xyz"`) {
		t.Fatalf("unknown group: status %d, stderr %q", code, errb.String())
	}
}

// TestAgentReadOnlyRootsFixed: a sysfs or procfs root of the client's
// choosing would make the agent (root) read any file for it: a fake sysfs
// whose cpu/online is a link to a secret echoed the secret in the parse
// error. Over the agent these roots are the defaults only.
func TestAgentReadOnlyRootsFixed(t *testing.T) {
	a := startPathsAgent(t, nil)
	secret := filepath.Join(a.outer, "secret")
	os.WriteFile(secret, []byte("SECRET-3c0ffee\n"), 0o600)
	fake := filepath.Join(a.broot, "fakesys")
	for _, d := range []string{"devices/system/cpu", "devices/system/node"} {
		os.MkdirAll(filepath.Join(fake, d), 0o755)
	}
	for _, f := range []string{"devices/system/cpu/online", "devices/system/cpu/present", "devices/system/cpu/possible", "devices/system/node/online", "devices/system/node/possible"} {
		os.Symlink(secret, filepath.Join(fake, f))
	}
	for _, args := range [][]string{
		{"topology", "--root", fake},
		{"topology", "--root", fake, "--capture", filepath.Join(a.broot, "cap")},
		{"bench", "will-it-scale", "lock1", "-t", "1", "-s", "1", "--sysfs", fake},
		{"bench", "xdir", "prepare", "--dir", "d", "-n", "1", "--proc", fake},
		{"policy", "status", "--sys-root", fake},
		{"policy", "status", "--proc-root", fake},
		{"topology", "--sys-root", fake},
		{"bench", "will-it-scale", "lock1", "-t", "1", "-s", "1", "--sys-root", fake},
		{"bench", "xdir", "prepare", "--dir", "d", "-n", "1", "--proc-root", fake},
		{"lockstat", "--symbols", "--proc-root", fake},
		{"lockstat", "--contention", "--duration", "1", "--proc-root", fake},
	} {
		r := a.run(t, args...)
		if r.code != control.ExitRefused || strings.Contains(r.stdout+r.stderr, "SECRET") {
			t.Errorf("%q: status %d, stdout %q, stderr %q; want refused without the secret", args, r.code, r.stdout, r.stderr)
		}
	}
	if out, err := exec.Command("grep", "-rl", "SECRET", a.broot).Output(); err == nil {
		t.Errorf("the secret was copied under the bench root: %s", out)
	}
	// The defaults given explicitly are fine.
	if r := a.run(t, "topology", "--root", "/sys", "--json"); r.code != 0 {
		t.Errorf("topology --root /sys: status %d: %s", r.code, r.stderr)
	}
}
