package lockwitness

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func TestParseTrace(t *testing.T) {
	b, err := os.ReadFile("testdata/trace.txt")
	if err != nil {
		t.Fatal(err)
	}
	got := parseTrace(b)
	want := []Event{
		{TID: 11387, Addr: 0xffff888627d2ba40, Flags: FlagSpin, Stack: []string{"trace_event_raw_event_contention_begin",
			"__pv_queued_spin_lock_slowpath", "_raw_spin_lock", "__task_rq_lock", "try_to_wake_up", "entry_SYSCALL_64_after_hwframe"}},
		{TID: 4242, Addr: 0xffffffff82a0b104, Flags: FlagSpin, Stack: []string{"trace_event_raw_event_contention_begin",
			"queued_spin_lock_slowpath", "_raw_spin_lock", "d_move", "vfs_rename"}},
		{TID: 77, TGID: 70, Addr: 0xffff888100f2e2c0, Flags: 1<<0 | 1<<2},
		{TID: 0, Addr: 0xffff8881003c4aec, Flags: FlagSpin},
		{TID: 8, Addr: 0, Flags: 1 << 5}, // hashed pointer: no address
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parseTrace:\n got %+v\nwant %+v", got, want)
	}
	if !got[1].Called("d_move") || got[0].Called("d_move") {
		t.Error("Called(d_move) wrong")
	}
	for i, want := range []string{"__task_rq_lock", "d_move", "", "", ""} {
		if c := got[i].Caller(); c != want {
			t.Errorf("event %d: Caller() = %q, want %q", i, c, want)
		}
	}
}

func TestParseLost(t *testing.T) {
	stats := "entries: 249\noverrun: 7\ncommit overrun: 0\nbytes: 6992\noldest event ts:  3803.513811\nnow ts:  3805.533422\ndropped events: 3\nread events: 0\n"
	if n := parseLost([]byte(stats)); n != 10 {
		t.Errorf("parseLost = %d, want 10", n)
	}
}

// TestWitness starts the witness, makes threads of this
// process contend on a kernel lock, and checks the instance and any mount
// are gone afterwards. Contention itself is weather: the test checks the
// record's consistency, and that at least one event arrived from anyone.
func TestWitness(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: creating a tracefs instance needs root (run: sudo go test ./internal/lockwitness/)")
	}
	mounts0 := tracefsMounts(t)
	w, err := Start(Options{Stacks: true})
	if errors.Is(err, ErrNoTracefs) {
		t.Skipf("skipping: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	dir := w.dir
	if _, err := os.Stat(filepath.Join(dir, "events/lock/contention_begin/enable")); err != nil {
		t.Fatalf("instance not there while running: %v", err)
	}
	// Contend on something: many threads creating and removing files in
	// one directory (its inode rwsem) while the witness runs.
	root := t.TempDir()
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 2000; j++ {
				f := filepath.Join(root, "f"+strings.Repeat("x", i))
				os.WriteFile(f, nil, 0o644)
				os.Remove(f)
			}
		}()
	}
	wg.Wait()
	rec, err := w.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("instance %s left behind: %v", dir, err)
	}
	if mounts := tracefsMounts(t); mounts != mounts0 {
		t.Errorf("tracefs mounts in our namespace changed:\n%s\n->\n%s", mounts0, mounts)
	}
	ours := rec.Count(func(e Event) bool { return e.Ours })
	withStack := rec.Count(func(e Event) bool { return len(e.Stack) > 0 })
	t.Logf("%d events (%d ours, %d with stacks), %d lost", len(rec.Events), ours, withStack, rec.Lost)
	if len(rec.Events) > 0 && withStack == 0 {
		t.Error("stacks requested, none parsed")
	}
	for _, e := range rec.Events {
		if e.Flags == 0 || e.TID < 0 {
			t.Errorf("bad event %+v", e)
		}
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// tracefsMounts lists the tracefs mounts of this process's (main thread's)
// mount namespace; other test binaries mount and unmount other things in
// it meanwhile.
func tracefsMounts(t *testing.T) string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, " - tracefs ") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
