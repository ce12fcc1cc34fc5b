package experiment

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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

	"github.com/syncord/syncord/plot"
	"github.com/syncord/syncord/runtime/control"
	"github.com/syncord/syncord/vm"
	"github.com/syncord/syncord/vm/boot"
)

// guestPolicyRoot is where policy folders are put in the guest: the
// agent's default --policy-root.
const guestPolicyRoot = control.DefaultPolicyRoot

// Options configure Run. Out and Syncord are required.
type Options struct {
	// Out is the results dir.
	Out string
	// Syncord is the static syncord binary put in the guest;
	// SyncordHost, when set, is put there too.
	Syncord, SyncordHost string
	// HostSyncord runs "policy build --livepatch" on the host (default
	// Syncord).
	HostSyncord string
	// Cache is where kernels are unpacked (boot.DefaultCacheDir).
	Cache string
	// QEMU binary (vm.DefaultBinary).
	QEMU string
	// SysRoot is the host's sysfs, for pinning ("/sys").
	SysRoot string
	// Progress receives one line per point (nil: none).
	Progress io.Writer
	// Revision is the host binary's revision, for the manifest.
	Revision string
	// Figures, when false, skips drawing (tests of the run alone).
	NoFigures bool
}

// Layout of a results dir.
const (
	ManifestFile = "manifest.json"
	SpecFile     = "spec.toml"
	rawDir       = "raw"
	cellsDir     = "cells"
	FiguresDir   = "figures"
	runDir       = ".run"
)

// RawPath is where a run's stdout is kept (stderr beside it, .err).
func RawPath(out string, r Run) string {
	c := r.Cell
	return filepath.Join(out, rawDir, c.Kernel.Name, c.Policy, c.Bench.Name, fmt.Sprintf("n%d-r%d.out", r.Point, r.Rep))
}

// CSVPath is a cell's tidy CSV.
func CSVPath(out string, c *Cell) string { return filepath.Join(out, cellsDir, c.Key()+".csv") }

// runSample parses a run's raw output into its sample, or reports why it
// is not (yet) a finished run.
func runSample(out string, r Run) (*plot.Sample, error) {
	p := RawPath(out, r)
	ss, err := plot.ParseFile(p)
	if err != nil {
		return nil, err
	}
	if len(ss) != 1 || len(ss[0].Samples) != 1 {
		return nil, fmt.Errorf("%s: want one result, found %d", p, len(ss[0].Samples))
	}
	return &ss[0].Samples[0], nil
}

// Done reports whether the results dir out has run r complete.
func Done(out string, r Run) bool {
	_, err := runSample(out, r)
	return err == nil
}

// Run runs spec into o.Out, skipping every run already there, then writes
// the cells' CSVs, the manifest and the figures. A results dir holds one
// spec: another spec's dir is refused.
func RunSpec(ctx context.Context, s *Spec, o Options) (*Manifest, error) {
	if o.Out == "" || o.Syncord == "" {
		return nil, fmt.Errorf("experiment: no results dir or no guest syncord binary given")
	}
	if o.HostSyncord == "" {
		o.HostSyncord = o.Syncord
	}
	if o.SysRoot == "" {
		o.SysRoot = "/sys"
	}
	if o.Cache == "" {
		c, err := boot.DefaultCacheDir()
		if err != nil {
			return nil, err
		}
		o.Cache = c
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("experiment: results dir: %w", err)
	}
	m, err := openManifest(o.Out, s)
	if err != nil {
		return nil, err
	}
	if err := writeAtomic(filepath.Join(o.Out, SpecFile), []byte(s.Source)); err != nil {
		return nil, err
	}
	r := &runner{spec: s, o: o, m: m, started: time.Now()}
	for _, c := range s.Cells() {
		for _, run := range c.Runs() {
			r.total++
			if Done(o.Out, run) {
				r.done++
			}
		}
	}
	r.skipped = r.done
	sess := Session{Started: time.Now().UTC(), Host: hostInfo(o.QEMU), Revision: o.Revision}
	m.Sessions = append(m.Sessions, sess)
	si := len(m.Sessions) - 1
	r.logf("experiment %s: %d runs in %d cells, %d already done in %s", s.Name, r.total, len(s.Cells()), r.done, o.Out)
	var runErr error
	for _, k := range s.Kernels {
		if err := r.kernel(ctx, k); err != nil {
			runErr = err
			break
		}
	}
	if err := r.writeCells(); err != nil && runErr == nil {
		runErr = err
	}
	if !o.NoFigures {
		figs, err := DrawFigures(o.Out, s)
		m.Figures = figs
		if err != nil && runErr == nil {
			runErr = err
		}
	}
	m.Sessions[si].Ended = time.Now().UTC()
	m.Sessions[si].Runs = r.done - r.skipped
	if runErr != nil {
		m.Sessions[si].Error = runErr.Error()
	}
	m.Complete = r.done == r.total
	if m.Complete {
		// Nothing is left to boot or build: drop the run dirs, including
		// those a killed session left behind.
		os.RemoveAll(filepath.Join(o.Out, runDir))
	}
	if err := m.write(o.Out); err != nil && runErr == nil {
		runErr = err
	}
	if runErr == nil {
		r.logf("experiment %s: done, %d runs (%d this session) in %s; results in %s", s.Name, r.total, r.done-r.skipped, time.Since(r.started).Round(time.Second), o.Out)
	}
	return m, runErr
}

type runner struct {
	spec        *Spec
	o           Options
	m           *Manifest
	started     time.Time
	total, done int
	skipped     int
	// runTime sums the wall time of this session's runs, for the ETA.
	runTime time.Duration
	ran     int
}

func (r *runner) logf(format string, a ...any) {
	if r.o.Progress != nil {
		fmt.Fprintf(r.o.Progress, format+"\n", a...)
	}
}

// eta estimates the time left: this session's mean run time (or the
// plan's estimates before the first run) for every run left.
func (r *runner) eta() time.Duration {
	var left time.Duration
	for _, c := range r.spec.Cells() {
		for _, run := range c.Runs() {
			if Done(r.o.Out, run) {
				continue
			}
			if r.ran > 0 {
				left += r.runTime / time.Duration(r.ran)
			} else {
				left += run.Estimate()
			}
		}
	}
	return left
}

// kernel boots k (when a cell of it has runs left), runs its cells and
// stops the VM.
func (r *runner) kernel(ctx context.Context, k KernelSpec) error {
	var cells []*Cell
	todo := false
	for _, c := range r.spec.Cells() {
		if c.Kernel.Name != k.Name {
			continue
		}
		cells = append(cells, c)
		for _, run := range c.Runs() {
			todo = todo || !Done(r.o.Out, run)
		}
	}
	if !todo {
		r.logf("experiment: kernel %s: every run done, not booting it", k.Name)
		return nil
	}
	kern, err := resolveKernel(k, r.spec.Dir, r.o.Cache)
	if err != nil {
		return err
	}
	rec := r.m.kernel(k.Name)
	rec.Path, rec.Release, rec.Vmlinuz = k.Path, kern.Version, kern.Vmlinuz
	files, err := r.policyFiles(ctx, k, kern)
	if err != nil {
		return err
	}
	g, err := r.boot(ctx, k, kern, files, rec)
	for _, p := range k.Policies {
		// the built folders are in the initramfs now
		if d, ok := files[guestPolicyRoot+"/"+p]; ok && r.spec.Policy(p).Livepatch == "build" {
			os.RemoveAll(filepath.Dir(d))
		}
	}
	if err != nil {
		return err
	}
	defer g.stop()
	setup := map[string]bool{}
	for _, p := range k.Policies {
		var pcells []*Cell
		left := false
		for _, c := range cells {
			if c.Policy == p {
				pcells = append(pcells, c)
				for _, run := range c.Runs() {
					left = left || !Done(r.o.Out, run)
				}
			}
		}
		if !left {
			continue
		}
		if p != "none" {
			dir := ""
			if _, ok := files[guestPolicyRoot+"/"+p]; ok || r.spec.Policy(p).Livepatch != "none" {
				dir = guestPolicyRoot + "/" + p
			}
			args := r.spec.installArgs(p, dir)
			if err := g.must(ctx, filepath.Join(r.o.Out, rawDir, k.Name, p, "install"), args); err != nil {
				return fmt.Errorf("experiment: kernel %s: install policy %s: %w", k.Name, p, err)
			}
			r.logf("experiment: kernel %s: policy %s installed (syncord %s)", k.Name, p, strings.Join(args, " "))
		}
		var cellErr error
		for _, c := range pcells {
			if a := SetupArgs(c.Bench); a != nil && !setup[c.Bench.Name] {
				if err := g.must(ctx, filepath.Join(r.o.Out, rawDir, k.Name, "setup-"+c.Bench.Name), a); err != nil {
					cellErr = fmt.Errorf("experiment: kernel %s: set up %s: %w", k.Name, c.Bench.Name, err)
					break
				}
				setup[c.Bench.Name] = true
			}
			if cellErr = r.cell(ctx, g, c); cellErr != nil {
				break
			}
		}
		if p != "none" {
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
			err := g.must(uctx, filepath.Join(r.o.Out, rawDir, k.Name, p, "uninstall"), []string{"policy", "uninstall", p})
			cancel()
			if err != nil && cellErr == nil {
				cellErr = fmt.Errorf("experiment: kernel %s: uninstall policy %s: %w", k.Name, p, err)
			}
			if err == nil {
				r.logf("experiment: kernel %s: policy %s uninstalled", k.Name, p)
			}
		}
		if cellErr != nil {
			return cellErr
		}
	}
	return nil
}

// cell runs the cell's runs that are not done, writing each one's raw
// output as it completes.
func (r *runner) cell(ctx context.Context, g *guest, c *Cell) error {
	for _, run := range c.Runs() {
		if Done(r.o.Out, run) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		start := time.Now()
		args := run.Args()
		var stdout, stderr bytes.Buffer
		code, cmdTime, err := g.run(ctx, args, &stdout, &stderr)
		raw := RawPath(r.o.Out, run)
		if err := os.MkdirAll(filepath.Dir(raw), 0o755); err != nil {
			return err
		}
		// stderr first: the .out file's presence marks the run done.
		writeAtomic(strings.TrimSuffix(raw, ".out")+".err", stderr.Bytes())
		if err != nil {
			return fmt.Errorf("experiment: %s n=%d rep %d: syncord %s: %w", c.Key(), run.Point, run.Rep, strings.Join(args, " "), err)
		}
		if code != 0 {
			return fmt.Errorf("experiment: %s n=%d rep %d: syncord %s exited %d: %s", c.Key(), run.Point, run.Rep, strings.Join(args, " "), code, lastLines(stderr.String(), 5))
		}
		ss, perr := plot.Parse(raw, stdout.Bytes())
		if perr != nil {
			writeAtomic(strings.TrimSuffix(raw, ".out")+".unparsed", stdout.Bytes())
			return fmt.Errorf("experiment: %s n=%d rep %d: output not understood (kept in %s.unparsed): %w", c.Key(), run.Point, run.Rep, strings.TrimSuffix(raw, ".out"), perr)
		}
		if err := writeAtomic(raw, stdout.Bytes()); err != nil {
			return err
		}
		wall := time.Since(start)
		over := wall - cmdTime
		r.done++
		r.ran++
		r.runTime += wall
		r.m.addRun(RunRecord{Kernel: c.Kernel.Name, Policy: c.Policy, Benchmark: c.Bench.Name, Point: run.Point, Rep: run.Rep,
			Command: append([]string{"syncord"}, args...), Raw: rel(r.o.Out, raw), Started: start.UTC(),
			Seconds: wall.Seconds(), CommandSeconds: cmdTime.Seconds(), OverheadSeconds: over.Seconds()})
		if err := r.m.write(r.o.Out); err != nil {
			return err
		}
		v := ss[0].Samples[0].Values[plot.Total]
		r.logf("experiment: [%d/%d] %s %s %s n=%d rep %d/%d: %s %s in %.1fs (overhead %.2fs), ETA %s",
			r.done, r.total, c.Kernel.Name, c.Policy, c.Bench.Name, run.Point, run.Rep, c.Reps,
			strconv.FormatFloat(v, 'g', 6, 64), Unit(c.Bench.Driver), wall.Seconds(), over.Seconds(), r.eta().Round(time.Second))
	}
	return nil
}

// writeCells writes the tidy CSV of every complete cell.
func (r *runner) writeCells() error {
	for _, c := range r.spec.Cells() {
		rows, complete := cellRows(r.o.Out, c)
		if !complete {
			continue
		}
		var b bytes.Buffer
		if err := plot.WriteTidy(&b, rows); err != nil {
			return err
		}
		p := CSVPath(r.o.Out, c)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := writeAtomic(p, b.Bytes()); err != nil {
			return err
		}
		r.m.cellDone(c, rel(r.o.Out, p))
	}
	return nil
}

// cellRows reads the cell's raw outputs into tidy rows, and reports
// whether every run is there.
func cellRows(out string, c *Cell) ([]plot.TidyRow, bool) {
	var rows []plot.TidyRow
	complete := true
	for _, run := range c.Runs() {
		smp, err := runSample(out, run)
		if err != nil {
			complete = false
			continue
		}
		rows = append(rows, plot.TidyRow{Kernel: c.Kernel.Name, Policy: c.Policy, Benchmark: c.Bench.Name,
			Unit: Unit(c.Bench.Driver), Point: run.Point, Rep: run.Rep, Values: smp.Values})
	}
	return rows, complete
}

// DrawFigures draws one figure per benchmark (SVG and PNG) into
// out/figures from the runs present, one series per kernel and policy;
// xdir also gets its fairness figure. It returns the figures' paths
// relative to out.
func DrawFigures(out string, s *Spec) ([]string, error) {
	dir := filepath.Join(out, FiguresDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var figs []string
	for _, b := range s.Benchmarks {
		var series []*plot.Series
		for _, c := range s.Cells() {
			if c.Bench.Name != b.Name {
				continue
			}
			rows, _ := cellRows(out, c)
			if len(rows) == 0 {
				continue
			}
			var buf bytes.Buffer
			plot.WriteTidy(&buf, rows)
			ss, err := plot.Parse(c.Key()+".csv", buf.Bytes())
			if err != nil {
				return figs, err
			}
			series = append(series, ss...)
		}
		if len(series) == 0 {
			continue
		}
		metrics := []plot.Metric{plot.Total}
		if b.Driver == "xdir" {
			metrics = append(metrics, plot.Fairness)
		}
		for _, m := range metrics {
			name := b.Name
			title := fmt.Sprintf("%s: %s, %dx%d VM", s.Name, b.Name, s.VM.Sockets, s.VM.Cores)
			if m != plot.Total {
				name += "-" + string(m)
			}
			for _, ext := range []string{"svg", "png"} {
				p := filepath.Join(dir, name+"."+ext)
				if _, err := plot.WriteFile(p, series, plot.Options{Title: title, Metric: m}); err != nil {
					return figs, fmt.Errorf("experiment: figure %s: %w", p, err)
				}
				figs = append(figs, rel(out, p))
			}
		}
	}
	return figs, nil
}

// resolveKernel finds k's kernel: "kernels:BRANCH" in $SYNCORD_KERNELS
// or a shared/kernels folder above the spec's dir, relative paths from
// the spec's dir.
func resolveKernel(k KernelSpec, specDir, cache string) (*boot.Kernel, error) {
	path := k.Path
	if b, ok := strings.CutPrefix(path, "kernels:"); ok {
		d, err := KernelsDir(specDir)
		if err != nil {
			return nil, fmt.Errorf("experiment: kernel %s: %w", k.Name, err)
		}
		path = filepath.Join(d, b)
	} else if path != "debian" && !filepath.IsAbs(path) && specDir != "" {
		path = filepath.Join(specDir, path)
	}
	kern, err := boot.Resolve(path, cache)
	if err != nil {
		return nil, fmt.Errorf("experiment: kernel %s: %w", k.Name, err)
	}
	return kern, nil
}

// KernelsDir is the folder of the real SynCord kernels: $SYNCORD_KERNELS,
// or the first shared/kernels beside an ancestor of dir (the repository
// sits beside ../shared).
func KernelsDir(dir string) (string, error) {
	if d := os.Getenv("SYNCORD_KERNELS"); d != "" {
		return d, nil
	}
	if dir == "" {
		dir, _ = os.Getwd()
	}
	for d := dir; ; d = filepath.Dir(d) {
		if c := filepath.Join(d, "shared", "kernels"); isDir(c) {
			return c, nil
		}
		if d == filepath.Dir(d) {
			return "", fmt.Errorf("no shared/kernels folder above %s (set SYNCORD_KERNELS=DIR)", dir)
		}
	}
}

// policyFiles prepares the policies of k that need files in the guest
// and returns the initramfs files (guest path -> host path).
func (r *runner) policyFiles(ctx context.Context, k KernelSpec, kern *boot.Kernel) (map[string]string, error) {
	files := map[string]string{}
	for _, p := range k.Policies {
		if p == "none" {
			continue
		}
		ps := r.spec.Policy(p)
		var dir string
		switch ps.Livepatch {
		case "none":
			continue
		case "build":
			if kern.HeadersDir == "" {
				return nil, fmt.Errorf("experiment: kernel %s: policy %s needs its livepatch built against the kernel's headers, and %s came without them (give the folder with its linux-headers .deb, or set livepatch = \"none\" or a built folder in [policy.%s])", k.Name, p, k.Path, p)
			}
			// A dir of this session's own: a build left running by a
			// killed run cannot mix into it.
			base := filepath.Join(r.o.Out, runDir, "policies")
			if err := os.MkdirAll(base, 0o755); err != nil {
				return nil, err
			}
			d, err := os.MkdirTemp(base, k.Name+"-")
			if err != nil {
				return nil, err
			}
			dir = d
			cmd := exec.CommandContext(ctx, r.o.HostSyncord, "policy", "build", p, "--livepatch", "--kdir", kern.HeadersDir, "--out", dir)
			// The build dies with us (SIGKILL included).
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			out, err := cmd.CombinedOutput()
			if err != nil {
				return nil, fmt.Errorf("experiment: kernel %s: %s: %w\n%s(this needs syncord policy build --livepatch --kdir; or set livepatch = \"none\" or a built folder in [policy.%s])", k.Name, strings.Join(cmd.Args, " "), err, out, p)
			}
			r.m.kernel(k.Name).Commands = append(r.m.kernel(k.Name).Commands, cmd.Args)
			dir = filepath.Join(dir, p)
		default:
			dir = ps.Livepatch
			if !filepath.IsAbs(dir) && r.spec.Dir != "" {
				dir = filepath.Join(r.spec.Dir, dir)
			}
		}
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() {
				relp, _ := filepath.Rel(dir, path)
				files[guestPolicyRoot+"/"+p+"/"+filepath.ToSlash(relp)] = path
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("experiment: policy %s folder: %w", p, err)
		}
		files[guestPolicyRoot+"/"+p] = dir
	}
	return files, nil
}

// guest is a booted VM and its agent.
type guest struct {
	proc   *vm.Process
	serial string
	cfg    vm.Config
}

// stop stops QEMU and removes its run dir (initramfs, sockets).
func (g *guest) stop() {
	g.proc.Stop(vm.StopGrace)
	os.RemoveAll(g.cfg.RunDir)
}

// run runs a syncord command through the agent; it returns the exit
// status and the command's own time (accepted to exit frame).
func (g *guest) run(ctx context.Context, args []string, stdout, stderr io.Writer) (int, time.Duration, error) {
	return g.runWait(ctx, args, stdout, stderr, 30*time.Second)
}

// runWait is run giving up when the agent has not accepted the request
// after accept.
func (g *guest) runWait(ctx context.Context, args []string, stdout, stderr io.Writer, accept time.Duration) (int, time.Duration, error) {
	dctx, cancel := context.WithTimeout(ctx, accept)
	c, err := control.Dial(dctx, "serial://"+g.serial)
	cancel()
	if err != nil {
		return -1, 0, err
	}
	defer c.Close()
	c.Queue = true
	c.AcceptTimeout = accept
	code, err := c.Run(ctx, args, stdout, stderr)
	var d time.Duration
	if !c.Accepted.IsZero() && !c.Exited.IsZero() {
		d = c.Exited.Sub(c.Accepted)
	}
	return code, d, err
}

// must runs a command and keeps its output at base.out/.err.
func (g *guest) must(ctx context.Context, base string, args []string) error {
	var o, e bytes.Buffer
	code, _, err := g.run(ctx, args, &o, &e)
	os.MkdirAll(filepath.Dir(base), 0o755)
	writeAtomic(base+".out", o.Bytes())
	writeAtomic(base+".err", e.Bytes())
	if err != nil {
		return fmt.Errorf("syncord %s: %w", strings.Join(args, " "), err)
	}
	if code != 0 {
		return fmt.Errorf("syncord %s exited %d: %s", strings.Join(args, " "), code, lastLines(e.String()+o.String(), 5))
	}
	return nil
}

// boot builds the initramfs, starts the VM with the vm package, waits for
// the agent, pins the vCPUs and records the guest in the manifest.
func (r *runner) boot(ctx context.Context, k KernelSpec, kern *boot.Kernel, files map[string]string, rec *KernelRecord) (*guest, error) {
	v := r.spec.VM
	// A run dir of this boot's own for the sockets and the initramfs: a
	// QEMU left by a killed run (it gets SIGTERM when we die) may still
	// be shutting down in its own.
	base := filepath.Join(r.o.Out, runDir)
	if len(base)+len(k.Name)+24 > 100 { // unix socket paths are at most 107 bytes
		base = ""
	} else if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, err
	}
	rd, err := os.MkdirTemp(base, k.Name+"-")
	if err != nil {
		return nil, err
	}
	initrd := filepath.Join(rd, "initramfs.cpio")
	ifiles := map[string]string{}
	for g, h := range files {
		if fi, err := os.Stat(h); err == nil && fi.Mode().IsRegular() {
			ifiles[g] = h
		}
	}
	ir := boot.Initramfs{Kernel: kern, Init: boot.AgentInit, Files: ifiles, Syncord: r.o.Syncord, SyncordHost: r.o.SyncordHost}
	if err := ir.Build(initrd); err != nil {
		os.RemoveAll(rd)
		return nil, fmt.Errorf("experiment: kernel %s: %w", k.Name, err)
	}
	logs := filepath.Join(r.o.Out, rawDir, k.Name)
	if err := os.MkdirAll(logs, 0o755); err != nil {
		os.RemoveAll(rd)
		return nil, err
	}
	cfg := vm.Config{Binary: r.o.QEMU, Sockets: v.Sockets, Cores: v.Cores, MemPerNodeMB: v.MemPerNode,
		Kernel: kern.Vmlinuz, Initrd: initrd, Append: vm.DefaultAppend + " rdinit=/init loglevel=4" + tcgAppend(v.KVM),
		QMP: filepath.Join(rd, "qmp.sock"), SerialPath: filepath.Join(rd, "agent.sock"),
		ConsoleLog: filepath.Join(logs, "console.log"), RunDir: rd}
	if v.KVM {
		cfg.Accel = "kvm"
	}
	start := time.Now()
	p, err := vm.Start(cfg, nil, io.Discard, io.Discard)
	if err != nil {
		os.RemoveAll(rd)
		return nil, fmt.Errorf("experiment: kernel %s: %w", k.Name, err)
	}
	g := &guest{proc: p, serial: p.Config.SerialPath, cfg: p.Config}
	rec.QEMU = cfg.Command()
	rec.Boots++
	ok := false
	defer func() {
		if !ok {
			g.stop()
		}
	}()
	r.logf("experiment: kernel %s (%s): booting a %dx%d VM, QEMU pid %d", k.Name, kern.Version, v.Sockets, v.Cores, p.PID())
	deadline := time.Now().Add(time.Duration(v.BootTimeout) * time.Second)
	var ver bytes.Buffer
	for {
		ver.Reset()
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		code, _, err := g.runQuick(cctx, []string{"version"}, &ver)
		cancel()
		if err == nil && code == 0 {
			break
		}
		select {
		case <-p.Done():
			return nil, fmt.Errorf("experiment: kernel %s: QEMU exited before the agent answered; console %s:\n%s", k.Name, cfg.ConsoleLog, tail(cfg.ConsoleLog, 20))
		case <-ctx.Done():
			return nil, ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("experiment: kernel %s: no agent after %ds (last: %v); console %s:\n%s", k.Name, v.BootTimeout, err, cfg.ConsoleLog, tail(cfg.ConsoleLog, 20))
		}
		time.Sleep(200 * time.Millisecond)
	}
	rec.BootSeconds = time.Since(start).Seconds()
	rec.GuestVersion = strings.TrimSpace(ver.String())
	if v.Pin != "none" {
		note, err := pin(ctx, p, v.Pin, r.o.SysRoot)
		if err != nil {
			return nil, fmt.Errorf("experiment: kernel %s: pin vCPUs: %w", k.Name, err)
		}
		rec.Pin = note
	}
	var top bytes.Buffer
	if code, _, err := g.run(ctx, []string{"topology", "--json"}, &top, io.Discard); err == nil && code == 0 {
		rec.Topology = json.RawMessage(bytes.TrimSpace(top.Bytes()))
		writeAtomic(filepath.Join(logs, "topology.json"), top.Bytes())
	}
	r.logf("experiment: kernel %s: agent up in %.1fs (%s), vCPUs pinned: %s", k.Name, rec.BootSeconds, rec.GuestVersion, rec.Pin)
	ok = true
	return g, nil
}

// tcgAppend is the kernel command line a TCG guest needs: no_timer_check,
// since on a loaded host the timer IRQ can come too late for check_timer
// and 5.4 kernels then panic with "IO-APIC + timer doesn't work!" (seen
// on stock-syncord here; the e2e harness boots with it too).
func tcgAppend(kvm bool) string {
	if kvm {
		return ""
	}
	return " no_timer_check"
}

// runQuick probes the agent: a guest still booting has not opened its
// port, so the request is not accepted within 2 s.
func (g *guest) runQuick(ctx context.Context, args []string, stdout io.Writer) (int, time.Duration, error) {
	return g.runWait(ctx, args, stdout, io.Discard, 2*time.Second)
}

// pin pins QEMU's vCPU threads with the plan kind, oversubscribing (and
// saying so) when the host has fewer CPUs than the guest.
func pin(ctx context.Context, p *vm.Process, kind, sysRoot string) (string, error) {
	qctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	c, err := p.WaitQMP(qctx)
	if err != nil {
		return "", err
	}
	defer c.Close()
	cpus, err := c.QueryCPUsFast(qctx)
	if err != nil {
		return "", err
	}
	host, err := vm.ReadHostTopology(sysRoot)
	if err != nil {
		return "", err
	}
	over := host.CPUs().Len() < len(cpus) || kind == "identity" && len(cpus) > runtime.NumCPU()
	plan, err := vm.NewPlan(cpus, host, vm.PlanOptions{Kind: vm.PlanKind(kind), AllowOversubscribe: over})
	if err != nil {
		return "", err
	}
	if _, err := vm.Apply(plan, vm.ApplyOptions{PID: p.PID()}); err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s plan, %d vCPUs", plan.Kind, len(plan.Assignments))
	for _, a := range plan.Assignments {
		fmt.Fprintf(&b, " %d->%d", a.VCPU, a.HostCPU)
	}
	for _, n := range plan.Notes {
		b.WriteString("; " + n)
	}
	return b.String(), nil
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	return lastLines(string(b), n)
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// writeAtomic writes a file through a temporary one and a rename, so a
// killed run never leaves a half-written result.
func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("experiment: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("experiment: write %s: %w", path, err)
	}
	return nil
}

func rel(base, p string) string {
	if r, err := filepath.Rel(base, p); err == nil {
		return r
	}
	return p
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

var errOtherSpec = errors.New("results dir holds another spec")
