package workloads_test

import (
	"context"
	"fmt"
	"time"

	"github.com/syncord/syncord/workloads"
)

// A driver on the engine: two tasks placed by the rule with 2 cores per
// socket (CPU 0 fast, CPU 1 slow), released together, counting loop
// iterations, sampled every 100 ms.
func ExampleLaunch() {
	run, err := workloads.Launch(context.Background(), workloads.Config{Tasks: 2, CoresPerSocket: 2, NoAffinity: true},
		func(t *workloads.Task) error {
			// setup goes here, before the barrier
			if !t.Ready() {
				return nil
			}
			for stop := t.StopFlag(); !stop.Load(); {
				t.Count.Add(1)
			}
			return nil
		})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer run.Stop()
	s, err := workloads.NewSampler(run, 100*time.Millisecond).Next(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, t := range run.Tasks() {
		fmt.Printf("task %d: CPU %d fast=%v\n", t.ID, t.CPU, t.Fast)
	}
	fmt.Println("fast+slow == total:", s.Fast+s.Slow == s.Total, "work done:", s.Total > 0)
	// Output:
	// task 0: CPU 0 fast=true
	// task 1: CPU 1 fast=false
	// fast+slow == total: true work done: true
}
