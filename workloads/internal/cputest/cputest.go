// Package cputest holds the CPU helpers the workloads tests share.
package cputest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/syncord/syncord/internal/pseudofs"
	"github.com/syncord/syncord/numa"
)

// FakeSys makes a sysfs root whose devices/system/cpu/online lists online.
func FakeSys(tb testing.TB, online string) pseudofs.FS {
	tb.Helper()
	root := tb.TempDir()
	d := filepath.Join(root, "devices/system/cpu")
	if err := os.MkdirAll(d, 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "online"), []byte(online+"\n"), 0o644); err != nil {
		tb.Fatal(err)
	}
	return pseudofs.FS(root)
}

// Online returns how many CPUs /sys/devices/system/cpu/online lists.
func Online(tb testing.TB) int {
	tb.Helper()
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		tb.Fatal(err)
	}
	set, err := numa.ParseCPUList(string(b))
	if err != nil {
		tb.Fatal(err)
	}
	return set.Len()
}
