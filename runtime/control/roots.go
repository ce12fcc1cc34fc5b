package control

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/syncord/syncord/internal/setting"
)

// Default roots of path arguments that arrive over the wire.
const (
	DefaultPolicyRoot = "/var/lib/syncord/policies"
	DefaultBenchRoot  = "/tmp"
	DefaultBPFRoot    = "/sys/fs/bpf"
)

// Kinds of roots, the kind argument of Resolver.Resolve.
const (
	KindPolicy = "policy" // policy objects, policy directories, livepatch modules, build output
	KindBench  = "bench"  // workload directories, databases, images, captures
	KindBPF    = "bpf"    // bpffs directories and pinned maps
)

// ErrRefused is wrapped by the errors of Resolve: the path may not be used
// by a remote request. The agent answers such a request with ExitRefused.
var ErrRefused = errors.New("refused")

// Roots are the directories under which path arguments of remote requests
// must lie. Which argument of which command is a path is decided by the
// command itself (it calls Resolver.Resolve after parsing its flags, for
// given values and for the defaults it would use), so a value is checked
// exactly as the command will use it:
//
//	policy    install NAME|DIR, --livepatch, build DIR, --out, --clang,
//	          --kdir, --cc, --state-dir: policy roots; --bpffs: bpf roots
//	bench     --root --dir --db --tmpdir --make-image, xdir run SRC DST_DIRTY
//	          DST: bench roots (--sysfs, --proc: read only, unchecked)
//	lockstat  --map: bpf roots; --while CMD: CMD's paths as if it were sent
//	topology  --capture: bench roots ("-" is stdout); --root: read only
//
// A relative path is taken relative to the first root of its kind, never to
// the agent's working directory. Symbolic links and ".." are resolved by the
// kernel one component at a time, as the command's own system calls would
// resolve them (nothing is cleaned lexically first), and the resulting real
// path must lie under the real path of a root.
type Roots struct {
	Policy []string // policy objects, policy directories, livepatch modules
	Bench  []string // workload directories, databases, images
	BPF    []string // pinned maps (lockstat --map), bpffs directories
}

// DefaultRoots returns the roots used when the agent is given none.
func DefaultRoots() *Roots {
	return &Roots{Policy: []string{DefaultPolicyRoot}, Bench: []string{DefaultBenchRoot}, BPF: []string{DefaultBPFRoot}}
}

func (r *Roots) of(kind string) []string {
	switch kind {
	case KindPolicy:
		return r.Policy
	case KindBench:
		return r.Bench
	case KindBPF:
		return r.BPF
	}
	return nil
}

// kindSetting names the Roots field of kind as a setting (the agent's
// --policy-root, --bench-root, --bpf-root).
func kindSetting(kind string) string {
	switch kind {
	case KindPolicy:
		return setting.Name("Roots.Policy")
	case KindBench:
		return setting.Name("Roots.Bench")
	}
	return setting.Name("Roots.BPF")
}

// openRoot is one root as it was when the request started running.
type openRoot struct {
	given string
	real  string // "" when it could not be opened
	err   error
	fd    int
}

// Resolver resolves the path arguments of one request against the roots as
// they are when the request runs. It is made by Roots.Open when the request
// starts (after it waited for the mutating slot), used by the command, and
// closed when the request ends.
type Resolver struct {
	roots map[string][]openRoot
}

// Open opens every root. A root that does not exist is not an error here;
// a path resolved against it is refused and the message says why.
func (r *Roots) Open() (*Resolver, error) {
	z := &Resolver{roots: map[string][]openRoot{}}
	for _, kind := range []string{KindPolicy, KindBench, KindBPF} {
		for _, g := range r.of(kind) {
			o := openRoot{given: g, fd: -1}
			fd, err := unix.Open(g, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				o.err = &os.PathError{Op: "open root", Path: g, Err: err}
			} else if o.real, err = fdPath(fd); err != nil {
				unix.Close(fd)
				o.err = err
			} else {
				o.fd = fd
			}
			z.roots[kind] = append(z.roots[kind], o)
		}
	}
	return z, nil
}

// Close closes the roots. It is idempotent.
func (z *Resolver) Close() error {
	if z == nil {
		return nil
	}
	for _, os := range z.roots {
		for i := range os {
			if os[i].fd >= 0 {
				unix.Close(os[i].fd)
				os[i].fd = -1
			}
		}
	}
	return nil
}

// fdPath is the real path of the file fd refers to.
func fdPath(fd int) (string, error) {
	p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return "", fmt.Errorf("real path of an open directory: %w (is /proc mounted?)", err)
	}
	if strings.HasSuffix(p, " (deleted)") || !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("%s: removed while in use", p)
	}
	return p, nil
}

// Resolve returns the real path (absolute, without symbolic links, . or ..)
// of value, the value of flag ("" for a positional argument), and refuses
// it with an error wrapping ErrRefused when it lies outside the roots of
// kind (KindPolicy, KindBench, KindBPF). A relative value is taken relative
// to the first root of kind. The existing part of the path is resolved by
// the kernel a component at a time (openComponent); the rest, which the command will create,
// must be plain names: no "..", and no dangling symbolic link at its start.
//
// The command must use the returned path, not value: it is what was
// checked. A component swapped for a symbolic link after Resolve returns
// (while the command runs) is not caught here; the deleting code paths
// (xdir prepare) therefore also refuse to follow links themselves.
func (z *Resolver) Resolve(kind, flag, value string) (string, error) {
	what := fmt.Sprintf("path %q", value)
	if flag != "" {
		what = fmt.Sprintf("path %q of %s", value, flag)
	}
	roots := z.roots[kind]
	given := make([]string, len(roots))
	for i, o := range roots {
		given[i] = o.given
	}
	refuse := func(format string, a ...any) error {
		return setting.Errorf("%w: %s: %s", ErrRefused, what, fmt.Sprintf(format, a...))
	}
	if len(roots) == 0 {
		return "", refuse("no %s root is configured (start the agent with %s DIR)", kind, kindSetting(kind))
	}
	if value == "" {
		return "", refuse("empty path")
	}
	if strings.HasPrefix(value, "~") {
		return "", refuse("the agent does not expand ~ (give an absolute path under the %s roots %s)", kind, strings.Join(given, ", "))
	}
	start := -1
	rel := value
	if strings.HasPrefix(value, "/") {
		fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return "", refuse("open /: %v", err)
		}
		defer unix.Close(fd)
		start, rel = fd, value[1:]
	} else {
		if roots[0].err != nil {
			return "", refuse("relative paths are taken relative to the first %s root, and %v", kind, roots[0].err)
		}
		start = roots[0].fd
	}
	real, err := walk(start, rel)
	if err != nil {
		return "", refuse("%v", err)
	}
	for _, o := range roots {
		if o.err == nil && within(o.real, real) {
			return real, nil
		}
	}
	msg := fmt.Sprintf("is outside the %s roots %s (move it there or start the agent with %s)", kind, strings.Join(given, ", "), kindSetting(kind))
	if real != value {
		msg = fmt.Sprintf("resolves to %s, which %s", real, msg)
	}
	return "", setting.Errorf("%w: %s %s", ErrRefused, what, msg)
}

// walk resolves rel below the directory start one component at a time and
// returns the real path: that of the deepest existing component, followed
// by the components that do not exist yet.
func walk(start int, rel string) (string, error) {
	cur, owned := start, false
	defer func() {
		if owned {
			unix.Close(cur)
		}
	}()
	comps := strings.Split(rel, "/")
	var tail []string
	for i, c := range comps {
		if c == "" || c == "." {
			continue
		}
		fd, err := openComponent(cur, c)
		if err == unix.ENOENT {
			if lfd, lerr := unix.Openat(cur, c, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); lerr == nil {
				unix.Close(lfd)
				return "", fmt.Errorf("%s is a symbolic link to something that does not exist", strings.Join(comps[:i+1], "/"))
			}
			for _, t := range comps[i:] {
				if t == ".." {
					return "", fmt.Errorf("%q follows %s, which does not exist", "..", strings.Join(comps[:i+1], "/"))
				}
				if t != "" && t != "." {
					tail = append(tail, t)
				}
			}
			break
		}
		if err != nil {
			return "", fmt.Errorf("resolve %s: %w", strings.Join(comps[:i+1], "/"), err)
		}
		if owned {
			unix.Close(cur)
		}
		cur, owned = fd, true
	}
	real, err := fdPath(cur)
	if err != nil {
		return "", err
	}
	for _, t := range tail {
		real = strings.TrimSuffix(real, "/") + "/" + t
	}
	return real, nil
}

// openComponent opens the name c in the directory cur with O_PATH,
// following a symbolic link there. It refuses magic links (/proc/PID/fd)
// with openat2's RESOLVE_NO_MAGICLINKS where the kernel has openat2 (5.6);
// on older kernels (the SynCord 5.4 ones) it follows them like any link:
// the real path it leads to is still checked against the roots.
func openComponent(cur int, c string) (int, error) {
	if !noOpenat2.Load() {
		fd, err := unix.Openat2(cur, c, &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_MAGICLINKS})
		if err != unix.ENOSYS {
			return fd, err
		}
		noOpenat2.Store(true)
	}
	return unix.Openat(cur, c, unix.O_PATH|unix.O_CLOEXEC, 0)
}

// noOpenat2 is set once openat2 returned ENOSYS.
var noOpenat2 atomic.Bool

func within(root, p string) bool {
	return p == root || root == "/" || strings.HasPrefix(p, root+"/")
}

type resolverKey struct{}

// WithResolver returns ctx carrying z, for the Runner of a request.
func WithResolver(ctx context.Context, z *Resolver) context.Context {
	return context.WithValue(ctx, resolverKey{}, z)
}

// ResolverFrom returns the resolver the server made for the request that
// ctx belongs to, or nil when the server checks no paths.
func ResolverFrom(ctx context.Context) *Resolver {
	z, _ := ctx.Value(resolverKey{}).(*Resolver)
	return z
}
