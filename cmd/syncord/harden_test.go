package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSizeOverflow: --size values that wrapped around on int64 are refused
// by name, and no image is made (issue 11 item 14).
func TestSizeOverflow(t *testing.T) {
	dir := t.TempDir()
	for _, size := range []string{"9999999999G", "17592186044432M", "-1M", "0"} {
		img := filepath.Join(dir, "x.img")
		r := local("bench", "xdir", "prepare", "--make-image", img, "--size", size)
		if r.code == 0 || !strings.Contains(r.stderr, "--size") || !strings.Contains(r.stderr, size) {
			t.Errorf("--size %s: code %d stderr %q, want a refusal naming the size", size, r.code, r.stderr)
		}
		if _, err := os.Stat(img); err == nil {
			t.Errorf("--size %s made %s", size, img)
			os.Remove(img)
		}
	}
}

// TestFlagErrorsAreShort: a flag error of a real command prints two lines
// (the complaint, the synopsis with see --help), not the whole help (issue
// 11 item 16).
func TestFlagErrorsAreShort(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "will-it-scale", "--bogus"},
		{"bench", "metis", "wrmem", "-p", "x"},
		{"bench", "fxmark", "--type", "MWRL"},
		{"topology", "extra"},
		{"policy", "install"},
		{"lockstat", "--nope"},
		{"bench", "frobnicate"},
	} {
		r := local(args...)
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if r.code != 2 || len(lines) > 2 || !strings.Contains(r.stderr, "--help'") {
			t.Errorf("%q: code %d, %d lines of stderr %q; want 2, at most two lines pointing to --help", args, r.code, len(lines), r.stderr)
		}
	}
}
