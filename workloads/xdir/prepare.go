package xdir

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/moby/sys/mountinfo"

	"github.com/syncord/syncord/internal/pseudofs"
	"github.com/syncord/syncord/internal/setting"
)

// PrepareResult reports what Prepare did.
type PrepareResult struct {
	Src      string `json:"src"`
	Dst      string `json:"dst"`
	DstDirty string `json:"dst_dirty"`
	Files    int    `json:"files"`
	Created  int    `json:"created"`
	Removed  int    `json:"removed"`
	FS       FSInfo `json:"filesystem"`
}

// Marker is the file Prepare puts into a dst_<n>_files directory it
// creates: only such a directory is ever trimmed.
const Marker = ".syncord-xdir"

// xdirNameLen is the length of the names the workload and Prepare make.
const xdirNameLen = 36

// xdirOurs reports whether name is one the xdir workload makes: 36 ASCII
// letters.
func xdirOurs(name string) bool {
	if len(name) != xdirNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// Prepare makes dir/src_empty and dir/dst_empty (emptied if they exist)
// and dir/dst_<n>_files holding n empty files with 36-letter random names,
// topping up or trimming an existing one to n like the artifact's
// prepare_dir.py. It then reports the filesystem under dir (FSInfo).
// procRoot is normally "/proc".
//
// It removes only what the workload makes: regular files with 36-letter
// names; it trims dst_<n>_files only when it made that directory (the
// Marker file in it). Anything else in the three directories is an
// error naming it, and a symbolic link in place of one of them is refused:
// everything below dir is reached through an os.Root, with no symbolic link
// followed out of dir and none followed when removing.
func Prepare(procRoot, dir string, n int) (*PrepareResult, error) {
	if n < 0 {
		return nil, fmt.Errorf("xdir prepare: file count %d is negative", n)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("xdir prepare: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("xdir prepare: %w", err)
	}
	defer root.Close()
	dirty := fmt.Sprintf("dst_%d_files", n)
	r := &PrepareResult{
		Src:      filepath.Join(dir, "src_empty"),
		Dst:      filepath.Join(dir, "dst_empty"),
		DstDirty: filepath.Join(dir, dirty),
		Files:    n,
	}
	for _, d := range []string{"src_empty", "dst_empty"} {
		sub, _, err := xdirOpenDir(root, dir, d)
		if err != nil {
			return nil, err
		}
		ours, err := xdirListOurs(sub, filepath.Join(dir, d), false)
		if err == nil {
			for _, nm := range ours {
				if err = sub.Remove(nm); err != nil {
					err = fmt.Errorf("xdir prepare: empty %s: %w", filepath.Join(dir, d), err)
					break
				}
			}
		}
		sub.Close()
		if err != nil {
			return nil, err
		}
	}
	sub, made, err := xdirOpenDir(root, dir, dirty)
	if err != nil {
		return nil, err
	}
	defer sub.Close()
	if made {
		f, err := sub.OpenFile(Marker, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return nil, fmt.Errorf("xdir prepare: %w", err)
		}
		f.Close()
	}
	names, err := xdirListOurs(sub, r.DstDirty, true)
	if err != nil {
		return nil, err
	}
	have := make(map[string]bool, len(names))
	for _, nm := range names {
		have[nm] = true
	}
	if len(names) > n {
		if _, err := sub.Lstat(Marker); err != nil {
			return nil, setting.Errorf("xdir prepare: %s holds %d files, more than %d, but syncord did not make it (no %s in it), so it trims nothing there: remove it or choose another {Dir}", r.DstDirty, len(names), n, Marker)
		}
	}
	for i := len(names); i > n; i-- {
		if err := sub.Remove(names[i-1]); err != nil {
			return nil, fmt.Errorf("xdir prepare: trim: %w", err)
		}
		r.Removed++
	}
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	name := make([]byte, xdirNameLen)
	for cur := len(names); cur < n; {
		for k := range name {
			name[k] = letters[rand.IntN(len(letters))]
		}
		if have[string(name)] {
			continue
		}
		f, err := sub.OpenFile(string(name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			if errors.Is(err, os.ErrExist) {
				continue
			}
			return nil, fmt.Errorf("xdir prepare: create %s: %w (created %d of %d; free inodes: df -i %s)", filepath.Join(r.DstDirty, string(name)), err, r.Created, n-len(names), dir)
		}
		f.Close()
		have[string(name)] = true
		r.Created++
		cur++
	}
	r.FS, err = FSInfoOf(procRoot, dir)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// xdirOpenDir opens the directory name in root, making it when it does not
// exist (made is then true). A symbolic link or another kind of file there
// is an error.
func xdirOpenDir(root *os.Root, dir, name string) (sub *os.Root, made bool, err error) {
	fi, err := root.Lstat(name)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := root.Mkdir(name, 0o755); err != nil {
			return nil, false, fmt.Errorf("xdir prepare: %w", err)
		}
		made = true
	case err != nil:
		return nil, false, fmt.Errorf("xdir prepare: %w", err)
	case fi.Mode()&os.ModeSymlink != 0:
		return nil, false, fmt.Errorf("xdir prepare: %s is a symbolic link; syncord makes this directory itself and follows no link there (remove the link)", filepath.Join(dir, name))
	case !fi.IsDir():
		return nil, false, fmt.Errorf("xdir prepare: %s exists and is not a directory (move it away)", filepath.Join(dir, name))
	}
	sub, err = root.OpenRoot(name)
	if err != nil {
		return nil, false, fmt.Errorf("xdir prepare: %w", err)
	}
	return sub, made, nil
}

// xdirListOurs returns the names in sub (the directory path) that the
// workload made: regular files with 36-letter names. Anything else but the
// marker (when marker is true) is an error naming it: syncord neither
// removes it nor runs the workload beside it.
func xdirListOurs(sub *os.Root, path string, marker bool) ([]string, error) {
	f, err := sub.Open(".")
	if err != nil {
		return nil, fmt.Errorf("xdir prepare: %w", err)
	}
	defer f.Close()
	ents, err := f.ReadDir(-1)
	if err != nil {
		return nil, fmt.Errorf("xdir prepare: list %s: %w", path, err)
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		switch {
		case xdirOurs(e.Name()) && e.Type().IsRegular():
			names = append(names, e.Name())
		case marker && e.Name() == Marker:
		default:
			return nil, setting.Errorf("xdir prepare: %s holds %q, which syncord did not make; it removes only its own files (36-letter names): move it away or choose another {Dir}", path, e.Name())
		}
	}
	return names, nil
}

// FSInfo describes the filesystem holding a directory.
type FSInfo struct {
	MountPoint string `json:"mount_point"`
	FSType     string `json:"fstype"`
	Source     string `json:"source"`
	Device     string `json:"device"` // "major:minor" from mountinfo
	// Ext4 is true for ext2/3/4 (mountinfo type and superblock magic 0xEF53).
	Ext4 bool `json:"ext4"`
	// DirIndex is the superblock's dir_index feature bit; valid when
	// Superblock is true.
	DirIndex   bool `json:"dir_index"`
	Superblock bool `json:"superblock_read"`
	// Note explains what is wrong for the workload, or why the superblock
	// could not be read; empty when the filesystem suits it.
	Note string `json:"note,omitempty"`
}

// Suitable reports whether the xdir workload measures what it should here:
// ext4 with dir_index off, so renames into a big directory scan it linearly
// while holding the rename lock.
func (i FSInfo) Suitable() bool { return i.Ext4 && i.Superblock && !i.DirIndex }

// ext4 superblock layout (fs/ext4/ext4.h): it starts 1024 bytes into the
// device; s_magic is at 0x38, s_feature_compat at 0x5C.
const (
	ext4SuperOffset      = 1024
	ext4MagicOffset      = 0x38
	ext4CompatOffset     = 0x5C
	ext4Magic            = 0xEF53
	ext4CompatDirIndex   = 0x20
	xdirSuperblockMinLen = ext4CompatOffset + 4
)

// ParseExt4Superblock reads s_magic and the dir_index bit of
// s_feature_compat from the 1024-byte superblock sb (the bytes at offset
// 1024 of the device). ok is false when the magic is not 0xEF53.
func ParseExt4Superblock(sb []byte) (dirIndex, ok bool) {
	if len(sb) < xdirSuperblockMinLen {
		return false, false
	}
	if binary.LittleEndian.Uint16(sb[ext4MagicOffset:]) != ext4Magic {
		return false, false
	}
	return binary.LittleEndian.Uint32(sb[ext4CompatOffset:])&ext4CompatDirIndex != 0, true
}

// xdirParseMountInfo parses /proc/PID/mountinfo (proc(5)) with
// moby/sys/mountinfo, which undoes the kernel's \ooo escapes in paths.
func xdirParseMountInfo(b []byte) ([]*mountinfo.Info, error) {
	return mountinfo.GetMountsFromReader(bytes.NewReader(b), nil)
}

// xdirMountOf returns the mount whose mount point is the longest prefix of the
// absolute, symlink-free path p (the last one wins for stacked mounts).
func xdirMountOf(mounts []*mountinfo.Info, p string) (*mountinfo.Info, bool) {
	var best *mountinfo.Info
	for _, m := range mounts {
		mp := m.Mountpoint
		if p == mp || mp == "/" || strings.HasPrefix(p, mp+"/") {
			if best == nil || len(mp) >= len(best.Mountpoint) {
				best = m
			}
		}
	}
	return best, best != nil
}

// FSInfoOf finds the filesystem holding dir in procRoot/self/mountinfo and,
// for ext2/3/4, reads the superblock of its block device (the mount source,
// else /dev/block/MAJ:MIN) to report the dir_index feature bit.
func FSInfoOf(procRoot, dir string) (FSInfo, error) {
	abs, err := filepath.Abs(dir)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		return FSInfo{}, fmt.Errorf("xdir: resolve %s: %w", dir, err)
	}
	mi := filepath.Join(procRoot, "self/mountinfo")
	b, err := pseudofs.Read(mi, 4<<20)
	if err != nil {
		return FSInfo{}, fmt.Errorf("xdir: read %s: %w", mi, err)
	}
	mounts, err := xdirParseMountInfo(b)
	if err != nil {
		return FSInfo{}, fmt.Errorf("xdir: parse %s: %w", mi, err)
	}
	m, ok := xdirMountOf(mounts, abs)
	if !ok {
		return FSInfo{}, fmt.Errorf("xdir: no mount holds %s in %s", abs, mi)
	}
	device := fmt.Sprintf("%d:%d", m.Major, m.Minor)
	info := FSInfo{MountPoint: m.Mountpoint, FSType: m.FSType, Source: m.Source, Device: device}
	if m.FSType != "ext4" && m.FSType != "ext3" && m.FSType != "ext2" {
		info.Note = fmt.Sprintf("%s is %s, not ext4: the workload needs ext4 with dir_index off (make one with --make-image)", m.Mountpoint, m.FSType)
		return info, nil
	}
	info.Ext4 = true
	var sbErr error
	for _, dev := range []string{m.Source, "/dev/block/" + device} {
		if !strings.HasPrefix(dev, "/") {
			continue
		}
		sb, err := xdirReadAt(dev, ext4SuperOffset, 1024)
		if err != nil {
			if sbErr == nil {
				sbErr = err
			}
			continue
		}
		dirIndex, ok := ParseExt4Superblock(sb)
		if !ok {
			sbErr = fmt.Errorf("%s: no ext4 superblock magic 0xEF53 at offset 1024", dev)
			continue
		}
		info.Superblock, info.DirIndex = true, dirIndex
		if dirIndex {
			info.Note = fmt.Sprintf("dir_index is on for %s: renames into a big directory then use a hashed index instead of the linear scan the workload relies on (tune2fs -O ^dir_index %s while unmounted, or use --make-image)", dev, dev)
		}
		return info, nil
	}
	if sbErr == nil {
		sbErr = fmt.Errorf("mount source %q is not a device path", m.Source)
	}
	info.Note = fmt.Sprintf("cannot read the superblock (%v): dir_index unknown (run as root, or check with tune2fs -l)", sbErr)
	return info, nil
}

func xdirReadAt(path string, off int64, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("read superblock of %s: %w", path, err)
	}
	return b, nil
}

// MakeImage creates path as a sparse file of size bytes and formats it
// ext4 with dir_index off (mkfs.ext4 -O ^dir_index, from e2fsprogs), with
// one inode per 4 KiB so it holds many empty files. It refuses to overwrite
// an existing file.
func MakeImage(ctx context.Context, path string, size int64) error {
	return MakeImageFrom(ctx, path, size, "")
}

// MakeImageFrom is MakeImage with the filesystem populated from the
// host directory root (mkfs.ext4 -d), e.g. one Prepare made: creating
// many files in a directory without an index costs a scan of the directory
// per file, which is slow in an emulated guest.
func MakeImageFrom(ctx context.Context, path string, size int64, root string) error {
	if size < 8<<20 {
		return fmt.Errorf("xdir make-image: size %d is below 8 MiB", size)
	}
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		return fmt.Errorf("xdir make-image: mkfs.ext4 not found (install e2fsprogs): %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("xdir make-image: %w (remove it first to recreate)", err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("xdir make-image: size %s: %w", path, err)
	}
	f.Close()
	args := []string{"-q", "-F", "-O", "^dir_index", "-i", "4096", "-L", "xdir"}
	if root != "" {
		args = append(args, "-d", root)
	}
	cmd := exec.CommandContext(ctx, mkfs, append(args, path)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(path)
		return fmt.Errorf("xdir make-image: %s: %w: %s", strings.Join(cmd.Args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}
