//go:build ignore

// gen.go compiles the test objects of bpf/testdata. Run from bpf/:
//
//	go run testdata/gen.go
//
// artpol is shaped like the artifact's output (output/artpol/eBPFGen/
// artpol_kern.o, legacy map, lock_* sections, no BTF, no manifest);
// stockpol (lockstat-sized: 3 programs, the lockstat map) and stockbad (fails
// the verifier) use socket sections and upstream helper ids so that they
// load on stock kernels, and keep their manifests.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/syncord/syncord/bpf"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "syncord-testdata-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	res, err := bpf.Build(ctx, "testdata/artpol", tmp, bpf.BuildOptions{NCPU: 4})
	if err != nil {
		return err
	}
	if err := copyFile(res.Object, "testdata/output/artpol/eBPFGen/artpol_kern.o"); err != nil {
		return err
	}
	for _, n := range []string{"stockpol", "stockbad"} {
		res, err := bpf.Build(ctx, "testdata/"+n, tmp, bpf.BuildOptions{NCPU: 4, AllowStock: true, IncludeDir: "testdata/stockinc"})
		if err != nil {
			return err
		}
		for _, f := range []string{res.Object, res.ManifestPath} {
			if err := copyFile(f, filepath.Join("testdata/output", n, "eBPFGen", filepath.Base(f))); err != nil {
				return err
			}
		}
	}
	return nil
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}
