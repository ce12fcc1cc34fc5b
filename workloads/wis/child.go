package wis

import (
	"encoding/json"
	"fmt"

	"github.com/syncord/syncord/workloads"
)

// Processes mode (Config.Processes, the suite's <test>_processes build):
// every task is this binary re-executed (workloads.LaunchProcesses). A
// binary that runs processes mode must call ChildMain when IsChild is
// true, before anything else (cmd/syncord does it in an init function;
// test binaries in TestMain).

// childPayload is what a task process needs of the run: the test and the
// paths its prepare made.
type childPayload struct {
	Test    string   `json:"test"`
	Tasks   int      `json:"tasks"`
	Dir     string   `json:"dir"`
	Shm     string   `json:"shm"`
	Shared  string   `json:"shared"`
	PerTask []string `json:"per_task"`
}

// payload is e's part of every task process's spec.
func (e *env) payload(t *Test) childPayload {
	return childPayload{Test: t.Name, Tasks: e.tasks, Dir: e.dir, Shm: e.shm, Shared: e.shared, PerTask: e.perTask}
}

// IsChild reports whether this process was started as a processes-mode
// task.
func IsChild() bool { return workloads.IsChild() }

// ChildMain runs this process as one processes-mode task and returns its
// exit status: setup, report ready, wait for the start, loop until
// SIGTERM. Errors go to stderr.
func ChildMain() int { return workloads.ChildMain("will-it-scale", childBody) }

func childBody(payload []byte, t *workloads.Task) error {
	var p childPayload
	if err := json.Unmarshal(payload, &p); err != nil {
		return fmt.Errorf("bad task payload: %w", err)
	}
	test, ok := Lookup(p.Test)
	if !ok {
		return fmt.Errorf("unknown test %q", p.Test)
	}
	e := &env{dir: p.Dir, shm: p.Shm, tasks: p.Tasks, shared: p.Shared, perTask: p.PerTask}
	if test.Name == "signal1" {
		// signal1's prepare only installs the SIGUSR1 handler, which
		// every process needs.
		if err := test.prepare(e); err != nil {
			return err
		}
	}
	return test.body(e, t)
}
