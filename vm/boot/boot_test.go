package boot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeBzImage writes the parts of an x86 setup header BzImageRelease reads.
func fakeBzImage(t *testing.T, version string) string {
	t.Helper()
	img := make([]byte, 0x1000)
	copy(img[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(img[0x20e:], 0x300) // string at 0x500
	copy(img[0x500:], version+" (builder@host) #1 SMP\x00")
	p := filepath.Join(t.TempDir(), "bzImage")
	if err := os.WriteFile(p, img, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBzImageRelease(t *testing.T) {
	p := fakeBzImage(t, "5.4.0-stock-syncord")
	k, err := Resolve(p, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if k.Version != "5.4.0-stock-syncord" || k.Vmlinuz != p || k.ModulesDir != "" {
		t.Errorf("kernel %+v", k)
	}
	notImg := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(notImg, bytes.Repeat([]byte("x"), 0x400), 0o644)
	if _, err := Resolve(notImg, t.TempDir()); !errors.Is(err, ErrNoKernel) || !strings.Contains(err.Error(), "not an x86 bzImage") {
		t.Errorf("a text file as kernel: %v", err)
	}
	if _, err := Resolve(t.TempDir(), t.TempDir()); !errors.Is(err, ErrNoKernel) || !strings.Contains(err.Error(), "want one linux-image-*.deb") {
		t.Errorf("an empty folder as kernel: %v", err)
	}
	if _, err := Resolve("/nonexistent/vmlinuz", t.TempDir()); err == nil || !strings.Contains(err.Error(), "want debian, a bzImage") {
		t.Errorf("a missing kernel: %v", err)
	}
}

func TestInitramfsBuild(t *testing.T) {
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("skipping: no /bin/busybox (apt-get install busybox-static)")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "syncord")
	os.WriteFile(bin, []byte("#!fake"), 0o755)
	pol := filepath.Join(dir, "lockstat_kern.o")
	os.WriteFile(pol, []byte("obj"), 0o644)
	k := &Kernel{Version: "5.4.0-test", Vmlinuz: "/dev/null"}
	out := filepath.Join(dir, "initramfs.cpio")
	c := Initramfs{Kernel: k, Init: AgentInit, Syncord: bin, Files: map[string]string{"/var/lib/syncord/policies/lockstat/eBPFGen/lockstat_kern.o": pol}}
	if err := c.Build(out); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	for _, want := range []string{"bin/syncord\x00", "bin/busybox\x00", "init\x00", "etc/e2e/init.sh\x00", AgentInit,
		"var/lib/syncord/policies/lockstat/eBPFGen/lockstat_kern.o\x00", "TRAILER!!!"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("initramfs has no %q", want)
		}
	}
	if bytes.Contains(b, []byte("bin/syncord-host\x00")) {
		t.Errorf("syncord-host added though not given")
	}
	c.Modules = []string{"ext4"}
	if err := c.Build(out); err == nil || !strings.Contains(err.Error(), "came without modules") {
		t.Errorf("modules for a bare bzImage: %v", err)
	}
}
