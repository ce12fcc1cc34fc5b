package main

import (
	"os"
	"testing"

	"github.com/syncord/syncord/runtime/control"
)

// asSyncordEnv makes the test binary run as syncord (main), for tests
// that need a syncord process of their own to kill.
const asSyncordEnv = "SYNCORD_TEST_AS_SYNCORD"

// TestMain lets the test binary serve as the agent's request child
// (agentConfig runs every request in /proc/self/exe, see requestChild).
func TestMain(m *testing.M) {
	if control.IsRequestChild() {
		os.Exit(control.ChildMain(requestChild))
	}
	// The binary re-executed as syncord: fxmark --tmpfs in its mount
	// namespace, or a test's own syncord process.
	if os.Getenv(fxmarkNSEnv) != "" || os.Getenv(asSyncordEnv) != "" {
		os.Unsetenv(asSyncordEnv)
		main()
	}
	os.Exit(m.Run())
}
