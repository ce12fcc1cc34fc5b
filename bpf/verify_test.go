package bpf

import (
	"errors"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/syncord/syncord/internal/testutil"
)

// stockEmulation rewrites a built-in lock program so that the stock
// kernel's verifier can check it: the context becomes an 88-byte map value
// (same bounds as struct __lock_policy_args, writable), SynCord helper ids
// go back to upstream ids (id - 1), bpf_back_off becomes ktime_get_ns (same
// clobbers, result unused) and the program loads as a kprobe, which may call
// every helper the policies use.
func stockEmulation(ps *ebpf.ProgramSpec) *ebpf.ProgramSpec {
	ps = ps.Copy()
	name := ps.Instructions[0].Symbol()
	body := make(asm.Instructions, 0, len(ps.Instructions)+10)
	body = append(body,
		asm.StoreImm(asm.RFP, -4, 0, asm.Word).WithSymbol(name),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, 0).WithReference("lock_ctx"),
		asm.FnMapLookupElem.Call(),
		asm.JNE.Imm(asm.R0, 0, "").WithMetadata(asm.Metadata{}),
		asm.Mov.Imm(asm.R0, 0),
		asm.Return(),
		asm.Mov.Reg(asm.R1, asm.R0),
	)
	body[5].Offset = 2 // skip "r0 = 0; exit"
	for i, ins := range ps.Instructions {
		if i == 0 {
			ins = ins.WithSymbol("")
		}
		if ins.IsBuiltinCall() {
			if ins.Constant == 1 {
				ins.Constant = int64(asm.FnKtimeGetNs)
			} else {
				ins.Constant--
			}
		}
		body = append(body, ins)
	}
	ps.Instructions = body
	ps.Type = ebpf.Kprobe
	ps.AttachType = ebpf.AttachNone
	return ps
}

// TestBuiltinsPassStockVerifier loads every built-in program, rewritten by
// stockEmulation, on this stock kernel. It proves the C passes a verifier
// (NULL checks, initialised stack, context accesses within the 88 bytes,
// constants in .rodata); what it cannot prove is the SynCord 5.4 verifier's
// own rules for type 26 contexts, which only a SynCord kernel can check.
func TestBuiltinsPassStockVerifier(t *testing.T) {
	testutil.RequireBPF(t)
	bs, err := Builtins()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		t.Run(b.Manifest.Name, func(t *testing.T) {
			spec, err := LoadSpec(b.Policy(nil))
			if err != nil {
				t.Fatal(err)
			}
			for name, ps := range spec.Programs {
				spec.Programs[name] = stockEmulation(ps)
			}
			spec.Maps["lock_ctx"] = &ebpf.MapSpec{Name: "lock_ctx", Type: ebpf.Array, KeySize: 4, ValueSize: 88, MaxEntries: 1}
			coll, err := ebpf.NewCollection(spec)
			if err != nil {
				var ve *ebpf.VerifierError
				if errors.As(err, &ve) {
					t.Fatalf("%+v", ve)
				}
				t.Fatal(err)
			}
			coll.Close()
		})
	}
}
