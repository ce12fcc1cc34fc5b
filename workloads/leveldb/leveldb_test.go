package leveldb

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/syncord/syncord/workloads"
)

func TestParkMiller(t *testing.T) {
	// LevelDB's Random(301) and Random(1000): seed*16807 mod 2^31-1.
	for _, tc := range []struct {
		name string
		seed uint32
		want []uint32
	}{
		{"db_bench thread 0", 1000, []uint32{16807000, 1154891243, 1299919515}},
		{"zero becomes one", 0, []uint32{16807, 282475249, 1622650073}},
		{"2^31-1 becomes one", 2147483647, []uint32{16807, 282475249, 1622650073}},
		{"high bit dropped", 0x80000000 | 1000, []uint32{16807000, 1154891243, 1299919515}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewParkMiller(tc.seed)
			for i, w := range tc.want {
				// Reference: 64-bit modular arithmetic.
				if got := r.Next(); got != w {
					t.Fatalf("Next #%d = %d, want %d", i, got, w)
				}
			}
		})
	}
	// Cross-check against the plain definition over many steps.
	r, s := NewParkMiller(1001), uint64(1001)
	for i := 0; i < 100000; i++ {
		s = s * 16807 % 2147483647
		if got := r.Next(); uint64(got) != s {
			t.Fatalf("step %d: %d, want %d", i, got, s)
		}
	}
}

func TestLevelDBKey(t *testing.T) {
	for _, tc := range []struct {
		k    int
		want string
	}{{0, "0000000000000000"}, {42, "0000000000000042"}, {999999, "0000000000999999"}, {1234567890123456, "1234567890123456"}} {
		if got := string(leveldbKey(nil, tc.k)); got != tc.want {
			t.Errorf("key(%d) = %q, want %q", tc.k, got, tc.want)
		}
	}
}

func TestLevelDBValues(t *testing.T) {
	g := newLevelDBValues()
	v := g.next(100)
	if len(v) != 100 || !bytes.Equal(v[:50], v[50:]) {
		t.Errorf("value is not a 50-byte piece repeated: %q", v)
	}
	for _, c := range v {
		if c < ' ' || c > '~' {
			t.Fatalf("unprintable byte %q", c)
		}
	}
}

var leveldbReportRE = `per-thread stat : +\d+\.\d{3} micros/op; \(\d+ of \d+ found\)\nreadrandom   : +\d+\.\d{3} \( *\d+ / \d+\.\d{3}\) ops/s\n`

func TestLevelDBReadRandom(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	n := min(2, workloads.UsableCPUs())
	var prog bytes.Buffer
	res, err := Run(context.Background(), Config{
		Threads: n, Duration: time.Second, Num: 5000, DB: dir, CoresPerSocket: 2, Progress: &prog,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Filled || !strings.HasPrefix(prog.String(), "fillseq      : ") {
		t.Errorf("not filled: %v %q", res.Filled, prog.String())
	}
	if res.Total.Found != res.Total.Done || res.Total.Done < 100 {
		t.Errorf("total: %+v (every key 0..num-1 exists)", res.Total)
	}
	if n == 2 && (res.Fast == nil || res.Slow == nil || res.Fast.Done+res.Slow.Done != res.Total.Done) {
		t.Errorf("fast/slow split: %+v %+v", res.Fast, res.Slow)
	}
	var out bytes.Buffer
	res.WriteText(&out)
	groups := strings.Repeat(leveldbReportRE, n+1)
	if n == 1 {
		groups = strings.Repeat(leveldbReportRE, 2)
	}
	re := regexp.MustCompile(`\A` + groups + `#num_threads, fast, slow, tot ops/s\n` + `\d+, \d+\.\d{3}, \d+\.\d{3}, \d+\.\d{3}\n\z`)
	if !re.Match(out.Bytes()) {
		t.Errorf("output format:\n%s", out.String())
	}

	// --use-existing keeps the database; without it a foreign directory is
	// never deleted.
	res, err = Run(context.Background(), Config{
		Threads: 1, Duration: time.Second, Num: 5000, DB: dir, CoresPerSocket: 2, UseExisting: true,
	})
	if err != nil || res.Filled {
		t.Fatalf("use-existing: filled=%v err=%v", res != nil && res.Filled, err)
	}
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "precious"), []byte("x"), 0o644)
	if _, err := Run(context.Background(), Config{Threads: 1, Duration: time.Second, Num: 10, DB: other, CoresPerSocket: 2}); err == nil {
		t.Error("a non-LevelDB directory was accepted for destruction")
	}
	if _, err := os.Stat(filepath.Join(other, "precious")); err != nil {
		t.Errorf("foreign file removed: %v", err)
	}
}
