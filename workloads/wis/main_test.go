package wis

import (
	"os"
	"testing"
)

// TestMain lets the test binary serve as a processes-mode task (Run with
// Processes re-executes it).
func TestMain(m *testing.M) {
	if IsChild() {
		os.Exit(ChildMain())
	}
	os.Exit(m.Run())
}
