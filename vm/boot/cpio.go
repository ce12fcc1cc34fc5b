package boot

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
)

// cpioWriter writes a newc ("070701") archive, the format the kernel
// unpacks as an initramfs. Parent directories are created on demand, since
// the kernel's unpacker does not create them.
type cpioWriter struct {
	w    *bufio.Writer
	ino  uint32
	dirs map[string]bool
	err  error
}

func newCPIO(w io.Writer) *cpioWriter {
	return &cpioWriter{w: bufio.NewWriterSize(w, 1<<20), ino: 1, dirs: map[string]bool{".": true, "/": true, "": true}}
}

const (
	sIFDIR = 0o040000
	sIFREG = 0o100000
	sIFLNK = 0o120000
	sIFCHR = 0o020000
)

func (c *cpioWriter) header(name string, mode, size, rmaj, rmin uint32) {
	if c.err != nil {
		return
	}
	c.ino++
	name = strings.TrimPrefix(name, "/")
	fmt.Fprintf(c.w, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, 1, 0, size, 0, 0, rmaj, rmin, len(name)+1, 0)
	c.w.WriteString(name)
	c.w.WriteByte(0)
	c.pad(110 + len(name) + 1)
}

func (c *cpioWriter) pad(n int) {
	for ; n%4 != 0; n++ {
		c.w.WriteByte(0)
	}
}

func (c *cpioWriter) mkdirAll(dir string) {
	dir = path.Clean("/" + dir)
	if c.dirs[dir] {
		return
	}
	c.mkdirAll(path.Dir(dir))
	c.dirs[dir] = true
	c.header(dir, sIFDIR|0o755, 0, 0, 0)
}

// File adds a regular file with the given contents.
func (c *cpioWriter) File(name string, mode uint32, data []byte) {
	c.mkdirAll(path.Dir(name))
	c.header(name, sIFREG|mode, uint32(len(data)), 0, 0)
	c.w.Write(data)
	c.pad(len(data))
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
	c.header(name, sIFLNK|0o777, uint32(len(target)), 0, 0)
	c.w.WriteString(target)
	c.pad(len(target))
}

// CharDev adds a character device node.
func (c *cpioWriter) CharDev(name string, major, minor uint32) {
	c.mkdirAll(path.Dir(name))
	c.header(name, sIFCHR|0o600, 0, major, minor)
}

// Dir adds an empty directory.
func (c *cpioWriter) Dir(name string) { c.mkdirAll(name) }

// Close writes the trailer and flushes.
func (c *cpioWriter) Close() error {
	c.header("TRAILER!!!", 0, 0, 0, 0)
	if c.err != nil {
		return c.err
	}
	return c.w.Flush()
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
