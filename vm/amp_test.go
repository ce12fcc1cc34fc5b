package vm

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/syncord/syncord/numa"
	"github.com/syncord/syncord/numa/numatest"
)

// copyFixture copies numa/testdata/name into a temp dir: AMP tests write
// only there, never to the live /sys.
func copyFixture(t *testing.T, name string) string { return numatest.CopyFixture(t, name) }

func readTop(t *testing.T, root string) (*numa.FS, *numa.Topology) {
	t.Helper()
	fsys, err := numa.NewFS(root)
	if err != nil {
		t.Fatal(err)
	}
	top, err := fsys.Topology()
	if err != nil {
		t.Fatal(err)
	}
	return fsys, top
}

func freqFile(t *testing.T, root string, cpu int, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "devices/system/cpu", "cpu"+strconv.Itoa(cpu), "cpufreq", name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestParseFreq(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		bad  bool
	}{
		{in: "2200000", want: 2200000},
		{in: "2200000kHz", want: 2200000},
		{in: "1500MHz", want: 1500000},
		{in: "1500 mhz", want: 1500000},
		{in: "2.2GHz", want: 2200000},
		{in: "1.8ghz", want: 1800000},
		{in: " 1200000\n", want: 1200000},
		{in: "", bad: true},
		{in: "0", bad: true},
		{in: "-5", bad: true},
		{in: "fast", bad: true},
		{in: "2.2THz", bad: true},
		{in: "NaN", bad: true},
		{in: "1e12", bad: true},
	} {
		got, err := ParseFreq(tc.in)
		if tc.bad != (err != nil) || got != tc.want {
			t.Errorf("ParseFreq(%q) = %d, %v; want %d (error %v)", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

func TestAMPOnFixture(t *testing.T) {
	root := copyFixture(t, "synth-2x4-cpufreq") // 2 sockets x 4 CPUs, 1.2-2.2 GHz
	fsys, top := readTop(t, root)
	settings, err := PlanAMP(fsys, top, AMPOptions{FastKHz: 2200000, SlowKHz: 1200000})
	if err != nil {
		t.Fatal(err)
	}
	var plan bytes.Buffer
	if err := WriteAMPPlan(&plan, settings); err != nil {
		t.Fatal(err)
	}
	// Dry run changed nothing.
	if got := freqFile(t, root, 0, "scaling_min_freq"); got != "1200000" {
		t.Fatalf("planning wrote: cpu0 min %s", got)
	}
	if err := ApplyAMP(fsys, settings); err != nil {
		t.Fatal(err)
	}
	// cps defaults to 4 from the topology: CPUs 0,1 and 4,5 fast.
	for cpu := 0; cpu < 8; cpu++ {
		want := "1200000"
		if cpu%4 < 2 {
			want = "2200000"
		}
		for _, f := range []string{"scaling_min_freq", "scaling_max_freq"} {
			if got := freqFile(t, root, cpu, f); got != want {
				t.Errorf("cpu%d %s = %s, want %s", cpu, f, got, want)
			}
		}
		role := "slow"
		if cpu%4 < 2 {
			role = "fast"
		}
		if settings[cpu].Role != role {
			t.Errorf("cpu%d role %s, want %s", cpu, settings[cpu].Role, role)
		}
	}
	// The fast CPUs' new minimum (2.2 GHz) does not exceed the current
	// maximum (2.2 GHz), so min is written first everywhere.
	lines := strings.Split(strings.TrimSpace(plan.String()), "\n")
	if len(lines) != 16 {
		t.Fatalf("dry-run plan has %d lines:\n%s", len(lines), plan.String())
	}
	wantFirst := "cpu0 fast    write " + root + "/devices/system/cpu/cpu0/cpufreq/scaling_min_freq 2200000"
	if lines[0] != wantFirst {
		t.Errorf("first write %q, want %q", lines[0], wantFirst)
	}

	// Restore with the flags: max = fast, min = slow on every CPU; now
	// the slow CPUs have max 1.2 GHz, and min 1.2 stays below it.
	restore, err := PlanAMPRestore(fsys, mustTop(t, fsys), AMPOptions{FastKHz: 2000000, SlowKHz: 1500000})
	if err != nil {
		t.Fatal(err)
	}
	// Slow CPUs sit at max 1.2 GHz: raising min to 1.5 GHz must write max first.
	if w := restore[2].Writes; !strings.HasSuffix(w[0].Path, "scaling_max_freq") {
		t.Errorf("cpu2 restore writes %+v: want max first", w)
	}
	if err := ApplyAMP(fsys, restore); err != nil {
		t.Fatal(err)
	}
	for cpu := 0; cpu < 8; cpu++ {
		if lo, hi := freqFile(t, root, cpu, "scaling_min_freq"), freqFile(t, root, cpu, "scaling_max_freq"); lo != "1500000" || hi != "2000000" {
			t.Errorf("cpu%d after restore: %s-%s, want 1500000-2000000", cpu, lo, hi)
		}
	}
	// Restore without flags: each CPU's full cpuinfo range.
	restore, err = PlanAMPRestore(fsys, mustTop(t, fsys), AMPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ApplyAMP(fsys, restore); err != nil {
		t.Fatal(err)
	}
	if lo, hi := freqFile(t, root, 7, "scaling_min_freq"), freqFile(t, root, 7, "scaling_max_freq"); lo != "1200000" || hi != "2200000" {
		t.Errorf("cpu7 after full restore: %s-%s", lo, hi)
	}
}

func mustTop(t *testing.T, fsys *numa.FS) *numa.Topology {
	t.Helper()
	top, err := fsys.Topology()
	if err != nil {
		t.Fatal(err)
	}
	return top
}

func TestAMPCoresPerSocketFlag(t *testing.T) {
	root := copyFixture(t, "synth-2x4-cpufreq")
	fsys, top := readTop(t, root)
	// With 8 cores per socket (as if one socket), CPUs 0-3 are fast.
	s, err := PlanAMP(fsys, top, AMPOptions{FastKHz: 2000000, SlowKHz: 1500000, CoresPerSocket: 8})
	if err != nil {
		t.Fatal(err)
	}
	var roles []string
	for _, x := range s {
		roles = append(roles, x.Role)
	}
	if got := strings.Join(roles, ","); got != "fast,fast,fast,fast,slow,slow,slow,slow" {
		t.Errorf("roles %s", got)
	}
}

func TestAMPRefusals(t *testing.T) {
	partial := copyFixture(t, "synth-2x4-cpufreq")
	if err := os.RemoveAll(filepath.Join(partial, "devices/system/cpu/cpu3/cpufreq")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		root    string
		opt     AMPOptions
		restore bool
		want    string
		noFreq  bool
	}{
		{name: "no cpufreq (this host's capture)", root: copyFixture(t, "host"), opt: AMPOptions{FastKHz: 2000000, SlowKHz: 1000000}, want: "cpufreq not available on this machine", noFreq: true},
		{name: "restore without cpufreq", root: copyFixture(t, "host"), restore: true, want: "needs CONFIG_CPU_FREQ", noFreq: true},
		{name: "partial cpufreq", root: partial, opt: AMPOptions{FastKHz: 2000000, SlowKHz: 1500000}, want: "for CPUs 3", noFreq: true},
		{name: "above cpuinfo max", root: copyFixture(t, "synth-2x4-cpufreq"), opt: AMPOptions{FastKHz: 3000000, SlowKHz: 1500000}, want: "outside cpu 0's range 1200000-2200000"},
		{name: "below cpuinfo min", root: copyFixture(t, "synth-2x4-cpufreq"), opt: AMPOptions{FastKHz: 2000000, SlowKHz: 800000}, want: "outside cpu 2's range"},
		{name: "slow above fast", root: copyFixture(t, "synth-2x4-cpufreq"), opt: AMPOptions{FastKHz: 1500000, SlowKHz: 2000000}, want: "above the fast one"},
		{name: "missing frequency", root: copyFixture(t, "synth-2x4-cpufreq"), opt: AMPOptions{FastKHz: 1500000}, want: "give both"},
		{name: "negative cps", root: copyFixture(t, "synth-2x4-cpufreq"), opt: AMPOptions{FastKHz: 2000000, SlowKHz: 1500000, CoresPerSocket: -1}, want: "cores per socket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys, top := readTop(t, tc.root)
			var err error
			if tc.restore {
				_, err = PlanAMPRestore(fsys, top, tc.opt)
			} else {
				_, err = PlanAMP(fsys, top, tc.opt)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if errors.Is(err, ErrNoCPUFreq) != tc.noFreq {
				t.Errorf("errors.Is(ErrNoCPUFreq) = %v, want %v", !tc.noFreq, tc.noFreq)
			}
		})
	}
}
