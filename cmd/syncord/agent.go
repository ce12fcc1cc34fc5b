package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/syncord/syncord/internal/cli"
	"github.com/syncord/syncord/runtime/control"
)

var agentHelp = fmt.Sprintf(`
Serve the SynCord control protocol: a client (syncord-host guest) sends the
arguments of a syncord command, the agent runs it through the same code as
the command line and streams its stdout, stderr and exit status back.

Listen addresses (--listen, comma-separated):
  virtio-serial://NAME  the virtio-serial port NAME (default port name %s),
                        found through /sys/class/virtio-ports/*/name; reopened
                        when the host side closes
  vsock://:PORT         vsock port PORT (default port %d) on every local CID;
                        only the host (CID 2) may connect unless --allow-cid
  unix:///PATH          a unix socket, mode 0600 (0660 and the group of the
                        first --allow-group); whatever the mode, only root,
                        the agent's user and members of --allow-group may
                        use it (the peer's credentials, SO_PEERCRED)

Mutating commands (policy install/uninstall/reconcile/build, bench) run one
at a time: another is refused with "busy: ..." (exit status 75) unless --queue
or the client asks to wait; read-only ones (topology, lockstat, policy status
and list) run concurrently. A client that disconnects or cancels stops its
command (on a serial port: a client silent for --keepalive-timeout). Path arguments must lie under --policy-root, --bench-root or
--bpf-root (exit status 77 otherwise); the agent command itself is refused.
Paths are resolved when a request starts running (after it waited for the
running command), symbolic links and ".." as the kernel resolves them; the
command uses the resolved path. A relative path, "-" included, lies under
the first root of its kind, never in the agent's working directory; so do
defaults that would lie there or in /tmp (policy build --out, bench --tmpdir,
leveldb --db). A built-in policy name wins over a directory of that name
(policy install ./NAME for the directory).

QEMU side of the default port:
  -device virtio-serial-pci
  -chardev socket,id=agent,path=HOST.sock,server=on,wait=off
  -device virtserialport,chardev=agent,name=%s
then on the host: syncord-host guest --serial HOST.sock -- topology`,
	control.DefaultPortName, control.DefaultVsockPort, control.DefaultPortName)

func init() {
	register(cli.Command{Name: "agent", Summary: "serve syncord commands over virtio-serial, vsock or a unix socket", Mutating: false,
		Run: agentCmd})
}

// listFlag is a comma-separated, repeatable list flag.
type listFlag struct {
	vals []string
	set  bool
}

func (l *listFlag) String() string { return strings.Join(l.vals, ",") }
func (l *listFlag) Set(s string) error {
	if !l.set {
		l.vals, l.set = nil, true
	}
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			l.vals = append(l.vals, v)
		}
	}
	return nil
}

func agentCmd(ctx context.Context, env *Env, args []string) error {
	if env.Remote {
		return exitErr(control.ExitRefused, errors.New("agent: refused over the control connection"))
	}
	fs := newFlags(env, "agent", "agent [--listen URL[,URL...]] [flags]", agentHelp)
	listen := &listFlag{vals: []string{"virtio-serial://" + control.DefaultPortName}}
	fs.Var(listen, "listen", "comma-separated listen `URLs` (repeatable)")
	allow := &listFlag{}
	fs.Var(allow, "allow-cid", "vsock context `IDs` accepted besides the host's (2), e.g. 1 for loopback")
	groups := &listFlag{}
	fs.Var(groups, "allow-group", "`groups` (names or ids) whose members may use a unix socket besides root")
	policyRoot := &listFlag{vals: []string{control.DefaultPolicyRoot}}
	fs.Var(policyRoot, "policy-root", "`DIRs` that policy paths over the wire must lie under")
	benchRoot := &listFlag{vals: []string{control.DefaultBenchRoot}}
	fs.Var(benchRoot, "bench-root", "`DIRs` that workload paths over the wire must lie under")
	bpfRoot := &listFlag{vals: []string{control.DefaultBPFRoot}}
	fs.Var(bpfRoot, "bpf-root", "bpffs `DIRs` that pinned map paths over the wire must lie under")
	queue := fs.Bool("queue", false, "queue mutating requests while one runs instead of refusing them")
	idle := fs.Duration("idle-timeout", control.DefaultIdleTimeout, "close a socket connection idle that long (0: never)")
	reqTimeout := fs.Duration("request-timeout", control.DefaultRequestTimeout, "cancel a request running that long (0: never)")
	maxConns := fs.Int("max-conns", control.DefaultMaxConns, "socket connections served at once; beyond it the longest idle one is closed (0: no bound)")
	frameTimeout := fs.Duration("frame-timeout", control.DefaultFrameTimeout, "close a socket connection whose frame, once begun, is not complete within that long (0: never)")
	keepalive := fs.Duration("keepalive-timeout", control.DefaultKeepaliveTimeout, "cancel a serial request whose client sent no keepalive for that long (0: never)")
	reconcile := fs.Bool("reconcile", true, "run 'policy reconcile' before serving, so status tells the truth after a restart")
	quiet := fs.Bool("quiet", false, "do not log one line per request")
	rf := addRootFlags(fs, nil, nil)
	if err := parse(fs, args); err != nil {
		return err
	}
	roots, err := rf.roots(env)
	if err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(env.Stderr, "syncord agent: unexpected arguments %q (listen addresses go to --listen)\n", fs.Args())
		return errUsage
	}
	var cids []uint32
	for _, c := range allow.vals {
		v, err := strconv.ParseUint(c, 10, 32)
		if err != nil {
			fmt.Fprintf(env.Stderr, "syncord agent: --allow-cid %q: not a context id (a number such as 1 for loopback)\n", c)
			return errUsage
		}
		cids = append(cids, uint32(v))
	}
	gids, err := groupIDs(groups.vals)
	if err != nil {
		fmt.Fprintf(env.Stderr, "syncord agent: %v\n", err)
		return errUsage
	}
	logger := log.New(env.Stderr, "syncord agent: ", 0)
	var logMu sync.Mutex
	logf := func(format string, a ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		logger.Printf(format, a...)
	}
	var eps []control.Endpoint
	defer func() {
		for _, e := range eps {
			e.Close()
		}
	}()
	for _, addr := range listen.vals {
		e, err := control.Listen(addr, control.ListenOptions{AllowCIDs: cids, AllowGIDs: gids, SysRoot: string(roots.Sys), Logf: logf})
		if err != nil {
			return fmt.Errorf("agent: %w", err)
		}
		eps = append(eps, e)
	}
	if *reconcile {
		var out strings.Builder
		if code := Run(ctx, &Env{Stdout: &out, Stderr: &out}, []string{"policy", "reconcile"}); code != 0 {
			logf("policy reconcile: exit status %d: %s", code, strings.TrimSpace(out.String()))
		} else if s := strings.TrimSpace(out.String()); s != "" {
			logf("policy reconcile: %s", s)
		}
	}
	cfg := agentConfig(logf)
	cfg.Roots = &control.Roots{Policy: policyRoot.vals, Bench: benchRoot.vals, BPF: bpfRoot.vals}
	cfg.Queue = *queue
	cfg.IdleTimeout = orNever(*idle)
	cfg.RequestTimeout = orNever(*reqTimeout)
	cfg.KeepaliveTimeout = orNever(*keepalive)
	cfg.FrameTimeout = orNever(*frameTimeout)
	cfg.MaxConns = *maxConns
	if *maxConns == 0 {
		cfg.MaxConns = -1
	} else if *maxConns < 0 {
		fmt.Fprintf(env.Stderr, "syncord agent: --max-conns %d: give a positive number, or 0 for no bound\n", *maxConns)
		return errUsage
	}
	if *quiet {
		cfg.Logf = func(format string, a ...any) {
			if !strings.HasPrefix(format, "request ") {
				logf(format, a...)
			}
		}
	}
	srv := control.NewServer(cfg)
	var wg sync.WaitGroup
	errs := make(chan error, len(eps))
	for _, e := range eps {
		logf("listening on %s", e)
		wg.Go(func() {
			if err := e.Serve(ctx, srv); err != nil {
				errs <- fmt.Errorf("agent: serve %s: %w", e, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	logf("stopped")
	return nil
}

// groupIDs turns --allow-group names or numbers into group ids.
func groupIDs(vals []string) ([]uint32, error) {
	var gids []uint32
	for _, g := range vals {
		if v, err := strconv.ParseUint(g, 10, 32); err == nil {
			gids = append(gids, uint32(v))
			continue
		}
		grp, err := user.LookupGroup(g)
		if err != nil {
			return nil, fmt.Errorf("--allow-group %q: %w (give a group name from /etc/group or a numeric id)", g, err)
		}
		v, err := strconv.ParseUint(grp.Gid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("--allow-group %q: group id %q is not a number", g, grp.Gid)
		}
		gids = append(gids, uint32(v))
	}
	return gids, nil
}

// orNever maps the flag's 0 (never) to the server's negative (never).
func orNever(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// agentConfig is the server configuration that runs each request in a
// child process (this binary re-executed, see requestChild) through Run,
// the one code path of the command line: no request can take the agent
// down.
func agentConfig(logf func(string, ...any)) control.Config {
	return control.Config{
		Run:      control.ExecRunner(control.ExecConfig{Logf: logf}),
		Mutating: mutatingRequest,
		Logf:     logf,
	}
}

// mutatingRequest classifies a request by its command's mutating field;
// policy status and list only read.
func mutatingRequest(args []string) bool {
	if len(args) == 0 {
		return false
	}
	if args[0] == "lockstat" {
		// lockstat --contention --while CMD runs CMD: it mutates as CMD does.
		// The flag may be given more than once (the last one counts) and
		// in any of the forms the flag package takes: mutating when any
		// of them is.
		for i := 0; i < len(args); i++ {
			a := args[i]
			if a == "--" {
				break // flag parsing stops here
			}
			v, ok := strings.CutPrefix(a, "--while=")
			if !ok {
				v, ok = strings.CutPrefix(a, "-while=")
			}
			if !ok && (a == "--while" || a == "-while") && i+1 < len(args) {
				i++
				v, ok = args[i], true
			}
			if ok {
				if w := strings.Fields(v); len(w) > 0 && w[0] != "lockstat" && mutatingRequest(w) {
					return true
				}
			}
		}
	}
	return commands.Mutates(args)
}
