package runtime

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestResolveBuiltinWins: a directory in the working directory named like
// a built-in policy does not shadow it; ./NAME names the directory.
func TestResolveBuiltinWins(t *testing.T) {
	cwd := t.TempDir()
	t.Chdir(cwd)
	if err := os.Mkdir(filepath.Join(cwd, "lockstat"), 0o755); err != nil {
		t.Fatal(err)
	}
	res, err := Resolve("lockstat", nil)
	if err != nil {
		t.Fatalf("Resolve(lockstat) with a ./lockstat directory: %v, want the built-in", err)
	}
	if res.Source != "lockstat" || res.Policy.Name != "lockstat" || strings.HasPrefix(res.Policy.ObjectPath, cwd) {
		t.Fatalf("Resolve(lockstat) = %+v, want the built-in", res.Policy)
	}
	if _, err := Resolve("./lockstat", nil); err == nil || !strings.Contains(err.Error(), "not a policy source directory") {
		t.Fatalf("Resolve(./lockstat) = %v, want the (empty) directory", err)
	}
	if IsBuiltinName("./lockstat") || IsBuiltinName("nosuch") || !IsBuiltinName("lockstat") {
		t.Fatal("IsBuiltinName")
	}
}
