package fxmark

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/syncord/syncord/workloads"
	"github.com/syncord/syncord/workloads/internal/cputest"
	"github.com/syncord/syncord/workloads/internal/rawsys"
	"golang.org/x/sys/unix"
)

// soloWorker is a worker with its own task, outside a Run, for driving one
// type's pre and main directly.
func soloWorker(id int) *fxWorker {
	return &fxWorker{t: workloads.NewTask(id), id: id, fd: -1}
}

func TestPseudoRandomIsFxmarksLCG(t *testing.T) {
	// 1103515245*x + 12345 in unsigned 32-bit arithmetic.
	for _, tc := range []struct{ in, want uint32 }{{0, 12345}, {12345, 3554416254}, {0xffffffff, 3191464396}} {
		if got := pseudoRandom(tc.in); got != tc.want {
			t.Errorf("pseudoRandom(%d) = %d, want %d", tc.in, got, tc.want)
		}
	}
	d := []uint32{0, 99, 99}
	randomizeDigits(d)
	if d[0] != 12345 || d[1] != 3554416254 || d[2] != pseudoRandom(3554416254) {
		t.Errorf("randomizeDigits chains from the digit before: %v", d)
	}
}

// TestSharedFileSetup: the leader makes DWOM's and DRBM's shared file with
// one 8 MiB region per worker and DRBH's with one page; the other workers
// make nothing.
func TestSharedFileSetup(t *testing.T) {
	for _, tc := range []struct {
		typ, file string
		size      int64
	}{
		{"DWOM", "n_mtime_upt.dat", 3 * fxRegion},
		{"DRBM", "n_shfile_rd.dat", 3 * fxRegion},
		{"DRBM_bg", "n_shfile_rd.dat", 3 * fxRegion},
		{"DRBH", "n_shblk_rd.dat", int64(rawsys.PageSize)},
		{"DRBH_bg", "n_shblk_rd.dat", int64(rawsys.PageSize)},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			b := &fxBench{root: fastTempDir(t), duration: time.Second, ncore: 3}
			if err := fxTypes[tc.typ].ops.pre(b, soloWorker(1)); err != nil {
				t.Fatal(err)
			}
			if ents, _ := os.ReadDir(b.root); len(ents) != 0 {
				t.Fatalf("worker 1 made %s; only the leader sets up", ents[0].Name())
			}
			if err := fxTypes[tc.typ].ops.pre(b, soloWorker(0)); err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(filepath.Join(b.root, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if st.Size() != tc.size {
				t.Errorf("%s is %d bytes, want %d", tc.file, st.Size(), tc.size)
			}
		})
	}
}

// TestDWTLTruncates: a worker whose file got 10 pages truncates it to 8,
// 7, ..., 1 pages (fxmark starts two pages below what it wrote), one work
// each, and then ends alone.
func TestDWTLTruncates(t *testing.T) {
	b := &fxBench{root: fastTempDir(t), duration: time.Second, ncore: 1}
	w := soloWorker(0)
	path := filepath.Join(b.root, "u_file_tr-0.dat")
	fd, err := unix.Open(path, unix.O_CREAT|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := writePages(fd, alignedPage(), 10); err != nil {
		t.Fatal(err)
	}
	w.fd, w.next = fd, 10
	if err := fxTypes["DWTL"].ops.main(b, w); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if w.works != 8 || st.Size() != int64(rawsys.PageSize) || w.t.Stopped() {
		t.Errorf("works %d, size %d, stopped the others %v; want 8 truncates down to one page, the others left running", w.works, st.Size(), w.t.Stopped())
	}
}

// TestDWTLFillIsBounded: the fill stops at the duration even with room
// left (fxmark fills until ENOSPC).
func TestDWTLFillIsBounded(t *testing.T) {
	b := &fxBench{root: fastTempDir(t), duration: 50 * time.Millisecond, ncore: 1}
	w := soloWorker(0)
	start := time.Now()
	if err := fxTypes["DWTL"].ops.pre(b, w); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(w.fd)
	if w.next == 0 || w.next > fxFillCap/uint64(rawsys.PageSize) {
		t.Errorf("filled %d pages", w.next)
	}
	t.Logf("filled %d pages in %v", w.next, time.Since(start))
}

// TestDirectIO: --directio sets O_DIRECT on the data file, and is refused
// for a type that has none, naming the types that do.
func TestDirectIO(t *testing.T) {
	dir := t.TempDir()
	b := &fxBench{root: dir, directio: true}
	fd, err := b.openData(filepath.Join(dir, "f"))
	if errors.Is(err, unix.EINVAL) {
		if !strings.Contains(err.Error(), "does not do direct I/O") {
			t.Errorf("error does not say what is wrong: %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	unix.Close(fd)
	if err != nil {
		t.Fatal(err)
	}
	if flags&unix.O_DIRECT == 0 {
		t.Errorf("flags %#x lack O_DIRECT", flags)
	}
	b.directio = false
	fd, err = b.openData(filepath.Join(dir, "g"))
	if err != nil {
		t.Fatal(err)
	}
	flags, _ = unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	unix.Close(fd)
	if flags&unix.O_DIRECT != 0 {
		t.Errorf("O_DIRECT without --directio")
	}
	if p := alignedPage(); len(p) != rawsys.PageSize || uintptr(unsafePointer(p))%uintptr(rawsys.PageSize) != 0 {
		t.Errorf("alignedPage: %d bytes at %#x", len(p), uintptr(unsafePointer(p)))
	}

	_, err = Run(context.Background(), Config{Type: "MWRL", NCore: 1, Duration: time.Second, Root: t.TempDir(), CoresPerSocket: 1, NoAffinity: true, DirectIO: true})
	if err == nil || !strings.Contains(err.Error(), "DWOL") || !strings.Contains(err.Error(), "MWRL") {
		t.Errorf("--directio with MWRL: %v; want a refusal naming MWRL and the types that do direct I/O", err)
	}
	// A real run with O_DIRECT data on a file system that has it.
	for _, typ := range []string{"DWOL", "DWSL", "DRBM"} {
		res, err := Run(context.Background(), Config{Type: typ, NCore: 1, Duration: 200 * time.Millisecond, Root: t.TempDir(), CoresPerSocket: 1, NoAffinity: true, DirectIO: true})
		if err != nil {
			t.Fatalf("%s --directio: %v", typ, err)
		}
		if res.Works <= 0 {
			t.Errorf("%s --directio: no works", typ)
		}
	}
}

// TestFxMarkBackgroundRun runs each _bg type with one foreground and one
// background worker: the report covers the foreground one only, the
// background one worked too, and the root is left empty.
func TestFxMarkBackgroundRun(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: runs every _bg type (drop -short)")
	}
	noAff := cputest.Online(t) < 2
	for _, ft := range Types() {
		if !strings.HasSuffix(ft.Name, "_bg") {
			continue
		}
		t.Run(ft.Name, func(t *testing.T) {
			root := fastTempDir(t)
			res, err := Run(context.Background(), Config{Type: ft.Name, NCore: 2, NBg: 1, Duration: 300 * time.Millisecond,
				Root: root, CoresPerSocket: 2, NoAffinity: noAff})
			if err != nil {
				t.Fatal(err)
			}
			if res.NCPU != 1 || len(res.Workers) != 2 || res.Workers[0].BG || !res.Workers[1].BG {
				t.Fatalf("ncpu %d, workers %+v; want one foreground and one background worker", res.NCPU, res.Workers)
			}
			if res.Works != res.Workers[0].Works || res.Works <= 0 {
				t.Errorf("report works %f, foreground worker %f: the background worker's %f must stay out", res.Works, res.Workers[0].Works, res.Workers[1].Works)
			}
			if res.Workers[1].Works <= 0 {
				t.Errorf("the background worker did nothing: %+v", res.Workers[1])
			}
			if ents, _ := os.ReadDir(root); len(ents) != 0 {
				t.Errorf("root not cleaned: %d entries, first %s", len(ents), ents[0].Name())
			}
		})
	}
}

func unsafePointer(p []byte) unsafe.Pointer { return unsafe.Pointer(&p[0]) }
