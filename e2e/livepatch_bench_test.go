package e2e

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/syncord/syncord/bpf"
	"github.com/syncord/syncord/livepatch/concord"
)

// BenchmarkSynCordLivepatch measures, on the real stock-syncord kernel (2x2
// TCG guest, one VM for all iterations):
//   - build-s: syncord policy build lockstat --livepatch on the host (kbuild
//     of our concord module against the extracted headers, gcc-11), median;
//   - install-s: syncord policy install of lockstat with its livepatch (load,
//     pin, insmod, transition) as seen by the host, less the round trip of
//     a no-op guest command, median;
//   - mwrl-ratio: MWRL works/sec on 4 vCPUs with lockstat installed divided
//     by without, the two alternating in each iteration, ratio of medians.
//
// Run it with
//
//	SYNCORD_E2E=1 go test ./e2e -run '^$' -bench SynCordLivepatch -benchtime 5x
//
// The SynCord kernels boot with net.core.bpf_jit_enable=0 (no
// CONFIG_BPF_JIT_ALWAYS_ON), so the policy programs run in the BPF
// interpreter; SYNCORD_BENCH_JIT=1 turns the JIT on in the guest before
// anything is loaded.
func BenchmarkSynCordLivepatch(b *testing.B) {
	benchPolicyLivepatch(b, StockSynCord, "lockstat")
}

// BenchmarkSynCordCNALivepatch is BenchmarkSynCordLivepatch for
// numa-grouping-cna on cna-syncord (CNA active: 2 nodes): the module
// replaces the slow path of every spinlock, with the kernel's ordering
// ratio (reorder_prob_bits 7), so mwrl-ratio is the cost of our slow path
// and the klp redirection for every contended spinlock, plus the program
// run on 1 in 128 head waits.
//
//	SYNCORD_E2E=1 go test ./e2e -run '^$' -bench SynCordCNALivepatch -benchtime 5x
func BenchmarkSynCordCNALivepatch(b *testing.B) {
	benchPolicyLivepatch(b, CNASynCord, "numa-grouping-cna")
}

// benchBuildBoot builds policy's concord livepatch against branch's
// kernel three times (returning the seconds each build took) and boots one
// 2x2 VM with the policy at /root/out/<policy>.
func benchBuildBoot(b *testing.B, branch, policy string) (*VM, []float64) {
	k := SynCordKernelFor(b, branch)
	out := b.TempDir()
	res, err := bpf.WriteBuiltin(policy, out)
	if err != nil {
		b.Fatal(err)
	}
	var builds []float64
	var ko *concord.Result
	for i := 0; i < 3; i++ {
		start := time.Now()
		ko, err = concord.Build(context.Background(), res.Manifest, k.KDIR, filepath.Join(out, policy, "LivePatchGen"), concord.Options{CC: "gcc-11", Object: res.Object})
		if err != nil {
			b.Fatal(err)
		}
		builds = append(builds, time.Since(start).Seconds())
	}
	files := map[string]string{
		"/root/out/" + policy + "/eBPFGen/" + filepath.Base(res.Object): res.Object,
		"/root/out/" + policy + "/eBPFGen/" + bpf.ManifestName:          res.ManifestPath,
		"/root/out/" + policy + "/LivePatchGen/" + concord.ModuleFile:   ko.Module,
	}
	return Boot(b, Config{Sockets: 2, Cores: 2, SynCord: k, Files: files, Append: noTimerCheck}), builds
}

func benchPolicyLivepatch(b *testing.B, branch, policy string) {
	vm, builds := benchBuildBoot(b, branch, policy)
	if os.Getenv("SYNCORD_BENCH_JIT") == "1" {
		vm.MustRun(b, "echo 1 >/proc/sys/net/core/bpf_jit_enable")
	}
	b.Logf("bpf_jit_enable=%s", strings.TrimSpace(vm.MustRun(b, "cat /proc/sys/net/core/bpf_jit_enable")))
	mwrl := func() float64 {
		o, _ := withoutProgress(vm.MustRun(b, "rm -rf /tmp/mw && mkdir -p /tmp/mw && syncord bench fxmark --type MWRL --ncore 4 --duration 2 --root /tmp/mw"))
		for _, l := range strings.Split(o, "\n") {
			f := strings.Fields(l)
			if len(f) >= 4 && !strings.HasPrefix(l, "#") {
				if v, err := strconv.ParseFloat(f[3], 64); err == nil {
					return v
				}
			}
		}
		b.Fatalf("no MWRL data line:\n%s", o)
		return 0
	}
	var installs, with, without []float64
	for b.Loop() {
		start := time.Now()
		vm.MustRun(b, "true")
		rtt := time.Since(start)
		start = time.Now()
		vm.MustRun(b, "syncord policy install /root/out/"+policy+" >/dev/null 2>&1")
		installs = append(installs, (time.Since(start) - rtt).Seconds())
		with = append(with, mwrl())
		vm.MustRun(b, "syncord policy uninstall "+policy+" >/dev/null 2>&1")
		without = append(without, mwrl())
	}
	b.ReportMetric(median(builds), "build-s")
	b.ReportMetric(median(installs), "install-s")
	b.ReportMetric(median(with)/median(without), "mwrl-ratio")
	b.ReportMetric(median(with), "mwrl-with-ops/s")
	b.ReportMetric(median(without), "mwrl-without-ops/s")
	b.ReportMetric(0, "ns/op")
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}
