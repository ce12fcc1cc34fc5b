package wis_test

import (
	"context"
	"fmt"
	"time"

	"github.com/syncord/syncord/workloads/wis"
)

// The will-it-scale lines of a short lock1 run (the suite's 5 warmup
// samples of 1 s are the default; this one uses 100 ms and no warmup).
func ExampleRun() {
	res, err := wis.Run(context.Background(), wis.Config{
		Test: "lock1", Tasks: 1, CoresPerSocket: 1, Duration: 2 * 100 * time.Millisecond,
		Warmup: -1, Interval: 100 * time.Millisecond, NoAffinity: true,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Description, len(res.Samples), res.Measured, res.Average.Total > 0)
	// Output: Separate file write lock/unlock 3 2 true
}
