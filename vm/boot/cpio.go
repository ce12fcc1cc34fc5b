package boot

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"sort"

	"github.com/u-root/u-root/pkg/cpio"
)

// cpioWriter writes a newc ("070701") archive, the format the kernel
// unpacks as an initramfs, through u-root's pkg/cpio. Parent directories
// are created on demand, since the kernel's unpacker does not create
// them; every record gets its own inode number and one link, and no owner
// or time, so an archive is the same for the same inputs.
type cpioWriter struct {
	buf  *bufio.Writer
	w    cpio.RecordWriter
	ino  uint64
	dirs map[string]bool
	err  error
}

func newCPIO(w io.Writer) *cpioWriter {
	buf := bufio.NewWriterSize(w, 1<<20)
	return &cpioWriter{buf: buf, w: cpio.Newc.Writer(buf), ino: 1, dirs: map[string]bool{".": true, "/": true, "": true}}
}

// write numbers rec and writes it, keeping the first error.
func (c *cpioWriter) write(rec cpio.Record) {
	if c.err != nil {
		return
	}
	c.ino++
	rec.Ino, rec.NLink = c.ino, 1
	if err := c.w.WriteRecord(rec); err != nil {
		c.err = fmt.Errorf("initramfs: write %s: %w", rec.Name, err)
	}
}

func (c *cpioWriter) mkdirAll(dir string) {
	dir = path.Clean("/" + dir)
	if c.dirs[dir] {
		return
	}
	c.mkdirAll(path.Dir(dir))
	c.dirs[dir] = true
	c.write(cpio.Directory(dir, 0o755))
}

// File adds a regular file with the given contents.
func (c *cpioWriter) File(name string, mode uint32, data []byte) {
	c.mkdirAll(path.Dir(name))
	c.write(cpio.StaticRecord(data, cpio.Info{Name: name, Mode: cpio.S_IFREG | uint64(mode)}))
}

// CopyFile adds the host file src at name, keeping its permission bits.
func (c *cpioWriter) CopyFile(name, src string) {
	if c.err != nil {
		return
	}
	data, err := os.ReadFile(src)
	if err != nil {
		c.err = fmt.Errorf("initramfs: %w", err)
		return
	}
	mode := uint32(0o644)
	if fi, err := os.Stat(src); err == nil {
		mode = uint32(fi.Mode().Perm())
	}
	c.File(name, mode, data)
}

// Symlink adds a symbolic link.
func (c *cpioWriter) Symlink(name, target string) {
	c.mkdirAll(path.Dir(name))
	c.write(cpio.Symlink(name, target))
}

// CharDev adds a character device node.
func (c *cpioWriter) CharDev(name string, major, minor uint32) {
	c.mkdirAll(path.Dir(name))
	c.write(cpio.CharDev(name, 0o600, uint64(major), uint64(minor)))
}

// Dir adds an empty directory.
func (c *cpioWriter) Dir(name string) { c.mkdirAll(name) }

// Close writes the trailer and flushes.
func (c *cpioWriter) Close() error {
	c.write(cpio.Record{Info: cpio.Info{Name: cpio.Trailer}})
	if c.err != nil {
		return c.err
	}
	return c.buf.Flush()
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
