package runtime

import (
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/syncord/syncord/bpf"
	"github.com/syncord/syncord/internal/pseudofs"
	"github.com/syncord/syncord/kernel"
	"github.com/syncord/syncord/kmod"
	"github.com/syncord/syncord/livepatch"
)

// Config says where things are. The zero value is a live system: bpffs at
// /sys/fs/bpf, /sys, /proc, state under /run/syncord. Tests point every root
// at private directories (a private bpffs, fixture trees).
type Config struct {
	// BPFFS is the bpffs directory pins go to (default /sys/fs/bpf).
	// Paths a livepatch module looks up under /sys/fs/bpf/ are checked
	// under this directory.
	BPFFS string
	// Roots are the procfs and sysfs mount points (an empty one means
	// /proc or /sys), checked once by pseudofs.NewRoots in cmd.
	Roots pseudofs.Roots
	// StateDir holds the install records (default /run/syncord).
	StateDir string
	// TransitionTimeout bounds the wait for a livepatch transition
	// (default 60s).
	TransitionTimeout time.Duration
	// Progress receives one line per step (no trailing newline); nil
	// drops them.
	Progress func(line string)
	// Modules inserts and removes kernel modules; nil means the real
	// system calls (package kmod).
	Modules ModuleLoader
}

// ModuleLoader inserts and removes kernel modules. kmod does it for real;
// tests on machines where no module may be inserted pass their own.
type ModuleLoader interface {
	Load(path, params string) error
	Unload(name string) error
}

type kmodLoader struct{}

func (kmodLoader) Load(path, params string) error { return kmod.Load(path, params) }
func (kmodLoader) Unload(name string) error       { return kmod.Unload(name) }

// Runtime installs, uninstalls and reports policies.
type Runtime struct {
	cfg     Config
	store   *store
	lp      *livepatch.FS
	procMod *kmod.Proc
	kfs     kernel.FS
	modules ModuleLoader

	// fault, when set by tests, is called after each step and may fail
	// it, to prove the rollback of everything before it.
	fault func(step string) error
}

// New returns a Runtime for cfg.
func New(cfg Config) *Runtime {
	if cfg.BPFFS == "" {
		cfg.BPFFS = bpf.DefaultBPFFS
	}
	if cfg.Roots.Sys == "" {
		cfg.Roots.Sys = pseudofs.DefaultSysMountPoint
	}
	if cfg.Roots.Proc == "" {
		cfg.Roots.Proc = pseudofs.DefaultProcMountPoint
	}
	if cfg.StateDir == "" {
		cfg.StateDir = DefaultStateDir
	}
	if cfg.TransitionTimeout <= 0 {
		cfg.TransitionTimeout = 60 * time.Second
	}
	if cfg.Modules == nil {
		cfg.Modules = kmodLoader{}
	}
	return &Runtime{
		cfg:     cfg,
		store:   &store{dir: cfg.StateDir},
		lp:      livepatch.New(cfg.Roots),
		procMod: kmod.NewProc(cfg.Roots.Proc),
		kfs:     kernel.NewFS(cfg.Roots),
		modules: cfg.Modules,
	}
}

// Config returns the configuration with defaults filled in.
func (r *Runtime) Config() Config { return r.cfg }

func (r *Runtime) progress(format string, args ...any) {
	if r.cfg.Progress != nil {
		r.cfg.Progress(fmt.Sprintf(format, args...))
	}
}

// CrashEnv names the environment variable of the crash test hook: when it
// holds a step name ("pin", "insmod"), the installing process kills itself
// with SIGKILL right after that step, as a crash or an OOM kill would. Only
// the e2e tests set it, inside a throwaway VM.
const CrashEnv = "SYNCORD_TEST_CRASH_AFTER"

// FailEnv names the environment variable of the failure test hook: when it
// holds a step name ("bpffs", "stats", "load", "pin", "insmod",
// "transition"), the install fails right after that step and rolls back
// everything before it, as a real failure there would. Only the e2e tests
// set it, to prove the rollback on a real kernel.
const FailEnv = "SYNCORD_TEST_FAIL_AFTER"

func (r *Runtime) step(name string) error {
	if os.Getenv(FailEnv) == name {
		return fmt.Errorf("install: test hook %s=%s: failing after step %s", FailEnv, name, name)
	}
	if os.Getenv(CrashEnv) == name {
		r.progress("test hook %s=%s: killing this process", CrashEnv, name)
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(time.Second) // the signal is delivered before this ends
	}
	if r.fault != nil {
		return r.fault(name)
	}
	return nil
}
