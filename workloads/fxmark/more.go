package fxmark

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
	"unsafe"

	"github.com/syncord/syncord/workloads/internal/rawsys"
	"golang.org/x/sys/unix"
)

// The FxMark types beyond the first set: shared-file data types (DWOM,
// DRBM, DRBH), journal commit (DWSL), truncate (DWTL), random path
// resolution (MRPM), the shared directory read (MRDM), and the _bg
// variants, whose last --nbg workers disturb the others. Each follows the
// C file of the same name in the artifact's fxmark (benchmarks/fxmark/src
// of rs3lab/SynCord); where this one differs, the comment says why.

// fxRegion is the private region of each worker in DWOM's and DRBM's
// shared file (PRIVATE_REGION_SIZE): worker id's page is at id*fxRegion.
const fxRegion = 8 << 20

// fxFillCap bounds what DWTL writes before truncating, over all workers:
// fxmark fills until ENOSPC, which on a tmpfs without a size is the
// machine's memory. Filling also stops after --duration, as the other
// setups that fill (fxCreateFor) do.
const fxFillCap = 1 << 30

// pseudoRandom is fxmark's linear congruential generator (util.h), on
// unsigned 32-bit integers as in C.
func pseudoRandom(x uint32) uint32 { return 1103515245*x + 12345 }

// randomizeDigits is MRPM's randomize_digits: each digit from the one
// before it, the first from its own previous value.
func randomizeDigits(d []uint32) {
	d[0] = pseudoRandom(d[0])
	for i := 1; i < len(d); i++ {
		d[i] = pseudoRandom(d[i-1])
	}
}

// fxBuildTree is the setup of MRPH and MRPM: the leader makes
// <root>/a/b/c/d for a..d in 0..7, each holding the empty files 0..7.
func fxBuildTree(b *fxBench, w *fxWorker) error {
	if w.id != 0 {
		return nil // the leader builds the tree
	}
	for i := range 8 * 8 * 8 * 8 {
		d := filepath.Join(b.root, strconv.Itoa(i>>9&7), strconv.Itoa(i>>6&7), strconv.Itoa(i>>3&7), strconv.Itoa(i&7))
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		for m := range 8 {
			if err := os.WriteFile(filepath.Join(d, strconv.Itoa(m)), nil, 0o700); err != nil {
				return err
			}
		}
	}
	return nil
}

// fxReaddir is the main work of MRDL and MRDM: one work per readdir(3)
// call on dir, as glibc does it: entries come from a 32 KiB getdents64
// buffer, refilled when consumed; at the end every call is a getdents64
// returning 0 (fxmark keeps calling readdir_r at the end of the
// directory, and counts each call).
func fxReaddir(w *fxWorker, dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	buf := make([]byte, 32<<10)
	var off, n int
	return fxCount(w, func() unix.Errno {
		if off >= n {
			r, _, e := syscall.RawSyscall(unix.SYS_GETDENTS64, uintptr(fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
			if e != 0 {
				return e
			}
			off, n = 0, int(r)
			if n == 0 {
				return 0
			}
		}
		reclen := int(buf[off+16]) | int(buf[off+17])<<8 // d_reclen
		off += reclen
		return 0
	})
}

// fxSharedFile is the leader's setup of DWOM, DRBM and DRBH: the shared
// file <root>/name holding pages pages, synced. Only the leader works;
// the others find the file made when the start barrier releases them.
func fxSharedFile(name string, pages func(b *fxBench) int, directio bool) func(b *fxBench, w *fxWorker) error {
	return func(b *fxBench, w *fxWorker) error {
		if w.id != 0 {
			return nil
		}
		path := filepath.Join(b.root, name)
		open := b.openData
		if !directio {
			open = func(p string) (int, error) {
				return unix.Open(p, unix.O_CREAT|unix.O_RDWR|unix.O_CLOEXEC, 0o700)
			}
		}
		fd, err := open(path)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := writePages(fd, alignedPage(), pages(b)); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return unix.Fsync(fd)
	}
}

// regions is the page count of DWOM's and DRBM's shared file: one region
// per worker id (fxmark: max_id + 1 regions).
func regions(b *fxBench) int { return b.ncore * fxRegion / rawsys.PageSize }

func onePageFile(*fxBench) int { return 1 }

// fxPageLoop opens <root>/name (with O_DIRECT under --directio when dio)
// and repeats one page-sized pread or pwrite at off until stopped; a short
// transfer is an error, as fxmark's "!= PAGE_SIZE" checks.
func fxPageLoop(b *fxBench, w *fxWorker, name string, write, dio bool, off int64) error {
	path := filepath.Join(b.root, name)
	var fd int
	var err error
	if dio {
		fd, err = b.openData(path)
	} else {
		fd, err = unix.Open(path, unix.O_CREAT|unix.O_RDWR|unix.O_CLOEXEC, 0o700)
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	page := alignedPage()
	return fxCount(w, func() unix.Errno {
		var n int
		var e unix.Errno
		if write {
			n, e = rawsys.Pwrite(fd, &page[0], len(page), off)
		} else {
			n, e = rawsys.Pread(fd, &page[0], len(page), off)
		}
		if e == 0 && n != len(page) {
			return unix.EIO
		}
		return e
	})
}

// fxChurn is the background worker of MRDL_bg and MRDM_bg: round after
// round it unlinks one pseudo-randomly chosen file of every foreground
// worker (file(fg, i) names fg's file number i), then creates them again;
// each unlink and each create is a work. fxmark's per-worker choices start
// from uninitialised stack memory; here from 0.
func fxChurn(b *fxBench, w *fxWorker, file func(fg *fxWorker) *pathBuf) error {
	var fgs []*fxWorker
	var names []*pathBuf
	for _, o := range b.allWorkers() {
		if b.isBG(o) {
			continue
		}
		if o.next == 0 {
			w.t.StopAll()
			return fmt.Errorf("background worker %d: worker %d made no files to unlink and create again", w.id, o.id)
		}
		fgs = append(fgs, o)
		names = append(names, file(o))
	}
	ids := make([]uint32, len(fgs))
	stop := w.t.StopFlag()
	work := func() {
		w.works++
		w.t.Count.Add(1)
	}
	// Ends the run when it ends, as fxmark's bg_work sets bench->stop.
	defer w.t.StopAll()
	for !stop.Load() {
		for i := 0; i < len(fgs) && !stop.Load(); i++ {
			ids[i] = pseudoRandom(ids[i])
			if e := rawsys.Unlink(names[i].set(uint64(ids[i]) % fgs[i].next)); e != 0 {
				return fmt.Errorf("unlink %s: %w", names[i], e)
			}
			work()
		}
		for i := 0; i < len(fgs) && !stop.Load(); i++ {
			fd, e := rawsys.Open(names[i].set(uint64(ids[i])%fgs[i].next), unix.O_CREAT|unix.O_RDWR|unix.O_CLOEXEC, 0o700)
			if e != 0 {
				return fmt.Errorf("create %s: %w", names[i], e)
			}
			rawsys.Close(fd)
			work()
		}
	}
	return nil
}

// errnoOf is err as an errno (EIO for an error that is not one).
func errnoOf(err error) unix.Errno {
	if err == nil {
		return 0
	}
	var e unix.Errno
	if errors.As(err, &e) {
		return e
	}
	return unix.EIO
}

// fgOrBG runs bg for background workers and fg for the others, as the _bg
// files' main_work.
func fgOrBG(fg, bg func(b *fxBench, w *fxWorker) error) func(b *fxBench, w *fxWorker) error {
	return func(b *fxBench, w *fxWorker) error {
		if b.isBG(w) {
			return bg(b, w)
		}
		return fg(b, w)
	}
}

// sharedDataTypes registers the DW*/DR* types on shared files and their
// _bg variants (DWOM, DWSL, DWTL, DRBM, DRBH).
func sharedDataTypes() {
	addType("DWOM", "mtime update: each process updates a private page of the shared file", true, fxOps{
		pre: fxSharedFile("n_mtime_upt.dat", regions, true),
		main: func(b *fxBench, w *fxWorker) error {
			return fxPageLoop(b, w, "n_mtime_upt.dat", true, true, int64(w.id)*fxRegion)
		},
	})
	addType("DWSL", "journal commit: each process fsync a private file", true, fxOps{
		pre: func(b *fxBench, w *fxWorker) error {
			if err := os.MkdirAll(b.workerDir(w), 0o755); err != nil {
				return err
			}
			fd, err := b.openData(filepath.Join(b.workerDir(w), "n_jnl_cmt.dat"))
			if err != nil {
				return err
			}
			w.fd = fd
			return writePages(fd, alignedPage(), 1)
		},
		main: func(b *fxBench, w *fxWorker) error {
			defer unix.Close(w.fd)
			page := alignedPage()
			return fxCount(w, func() unix.Errno {
				if n, e := rawsys.Pwrite(w.fd, &page[0], len(page), 0); e != 0 || n != len(page) {
					if e == 0 {
						e = unix.EIO
					}
					return e
				}
				return errnoOf(unix.Fsync(w.fd))
			})
		},
	})
	addType("DWTL", "each process truncates its private file at the test root directory", true, fxOps{
		pre: func(b *fxBench, w *fxWorker) error {
			path := filepath.Join(b.root, fmt.Sprintf("u_file_tr-%d.dat", w.id))
			fd, err := b.openData(path)
			if err != nil {
				return err
			}
			w.fd = fd
			page := alignedPage()
			limit := uint64(fxFillCap / b.ncore / rawsys.PageSize)
			deadline := time.Now().Add(b.duration)
			for w.next = 0; w.next < limit; w.next++ {
				if w.next%256 == 0 && time.Now().After(deadline) {
					break
				}
				n, e := rawsys.Write(fd, &page[0], len(page))
				if e == unix.ENOSPC {
					break
				}
				if e != 0 || n != len(page) {
					if e == 0 {
						e = unix.EIO
					}
					return fmt.Errorf("fill %s: %w", path, e)
				}
			}
			return nil
		},
		main: func(b *fxBench, w *fxWorker) error {
			defer unix.Close(w.fd)
			// fxmark truncates from two pages below what it wrote down
			// to one page, one page per work; a worker that is done
			// ends alone.
			if w.next < 3 {
				return nil
			}
			size := w.next - 2
			return fxCountN(w, size, func(i uint64) unix.Errno {
				return errnoOf(unix.Ftruncate(w.fd, int64(size-i)*int64(rawsys.PageSize)))
			})
		},
	})
	addType("DRBM", "shared file read: each process reads its private region of the shared file", true, fxOps{
		pre: fxSharedFile("n_shfile_rd.dat", regions, true),
		main: func(b *fxBench, w *fxWorker) error {
			return fxPageLoop(b, w, "n_shfile_rd.dat", false, true, int64(w.id)*fxRegion)
		},
	})
	// The _bg files ignore --directio.
	addType("DRBM_bg", "shared file read with a background writer", false, fxOps{
		pre: fxSharedFile("n_shfile_rd.dat", regions, false),
		main: fgOrBG(func(b *fxBench, w *fxWorker) error {
			return fxPageLoop(b, w, "n_shfile_rd.dat", false, false, int64(w.id)*fxRegion)
		}, func(b *fxBench, w *fxWorker) error {
			// Despite its name, the background worker reads too: a page
			// of a pseudo-randomly chosen foreground worker's region.
			fd, err := unix.Open(filepath.Join(b.root, "n_shfile_rd.dat"), unix.O_CREAT|unix.O_RDWR|unix.O_CLOEXEC, 0o700)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			ws := b.allWorkers()
			page := alignedPage()
			wid := uint32(w.id)
			stop := w.t.StopFlag()
			for !stop.Load() {
				wid = pseudoRandom(wid)
				o := ws[wid%uint32(len(ws))]
				if b.isBG(o) {
					continue
				}
				if _, e := rawsys.Pread(fd, &page[0], len(page), int64(o.id)*fxRegion); e != 0 && e != unix.EINTR {
					w.t.StopAll()
					return e
				}
				w.works++
				w.t.Count.Add(1)
			}
			return nil
		}),
	})
	addType("DRBH", "shared blk read: each process reads the same page of the shared file", true, fxOps{
		pre: fxSharedFile("n_shblk_rd.dat", onePageFile, true),
		main: func(b *fxBench, w *fxWorker) error {
			return fxPageLoop(b, w, "n_shblk_rd.dat", false, true, 0)
		},
	})
	addType("DRBH_bg", "shared blk read with a background writer", false, fxOps{
		pre: fxSharedFile("n_shblk_rd.dat", onePageFile, false),
		main: fgOrBG(func(b *fxBench, w *fxWorker) error {
			return fxPageLoop(b, w, "n_shblk_rd.dat", false, false, 0)
		}, func(b *fxBench, w *fxWorker) error {
			return fxPageLoop(b, w, "n_shblk_rd.dat", true, false, 0)
		}),
	})
}

// sharedMetadataTypes registers MRPM, MRDM and the MR*_bg variants.
func sharedMetadataTypes() {
	addType("MRPM", "path resolution: each process does stat() at random files in 8-level directories with 8-branching-out factor", false, fxOps{
		pre:  fxBuildTree,
		main: mrpmMain,
	})
	addType("MRPM_bg", "path resolution  with a background writer", false, fxOps{
		pre: fxBuildTree,
		main: fgOrBG(mrpmMain, func(b *fxBench, w *fxWorker) error {
			// Creates the file at a random depth (1..5) if it is not
			// there, else unlinks it; the last component is 1000..1007,
			// so the stat()ed files of the foreground stay.
			digits := make([]uint32, 5)
			digits[0] = uint32(w.id)
			seed := uint32(w.id)
			buf := make([]byte, 0, len(b.root)+32)
			var st unix.Stat_t
			return fxCount(w, func() unix.Errno {
				seed = pseudoRandom(seed)
				depth := 1 + int(seed%5)
				randomizeDigits(digits[:depth])
				buf = append(buf[:0], b.root...)
				for i, d := range digits[:depth] {
					v := d % 8
					if i == depth-1 {
						v += 1000
					}
					buf = append(buf, '/')
					buf = strconv.AppendUint(buf, uint64(v), 10)
				}
				buf = append(buf, 0)
				if rawsys.Stat(&buf[0], &st) != 0 {
					fd, e := rawsys.Open(&buf[0], unix.O_CREAT|unix.O_RDWR|unix.O_CLOEXEC, 0o700)
					if e != 0 {
						return e
					}
					return rawsys.Close(fd)
				}
				return rawsys.Unlink(&buf[0])
			})
		}),
	})
	addType("MRDM", "shared directory read: each process reads entries of the shared directory", false, fxOps{
		pre: func(b *fxBench, w *fxWorker) error {
			return fxCreateFor(w, newPathBuf(fmt.Sprintf("%s/n_shdir_rd-%d-", b.root, w.id), ".dat"), b.duration)
		},
		main: func(b *fxBench, w *fxWorker) error { return fxReaddir(w, b.root) },
	})
	addType("MRDM_bg", "shared directory read with a background writer", false, fxOps{
		pre: func(b *fxBench, w *fxWorker) error {
			if b.isBG(w) {
				return nil
			}
			return fxCreateFor(w, newPathBuf(fmt.Sprintf("%s/n_shdir_rd_bg-%d-", b.root, w.id), ".dat"), b.duration)
		},
		main: fgOrBG(func(b *fxBench, w *fxWorker) error { return fxReaddir(w, b.root) },
			func(b *fxBench, w *fxWorker) error {
				return fxChurn(b, w, func(fg *fxWorker) *pathBuf {
					return newPathBuf(fmt.Sprintf("%s/n_shdir_rd_bg-%d-", b.root, fg.id), ".dat")
				})
			}),
	})
	addType("MRDL_bg", "directory read with a background writer", false, fxOps{
		pre: func(b *fxBench, w *fxWorker) error {
			if b.isBG(w) {
				return nil
			}
			if err := os.MkdirAll(b.workerDir(w), 0o755); err != nil {
				return err
			}
			return fxCreateFor(w, newPathBuf(fmt.Sprintf("%s/n_dir_rd_bg-%d-", b.workerDir(w), w.id), ".dat"), b.duration)
		},
		main: fgOrBG(func(b *fxBench, w *fxWorker) error { return fxReaddir(w, b.workerDir(w)) },
			func(b *fxBench, w *fxWorker) error {
				return fxChurn(b, w, func(fg *fxWorker) *pathBuf {
					return newPathBuf(fmt.Sprintf("%s/n_dir_rd_bg-%d-", b.workerDir(fg), fg.id), ".dat")
				})
			}),
	})
}

// mrpmMain is MRPM's loop: stat() a pseudo-random file of the 8^5 tree,
// the digits seeded by the worker id.
func mrpmMain(b *fxBench, w *fxWorker) error {
	digits := make([]uint32, 5)
	digits[0] = uint32(w.id)
	buf := make([]byte, 0, len(b.root)+16)
	var st unix.Stat_t
	return fxCount(w, func() unix.Errno {
		randomizeDigits(digits)
		buf = append(buf[:0], b.root...)
		for _, d := range digits {
			buf = append(buf, '/', byte('0'+d%8))
		}
		buf = append(buf, 0)
		return rawsys.Stat(&buf[0], &st)
	})
}
