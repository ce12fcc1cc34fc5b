package main

import (
	"os"
	"testing"

	"github.com/syncord/syncord/runtime/control"
)

// TestMain lets the test binary serve as the agent's request child
// (agentConfig runs every request in /proc/self/exe, see requestChild).
func TestMain(m *testing.M) {
	if control.IsRequestChild() {
		os.Exit(control.ChildMain(requestChild))
	}
	os.Exit(m.Run())
}
