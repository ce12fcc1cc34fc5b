package numa

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// TestCaptureRoundTrip captures each fixture (as the capture tool does) and
// checks the copy reads as the same topology, through a directory and
// through the JSON form the e2e VM prints.
func TestCaptureRoundTrip(t *testing.T) {
	for _, name := range []string{"host", "host-offline", "host-smt", "synth-2x4-cpufreq", "synth-8x28", "vm-2node", "vm-4node", "vm-2node-offline", "vm-2node-smt"} {
		t.Run(name, func(t *testing.T) {
			src := fixture(t, name)
			want, err := src.Topology()
			if err != nil {
				t.Fatal(err)
			}
			snap, err := src.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := snap.WriteJSON(&buf); err != nil {
				t.Fatal(err)
			}
			snap2, err := ReadSnapshot(&buf)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			writeFile(t, dir, "README.md", "kept\n")
			if err := snap2.WriteDir(dir); err != nil {
				t.Fatal(err)
			}
			if readFile(t, dir, "README.md") != "kept\n" {
				t.Errorf("WriteDir replaced README.md")
			}
			fs, _ := NewFS(dir)
			got, err := fs.Topology()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("captured copy reads differently:\n got %+v\nwant %+v", got, want)
			}
			// Capturing the copy again gives the same files: nothing the
			// reader needs is missing from a capture.
			again, err := fs.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(again, snap) {
				t.Fatalf("second capture differs")
			}
		})
	}
}

func TestCaptureReplacesOldTree(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "devices/system/cpu/cpu9/topology/core_id", "9\n")
	if err := fixture(t, "host").Capture(dir); err != nil {
		t.Fatal(err)
	}
	fs, _ := NewFS(dir)
	top, err := fs.Topology()
	if err != nil || top.Present.String() != "0-1" {
		t.Fatalf("Topology after Capture = %+v, %v", top, err)
	}
	if s, _ := fs.Snapshot(); len(s.Files) == 0 {
		t.Fatal("empty snapshot")
	}
	if _, err := NewFS(dir + "/devices/system/cpu/cpu9"); err == nil {
		t.Errorf("stale cpu9 survived a capture")
	}
}

func TestSnapshotRejectsEscapingPaths(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Snapshot
	}{
		{"parent", Snapshot{Files: map[string]string{"../x": ""}}},
		{"absolute", Snapshot{Files: map[string]string{"/etc/passwd": ""}}},
		{"outside devices", Snapshot{Files: map[string]string{"kernel/x": ""}}},
		{"dot-dot inside", Snapshot{Files: map[string]string{"devices/../../x": ""}}},
		{"absolute link target", Snapshot{Files: map[string]string{}, Links: map[string]string{"devices/system/cpu/cpu1/node0": "/etc"}}},
		{"link target leaving the tree", Snapshot{Files: map[string]string{}, Links: map[string]string{"devices/system/cpu/cpu1/node0": "../../../../../etc"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.s.WriteDir(t.TempDir()); err == nil {
				t.Fatal("WriteDir accepted it")
			}
		})
	}
	if _, err := ReadSnapshot(strings.NewReader("{}")); err == nil {
		t.Error("ReadSnapshot accepted a snapshot without files")
	}
	if _, err := ReadSnapshot(strings.NewReader("syncord: not json")); err == nil {
		t.Error("ReadSnapshot accepted garbage")
	}
}
