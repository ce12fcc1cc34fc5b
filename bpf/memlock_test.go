package bpf

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestMemcgAccounting(t *testing.T) {
	for _, tc := range []struct {
		release string
		want    bool
	}{
		{"5.4.0-syncord", false}, // the SynCord kernel
		{"5.10.209-1-amd64", false},
		{"5.11.0", true},
		{"6.1.0-56-amd64", true},
		{"6.18.44-fc-v782", true},
		{"4.19.0-27-amd64", false},
		{"10.0", true},
		{"5", false},
		{"", false},
		{"garbage", false},
	} {
		t.Run(tc.release, func(t *testing.T) {
			if got := memcgAccounting(tc.release); got != tc.want {
				t.Errorf("memcgAccounting(%q) = %v, want %v", tc.release, got, tc.want)
			}
		})
	}
}

// TestRemoveMemlock checks RemoveMemlock on this kernel: the limit is left
// alone from 5.11 on (memcg accounting), raised to infinity before.
func TestRemoveMemlock(t *testing.T) {
	var before, after unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &before); err != nil {
		t.Fatal(err)
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	release := unix.ByteSliceToString(u.Release[:])
	if !memcgAccounting(release) && before.Max != unix.RLIM_INFINITY && unix.Geteuid() != 0 {
		t.Skipf("skipping: kernel %s needs RLIMIT_MEMLOCK raised, which needs root (run as root)", release)
	}
	if err := RemoveMemlock(); err != nil {
		t.Fatalf("RemoveMemlock on %s: %v", release, err)
	}
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &after); err != nil {
		t.Fatal(err)
	}
	want := before
	if !memcgAccounting(release) {
		want = unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
	}
	if after != want {
		t.Errorf("kernel %s: RLIMIT_MEMLOCK %+v -> %+v, want %+v", release, before, after, want)
	}
}
