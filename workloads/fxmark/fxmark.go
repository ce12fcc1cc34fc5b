package fxmark

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/syncord/syncord/workloads"
	"github.com/syncord/syncord/workloads/internal/rawsys"
	"golang.org/x/sys/unix"

	"github.com/syncord/syncord/internal/pseudofs"
	"github.com/syncord/syncord/internal/setting"
)

// Type is one FxMark metadata/data microbenchmark.
type Type struct {
	Name string
	// Description is fxmark's own text for --type.
	Description string
	// DirectIO: the type opens its data file with O_DIRECT under
	// --directio (fxmark's DW* and DRB* types).
	DirectIO bool
	ops      fxOps
}

type fxOps struct {
	// pre is pre_work: runs on the pinned worker before the barrier.
	pre func(b *fxBench, w *fxWorker) error
	// main is main_work: counts works until stopped; ENOSPC ends it
	// without error as in fxmark.
	main func(b *fxBench, w *fxWorker) error
}

var fxTypes = map[string]*Type{}

// Types returns the supported types sorted by name.
func Types() []*Type {
	out := make([]*Type, 0, len(fxTypes))
	for _, t := range fxTypes {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Config configures one FxMark run.
type Config struct {
	Type string
	// NCore is --ncore: workers, background ones included.
	NCore int
	// NBg is --nbg: the last NBg workers are background workers, left out
	// of the report.
	NBg int
	// Duration is --duration.
	Duration time.Duration
	// Root is --root: an existing directory where nothing the run makes
	// exists yet (<root>/<id>, MRPH's <root>/0..7, the root-level files of
	// MWCM, MWUM, MWRM); what the run makes is removed afterwards, the
	// rest is left alone.
	Root string
	// CoresPerSocket is the placement rule's cps (fxmark's CORE_PER_CHIP).
	CoresPerSocket int
	NoAffinity     bool
	SysRoot        pseudofs.FS
	// DirectIO is --directio: the DW* and DRB* types set O_DIRECT on
	// their data files (fcntl F_SETFL, as fxmark does).
	DirectIO bool
	// Progress receives one status line a second while the workers run
	// (nil: none), as ProgressLine formats it: the foreground workers'
	// works so far (what the report's works counts) and their rate since
	// the workers were released. Nothing is written during the setup nor
	// after Run returned; fxmark itself prints nothing while it runs, so
	// these lines are not part of its output (WriteText is).
	Progress io.Writer
}

// ProgressLine formats one of Config.Progress's status lines:
// "fxmark: TYPE E/D s: N works, R works/s" with E the whole seconds since
// the workers were released, D the duration in seconds, N the works so far
// and R their rate over the elapsed time.
func ProgressLine(typ string, elapsed, duration time.Duration, works uint64) string {
	return fmt.Sprintf("fxmark: %s %s: %d works, %.0f works/s\n", typ, workloads.ProgressTime(elapsed, duration),
		works, workloads.PerSecond(works, elapsed))
}

// Worker is one worker's outcome.
type Worker struct {
	ID    int     `json:"id"`
	CPU   int     `json:"cpu"`
	Fast  bool    `json:"fast"`
	BG    bool    `json:"background"`
	Works float64 `json:"works"`
	Usecs uint64  `json:"usecs"`
	// CPU is the worker thread's CPU seconds from the start barrier on.
	CPUSeconds float64 `json:"cpu_seconds"`
}

// Result is fxmark's report.
type Result struct {
	Type        string   `json:"type"`
	NCPU        int      `json:"ncpu"`
	Secs        float64  `json:"secs"`
	Works       float64  `json:"works"`
	WorksPerSec float64  `json:"works_per_sec"`
	FastPerSec  float64  `json:"fast_works_per_sec"`
	SlowPerSec  float64  `json:"slow_works_per_sec"`
	Workers     []Worker `json:"workers"`
}

// Header is the SynCord fxmark's report header with no profiler (its
// profile column names are empty, hence the double space).
const Header = "# ncpu secs works works/sec  fast_works/sec, slow_works/sec"

// WriteText writes fxmark's two report lines: Header and
// "%d %f %f %f %f %f %s" (ncpu, avg secs, works, works/sec, fast and slow
// works/sec, empty profile data).
func (r *Result) WriteText(w io.Writer) error {
	_, err := fmt.Fprintf(w, "%s\n%d %f %f %f %f %f %s\n", Header, r.NCPU, r.Secs, r.Works, r.WorksPerSec, r.FastPerSec, r.SlowPerSec, "")
	return err
}

type fxBench struct {
	root     string
	duration time.Duration
	ncore    int
	nbg      int
	directio bool
	// workers are every worker, by id; complete once the start barrier
	// has passed (the _bg workers read the others' file counts).
	mu      sync.Mutex
	workers []*fxWorker
}

// isBG tells a background worker: the last nbg ids, as fxmark's is_bg.
func (b *fxBench) isBG(w *fxWorker) bool { return w.id >= b.ncore-b.nbg }

// allWorkers returns the workers; call it after the start barrier.
func (b *fxBench) allWorkers() []*fxWorker {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*fxWorker(nil), b.workers...)
}

// openData opens a type's data file and, under --directio, sets O_DIRECT
// on it as fxmark does (fcntl F_SETFL after open).
func (b *fxBench) openData(path string) (int, error) {
	fd, err := unix.Open(path, unix.O_CREAT|unix.O_RDWR|unix.O_CLOEXEC, 0o700)
	if err != nil {
		return -1, err
	}
	if b.directio {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, unix.O_DIRECT); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("set O_DIRECT on %s: %w (the file system under the test root does not do direct I/O; tmpfs does only from Linux 6.6)", path, err)
		}
	}
	return fd, nil
}

// alignedPage is a page-aligned page buffer, as fxmark's posix_memalign'd
// worker->page: O_DIRECT needs the alignment.
func alignedPage() []byte {
	b := make([]byte, 2*rawsys.PageSize)
	off := int(uintptr(unsafe.Pointer(&b[0])) % uintptr(rawsys.PageSize))
	if off != 0 {
		off = rawsys.PageSize - off
	}
	return b[off : off+rawsys.PageSize : off+rawsys.PageSize]
}

// writePages writes n copies of page at the file's offset.
func writePages(fd int, page []byte, n int) error {
	for i := 0; i < n; i++ {
		if w, e := rawsys.Write(fd, &page[0], len(page)); e != 0 || w != len(page) {
			if e == 0 {
				e = unix.EIO
			}
			return fmt.Errorf("write: %w", e)
		}
	}
	return nil
}

type fxWorker struct {
	t     *workloads.Task
	id    int
	works uint64
	// private[0] of fxmark: the next file number, or the files made.
	next uint64
	fd   int
}

// pathBuf builds "<prefix><n><suffix>\0" in place without allocating.
type pathBuf struct {
	buf    []byte
	prefix int
	suffix string
}

func newPathBuf(prefix, suffix string) *pathBuf {
	b := make([]byte, 0, len(prefix)+len(suffix)+24)
	b = append(b, prefix...)
	return &pathBuf{buf: b, prefix: len(prefix), suffix: suffix}
}

func (p *pathBuf) set(n uint64) *byte {
	p.buf = strconv.AppendUint(p.buf[:p.prefix], n, 10)
	p.buf = append(p.buf, p.suffix...)
	p.buf = append(p.buf, 0)
	return &p.buf[0]
}

func (p *pathBuf) String() string { return string(p.buf[:len(p.buf)-1]) }

func (b *fxBench) workerDir(w *fxWorker) string {
	return filepath.Join(b.root, strconv.Itoa(w.id))
}

// fxCount runs op until stopped, one work per successful call; an error
// stops every worker (bench->stop = 1); ENOSPC ends the run quietly.
func fxCount(w *fxWorker, op func() unix.Errno) error {
	stop := w.t.StopFlag()
	for !stop.Load() {
		if e := op(); e != 0 {
			if e == unix.EINTR {
				continue
			}
			w.t.StopAll()
			if e == unix.ENOSPC {
				return nil
			}
			return e
		}
		w.works++
		w.t.Count.Add(1)
	}
	return nil
}

// mwrlMain is MWRL's loop, written out (no closure, no strconv): it is
// the fxmark type the driver is benchmarked on against C (bench/cmpref).
// Two path buffers alternate as old and new name; only the number of the
// new one is rewritten per rename.
func mwrlMain(b *fxBench, w *fxWorker) error {
	prefix := b.workerDir(w) + "/n_file_rename-"
	var bufs [2][]byte
	for i := range bufs {
		bufs[i] = make([]byte, len(prefix)+32)
		copy(bufs[i], prefix)
	}
	putFileNum(bufs[0][len(prefix):], w.next)
	from, to := 0, 1
	stop, c := w.t.StopFlag(), w.t.Count
	for !stop.Load() {
		putFileNum(bufs[to][len(prefix):], w.next+1)
		if e := rawsys.Rename(&bufs[from][0], &bufs[to][0]); e != 0 {
			if e == unix.EINTR {
				continue
			}
			w.t.StopAll()
			if e == unix.ENOSPC {
				return nil
			}
			return e
		}
		w.next++
		w.works++
		c.Add(1)
		from, to = to, from
	}
	return nil
}

// putFileNum writes n in decimal, ".dat" and a NUL at the start of p.
func putFileNum(p []byte, n uint64) {
	var tmp [20]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	k := copy(p, tmp[i:])
	copy(p[k:], ".dat\x00")
}

// fxCountN is fxCount over the file numbers 0..n-1: the worker ends when
// they run out.
func fxCountN(w *fxWorker, n uint64, op func(i uint64) unix.Errno) error {
	stop := w.t.StopFlag()
	for i := uint64(0); i < n && !stop.Load(); {
		if e := op(i); e != 0 {
			if e == unix.EINTR {
				continue
			}
			w.t.StopAll()
			if e == unix.ENOSPC {
				return nil
			}
			return e
		}
		i++
		w.works++
		w.t.Count.Add(1)
	}
	return nil
}

// fxCreateFor creates empty files named by pb for up to d (or until
// ENOSPC), counting them in w.next: the setup of MWRM, MRDL, MWUL and
// MWUM. fxmark fills until ENOSPC for the unlink tests; a time bound
// keeps a large tmpfs from eating the machine's memory.
func fxCreateFor(w *fxWorker, pb *pathBuf, d time.Duration) error {
	deadline := time.Now().Add(d)
	for w.next = 0; ; w.next++ {
		if w.next%64 == 0 && time.Now().After(deadline) {
			return nil
		}
		fd, e := rawsys.Open(pb.set(w.next), unix.O_CREAT|unix.O_RDWR|unix.O_CLOEXEC, 0o700)
		if e == unix.ENOSPC {
			return nil
		}
		if e != 0 {
			return fmt.Errorf("create %s: %w", pb, e)
		}
		rawsys.Close(fd)
	}
}

// addType registers a type; dio says it has data files that --directio
// opens with O_DIRECT.
func addType(name, desc string, dio bool, ops fxOps) {
	fxTypes[name] = &Type{Name: name, Description: desc, DirectIO: dio, ops: ops}
}

// mkdirOwn makes the worker's private directory <root>/<id>.
func mkdirOwn(b *fxBench, w *fxWorker) error { return os.MkdirAll(b.workerDir(w), 0o755) }

// unlinkAll unlinks the files made by pre_work in order; a worker that
// runs out ends alone (fxmark's MWUL/MWUM loops end at private[0]).
func unlinkAll(pb *pathBuf) func(b *fxBench, w *fxWorker) error {
	return func(b *fxBench, w *fxWorker) error {
		return fxCountN(w, w.next, func(i uint64) unix.Errno { return rawsys.Unlink(pb.set(i)) })
	}
}

// onePage is the pre_work of DWOL and DRBL: a private file of one page.
func onePage(name string) func(b *fxBench, w *fxWorker) error {
	return func(b *fxBench, w *fxWorker) error {
		if err := mkdirOwn(b, w); err != nil {
			return err
		}
		fd, err := b.openData(filepath.Join(b.workerDir(w), name))
		if err != nil {
			return err
		}
		w.fd = fd
		return writePages(fd, alignedPage(), 1)
	}
}

func init() {
	metadataWriteTypes()
	metadataReadTypes()
	dataTypes()
	sharedDataTypes()     // more.go
	sharedMetadataTypes() // more.go
}

// metadataWriteTypes registers the MW* types: create, unlink, rename.
func metadataWriteTypes() {
	addType("MWRL", "rename a file: each process rename a file in its private directory", false, fxOps{
		pre: func(b *fxBench, w *fxWorker) error {
			if err := mkdirOwn(b, w); err != nil {
				return err
			}
			p := filepath.Join(b.workerDir(w), "n_file_rename-0.dat")
			f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o700)
			if err != nil {
				return err
			}
			f.Sync()
			return f.Close()
		},
		main: mwrlMain,
	})
	addType("MWCL", "inode allocation: each process creates files at its private directory", false, fxOps{
		pre: mkdirOwn,
		main: func(b *fxBench, w *fxWorker) error {
			pb := newPathBuf(b.workerDir(w)+"/n_inode_alloc-", ".dat")
			return fxCount(w, func() unix.Errno {
				fd, e := rawsys.Open(pb.set(w.works), unix.O_CREAT|unix.O_RDWR|unix.O_CLOEXEC, 0o700)
				if e != 0 {
					return e
				}
				return rawsys.Close(fd)
			})
		},
	})
	addType("MWCM", "each process creates files in their private directory", false, fxOps{
		main: func(b *fxBench, w *fxWorker) error {
			// fxmark's MWCM creates in the shared test root, whatever its
			// description says.
			pb := newPathBuf(fmt.Sprintf("%s/m_file_cr-%d-", b.root, w.id), ".dat")
			page := make([]byte, rawsys.PageSize)
			return fxCount(w, func() unix.Errno {
				fd, e := rawsys.Open(pb.set(w.works), unix.O_CREAT|unix.O_RDWR|unix.O_CLOEXEC, 0o700)
				if e != 0 {
					return e
				}
				if _, e := rawsys.Write(fd, &page[0], len(page)); e != 0 {
					rawsys.Close(fd)
					return e
				}
				return rawsys.Close(fd)
			})
		},
	})
	// fxmark's file MWUL.c unlinks in private directories and MWUM.c in
	// the shared root (its --type table swaps the two names; we follow the
	// sources and the L/M naming: L = private, M = shared).
	addType("MWUL", "each process deletes files in their private directory", false, fxOps{
		pre: func(b *fxBench, w *fxWorker) error {
			if err := mkdirOwn(b, w); err != nil {
				return err
			}
			return fxCreateFor(w, newPathBuf(b.workerDir(w)+"/u_file_rm-", ".dat"), b.duration)
		},
		main: func(b *fxBench, w *fxWorker) error {
			return unlinkAll(newPathBuf(b.workerDir(w)+"/u_file_rm-", ".dat"))(b, w)
		},
	})
	addType("MWUM", "each process deletes files at the test root directory", false, fxOps{
		pre: func(b *fxBench, w *fxWorker) error {
			return fxCreateFor(w, newPathBuf(fmt.Sprintf("%s/u_sh_file_rm-%d-", b.root, w.id), ".dat"), b.duration)
		},
		main: func(b *fxBench, w *fxWorker) error {
			return unlinkAll(newPathBuf(fmt.Sprintf("%s/u_sh_file_rm-%d-", b.root, w.id), ".dat"))(b, w)
		},
	})
	addType("MWRM", "directory insert: each process moves files from its private directory to a common direcotry", false, fxOps{
		pre: func(b *fxBench, w *fxWorker) error {
			if err := mkdirOwn(b, w); err != nil {
				return err
			}
			pb := newPathBuf(fmt.Sprintf("%s/n_dir_ins-%d-", b.workerDir(w), w.id), ".dat")
			if err := fxCreateFor(w, pb, b.duration); err != nil {
				return err
			}
			// Remove 5% so the moves do not hit ENOSPC.
			rm := uint64(float64(w.next)*0.05) + 1
			for i := uint64(0); w.next > 0 && i < rm; i++ {
				w.next--
				if e := rawsys.Unlink(pb.set(w.next)); e != 0 {
					return fmt.Errorf("unlink %s: %w", pb, e)
				}
			}
			return nil
		},
		main: func(b *fxBench, w *fxWorker) error {
			from := newPathBuf(fmt.Sprintf("%s/n_dir_ins-%d-", b.workerDir(w), w.id), ".dat")
			to := newPathBuf(fmt.Sprintf("%s/n_dir_ins-%d-", b.root, w.id), ".dat")
			// Moving ends the whole run when a worker runs out (fxmark's
			// MWRM sets bench->stop after its loop).
			defer w.t.StopAll()
			return fxCountN(w, w.next, func(i uint64) unix.Errno { return rawsys.Rename(from.set(i), to.set(i)) })
		},
	})
}

// metadataReadTypes registers the MR* types: path resolution, readdir.
func metadataReadTypes() {
	addType("MRPL", "path resolution for a private file", false, fxOps{
		pre: func(b *fxBench, w *fxWorker) error {
			d := filepath.Join(b.workerDir(w), "0", "0", "0")
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(d, "0"), nil, 0o700)
		},
		main: func(b *fxBench, w *fxWorker) error {
			p := rawsys.Cstr(filepath.Join(b.workerDir(w), "0", "0", "0", "0"))
			var st unix.Stat_t
			return fxCount(w, func() unix.Errno { return rawsys.Stat(p, &st) })
		},
	})
	addType("MRPH", "path resolution at the same level directory", false, fxOps{
		pre: fxBuildTree,
		main: func(b *fxBench, w *fxWorker) error {
			p := rawsys.Cstr(filepath.Join(b.root, "0", "0", "0", "0", "0"))
			var st unix.Stat_t
			return fxCount(w, func() unix.Errno { return rawsys.Stat(p, &st) })
		},
	})
	addType("MRDL", "directory read: each process reads entries of its private directory", false, fxOps{
		pre: func(b *fxBench, w *fxWorker) error {
			if err := mkdirOwn(b, w); err != nil {
				return err
			}
			return fxCreateFor(w, newPathBuf(fmt.Sprintf("%s/n_dir_rd-%d-", b.workerDir(w), w.id), ".dat"), b.duration)
		},
		main: func(b *fxBench, w *fxWorker) error { return fxReaddir(w, b.workerDir(w)) },
	})
}

// dataTypes registers the private-file DW* and DR* types.
func dataTypes() {
	addType("DWAL", "block allocation: each process appends pages to a private file", true, fxOps{
		pre: func(b *fxBench, w *fxWorker) error {
			if err := mkdirOwn(b, w); err != nil {
				return err
			}
			fd, err := b.openData(filepath.Join(b.workerDir(w), fmt.Sprintf("n_blk_alloc-%d.dat", w.id)))
			w.fd = fd
			return err
		},
		main: func(b *fxBench, w *fxWorker) error {
			defer unix.Close(w.fd)
			page := alignedPage()
			return fxCount(w, func() unix.Errno {
				_, e := rawsys.Write(w.fd, &page[0], len(page))
				return e
			})
		},
	})
	addType("DWOL", "block write: each process overwrite a pages to a private file", true, fxOps{
		pre: onePage("n_blk_wrt.dat"),
		main: func(b *fxBench, w *fxWorker) error {
			defer unix.Close(w.fd)
			page := alignedPage()
			return fxCount(w, func() unix.Errno {
				n, e := rawsys.Pwrite(w.fd, &page[0], len(page), 0)
				if e == 0 && n != len(page) {
					return unix.EIO
				}
				return e
			})
		},
	})
	addType("DRBL", "file read: each process read a block of its private file", true, fxOps{
		pre: onePage("n_file_rd.dat"),
		main: func(b *fxBench, w *fxWorker) error {
			defer unix.Close(w.fd)
			page := alignedPage()
			return fxCount(w, func() unix.Errno {
				_, e := rawsys.Pread(w.fd, &page[0], len(page), 0)
				return e
			})
		},
	})
	// fxmark's table runs DRBL_bg with DRBL's operations (n_file_rd_ops):
	// its background workers read their own files like the others (the
	// writer of DRBL_bg.c is not wired in).
	addType("DRBL_bg", "file read with a background writer", true, fxTypes["DRBL"].ops)
}

// fxRootFiles are the patterns of the files some types make in the test
// root itself (MWCM, MWUM, MWRM; the shared-file types of more.go).
var fxRootFiles = []string{"m_file_cr-*.dat", "u_sh_file_rm-*.dat", "n_dir_ins-*.dat",
	"n_mtime_upt.dat", "n_shfile_rd.dat", "n_shblk_rd.dat", "u_file_tr-*.dat",
	"n_shdir_rd-*.dat", "n_shdir_rd_bg-*.dat", "100[0-7]"}

// fxOwned lists what a run of ncore workers makes in root: the worker
// directories <root>/<id> (and MRPH's tree <root>/0..7), and the root
// files matching fxRootFiles.
func fxOwned(root string, ncore int) (dirs []string) {
	for id := range max(ncore, 8) {
		dirs = append(dirs, filepath.Join(root, strconv.Itoa(id)))
	}
	return dirs
}

// Marker is the file a run keeps in its root while it runs
// ("workers N"): what a run killed with SIGKILL left behind is recognised
// by it, and CleanRoot removes exactly that.
const Marker = ".syncord-fxmark"

// checkFxRoot requires root to be an existing directory in which nothing
// the run would make exists yet, so cleaning up afterwards removes only
// what the run made; anything else in root is left alone.
func checkFxRoot(root string, ncore int) error {
	st, err := os.Stat(root)
	if err != nil {
		return setting.Errorf("fxmark {Root} %s: %w (create it, or mount a file system there)", root, err)
	}
	if !st.IsDir() {
		return setting.Errorf("fxmark {Root} %s is not a directory", root)
	}
	leftover := func(what string) error {
		if _, err := os.Lstat(filepath.Join(root, Marker)); err == nil {
			return setting.Errorf("fxmark {Root} %s holds %s, left by an earlier run that did not finish (killed?): run again with {Clean} to remove what it left, or use another root", root, what)
		}
		return setting.Errorf("fxmark {Root} %s already holds %s, not made by a syncord run (no %s marker): remove it or use another root; the run makes and removes <root>/<id>", root, what, Marker)
	}
	if _, err := os.Lstat(filepath.Join(root, Marker)); err == nil {
		return leftover(Marker)
	}
	for _, d := range fxOwned(root, ncore) {
		if _, err := os.Lstat(d); err == nil {
			return leftover(d)
		}
	}
	for _, pat := range fxRootFiles {
		if m, _ := filepath.Glob(filepath.Join(root, pat)); len(m) > 0 {
			return leftover(m[0])
		}
	}
	return nil
}

// cleanFxRoot removes what a run made in root (see fxOwned), the marker
// last.
func cleanFxRoot(root string, ncore int) error {
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	for _, d := range fxOwned(root, ncore) {
		keep(os.RemoveAll(d))
	}
	for _, pat := range fxRootFiles {
		m, _ := filepath.Glob(filepath.Join(root, pat))
		for _, f := range m {
			keep(os.Remove(f))
		}
	}
	if first == nil {
		if err := os.Remove(filepath.Join(root, Marker)); err != nil && !errors.Is(err, os.ErrNotExist) {
			first = err
		}
	}
	return first
}

// CleanRoot removes what an unfinished run left in root, recognised by
// its marker (Marker, naming its worker count): the worker directories
// and root-level files that run made, then the marker. Anything else in
// root is left alone. It reports whether there was a marker.
func CleanRoot(root string) (bool, error) {
	b, err := os.ReadFile(filepath.Join(root, Marker))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, setting.Errorf("fxmark {Clean}: %w", err)
	}
	var ncore int
	if _, err := fmt.Sscanf(string(b), "workers %d", &ncore); err != nil || ncore <= 0 || ncore > workloads.MaxTasks()*16 {
		return false, setting.Errorf("fxmark {Clean}: %s: %q is not a syncord fxmark marker (\"workers N\"); remove it by hand", filepath.Join(root, Marker), b)
	}
	if err := cleanFxRoot(root, ncore); err != nil {
		return true, setting.Errorf("fxmark {Clean} %s: %w", root, err)
	}
	return true, nil
}

// Run runs one FxMark benchmark: NCore pinned workers (the
// placement rule with CoresPerSocket, tagged fast/slow) each do the type's
// setup, meet at the start barrier, and work until Duration passes (or
// until they run out of work). The root is cleaned afterwards on every
// return path.
func Run(ctx context.Context, o Config) (*Result, error) {
	typ, ok := fxTypes[o.Type]
	if !ok {
		var names []string
		for _, t := range Types() {
			names = append(names, t.Name)
		}
		return nil, fmt.Errorf("unknown fxmark type %q (supported: %s)", o.Type, strings.Join(names, ", "))
	}
	if o.NCore <= 0 {
		return nil, setting.Invalid("{NCore} must be > 0, got %d", o.NCore)
	}
	if o.NBg < 0 || o.NBg >= o.NCore {
		return nil, setting.Invalid("{NBg} must be >= 0 and < {NCore}, got %d with %d cores", o.NBg, o.NCore)
	}
	if o.Duration <= 0 {
		return nil, setting.Invalid("{Duration} must be > 0")
	}
	if o.DirectIO && !typ.DirectIO {
		var dio []string
		for _, t := range Types() {
			if t.DirectIO {
				dio = append(dio, t.Name)
			}
		}
		return nil, setting.Invalid("{DirectIO}: %s does no file data I/O; only %s open their data with O_DIRECT", o.Type, strings.Join(dio, ", "))
	}
	root, err := filepath.Abs(o.Root)
	if err != nil {
		return nil, err
	}
	if err := checkFxRoot(root, o.NCore); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(root, Marker), fmt.Appendf(nil, "workers %d\n", o.NCore), 0o644); err != nil {
		return nil, setting.Errorf("fxmark {Root} %s: %w", root, err)
	}
	defer cleanFxRoot(root, o.NCore)

	workers := make([]*fxWorker, o.NCore)
	b := &fxBench{root: root, duration: o.Duration, ncore: o.NCore, nbg: o.NBg, directio: o.DirectIO, workers: workers}
	usecs := make([]uint64, o.NCore)
	body := func(t *workloads.Task) error {
		w := &fxWorker{t: t, id: t.ID, fd: -1}
		b.mu.Lock()
		workers[t.ID] = w
		b.mu.Unlock()
		if typ.ops.pre != nil {
			if err := typ.ops.pre(b, w); err != nil {
				return fmt.Errorf("%s pre_work: %w", o.Type, err)
			}
		}
		if !t.Ready() {
			if w.fd >= 0 {
				unix.Close(w.fd)
			}
			return nil
		}
		start := time.Now()
		err := typ.ops.main(b, w)
		usecs[t.ID] = uint64(time.Since(start).Microseconds())
		if err != nil {
			return fmt.Errorf("%s main_work: %w", o.Type, err)
		}
		return nil
	}
	cfg := workloads.Config{Tasks: o.NCore, CoresPerSocket: o.CoresPerSocket, NoAffinity: o.NoAffinity, SysRoot: o.SysRoot}
	run, err := workloads.Launch(ctx, cfg, body)
	if err != nil {
		return nil, err
	}
	timer := time.NewTimer(o.Duration)
	defer timer.Stop()
	stopProgress := func() {}
	if o.Progress != nil {
		// Every works++ of a worker has its Count.Add(1) beside it: the
		// counters are the works so far, read with atomic loads.
		fg := o.NCore - o.NBg
		stopProgress = workloads.Report(ctx, run, time.Second, func(elapsed time.Duration, counts []uint64) {
			var works uint64
			for _, c := range counts[:fg] {
				works += c
			}
			io.WriteString(o.Progress, ProgressLine(o.Type, elapsed, o.Duration, works))
		})
	}
	var ctxErr error
	select {
	case <-timer.C:
	case <-run.Done():
	case <-run.Failed():
	case <-ctx.Done():
		ctxErr = ctx.Err()
	}
	stopProgress()
	if err := run.Stop(); err != nil {
		return nil, err
	}
	if ctxErr != nil {
		return nil, ctxErr
	}
	res := &Result{Type: o.Type, NCPU: o.NCore - o.NBg}
	var totalUsecs uint64
	var fast, slow float64
	for i, t := range run.Tasks() {
		w := workers[i]
		fw := Worker{ID: t.ID, CPU: t.CPU, Fast: t.Fast, BG: i >= o.NCore-o.NBg, Works: float64(w.works), Usecs: usecs[i], CPUSeconds: t.CPUTime().Seconds()}
		res.Workers = append(res.Workers, fw)
		if fw.BG {
			continue
		}
		totalUsecs += fw.Usecs
		res.Works += fw.Works
		if fw.Fast {
			fast += fw.Works
		} else {
			slow += fw.Works
		}
	}
	res.Secs = float64(totalUsecs) / float64(res.NCPU) / 1e6
	if res.Secs > 0 {
		res.WorksPerSec = res.Works / res.Secs
		res.FastPerSec = fast / res.Secs
		res.SlowPerSec = slow / res.Secs
	}
	return res, nil
}

// SweepRow is one .dat row: ncpu and works/sec, fast and slow in
// millions.
type SweepRow struct {
	NCPU  int     `json:"ncpu"`
	Total float64 `json:"mworks_per_sec"`
	Fast  float64 `json:"fast_mworks_per_sec"`
	Slow  float64 `json:"slow_mworks_per_sec"`
}

// DatRow converts a result to its .dat row.
func DatRow(r *Result) SweepRow {
	return SweepRow{NCPU: r.NCPU, Total: r.WorksPerSec / 1e6, Fast: r.FastPerSec / 1e6, Slow: r.SlowPerSec / 1e6}
}

// WriteDat writes the plotter's .dat file: "# media:fs:bench:iomode:*",
// "# core, total, fast, slow", then "ncpu total fast slow" per row sorted
// by ncpu, the numbers as Python prints floats.
func WriteDat(w io.Writer, media, fs, bench, iomode string, rows []SweepRow) error {
	rows = append([]SweepRow(nil), rows...)
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].NCPU < rows[j].NCPU })
	var sb strings.Builder
	fmt.Fprintf(&sb, "# %s:%s:%s:%s:*\n# core, total, fast, slow\n", media, fs, bench, iomode)
	for _, r := range rows {
		fmt.Fprintf(&sb, "%d %s %s %s\n", r.NCPU, PyFloat(r.Total), PyFloat(r.Fast), PyFloat(r.Slow))
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

// PyFloat formats f as Python 3's str(float): the shortest repr, fixed
// notation with at least one decimal for exponents -4..15, else
// scientific with a two-digit exponent ("1e-05", "1.5e+16").
func PyFloat(f float64) string {
	switch {
	case f != f:
		return "nan"
	case f > 1.7976931348623157e308:
		return "inf"
	case f < -1.7976931348623157e308:
		return "-inf"
	}
	if f == 0 {
		if 1/f < 0 {
			return "-0.0"
		}
		return "0.0"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64)
	exp, _ := strconv.Atoi(e[strings.IndexByte(e, 'e')+1:])
	if exp < -4 || exp >= 16 {
		return e
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// FsTypeName names the file system at path from statfs(2)'s f_type, for
// the .dat header ("tmpfs", "ext4", ...; "unknown" otherwise).
func FsTypeName(path string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return "unknown"
	}
	switch uint64(st.Type) {
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.EXT4_SUPER_MAGIC:
		return "ext4"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.F2FS_SUPER_MAGIC:
		return "f2fs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlay"
	}
	return "unknown"
}

// MountTmpfs mounts a private tmpfs at dir (mode 0777, size bytes; 0 means
// the kernel default) and returns the function that unmounts it.
func MountTmpfs(dir string, size int64) (func() error, error) {
	opts := "mode=0777"
	if size > 0 {
		opts += ",size=" + strconv.FormatInt(size, 10)
	}
	if err := unix.Mount("syncord-fxmark", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		if errors.Is(err, unix.EPERM) {
			return nil, fmt.Errorf("mount tmpfs at %s: %w (needs root / CAP_SYS_ADMIN)", dir, err)
		}
		return nil, fmt.Errorf("mount tmpfs at %s: %w", dir, err)
	}
	return func() error {
		if err := unix.Unmount(dir, 0); err != nil {
			return fmt.Errorf("unmount tmpfs at %s: %w", dir, err)
		}
		return nil
	}, nil
}
