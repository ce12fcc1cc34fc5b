package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/syncord/syncord/runtime/control"
)

var guestHelp = fmt.Sprintf(`
Run "syncord ARGS..." in the guest through its agent, stream the command's
stdout and stderr to this process's and exit with the command's status, so
shell loops can script sweeps:

  for t in 1 2 4; do
    syncord-host guest --serial /run/syncord/vm/agent.sock -- bench will-it-scale lock1 -t $t -s 5
  done

Exactly one transport:
  --serial PATH    the host unix socket of the guest's virtio-serial port %s
                   (QEMU: -chardev socket,id=agent,path=PATH,server=on,wait=off
                    -device virtserialport,chardev=agent,name=%s)
  --vsock CID:PORT the agent's vsock port (default port %d); inside a guest,
                   1:%d reaches its own agent over vsock_loopback
  --unix PATH      a unix socket the agent listens on (unix://PATH)

SIGINT (Ctrl-C) cancels the command in the guest: the agent stops the
workload and the command's own exit status is returned (or 130 when the agent
does not answer within the grace period). --timeout D cancels the same way
after D and exits with 124. Statuses the agent itself returns: 75 busy (a
mutating command runs already; retry or --queue), 77 refused (a path outside
the agent's roots), 2 malformed request.`,
	control.DefaultPortName, control.DefaultPortName, control.DefaultVsockPort, control.DefaultVsockPort)

func init() {
	register(&command{Name: "guest", Summary: "run a syncord command in the guest through its agent", Run: guestCmd})
}

func guestCmd(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "guest", "guest (--serial PATH | --vsock CID:PORT | --unix PATH) [--timeout D] [--queue] -- ARGS...", guestHelp)
	serial := fs.String("serial", "", "host unix socket `PATH` of the agent's virtio-serial port")
	vsockAddr := fs.String("vsock", "", "agent vsock address `CID:PORT`")
	unixPath := fs.String("unix", "", "agent unix socket `PATH`")
	timeout := fs.Duration("timeout", 0, "cancel the command after `D` and exit 124 (0: no limit)")
	queue := fs.Bool("queue", false, "wait for a running mutating command instead of failing busy")
	connect := fs.Duration("connect-timeout", 30*time.Second, "give up when the agent has not connected and acknowledged the request after `D`")
	if err := parse(fs, args); err != nil {
		return err
	}
	var addrs []string
	if *serial != "" {
		addrs = append(addrs, "serial://"+*serial)
	}
	if *vsockAddr != "" {
		if !strings.Contains(*vsockAddr, ":") {
			*vsockAddr = fmt.Sprintf("%s:%d", *vsockAddr, control.DefaultVsockPort)
		}
		addrs = append(addrs, "vsock://"+*vsockAddr)
	}
	if *unixPath != "" {
		addrs = append(addrs, "unix://"+*unixPath)
	}
	if len(addrs) != 1 {
		fmt.Fprintln(env.Stderr, "syncord-host guest: give exactly one of --serial, --vsock, --unix")
		return errUsage
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fmt.Fprintln(env.Stderr, "syncord-host guest: no command (usage: syncord-host guest --serial PATH -- topology)")
		return errUsage
	}
	dctx, dcancel := context.WithTimeout(ctx, *connect)
	c, err := control.Dial(dctx, addrs[0])
	dcancel()
	if err != nil {
		return fmt.Errorf("guest: %w", err)
	}
	defer c.Close()
	c.Queue = *queue
	c.AcceptTimeout = *connect
	rctx := ctx
	if *timeout > 0 {
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	code, err := c.Run(rctx, rest, env.Stdout, env.Stderr)
	if err != nil {
		timedOut := errors.Is(rctx.Err(), context.DeadlineExceeded)
		switch {
		case timedOut:
			return exitErr(control.ExitTimeout, fmt.Errorf("guest: %q cancelled after --timeout %v", strings.Join(rest, " "), *timeout))
		case errors.Is(err, control.ErrCanceled) && code >= 0:
			return exitErr(code, nil)
		case errors.Is(err, control.ErrCanceled):
			return exitErr(control.ExitCanceled, fmt.Errorf("guest: %w", err))
		}
		return fmt.Errorf("guest: %q: %w", strings.Join(rest, " "), err)
	}
	if code != 0 {
		return exitErr(code, nil)
	}
	return nil
}
