package main

// Artifact mode (-artifact): the syncord binary against the artifact's
// own C, each run as a command exactly as a user runs it, in alternating
// pairs.
//
//   - will-it-scale: the artifact's benchmarks/will-it-scale built with its
//     own Makefile (-O2 -g -pg, threads build), run as
//     ./build/<t>_threads -t N -s S -n CPS, against
//     syncord bench will-it-scale <t> -t N -s S -n CPS; ops/s is the
//     "average:" line's total of each.
//   - MWRL: the artifact's fxmark (its Makefile's -O3 flags) run as
//     fxmark --type MWRL --ncore N --duration S --root R, against
//     syncord bench fxmark --type MWRL --ncore N --duration S --root R -n CPS;
//     ops/s is the report's works/sec.
//
// The artifact's sources are copied into a temp directory (git archive
// when -artifact is a git directory, such as a mirror of rs3lab/SynCord)
// and built there; nothing is written next to them.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// artifact holds the built binaries.
type artifact struct {
	wis     string // will-it-scale directory (build/<t>_threads inside)
	fxmark  string // fxmark binary
	syncord string // syncord binary
	tmp     string // run directory (gmon.out of the -pg builds lands here)
}

// fxmarkSources are the files of the artifact's fxmark build (its Makefile's
// LIBS and TC; the binary is src/fxmark.c).
var fxmarkSources = []string{"fxmark.c", "bench.c", "util.c",
	"MWCM.c", "MWCL.c", "DWAL.c", "DWOL.c", "DWSL.c", "MWRM.c", "DWOM.c", "MWRL.c",
	"DRBL.c", "DRBM.c", "DRBH.c", "MRDL.c", "MRDM.c", "MRPM.c", "MRDL_bg.c", "DRBL_bg.c",
	"DRBH_bg.c", "MRDM_bg.c", "DRBM_bg.c", "MRPM_bg.c", "MWUM.c", "MWUL.c", "DWTL.c",
	"MRPH.c", "MRPL.c"}

// buildArtifact copies the artifact's will-it-scale and fxmark sources
// from src (a checkout or a git directory) into tmp and builds the tests
// named (will-it-scale's threads builds; MWRL builds fxmark), and builds
// syncord from this module unless syncordBin is set.
func buildArtifact(ctx context.Context, src, tmp string, tests []string, cps int, syncordBin string) (*artifact, error) {
	a := &artifact{wis: filepath.Join(tmp, "will-it-scale"), tmp: tmp}
	dirs := []string{"benchmarks/will-it-scale", "benchmarks/fxmark/src"}
	if isGitDir(src) {
		// A mirror may lack blobs the build does not need (fxmark's bin/
		// workloads), so only these two trees are archived.
		for _, d := range dirs {
			arch := exec.CommandContext(ctx, "git", "-C", src, "archive", "HEAD", d)
			untar := exec.Command("tar", "-x", "-C", tmp)
			var err error
			if untar.Stdin, err = arch.StdoutPipe(); err != nil {
				return nil, err
			}
			var aerr bytes.Buffer
			arch.Stderr = &aerr
			if err := untar.Start(); err != nil {
				return nil, err
			}
			if err := arch.Run(); err != nil {
				untar.Wait()
				return nil, fmt.Errorf("git archive %s from %s: %v: %s", d, src, err, strings.TrimSpace(aerr.String()))
			}
			if err := untar.Wait(); err != nil {
				return nil, fmt.Errorf("untar %s: %w", d, err)
			}
		}
	} else {
		for _, d := range dirs {
			dst := filepath.Join(tmp, d)
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return nil, err
			}
			if out, err := exec.Command("cp", "-r", filepath.Join(src, d), dst).CombinedOutput(); err != nil {
				return nil, fmt.Errorf("copy %s: %v: %s (is -artifact a SynCord checkout?)", d, err, out)
			}
		}
	}
	if err := os.Rename(filepath.Join(tmp, "benchmarks/will-it-scale"), a.wis); err != nil {
		return nil, err
	}
	for _, t := range tests {
		if t == "MWRL" {
			continue
		}
		// The artifact's Makefile, its flags untouched.
		mk := exec.CommandContext(ctx, "make", "wl="+t, "build_dir", t+"_threads")
		mk.Dir = a.wis
		if out, err := mk.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("make %s_threads in the artifact's will-it-scale: %v\n%s", t, err, out)
		}
	}
	if contains(tests, "MWRL") {
		fx := filepath.Join(tmp, "benchmarks/fxmark/src")
		// The artifact generates cpupol.h from /proc/cpuinfo with python2
		// scripts; MWRL reads only CORE_PER_CHIP (placement and fast/slow)
		// and seq_cores (worker ids), written here for this machine.
		seq := make([]string, runtime.NumCPU())
		for i := range seq {
			seq[i] = strconv.Itoa(i)
		}
		pol := fmt.Sprintf("const unsigned int PHYSICAL_CHIPS = 1;\nconst unsigned int CORE_PER_CHIP = %d;\n"+
			"const unsigned int SMT_LEVEL = 1;\nconst unsigned int CACHE_PER_CORE = 0;\n"+
			"const unsigned int seq_cores[] = {%s};\nconst unsigned int rr_cores[] = {%[2]s};\n", cps, strings.Join(seq, ", "))
		if err := os.WriteFile(filepath.Join(fx, "cpupol.h"), []byte(pol), 0o644); err != nil {
			return nil, err
		}
		a.fxmark = filepath.Join(tmp, "fxmark")
		// The Makefile's rule: $(CC) $< $(CFLAGS) -o $@ $(LIBS) $(TC).
		args := []string{"fxmark.c", "-Wall", "-g", "-O3", "-D_GNU_SOURCE", "-o", a.fxmark}
		args = append(args, fxmarkSources[1:]...)
		cc := exec.CommandContext(ctx, "gcc", args...)
		cc.Dir = fx
		if out, err := cc.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build the artifact's fxmark: %v\n%s", err, out)
		}
	}
	a.syncord = syncordBin
	if a.syncord == "" {
		a.syncord = filepath.Join(tmp, "syncord")
		_, file, _, _ := runtime.Caller(0)
		gb := exec.CommandContext(ctx, "go", "build", "-o", a.syncord, "./cmd/syncord")
		gb.Dir = filepath.Join(filepath.Dir(file), "..", "..")
		if out, err := gb.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build ./cmd/syncord: %v\n%s", err, out)
		}
	}
	return a, nil
}

func isGitDir(p string) bool {
	out, err := exec.Command("git", "-C", p, "rev-parse", "--is-bare-repository").Output()
	return err == nil && strings.TrimSpace(string(out)) == "true"
}

func contains(v []string, s string) bool {
	for _, x := range v {
		if x == s {
			return true
		}
	}
	return false
}

// command runs name with args in dir and returns its stdout lines, the
// time each was read, the CPU seconds (user+system) of the process and
// its threads, and the seconds it ran. stdout is a terminal when one can be had (as when a
// user runs it: C's stdio writes each line as it is printed), else a pipe.
func command(ctx context.Context, dir, name string, args ...string) ([]string, []time.Time, float64, float64, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	var r io.ReadCloser
	if m, s, err := openPTY(); err == nil {
		cmd.Stdout = s
		defer s.Close()
		r = m
	} else {
		p, err := cmd.StdoutPipe()
		if err != nil {
			return nil, nil, 0, 0, err
		}
		r = p
	}
	defer r.Close()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, nil, 0, 0, err
	}
	if f, ok := cmd.Stdout.(*os.File); ok {
		f.Close() // the child has it; EOF (EIO on a terminal) when it exits
	}
	var lines []string
	var stamps []time.Time
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		lines = append(lines, strings.TrimRight(sc.Text(), "\r"))
		stamps = append(stamps, time.Now())
	}
	if err := cmd.Wait(); err != nil {
		return nil, nil, 0, 0, fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	return lines, stamps, cpu, time.Since(start).Seconds(), nil
}

// openPTY opens a pseudo-terminal pair (master, slave).
func openPTY() (*os.File, *os.File, error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	fd := int(m.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		return nil, nil, err
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	// No echo, no output translation: the child's lines as written.
	if t, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS); err == nil {
		t.Lflag &^= unix.ECHO
		t.Oflag &^= unix.OPOST
		unix.IoctlSetTermios(int(s.Fd()), unix.TCSETS, t)
	}
	return m, s, nil
}

// wisOps parses will-it-scale's output: the average line's total; the
// operations of every sample (warmup included), for ops per CPU-second;
// and the measured samples' operations over the time between the reads of
// the sample line before "measurement" and of the last one (0 when the
// lines came all at once, as from a buffered pipe).
func wisOps(lines []string, stamps []time.Time) (avg, all, timed float64, err error) {
	var t0 time.Time
	var sum float64
	measuring := false
	lastSample := -1
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "min:"):
			for _, f := range strings.Fields(l) {
				if v, ok := strings.CutPrefix(f, "total:"); ok {
					n, err := strconv.ParseFloat(v, 64)
					if err != nil {
						return 0, 0, 0, fmt.Errorf("sample line %q: %v", l, err)
					}
					all += n
					if measuring {
						sum += n
					}
				}
			}
			lastSample = i
		case l == "measurement" && lastSample >= 0:
			measuring, t0 = true, stamps[lastSample]
		case strings.HasPrefix(l, "average:"):
			f := strings.Split(l, ":")
			if avg, err = strconv.ParseFloat(f[1], 64); err != nil {
				return 0, 0, 0, fmt.Errorf("average line %q: %v", l, err)
			}
			if d := stamps[lastSample].Sub(t0).Seconds(); measuring && d > 0.5 {
				timed = sum / d
			}
			return avg, all, timed, nil
		}
	}
	return 0, 0, 0, fmt.Errorf("no average line in %q", strings.Join(lines, "\n"))
}

// fxOps parses fxmark's report line: works and works/sec.
func fxOps(lines []string) (perSec, works float64, err error) {
	for i, l := range lines {
		if !strings.HasPrefix(l, "# ncpu secs works") || i+1 >= len(lines) {
			continue
		}
		f := strings.Fields(lines[i+1])
		if len(f) < 4 {
			break
		}
		if works, err = strconv.ParseFloat(f[2], 64); err == nil {
			perSec, err = strconv.ParseFloat(f[3], 64)
		}
		return perSec, works, err
	}
	return 0, 0, fmt.Errorf("no fxmark report in %q", strings.Join(lines, "\n"))
}

// run runs one side (goSide: syncord) of test with n tasks.
func (a *artifact) run(ctx context.Context, goSide bool, test string, n, secs, cps int, shm string) (result, error) {
	ns, ss, cs := strconv.Itoa(n), strconv.Itoa(secs), strconv.Itoa(cps)
	if test == "MWRL" {
		root, err := os.MkdirTemp(shm, "cmpref-mwrl.")
		if err != nil {
			return result{}, err
		}
		defer os.RemoveAll(root)
		var out []string
		var cpu, ran float64
		if goSide {
			out, _, cpu, ran, err = command(ctx, a.tmp, a.syncord, "bench", "fxmark", "--type", "MWRL", "--ncore", ns, "--duration", ss, "--root", root, "-n", cs)
		} else {
			out, _, cpu, ran, err = command(ctx, a.tmp, a.fxmark, "--type", "MWRL", "--ncore", ns, "--duration", ss, "--root", root)
		}
		if err != nil {
			return result{}, err
		}
		ps, works, err := fxOps(out)
		// fxmark times its own run: works/sec is wall time already.
		return result{wall: ps, cpu: works / cpu, timed: ps, share: cpu / ran}, err
	}
	var out []string
	var stamps []time.Time
	var cpu, ran float64
	var err error
	if goSide {
		out, stamps, cpu, ran, err = command(ctx, a.tmp, a.syncord, "bench", "will-it-scale", test, "-t", ns, "-s", ss, "-n", cs)
	} else {
		out, stamps, cpu, ran, err = command(ctx, a.tmp, filepath.Join(a.wis, "build", test+"_threads"), "-t", ns, "-s", ss, "-n", cs)
	}
	if err != nil {
		return result{}, err
	}
	avg, all, timed, err := wisOps(out, stamps)
	return result{wall: avg, cpu: all / cpu, timed: timed, share: cpu / ran}, err
}
