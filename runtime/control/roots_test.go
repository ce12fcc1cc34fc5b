package control

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	base := t.TempDir()
	pol := filepath.Join(base, "policies")
	bench := filepath.Join(base, "bench")
	bpffs := filepath.Join(base, "bpf")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{pol, bench, bpffs, filepath.Join(outside, "sub"), filepath.Join(bench, "real", "d")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		filepath.Join(bench, "escape"):   outside,
		filepath.Join(bench, "link"):     filepath.Join(outside, "sub"), // link/.. is outside
		filepath.Join(bench, "inside"):   filepath.Join(bench, "real"),
		filepath.Join(bench, "relative"): "real/d",
		filepath.Join(bench, "dangling"): filepath.Join(outside, "nothing"),
		filepath.Join(bench, "magic"):    "/proc/self/cwd",
	} {
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	// A root given through a symbolic link is compared by its real path.
	benchLink := filepath.Join(base, "benchlink")
	if err := os.Symlink(bench, benchLink); err != nil {
		t.Fatal(err)
	}
	z, err := (&Roots{Policy: []string{pol}, Bench: []string{benchLink, filepath.Join(base, "missing")}, BPF: []string{bpffs}}).Open()
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	type testCase struct {
		name, kind, value string
		want              string // resolved path, when errPart is ""
		errPart           string
	}
	cases := []testCase{
		{"inside", KindBench, bench + "/real/d", bench + "/real/d", ""},
		{"inside through the root's link", KindBench, benchLink + "/real/d", bench + "/real/d", ""},
		{"not yet existing", KindBench, bench + "/new/deeper", bench + "/new/deeper", ""},
		{"relative is under the first root", KindBench, "srcx", bench + "/srcx", ""},
		{"relative with a slash", KindBench, "real/d", bench + "/real/d", ""},
		{"dash is a path like any other", KindBench, "-", bench + "/-", ""},
		{"link inside the root", KindBench, bench + "/inside/d", bench + "/real/d", ""},
		{"relative link", KindBench, bench + "/relative", bench + "/real/d", ""},
		{"dot-dot inside", KindBench, bench + "/real/d/../d", bench + "/real/d", ""},
		{"the root itself", KindBench, bench, bench, ""},
		{"outside", KindPolicy, "/etc", "", `path "/etc" of --x is outside the policy roots ` + pol},
		{"symlink escape", KindBench, bench + "/escape/d", "", "resolves to " + outside + "/d, which is outside the bench roots"},
		{"dot-dot after a link is physical", KindBench, bench + "/link/../x", "", "resolves to " + outside + "/x"},
		{"dot-dot out of the root", KindBench, bench + "/../outside", "", "outside the bench roots"},
		{"relative dot-dot", KindBench, "../outside", "", "outside the bench roots"},
		{"dot-dot after a missing component", KindBench, bench + "/nope/../../outside", "", `".." follows`},
		{"dangling link", KindBench, bench + "/dangling", "", "symbolic link to something that does not exist"},
		{"magic link", KindBench, bench + "/magic/x", "", "resolve " + strings.TrimPrefix(bench, "/") + "/magic"},
		{"tilde", KindBench, "~/x", "", "does not expand ~"},
		{"empty", KindBench, "", "", "empty path"},
		{"bpf map inside", KindBPF, bpffs + "/lockstat/map", bpffs + "/lockstat/map", ""},
		{"bpf map outside", KindBPF, "/tmp/map", "", "outside the bpf roots"},
	}
	// Kernels before 5.6 (the SynCord 5.4 ones) have no openat2: the walk
	// falls back to openat, and a magic link is then followed to its real
	// path, which is outside the roots.
	old := noOpenat2.Load()
	defer noOpenat2.Store(old)
	for _, fallback := range []bool{false, true} {
		noOpenat2.Store(fallback)
		for _, tc := range cases {
			if fallback && tc.name == "magic link" {
				tc.errPart = "outside the bench roots"
			}
			t.Run(fmt.Sprintf("%s/openat2=%v", tc.name, !fallback), func(t *testing.T) {
				got, err := z.Resolve(tc.kind, "--x", tc.value)
				if tc.errPart == "" {
					if err != nil || got != tc.want {
						t.Fatalf("Resolve(%q) = %q, %v, want %q", tc.value, got, err, tc.want)
					}
					return
				}
				if err == nil || !strings.Contains(err.Error(), tc.errPart) || !errors.Is(err, ErrRefused) {
					t.Fatalf("Resolve(%q) = %q, %v, want a refusal containing %q", tc.value, got, err, tc.errPart)
				}
			})
		}
	}
}

func TestResolveRootProblems(t *testing.T) {
	z, _ := (&Roots{Bench: []string{filepath.Join(t.TempDir(), "missing")}}).Open()
	defer z.Close()
	if _, err := z.Resolve(KindBench, "--dir", "x"); err == nil || !strings.Contains(err.Error(), "relative paths are taken relative to the first bench root") {
		t.Fatalf("relative path with a missing root: %v", err)
	}
	if _, err := z.Resolve(KindPolicy, "--out", "/tmp/x"); err == nil || !strings.Contains(err.Error(), "no policy root is configured (start the agent with Roots.Policy DIR)") {
		t.Fatalf("no root: %v", err)
	}
}

// TestResolverCloses checks that the roots' descriptors are closed.
func TestResolverCloses(t *testing.T) {
	count := func() int {
		ents, _ := os.ReadDir("/proc/self/fd")
		return len(ents)
	}
	before := count()
	z, _ := (&Roots{Bench: []string{t.TempDir(), t.TempDir()}, BPF: []string{t.TempDir()}}).Open()
	if _, err := z.Resolve(KindBench, "", "a/b"); err != nil {
		t.Fatal(err)
	}
	z.Close()
	z.Close()
	if after := count(); after != before {
		t.Fatalf("%d descriptors open before, %d after", before, after)
	}
	var nilZ *Resolver
	nilZ.Close()
}
