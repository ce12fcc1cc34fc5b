package leveldb

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLevelDBValueSizeBound: --value-size above the 1 MiB generator is an
// error naming the limit (it panicked and sent a Go stack), and the
// database directory it would have made is not left behind (issue 11
// item 9).
func TestLevelDBValueSizeBound(t *testing.T) {
	root := t.TempDir()
	db := filepath.Join(root, "new", "db")
	_, err := Run(context.Background(), Config{Threads: 1, CoresPerSocket: 1, Num: 10, ValueSize: 2 << 20, DB: db, Duration: time.Second})
	if err == nil || !strings.Contains(err.Error(), "ValueSize 2097152") || !strings.Contains(err.Error(), "1048576") {
		t.Fatalf("--value-size 2 MiB: %v, want an error naming it and the 1 MiB limit", err)
	}
	if _, err := os.Stat(filepath.Join(root, "new")); err == nil {
		t.Fatalf("%s was made by a refused run", filepath.Join(root, "new"))
	}
}

// TestLevelDBFillRemovesHalfMadeDB: a fill that stops early (here: a
// cancelled context) removes the directories it made; in a directory that
// existed it removes what it wrote and keeps the directory.
func TestLevelDBFillRemovesHalfMadeDB(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	root := t.TempDir()
	made := filepath.Join(root, "made")
	if _, _, err := FillSeq(ctx, filepath.Join(made, "db"), 1000, 100); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled fill: %v", err)
	}
	if _, err := os.Stat(made); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("half-made database left in %s (stat: %v)", made, err)
	}
	existing := filepath.Join(root, "existing")
	if err := os.Mkdir(existing, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, _, err := FillSeq(ctx, existing, 1000, 100); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled fill: %v", err)
	}
	if ents, err := os.ReadDir(existing); err != nil || len(ents) != 0 {
		t.Fatalf("%s after a cancelled fill: %v %v, want it kept and empty", existing, ents, err)
	}
}
