package bpf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// DefaultLockstatMap is where the lockstat policy's map is pinned.
var DefaultLockstatMap = filepath.Join(DefaultBPFFS, DefaultMapPin)

// lockstatValue is one map value: 11 u64 (SYNCORD-ABI.md section 2).
type lockstatValue [11]uint64

// lockstatBatch is how many entries one BPF_MAP_LOOKUP_BATCH asks for.
const lockstatBatch = 4096

// OpenLockstatMap opens the map pinned at path (BPF_OBJ_GET) and checks that
// it has the lockstat layout: a hash map, u64 keys, 88-byte values.
func OpenLockstatMap(path string) (*ebpf.Map, error) {
	m, err := ebpf.LoadPinnedMap(path, &ebpf.LoadPinOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("open lockstat map %s: %w", path, whatIsPinned(path, err))
	}
	if err := checkLockstatLayout(m); err != nil {
		m.Close()
		return nil, fmt.Errorf("lockstat map %s: %w", path, err)
	}
	return m, nil
}

// whatIsPinned explains why BPF_OBJ_GET of path as a map failed (err):
// the kernel answers EACCES for anything outside a bpffs and EINVAL for a
// pinned program, which read as a permission problem or nothing at all.
func whatIsPinned(path string, err error) error {
	const install = "is the lockstat policy installed? syncord policy install lockstat"
	st, serr := os.Lstat(path)
	switch {
	case errors.Is(serr, os.ErrNotExist):
		return fmt.Errorf("no such file (%s)", install)
	case serr != nil:
		return fmt.Errorf("%w (%s)", serr, install)
	case st.IsDir():
		return errors.New("is a directory, not a pinned map (give the map's pin path, such as /sys/fs/bpf/hash_map)")
	}
	var fs unix.Statfs_t
	if unix.Statfs(path, &fs) == nil && uint32(fs.Type) != unix.BPF_FS_MAGIC {
		kind := "a regular file"
		if !st.Mode().IsRegular() {
			kind = "a " + st.Mode().Type().String() + " file"
		}
		return fmt.Errorf("is %s on a file system of type %#x, not in a bpffs: a pinned BPF map lives under a bpf file system such as /sys/fs/bpf (%s)", kind, fs.Type, install)
	}
	if p, perr := ebpf.LoadPinnedProgram(path, &ebpf.LoadPinOptions{ReadOnly: true}); perr == nil {
		typ := p.Type()
		p.Close()
		return fmt.Errorf("is a pinned BPF program (%s), not a map (the lockstat policy pins its map as hash_map next to its programs)", typ)
	}
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return fmt.Errorf("%w (reading a pinned map needs root or CAP_BPF and read access to the pin)", err)
	}
	return fmt.Errorf("%w (is it a pinned BPF map? %s)", err, install)
}

func checkLockstatLayout(m *ebpf.Map) error {
	switch m.Type() {
	case ebpf.Hash, ebpf.LRUHash:
	default:
		return fmt.Errorf("map type is %s, want Hash (is another policy's hash_map pinned there?)", m.Type())
	}
	if m.KeySize() != 8 || m.ValueSize() != LockStatValueSize {
		return fmt.Errorf("key/value size %d/%d, want 8/%d (u64 lock address, 11 u64)", m.KeySize(), m.ValueSize(), LockStatValueSize)
	}
	return nil
}

// ReadLockStats reads every entry of a lockstat map, in the map's own order
// (the order the artifact's reader printed). It uses BPF_MAP_LOOKUP_BATCH
// where the kernel has it (5.6+) and BPF_MAP_GET_NEXT_KEY iteration
// otherwise (the SynCord 5.4 kernels); batched says which one ran.
func ReadLockStats(m *ebpf.Map) (rows []LockStat, batched bool, err error) {
	if err := checkLockstatLayout(m); err != nil {
		return nil, false, err
	}
	rows, err = readBatch(m)
	if err == nil {
		return rows, true, nil
	}
	if !errors.Is(err, ebpf.ErrNotSupported) {
		return nil, false, err
	}
	rows, err = readIterate(m)
	return rows, false, err
}

func readBatch(m *ebpf.Map) ([]LockStat, error) {
	n := int(m.MaxEntries())
	if n > lockstatBatch || n <= 0 {
		n = lockstatBatch
	}
	keys := make([]uint64, n)
	vals := make([]lockstatValue, n)
	rows := make([]LockStat, 0, n)
	var cursor ebpf.MapBatchCursor
	for {
		got, err := m.BatchLookup(&cursor, keys, vals, nil)
		for i := 0; i < got; i++ {
			rows = append(rows, fromValue(keys[i], &vals[i]))
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return rows, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read lockstat map: %w", err)
		}
	}
}

func readIterate(m *ebpf.Map) ([]LockStat, error) {
	var (
		k    uint64
		v    lockstatValue
		rows []LockStat
	)
	it := m.Iterate()
	for it.Next(&k, &v) {
		rows = append(rows, fromValue(k, &v))
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read lockstat map: %w", err)
	}
	return rows, nil
}

func fromValue(addr uint64, v *lockstatValue) LockStat {
	return LockStat{Addr: addr, PrevCPU: v[0], Contentions: v[1], ConBounces: v[2],
		WaitMin: v[3], WaitMax: v[4], WaitTotal: v[5], Acquisitions: v[6],
		AcqBounces: v[7], HoldMin: v[8], HoldMax: v[9], HoldTotal: v[10]}
}

// ReadLockstatPinned opens the map pinned at path and reads it.
func ReadLockstatPinned(path string) ([]LockStat, error) {
	m, err := OpenLockstatMap(path)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	rows, _, err := ReadLockStats(m)
	return rows, err
}
