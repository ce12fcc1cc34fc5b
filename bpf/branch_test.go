package bpf

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/syncord/syncord/kernel"
)

func syncordInfo(b kernel.Branch) *kernel.Info {
	return &kernel.Info{Release: "5.4.0-" + string(b), SynCord: true, SynCordName: true, Kallsyms: true,
		SynCordSymbol: "bpf_queued_spin_lock", Branch: b, BranchFrom: "kallsyms: test"}
}

// TestBuiltinBranches: each built-in runs on the branches it declares and
// is refused on the others, with ErrWrongBranch and a message naming the
// branch it needs; lockstat runs on all three.
func TestBuiltinBranches(t *testing.T) {
	want := map[string][]kernel.Branch{
		"amp":               {kernel.BranchShfllock},
		"scl":               {kernel.BranchShfllock},
		"numa-scl":          {kernel.BranchShfllock},
		"numa-grouping":     {kernel.BranchShfllock},
		"numa-grouping-cna": {kernel.BranchCNA},
		"bravo":             {kernel.BranchStock},
		"lockstat":          kernel.Branches,
	}
	bs, err := Builtins()
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != len(want) {
		t.Fatalf("%d built-ins, the table has %d", len(bs), len(want))
	}
	for _, b := range bs {
		p := b.Policy(nil)
		for _, br := range kernel.Branches {
			err := CheckKernel(p, syncordInfo(br))
			ok := slices.Contains(want[p.Name], br)
			switch {
			case ok && err != nil:
				t.Errorf("%s on %s: %v, want it accepted", p.Name, br, err)
			case !ok && !errors.Is(err, ErrWrongBranch):
				t.Errorf("%s on %s: %v, want ErrWrongBranch", p.Name, br, err)
			case !ok && (!errors.Is(err, ebpf.ErrNotSupported) || !strings.Contains(err.Error(), "needs a "+string(want[p.Name][0])) ||
				!strings.Contains(err.Error(), "is "+string(br))):
				t.Errorf("%s on %s: %q should name the branch needed and the one running", p.Name, br, err)
			}
		}
	}
}

// TestBackOffInference: a policy without declared branches (an artifact
// pfile directory) that calls bpf_back_off is refused off shfllock-syncord,
// read from its instructions.
func TestBackOffInference(t *testing.T) {
	for _, name := range []string{"amp", "scl", "numa-scl"} {
		b, err := LookupBuiltin(name)
		if err != nil {
			t.Fatal(err)
		}
		p := b.Policy(nil)
		p.Branches = nil
		err = CheckKernel(p, syncordInfo(kernel.BranchStock))
		if !errors.Is(err, ErrWrongBranch) || !strings.Contains(err.Error(), "bpf_back_off") {
			t.Errorf("undeclared %s on stock-syncord: %v, want ErrWrongBranch naming bpf_back_off", name, err)
		}
		if err := CheckKernel(p, syncordInfo(kernel.BranchShfllock)); err != nil {
			t.Errorf("undeclared %s on shfllock-syncord: %v", name, err)
		}
	}
	for _, name := range []string{"lockstat", "bravo", "numa-grouping", "numa-grouping-cna"} {
		b, err := LookupBuiltin(name)
		if err != nil {
			t.Fatal(err)
		}
		spec, err := LoadSpec(b.Policy(nil))
		if err != nil {
			t.Fatal(err)
		}
		if c := BackOffCallers(b.Policy(nil), spec); len(c) != 0 {
			t.Errorf("%s: BackOffCallers = %v, want none", name, c)
		}
	}
}

// TestBranchUnknown: a SynCord kernel whose branch is unknown is not
// refused (the verifier has the last word), and the manifest check
// rejects a misspelled branch.
func TestBranchUnknown(t *testing.T) {
	b, err := LookupBuiltin("amp")
	if err != nil {
		t.Fatal(err)
	}
	k := syncordInfo("")
	if err := CheckKernel(b.Policy(nil), k); err != nil {
		t.Fatalf("amp on a SynCord kernel of unknown branch: %v", err)
	}
	m := *b.Manifest
	m.Branches = []string{"shfllock"}
	if err := m.Validate(); err == nil || !strings.Contains(err.Error(), "shfllock-syncord") {
		t.Fatalf("manifest with branch shfllock: %v, want it refused naming shfllock-syncord", err)
	}
	m.Branches = []string{"mcs-syncord"}
	if err := m.Validate(); err == nil {
		t.Fatal("manifest with an unknown branch validated")
	}
}
