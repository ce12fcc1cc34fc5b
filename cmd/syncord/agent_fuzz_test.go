package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/syncord/syncord/runtime/control"
)

// FuzzAgentArgv sends mutated argv of real, quick commands through a real
// agent (agentConfig's child processes, on a unix socket) and requires,
// after every request, that the agent answered it with an exit frame and
// still answers a good request (issue 11 item 8: one request killed the
// agent). A request that crashes its child is a failure too: bad input
// must get a clear error, so the fuzzer reports the argv to fix.
//
// The mutations keep the command words (the corpus is bench, topology,
// lockstat --map and policy status: nothing that loads kernel code) and
// change flags and values: -5, 0, huge, overflowing, empty, unicode, paths
// inside and outside the temp root. Commands are bounded: the agent cuts a
// request at 3 s (SIGTERM, SIGKILL 1 s later), a child may use 512 MiB of
// private memory (RLIMIT_DATA), and everything runs under a temp root
// (the agent's roots, the child's working and temp directory) that is
// removed at the end. Flags that mount, load BPF programs or run other
// commands (--tmpfs, --contention, --while, --make-image) are left out.
//
// make check runs it for 60 s: go test -run '^$' -fuzz '^FuzzAgentArgv$'
// -fuzztime 60s ./cmd/syncord.
func FuzzAgentArgv(f *testing.F) {
	root := f.TempDir()
	for _, d := range []string{"x", "fx", "db"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			f.Fatal(err)
		}
	}
	sock := filepath.Join(root, "agent.sock")
	l, err := control.ListenUnix(sock)
	if err != nil {
		f.Fatal(err)
	}
	var logMu sync.Mutex
	var agentLog bytes.Buffer
	logf := func(format string, args ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		if agentLog.Len() < 1<<20 {
			fmt.Fprintf(&agentLog, format+"\n", args...)
		}
	}
	cfg := agentConfig(logf)
	cfg.Run = control.ExecRunner(control.ExecConfig{Dir: root, Env: []string{"TMPDIR=" + root}, KillGrace: time.Second, MaxData: 512 << 20, Logf: logf})
	cfg.Roots = &control.Roots{Policy: []string{root}, Bench: []string{root}, BPF: []string{root}}
	cfg.RequestTimeout = 3 * time.Second
	cfg.Queue = true
	srv := control.NewServer(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, l) }()
	f.Cleanup(func() {
		cancel()
		<-served
	})
	addr := "unix://" + sock

	seeds := fuzzSeeds(root)
	for i := range seeds {
		f.Add(uint8(i), uint8(0), uint8(0), "")
		f.Add(uint8(i), uint8(1), uint8(3), "-5")
		f.Add(uint8(i), uint8(2), uint8(2), "17592186044416")
		f.Add(uint8(i), uint8(3), uint8(4), "ü")
	}
	// Found by the fuzzer: a NUL byte cannot be passed to exec.
	f.Add(uint8(3), uint8(1), uint8(4), "\x00")
	f.Fuzz(func(t *testing.T, seed, op, pos uint8, val string) {
		args := mutateArgv(seeds[int(seed)%len(seeds)], op, pos, val, root)
		if args == nil {
			return
		}
		c, err := control.Dial(context.Background(), addr)
		if err != nil {
			t.Fatalf("agent gone before %q: %v", args, err)
		}
		defer c.Close()
		rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer rcancel()
		var o, e bytes.Buffer
		code, err := c.Run(rctx, args, &o, &e)
		if err != nil {
			t.Fatalf("%q: no exit status: %v (stderr %q)", args, err, e.String())
		}
		if code == control.ExitPanic || strings.Contains(e.String(), "goroutine ") && strings.Contains(e.String(), "[running]") {
			logMu.Lock()
			log := agentLog.String()
			logMu.Unlock()
			t.Fatalf("%q crashed its child: status %d, stderr %q\nagent log:\n%s", args, code, e.String(), log)
		}
		good, err := control.Dial(context.Background(), addr)
		if err != nil {
			t.Fatalf("agent gone after %q: %v", args, err)
		}
		defer good.Close()
		var go1 bytes.Buffer
		if code, err := good.Run(rctx, []string{"version"}, &go1, &bytes.Buffer{}); err != nil || code != 0 || !strings.HasPrefix(go1.String(), "syncord ") {
			t.Fatalf("after %q the agent did not answer a good request: %d %v %q", args, code, err, go1.String())
		}
	})
}

// fuzzSeed is a quick command; its first fixed words (the command and
// subcommand) are never mutated.
type fuzzSeed struct {
	fixed int
	argv  []string
}

func fuzzSeeds(root string) []fuzzSeed {
	return []fuzzSeed{
		{3, []string{"bench", "metis", "wrmem", "-p", "1", "-s", "1", "-n", "1", "-q"}},
		{3, []string{"bench", "metis", "wrmem", "-p", "1", "-s", "1", "-n", "1", "-r", "3", "-m", "4", "-l", "2"}},
		{3, []string{"bench", "leveldb", "readrandom", "--threads", "1", "--duration", "100ms", "--num", "50", "--value-size", "10", "-n", "1", "--db", filepath.Join(root, "db")}},
		{3, []string{"bench", "xdir", "prepare", "--dir", filepath.Join(root, "x"), "-n", "3"}},
		{3, []string{"bench", "xdir", "run", filepath.Join(root, "x", "src"), filepath.Join(root, "x", "dst_3_files"), filepath.Join(root, "x", "dst"), "1", "1", "1"}},
		{2, []string{"bench", "fxmark", "--type", "MWRL", "--ncore", "1", "--duration", "1", "-n", "1", "--no-affinity", "--root", filepath.Join(root, "fx")}},
		{2, []string{"bench", "will-it-scale", "--list"}},
		{2, []string{"bench", "will-it-scale", "getppid1", "-t", "1", "-s", "1", "-n", "1", "--no-affinity", "--tmpdir", root}},
		{1, []string{"topology", "--json"}},
		{1, []string{"lockstat", "--map", filepath.Join(root, "nomap")}},
		{2, []string{"policy", "status"}},
	}
}

// fuzzDenied are flags the fuzzer must not add: they mount, load BPF
// programs, run other commands or write images.
var fuzzDenied = []string{"tmpfs", "contention", "while", "make-image", "capture"}

// mutateArgv applies one mutation to a copy of argv behind its command
// words; nil means the result is not to be sent.
func mutateArgv(seed fuzzSeed, op, pos uint8, val, root string) []string {
	argv, fixed := seed.argv, seed.fixed
	tokens := []string{"-5", "0", "1", "-1", "2147483648", "9223372036854775807", "9223372036854775808", "-9223372036854775809",
		"17592186044416", "1e9", "0x10", "NaN", "", " ", "ü", "\x00", "--", "-h", "--json", "-q", "--no-affinity", "2G", "1ms", "-1s",
		filepath.Join(root, "x"), filepath.Join(root, "nope", "deeper"), "/etc", "../..", root + "/x/../../..", strings.Repeat("A", 300)}
	v := val
	if op&0x80 != 0 {
		v = tokens[int(pos)%len(tokens)]
	}
	out := append([]string(nil), argv...)
	rest := len(out) - fixed
	i := fixed
	if rest > 0 {
		i = fixed + int(pos)%rest
	}
	switch op & 0x7 {
	case 0: // as is
	case 1, 5: // replace a value or flag
		if rest > 0 {
			out[i] = v
		} else {
			out = append(out, v)
		}
	case 2: // insert
		out = append(out[:i], append([]string{v}, out[i:]...)...)
	case 3: // delete
		if rest > 0 {
			out = append(out[:i], out[i+1:]...)
		}
	case 4: // duplicate a flag and its value at the end
		if rest > 0 {
			out = append(out, out[i:min(i+2, len(out))]...)
		}
	case 6: // swap two
		if rest > 1 {
			j := fixed + (int(pos)/rest)%rest
			out[i], out[j] = out[j], out[i]
		}
	case 7: // the value of the next flag
		for j := i; j < len(out); j++ {
			if strings.HasPrefix(out[j], "-") && j+1 < len(out) {
				out[j+1] = v
				break
			}
		}
	}
	for _, a := range out[fixed:] {
		for _, d := range fuzzDenied {
			if strings.Contains(a, d) {
				return nil
			}
		}
	}
	return out
}
