package bpf

import (
	"testing"
)

func FuzzParsePFile(f *testing.F) {
	f.Add("SEC(\"lock_qspinlock_cmp\")\nbool custom_cmp_func(struct __lock_policy_args *args)\n{\n\treturn 1;\n}\n")
	f.Add("/* syncord:hook skip_reorder */ SEC(\"lock_x\") static inline unsigned long * f (void)")
	f.Add("SEC(\"\")")
	f.Fuzz(func(t *testing.T, text string) {
		pf, err := parsePFile("x.pfile", text)
		if err != nil {
			return
		}
		if pf.Function == "" || pf.Pin != "x" {
			t.Fatalf("parsed %+v", pf)
		}
		if h, ok := LookupHook(pf.Hook); ok {
			_ = checkReturn(h, pf.ReturnType)
		}
	})
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"name":"x","object":"x.o","programs":[{"section":"lock_a","pin":"a"}],"map":{"name":"hash_map"},"params":[{"name":"p","default":1}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			return
		}
		out, err := MarshalManifest(m)
		if err != nil {
			t.Fatalf("valid manifest does not marshal: %v", err)
		}
		m2, err := ParseManifest(out)
		if err != nil {
			t.Fatalf("round trip: %v", err)
		}
		if len(m2.Programs) != len(m.Programs) || m2.Name != m.Name {
			t.Fatal("round trip changed the manifest")
		}
	})
}
