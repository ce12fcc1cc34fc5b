package kmod

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

type compression int

const (
	compNone compression = iota
	compGzip
	compXZ
	compZstd
)

var (
	magicGzip = []byte{0x1f, 0x8b}
	magicXZ   = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	magicZstd = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicELF  = []byte{0x7f, 'E', 'L', 'F'}
)

// sniff tells the compression of f from its first bytes and rewinds it.
func sniff(f *os.File, path string) (compression, error) {
	var head [6]byte
	n, err := io.ReadFull(f, head[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return 0, fmt.Errorf("read header: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	return detect(head[:n], path)
}

func detect(head []byte, path string) (compression, error) {
	switch {
	case bytes.HasPrefix(head, magicELF):
		return compNone, nil
	case bytes.HasPrefix(head, magicGzip):
		return compGzip, nil
	case bytes.HasPrefix(head, magicXZ):
		return compXZ, nil
	case bytes.HasPrefix(head, magicZstd):
		return compZstd, nil
	}
	return 0, fmt.Errorf("%s is neither an ELF module nor a gzip, xz or zstd compressed one", filepath.Base(path))
}

// maxImage bounds a decompressed module (the largest in-tree modules are a
// few tens of MiB with debug info).
const maxImage = 1 << 30

// ReadImage returns the ELF image of the module file at path, decompressing
// .ko.gz in process and .ko.xz / .ko.zst with the xz or zstd command.
func ReadImage(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read module %s: %w", path, err)
	}
	kind, err := detect(raw, path)
	if err != nil {
		return nil, fmt.Errorf("read module: %w", err)
	}
	switch kind {
	case compNone:
		return raw, nil
	case compGzip:
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("decompress module %s: %w", path, err)
		}
		out, err := io.ReadAll(io.LimitReader(zr, maxImage))
		if err != nil {
			return nil, fmt.Errorf("decompress module %s: %w", path, err)
		}
		return out, nil
	case compXZ:
		return external(path, raw, "xz", "xz-utils")
	default:
		return external(path, raw, "zstd", "zstd")
	}
}

// external decompresses raw with tool -dc. We do not link an xz or zstd
// decoder for the rare compressed livepatch module; the tools are in every
// distribution that compresses its modules.
func external(path string, raw []byte, tool, pkg string) ([]byte, error) {
	bin, err := exec.LookPath(tool)
	if err != nil {
		return nil, fmt.Errorf("decompress module %s: %s not found in PATH (install %s, or decompress the module by hand)", path, tool, pkg)
	}
	cmd := exec.Command(bin, "-dc")
	cmd.Stdin = bytes.NewReader(raw)
	var out, stderr bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("decompress module %s with %s: %v: %s", path, tool, err, strings.TrimSpace(stderr.String()))
	}
	return out.Bytes(), nil
}

// Info is what a module file says about itself.
type Info struct {
	// Name is the name the kernel will know the module by (in
	// /proc/modules and for delete_module): .modinfo's name=, else the
	// name in .gnu.linkonce.this_module, else the file name with - as _.
	Name      string
	Vermagic  string
	License   string
	Depends   []string
	Livepatch bool // .modinfo has livepatch=Y
	// Modinfo holds every key=value of .modinfo (the last value of repeated keys).
	Modinfo map[string]string
}

// thisModuleNameOff is offsetof(struct module, name) on 64-bit kernels:
// enum module_state (4 bytes, padded to 8), struct list_head (16 bytes).
const thisModuleNameOff = 24

// moduleNameLen is MODULE_NAME_LEN on 64-bit kernels.
const moduleNameLen = 56

// ReadInfo reads the .modinfo and .gnu.linkonce.this_module sections of the
// module file at path.
func ReadInfo(path string) (Info, error) {
	image, err := ReadImage(path)
	if err != nil {
		return Info{}, err
	}
	info, err := ParseInfo(image)
	if err != nil {
		return Info{}, fmt.Errorf("read module %s: %w", path, err)
	}
	if info.Name == "" {
		base := filepath.Base(path)
		if i := strings.Index(base, ".ko"); i > 0 {
			base = base[:i]
		}
		info.Name = strings.ReplaceAll(base, "-", "_")
	}
	return info, nil
}

// ParseInfo parses an uncompressed module image.
func ParseInfo(image []byte) (Info, error) {
	f, err := elf.NewFile(bytes.NewReader(image))
	if err != nil {
		return Info{}, fmt.Errorf("not an ELF module: %w", err)
	}
	defer f.Close()
	if f.Type != elf.ET_REL {
		return Info{}, fmt.Errorf("not a kernel module: ELF type %v, want relocatable", f.Type)
	}
	info := Info{Modinfo: map[string]string{}}
	if s := f.Section(".modinfo"); s != nil && s.Type != elf.SHT_NOBITS {
		data, err := s.Data()
		if err != nil {
			return Info{}, fmt.Errorf("read .modinfo: %w", err)
		}
		for _, kv := range bytes.Split(data, []byte{0}) {
			k, v, ok := strings.Cut(string(kv), "=")
			if !ok {
				continue
			}
			info.Modinfo[k] = v
		}
	}
	info.Name = info.Modinfo["name"]
	info.Vermagic = info.Modinfo["vermagic"]
	info.License = info.Modinfo["license"]
	info.Livepatch = info.Modinfo["livepatch"] == "Y"
	if d := info.Modinfo["depends"]; d != "" {
		info.Depends = strings.Split(d, ",")
	}
	if info.Name == "" && f.Class == elf.ELFCLASS64 {
		if s := f.Section(".gnu.linkonce.this_module"); s != nil && s.Type != elf.SHT_NOBITS {
			data, err := s.Data()
			if err == nil && len(data) >= thisModuleNameOff+moduleNameLen {
				name := data[thisModuleNameOff : thisModuleNameOff+moduleNameLen]
				if i := bytes.IndexByte(name, 0); i > 0 && printable(name[:i]) {
					info.Name = string(name[:i])
				}
			}
		}
	}
	return info, nil
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// Strings returns the distinct NUL-terminated printable strings in image
// that start with prefix, in order of first appearance: the way to find the
// paths a module will look up (for example "/sys/fs/bpf/") without running
// it. An ELF image is scanned section by section, so a string at the start of
// a section is found whatever precedes the section in the file; anything else
// is scanned whole.
func Strings(image []byte, prefix string) []string {
	if prefix == "" {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	add := func(data []byte) {
		for _, s := range scanStrings(data, []byte(prefix)) {
			if !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	f, err := elf.NewFile(bytes.NewReader(image))
	if err != nil {
		add(image)
		return out
	}
	defer f.Close()
	for _, s := range f.Sections {
		if s.Type != elf.SHT_PROGBITS {
			continue
		}
		data, err := s.Data()
		if err != nil {
			continue
		}
		add(data)
	}
	return out
}

// scanStrings finds the strings starting with p that begin at the start of
// data or right after a NUL and end with a NUL.
func scanStrings(data, p []byte) []string {
	var out []string
	for off := 0; off < len(data); {
		i := bytes.Index(data[off:], p)
		if i < 0 {
			break
		}
		start := off + i
		// "/sys/fs/bpf/x" inside "/foo/sys/fs/bpf/x" is not a path the
		// module looks up.
		if start > 0 && data[start-1] != 0 {
			off = start + 1
			continue
		}
		end := start
		for end < len(data) && data[end] >= 0x20 && data[end] <= 0x7e {
			end++
		}
		if end == len(data) || data[end] != 0 {
			off = start + 1
			continue
		}
		out = append(out, string(data[start:end]))
		off = end + 1
	}
	return out
}
