package fxmark

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/syncord/syncord/workloads/internal/cputest"
)

var fxDataRE = regexp.MustCompile(`^(\d+) (\d+\.\d{6}) (\d+\.\d{6}) (\d+\.\d{6}) (\d+\.\d{6}) (\d+\.\d{6}) $`)

// TestFxMarkTypesRun runs every type for a short while with 2 workers in
// a fresh directory: the report has fxmark's shape, works were done, fast
// plus slow works/sec is the total, and the root is left empty.
func TestFxMarkTypesRun(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: runs every fxmark type (drop -short)")
	}
	noAff := cputest.Online(t) < 2
	for _, ft := range Types() {
		t.Run(ft.Name, func(t *testing.T) {
			root := fastTempDir(t)
			res, err := Run(context.Background(), Config{Type: ft.Name, NCore: 2, Duration: 300 * time.Millisecond,
				Root: root, CoresPerSocket: 2, NoAffinity: noAff})
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			res.WriteText(&buf)
			lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
			if len(lines) != 2 || lines[0] != Header || !fxDataRE.MatchString(lines[1]) {
				t.Fatalf("report:\n%q", buf.String())
			}
			if res.Works <= 0 || res.WorksPerSec <= 0 {
				t.Errorf("no works: %+v", res)
			}
			if d := res.FastPerSec + res.SlowPerSec - res.WorksPerSec; d > 1e-6*res.WorksPerSec || d < -1e-6*res.WorksPerSec {
				t.Errorf("fast %f + slow %f != total %f", res.FastPerSec, res.SlowPerSec, res.WorksPerSec)
			}
			ents, _ := os.ReadDir(root)
			if len(ents) != 0 {
				t.Errorf("root not cleaned: %d entries, first %s", len(ents), ents[0].Name())
			}
		})
	}
}

// fastTempDir is a temp dir on the /dev/shm tmpfs when there is one (MRPH
// makes 32768 files), else under t.TempDir.
func fastTempDir(t *testing.T) string {
	d, err := os.MkdirTemp("/dev/shm", "syncord-test.")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func TestFxMarkRootChecks(t *testing.T) {
	dir := t.TempDir()
	busy := t.TempDir()
	os.Mkdir(filepath.Join(busy, "1"), 0o755)
	leftover := t.TempDir()
	os.WriteFile(filepath.Join(leftover, "n_dir_ins-0-5.dat"), nil, 0o600)
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "precious"), []byte("x"), 0o600)
	file := filepath.Join(dir, "f")
	os.WriteFile(file, nil, 0o600)
	for _, tc := range []struct {
		name, root, want string
	}{
		{"missing", filepath.Join(dir, "nope"), "no such file"},
		{"file", file, "not a directory"},
		{"worker dir exists", busy, "already holds " + filepath.Join(busy, "1")},
		{"root file exists", leftover, "already holds " + filepath.Join(leftover, "n_dir_ins-0-5.dat")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(context.Background(), Config{Type: "MWRL", NCore: 1, Duration: time.Second, Root: tc.root, CoresPerSocket: 1, NoAffinity: true})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(busy, "1")); err != nil {
		t.Fatal("a refused root was touched")
	}
	// Unrelated files in the root stay.
	if _, err := Run(context.Background(), Config{Type: "MWRM", NCore: 2, Duration: 200 * time.Millisecond, Root: other, CoresPerSocket: 2, NoAffinity: true}); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(other)
	if len(ents) != 1 || ents[0].Name() != "precious" {
		t.Fatalf("root after the run holds %v, want only precious", ents)
	}
}
