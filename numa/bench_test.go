package numa

import "testing"

// BenchmarkTopologyHostFixture is a cold read of the captured host tree
// (NewFS plus Topology, what `syncord topology` does after exec).
func BenchmarkTopologyHostFixture(b *testing.B) { benchTopology(b, "testdata/host") }

// BenchmarkTopology8x28Fixture reads the 224-CPU artifact layout.
func BenchmarkTopology8x28Fixture(b *testing.B) { benchTopology(b, "testdata/synth-8x28") }

// BenchmarkTopologyLiveSys reads this machine's /sys.
func BenchmarkTopologyLiveSys(b *testing.B) { benchTopology(b, DefaultRoot) }

func benchTopology(b *testing.B, root string) {
	for b.Loop() {
		fs, err := NewFS(root)
		if err != nil {
			b.Skipf("skipping: %v", err)
		}
		if _, err := fs.Topology(); err != nil {
			b.Fatal(err)
		}
	}
}
