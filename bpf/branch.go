package bpf

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/syncord/syncord/kernel"
)

// HelperBackOff is the id of bpf_back_off on SynCord kernels. Only
// shfllock-syncord implements it; the other branches have an empty weak
// proto, and the verifier fails a program calling it with EFAULT.
const HelperBackOff = 1

// ErrWrongBranch is returned (wrapped, together with
// ebpf.ErrNotSupported) when a policy needs another SynCord branch than
// the running kernel's.
var ErrWrongBranch = errors.New("policy needs another SynCord kernel branch")

// BackOffCallers returns the lock programs of spec (among p's) that call
// bpf_back_off, sorted.
func BackOffCallers(p *Policy, spec *ebpf.CollectionSpec) []string {
	var out []string
	for _, pr := range p.Programs {
		if !pr.IsLock() {
			continue
		}
		name, ps, err := findProgram(spec, pr)
		if err != nil {
			continue
		}
		for _, ins := range ps.Instructions {
			if ins.IsBuiltinCall() && ins.Constant == HelperBackOff {
				out = append(out, name)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// NeededBranches returns the SynCord branches p can run on and why: the
// manifest's branches, else shfllock-syncord when a program calls
// bpf_back_off, else none (any SynCord kernel). spec may be nil; then only
// the declared branches count.
func NeededBranches(p *Policy, spec *ebpf.CollectionSpec) ([]kernel.Branch, string) {
	if len(p.Branches) > 0 {
		return p.Branches, "its manifest says so"
	}
	if spec != nil {
		if c := BackOffCallers(p, spec); len(c) > 0 {
			return []kernel.Branch{kernel.BranchShfllock}, fmt.Sprintf("%s call%s bpf_back_off, which only shfllock-syncord implements", strings.Join(c, ", "), map[bool]string{true: "s", false: ""}[len(c) == 1])
		}
	}
	return nil, ""
}

// checkBranch refuses p when the running kernel's branch is known and not
// one p needs.
func checkBranch(p *Policy, k *kernel.Info, spec *ebpf.CollectionSpec) error {
	if k.Branch == "" {
		return nil
	}
	need, why := NeededBranches(p, spec)
	if len(need) == 0 || slices.Contains(need, k.Branch) {
		return nil
	}
	names := make([]string, len(need))
	for i, b := range need {
		names[i] = string(b)
	}
	return &wrongBranchError{fmt.Sprintf("policy %s needs a %s kernel (%s); this kernel %s is %s (%s): boot 5.4.0-%s",
		p.Name, strings.Join(names, " or "), why, k.Release, k.Branch, k.BranchFrom, need[0])}
}

type wrongBranchError struct{ msg string }

func (e *wrongBranchError) Error() string { return e.msg }

func (e *wrongBranchError) Is(target error) bool {
	return target == ErrWrongBranch || target == ebpf.ErrNotSupported
}

// parseBranches checks manifest branch names.
func parseBranches(names []string) ([]kernel.Branch, error) {
	var out []kernel.Branch
	for _, n := range names {
		b, err := kernel.ParseBranch(n)
		if err != nil {
			return nil, err
		}
		if string(b) != n {
			return nil, fmt.Errorf("branch %q: write it in full, %q", n, b)
		}
		out = append(out, b)
	}
	return out, nil
}
