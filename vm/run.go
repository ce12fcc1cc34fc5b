package vm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"time"
)

// StopGrace is how long Run waits after SIGTERM before it kills QEMU.
const StopGrace = 10 * time.Second

// Process is a running QEMU started by Start.
type Process struct {
	Config Config // with defaults applied
	cmd    *exec.Cmd
	done   chan struct{}
	err    error
	// stopped is set when Stop signalled QEMU: its death by that signal
	// is then not an error.
	stopped atomic.Bool
}

// PID is the QEMU process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Start validates cfg, removes stale sockets at its QMP and serial paths
// (refusing when something still listens there) and starts QEMU with the
// given stdio (nil means /dev/null). The caller must Stop or Wait; the
// sockets are removed when QEMU exits.
func Start(cfg Config, stdin io.Reader, stdout, stderr io.Writer) (*Process, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := cfg.WithDefaults()
	if network, addr, _ := ParseMonitorAddr(d.QMP); network == "unix" {
		if err := clearStaleSocket(addr); err != nil {
			return nil, err
		}
	}
	if err := clearStaleSocket(d.SerialPath); err != nil {
		return nil, err
	}
	cmd := exec.Command(d.Binary, cfg.Args()...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	// QEMU gets SIGTERM when its parent dies, so a killed syncord-host
	// leaves no VM behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if stdin == nil {
		// Its own process group: a terminal's ^C reaches the caller, which
		// stops QEMU through Wait or Stop. With stdin (a console on stdio)
		// QEMU stays in the caller's group so it may read the terminal.
		cmd.SysProcAttr.Setpgid = true
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w (install qemu-system-x86)", d.Binary, err)
	}
	p := &Process{Config: d, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		p.removeSockets()
		close(p.done)
	}()
	return p, nil
}

// Done is closed when QEMU has exited and its sockets are removed.
func (p *Process) Done() <-chan struct{} { return p.done }

// Wait waits for QEMU to exit; when ctx ends first it stops QEMU (SIGTERM,
// then SIGKILL after StopGrace). It returns QEMU's exit error, nil for a
// clean exit or for a stop it asked for.
func (p *Process) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.exitErr()
	case <-ctx.Done():
		return p.Stop(StopGrace)
	}
}

// Stop sends QEMU SIGTERM (QEMU shuts the guest down at once), kills it
// after grace, and waits for it to exit.
func (p *Process) Stop(grace time.Duration) error {
	select {
	case <-p.done:
		return p.exitErr()
	default:
	}
	p.stopped.Store(true)
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	p.cmd.Process.Kill()
	<-p.done
	return nil
}

// Signal forwards sig to QEMU.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

func (p *Process) exitErr() error {
	if p.err != nil && !p.stopped.Load() {
		return fmt.Errorf("qemu (pid %d): %w", p.cmd.Process.Pid, p.err)
	}
	return nil
}

// WaitQMP dials the monitor until it answers or ctx ends; QEMU creates the
// socket a moment after it starts.
func (p *Process) WaitQMP(ctx context.Context) (*QMPClient, error) {
	for {
		c, err := DialQMP(ctx, p.Config.QMP)
		if err == nil {
			return c, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("qemu exited before its monitor answered: %w", p.exitErr())
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for qmp %s: %w (last: %w)", p.Config.QMP, ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (p *Process) removeSockets() {
	if network, addr, _ := ParseMonitorAddr(p.Config.QMP); network == "unix" {
		removeSocket(addr)
	}
	removeSocket(p.Config.SerialPath)
}

// removeSocket removes path if it is a unix socket (never anything else).
func removeSocket(path string) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(path)
	}
}

// clearStaleSocket removes a socket left by a QEMU that died, and refuses a
// path that something listens on or that is not a socket.
func clearStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check socket %s: %w", path, err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("socket path %s exists and is not a socket (choose another path)", path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("socket %s is in use (another VM running? stop it or choose another path)", path)
	}
	return os.Remove(path)
}
