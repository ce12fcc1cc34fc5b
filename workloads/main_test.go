package workloads

import (
	"os"
	"testing"
)

// TestMain lets the test binary serve as a processes-mode task
// (RunWillItScale with Processes re-executes it).
func TestMain(m *testing.M) {
	if IsWISChild() {
		os.Exit(WISChildMain())
	}
	os.Exit(m.Run())
}
