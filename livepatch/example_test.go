package livepatch_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/syncord/syncord/internal/pseudofs"
	"github.com/syncord/syncord/livepatch"
)

// Patches lists what /sys/kernel/livepatch holds (here a fixture tree).
func ExampleFS_Patches() {
	l := livepatch.New(pseudofs.Roots{Sys: pseudofs.FS("testdata/two/sys")})
	patches, err := l.Patches()
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range patches {
		fmt.Printf("%s enabled=%v transition=%v signal=%v\n", p.Name, p.Enabled, p.Transition, p.Signal)
	}
	// Output:
	// livepatch_amp enabled=true transition=true signal=false
	// livepatch_concord enabled=true transition=false signal=true
}

// Wait reports the tasks that keep a transition from finishing.
func ExampleFS_Wait() {
	l := livepatch.New(pseudofs.Roots{Sys: pseudofs.FS("testdata/stuck/sys"), Proc: pseudofs.FS("testdata/stuck/proc")})
	err := l.Wait(context.Background(), "livepatch_concord", 10*time.Millisecond, livepatch.WaitOptions{NudgeAfter: -1})
	var te *livepatch.TransitionError
	if errors.As(err, &te) {
		for _, t := range te.Blocking {
			fmt.Println(t)
		}
	}
	// Output:
	// 412/412 (fxmark) patch_state=1
	// 412/415 (fxmark-worker) patch_state=1
}
