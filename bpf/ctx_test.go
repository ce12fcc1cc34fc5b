package bpf

import (
	"bytes"
	"fmt"
	"sort"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// ctxOffsets returns the context offsets a program loads from or stores
// to: memory accesses based on a register that holds the context pointer
// (R1 at entry, and registers copied from it; a call clobbers R1-R5). A
// linear scan, enough for the straight-line policy programs.
func ctxOffsets(insns asm.Instructions) []int {
	ctx := map[asm.Register]bool{asm.R1: true}
	seen := map[int]bool{}
	for _, ins := range insns {
		op := ins.OpCode
		switch {
		case op.Class().IsLoad() && op.Mode() == asm.MemMode:
			if ctx[ins.Src] {
				seen[int(ins.Offset)] = true
			}
			delete(ctx, ins.Dst)
		case op.Class().IsStore() && op.Mode() == asm.MemMode:
			if ctx[ins.Dst] {
				seen[int(ins.Offset)] = true
			}
		case op.JumpOp() == asm.Call:
			for r := asm.R0; r <= asm.R5; r++ {
				delete(ctx, r)
			}
		case op.Class().IsALU():
			if op.ALUOp() == asm.Mov && op.Source() == asm.RegSource && ctx[ins.Src] {
				ctx[ins.Dst] = true
			} else {
				delete(ctx, ins.Dst)
			}
		case op.Class().IsLoad():
			delete(ctx, ins.Dst)
		}
	}
	var out []int
	for o := range seen {
		out = append(out, o)
	}
	sort.Ints(out)
	return out
}

// bravoCtxAllowed are the context fields the livepatch sets for bravo (as
// the artifact's bravo livepatch): per_cpu_data (16) and RBias (24). The
// SynCord verifier dereferences offsets 16 and up as pointers, so reading
// an unset one (InhibitUntil at 32 did) reads through an uninitialised
// kernel pointer.
var bravoCtxAllowed = map[int]bool{16: true, 24: true}

func bravoCtxViolations(obj []byte) ([]string, error) {
	spec, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(obj))
	if err != nil {
		return nil, err
	}
	var bad []string
	for name, ps := range spec.Programs {
		for _, off := range ctxOffsets(ps.Instructions) {
			if !bravoCtxAllowed[off] {
				bad = append(bad, fmt.Sprintf("%s: ctx offset %d", name, off))
			}
		}
	}
	sort.Strings(bad)
	return bad, nil
}

// TestBravoContextFields: the committed bravo object touches only the
// context fields the livepatch sets.
func TestBravoContextFields(t *testing.T) {
	b, err := LookupBuiltin("bravo")
	if err != nil {
		t.Fatal(err)
	}
	bad, err := bravoCtxViolations(b.Object)
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) > 0 {
		t.Fatalf("bravo reads context fields its livepatch does not set: %v", bad)
	}
	// The scan itself finds what it must: every bravo program uses RBias.
	spec, _ := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(b.Object))
	for name, ps := range spec.Programs {
		offs := ctxOffsets(ps.Instructions)
		if len(offs) == 0 {
			t.Errorf("%s: no context access found (the scan is broken)", name)
		}
	}
}
