package vm

import (
	"context"
	"testing"
)

// BenchmarkQMPQueryCPUsFast is one query-cpus-fast round trip to a real,
// paused 2x2 QEMU over its unix socket.
func BenchmarkQMPQueryCPUsFast(b *testing.B) {
	_, c := startPausedQEMU(b, Config{Sockets: 2, Cores: 2, MemPerNodeMB: 32})
	ctx := context.Background()
	for b.Loop() {
		if _, err := c.QueryCPUsFast(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPlanArtifactGuest plans the 224-vCPU guest onto an 8-node host.
func BenchmarkPlanArtifactGuest(b *testing.B) {
	g := guest(8, 28)
	h := hostOf(28, 28, 28, 28, 28, 28, 28, 28)
	for b.Loop() {
		if _, err := NewPlan(g, h, PlanOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
