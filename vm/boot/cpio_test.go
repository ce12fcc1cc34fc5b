package boot

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"testing"

	"github.com/u-root/u-root/pkg/cpio"
)

// TestCPIOArchive: the records read back (u-root's reader) with parents
// made first, numbered, one link, no owner or time; and the bytes are
// those the hand-written writer made before it moved onto pkg/cpio
// (sha256 of this archive from that writer), so initramfs images did not
// change.
func TestCPIOArchive(t *testing.T) {
	var b bytes.Buffer
	w := newCPIO(&b)
	w.Dir("/dev")
	w.Dir("/etc/e2e")
	w.CharDev("/dev/console", 5, 1)
	w.File("/etc/e2e/init.sh", 0o644, []byte("echo hi\n"))
	w.File("/init", 0o755, []byte("#!/bin/sh\n"))
	w.Symlink("/bin/sh", "busybox")
	w.File("/lib/modules/6.1/modules.dep", 0o644, nil)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b.Bytes())
	if got := hex.EncodeToString(sum[:]); got != "17e8c422787b8025401f89c0decf7201b75e5143ed575e532886a8b077be3732" {
		t.Errorf("archive sha256 %s, want the earlier writer's", got)
	}
	want := []struct {
		name string
		mode uint64
		data string
	}{
		{"dev", cpio.S_IFDIR | 0o755, ""},
		{"etc", cpio.S_IFDIR | 0o755, ""},
		{"etc/e2e", cpio.S_IFDIR | 0o755, ""},
		{"dev/console", cpio.S_IFCHR | 0o600, ""},
		{"etc/e2e/init.sh", cpio.S_IFREG | 0o644, "echo hi\n"},
		{"init", cpio.S_IFREG | 0o755, "#!/bin/sh\n"},
		{"bin", cpio.S_IFDIR | 0o755, ""},
		{"bin/sh", cpio.S_IFLNK | 0o777, "busybox"},
		{"lib", cpio.S_IFDIR | 0o755, ""},
		{"lib/modules", cpio.S_IFDIR | 0o755, ""},
		{"lib/modules/6.1", cpio.S_IFDIR | 0o755, ""},
		{"lib/modules/6.1/modules.dep", cpio.S_IFREG | 0o644, ""},
	}
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(b.Bytes())))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d", len(recs), len(want))
	}
	for i, r := range recs {
		var data []byte
		if r.ReaderAt != nil {
			data, _ = io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
		}
		if r.Name != want[i].name || r.Mode != want[i].mode || string(data) != want[i].data || r.NLink != 1 || r.Ino != uint64(i+2) || r.UID != 0 || r.MTime != 0 {
			t.Errorf("record %d = %+v %q; want %s %o %q", i, r.Info, data, want[i].name, want[i].mode, want[i].data)
		}
	}
	if r := recs[3]; r.Rmajor != 5 || r.Rminor != 1 {
		t.Errorf("console rdev %d:%d", r.Rmajor, r.Rminor)
	}
}
