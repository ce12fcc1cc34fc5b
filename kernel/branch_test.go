package kernel

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// capturedKallsyms reads testdata/kallsyms/<branch>.txt, captured from the
// booted kernel (e2e TestSynCordCapture). With textOnly it keeps only the
// function symbols: what /proc/kallsyms lists without CONFIG_KALLSYMS_ALL.
func capturedKallsyms(t *testing.T, branch Branch, textOnly bool) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "kallsyms", string(branch)+".txt"))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 || strings.HasPrefix(l, "#") {
			continue
		}
		if textOnly && !isText(f[1][0]) {
			continue
		}
		out.WriteString(l + "\n")
	}
	return out.String()
}

func TestProbeBranch(t *testing.T) {
	type tc struct {
		name        string
		release     string
		kallsyms    string // "" means no /proc/kallsyms
		synCord     bool
		branch      Branch
		from        string
		kallsymsAll bool
	}
	var tests []tc
	for _, b := range Branches {
		for _, textOnly := range []bool{false, true} {
			what := "KALLSYMS_ALL"
			if textOnly {
				what = "functions only"
			}
			ks := capturedKallsyms(t, b, textOnly)
			tests = append(tests,
				tc{name: string(b) + " " + what, release: "5.4.0-" + string(b), kallsyms: ks, synCord: true, branch: b, from: "kallsyms: ", kallsymsAll: !textOnly},
				// A renamed build (LOCALVERSION changed) is still told
				// apart by its symbols, and the symbols win over a
				// misleading name.
				tc{name: string(b) + " " + what + " renamed", release: "5.4.0-custom", kallsyms: ks, synCord: true, branch: b, from: "kallsyms: ", kallsymsAll: !textOnly},
				tc{name: string(b) + " " + what + " misnamed", release: "5.4.0-" + string(Branches[(indexBranch(b)+1)%3]), kallsyms: ks, synCord: true, branch: b, from: "kallsyms: ", kallsymsAll: !textOnly},
			)
		}
	}
	tests = append(tests,
		tc{name: "no kallsyms, named", release: "5.4.0-cna-syncord", branch: BranchCNA, from: "release"},
		tc{name: "no kallsyms, unnamed", release: "5.4.0"},
		tc{name: "stock Debian", release: "6.1.0-56-amd64", kallsyms: stockKallsyms, kallsymsAll: true},
		tc{name: "Debian kernel named like a branch", release: "6.1.0-shfllock-syncord", kallsyms: stockKallsyms, kallsymsAll: true},
		tc{name: "syncord without branch symbols falls back to the release", release: "5.4.0-shfllock-syncord+",
			kallsyms: "ffffffff81000000 T _stext\nffffffff810b3bf0 T bpf_queued_spin_lock\n", synCord: true, branch: BranchShfllock, from: "release"},
	)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{"proc/sys/kernel/osrelease": tt.release + "\n"}
			if tt.kallsyms != "" {
				files["proc/kallsyms"] = tt.kallsyms
			}
			root := writeTree(t, files)
			info, err := testFS(filepath.Join(root, "proc"), filepath.Join(root, "sys")).Probe()
			if err != nil {
				t.Fatal(err)
			}
			if info.SynCord != tt.synCord || info.Branch != tt.branch || !strings.HasPrefix(info.BranchFrom, tt.from) ||
				(tt.from == "") != (info.BranchFrom == "") || info.KallsymsAll != tt.kallsymsAll {
				t.Fatalf("Probe = %+v, want syncord=%v branch=%q from %q... kallsyms_all=%v", info, tt.synCord, tt.branch, tt.from, tt.kallsymsAll)
			}
		})
	}
}

func indexBranch(b Branch) int {
	for i, x := range Branches {
		if x == b {
			return i
		}
	}
	return -1
}

func TestParseBranch(t *testing.T) {
	for in, want := range map[string]Branch{"shfllock": BranchShfllock, "cna-syncord": BranchCNA, "stock": BranchStock} {
		if b, err := ParseBranch(in); err != nil || b != want {
			t.Errorf("ParseBranch(%q) = %q, %v; want %q", in, b, err, want)
		}
	}
	if _, err := ParseBranch("mcs"); err == nil {
		t.Error("ParseBranch(mcs) succeeded")
	}
}
