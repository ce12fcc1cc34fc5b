package control

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Default roots of path arguments that arrive over the wire.
const (
	DefaultPolicyRoot = "/var/lib/syncord/policies"
	DefaultBenchRoot  = "/tmp"
	DefaultBPFRoot    = "/sys/fs/bpf"
)

// Roots are the directories under which path arguments of remote requests
// must lie. A path argument is the value of a flag known to take a path,
// or any other argument of a policy or bench command that looks like a path
// (contains a slash, or starts with "." or "~"). The flags:
//
//	policy    --livepatch --out --clang --linux-src --state-dir: policy roots
//	          --bpffs: bpf roots; --sys-root --proc-root: read only, unchecked
//	bench     --root --dir --db --tmpdir --make-image: bench roots
//	          --sysfs --proc: read only, unchecked
//	lockstat  --map: bpf roots
//	topology  --capture: bench roots ("-" is stdout); --root: unchecked
//
// Relative paths are taken relative to the agent's working directory;
// symbolic links are resolved before the check, so a link cannot lead out of
// a root.
type Roots struct {
	Policy []string // policy objects, policy directories, livepatch modules
	Bench  []string // workload directories, databases, images
	BPF    []string // pinned maps (lockstat --map)
}

// DefaultRoots returns the roots used when the agent is given none.
func DefaultRoots() *Roots {
	return &Roots{Policy: []string{DefaultPolicyRoot}, Bench: []string{DefaultBenchRoot}, BPF: []string{DefaultBPFRoot}}
}

type rootKind int

const (
	rootNone rootKind = iota
	rootPolicy
	rootBench
	rootBPF
)

func (k rootKind) String() string {
	return [...]string{"", "policy", "bench", "bpf"}[k]
}

func (k rootKind) flag() string {
	return [...]string{"", "--policy-root", "--bench-root", "--bpf-root"}[k]
}

// pathFlags lists, per top-level command, the flags that take a path and
// the root it must lie under (rootNone: a value that is read only, such as a
// sysfs root, consumed unchecked); commandRoot is the root of the positional
// arguments of a command that look like paths.
var pathFlags = map[string]map[string]rootKind{
	"policy": {
		"livepatch": rootPolicy, "out": rootPolicy, "clang": rootPolicy, "linux-src": rootPolicy,
		"state-dir": rootPolicy, "bpffs": rootBPF,
		"sys-root": rootNone, "proc-root": rootNone,
	},
	"bench": {
		"root": rootBench, "dir": rootBench, "db": rootBench, "tmpdir": rootBench,
		"make-image": rootBench,
		"sysfs":      rootNone, "proc": rootNone,
	},
	"lockstat": {"map": rootBPF},
	"topology": {"capture": rootBench, "root": rootNone},
}

var commandRoot = map[string]rootKind{"policy": rootPolicy, "bench": rootBench}

// Check returns an error naming the first path argument of args that lies
// outside its roots.
func (r *Roots) Check(args []string) error {
	if len(args) == 0 {
		return nil
	}
	flags := pathFlags[args[0]]
	positional := commandRoot[args[0]]
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			for _, p := range args[i+1:] {
				if positional != rootNone && looksLikePath(p) {
					if err := r.check(positional, "", p); err != nil {
						return err
					}
				}
			}
			return nil
		}
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			name := strings.TrimLeft(a, "-")
			value, hasValue := "", false
			if k := strings.IndexByte(name, '='); k >= 0 {
				name, value, hasValue = name[:k], name[k+1:], true
			}
			kind, ok := flags[name]
			if !ok {
				if hasValue && positional != rootNone && looksLikePath(value) {
					if err := r.check(positional, "--"+name, value); err != nil {
						return err
					}
				}
				continue
			}
			if !hasValue {
				if i+1 >= len(args) {
					continue // flag parsing will complain
				}
				i++
				value = args[i]
			}
			if kind == rootNone || value == "-" {
				continue
			}
			if err := r.check(kind, "--"+name, value); err != nil {
				return err
			}
			continue
		}
		if positional != rootNone && looksLikePath(a) {
			if err := r.check(positional, "", a); err != nil {
				return err
			}
		}
	}
	return nil
}

func looksLikePath(s string) bool {
	return strings.Contains(s, "/") || strings.HasPrefix(s, ".") || strings.HasPrefix(s, "~")
}

func (r *Roots) roots(k rootKind) []string {
	switch k {
	case rootPolicy:
		return r.Policy
	case rootBench:
		return r.Bench
	case rootBPF:
		return r.BPF
	}
	return nil
}

func (r *Roots) check(k rootKind, flag, p string) error {
	what := fmt.Sprintf("path %q", p)
	if flag != "" {
		what = fmt.Sprintf("path %q of %s", p, flag)
	}
	roots := r.roots(k)
	if strings.HasPrefix(p, "~") {
		return fmt.Errorf("%s: the agent does not expand ~ (give an absolute path under the %s roots %s)", what, k, strings.Join(roots, ", "))
	}
	resolved, err := resolve(p)
	if err != nil {
		return fmt.Errorf("%s: %v", what, err)
	}
	for _, root := range roots {
		rr, err := resolve(root)
		if err != nil {
			continue
		}
		if within(rr, resolved) {
			return nil
		}
	}
	if len(roots) == 0 {
		return fmt.Errorf("%s: no %s root is configured (start the agent with %s DIR)", what, k, k.flag())
	}
	return fmt.Errorf("%s is outside the %s roots %s (move it there or start the agent with %s)", what, k, strings.Join(roots, ", "), k.flag())
}

func within(root, p string) bool {
	return p == root || root == "/" || strings.HasPrefix(p, root+"/")
}

// resolve makes p absolute and clean and resolves the symbolic links of its
// longest existing prefix.
func resolve(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	rest := ""
	dir := abs
	for {
		if real, err := filepath.EvalSymlinks(dir); err == nil {
			return filepath.Join(real, rest), nil
		} else if !os.IsNotExist(err) {
			return "", fmt.Errorf("resolve %s: %w", dir, err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return abs, nil
		}
		rest = filepath.Join(filepath.Base(dir), rest)
		dir = parent
	}
}
