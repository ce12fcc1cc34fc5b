package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/syncord/syncord/runtime/control"
)

// TestAgentSIGTERMSendsStatus: a real `syncord agent` stopped with SIGTERM
// while a request runs sends its client a last stderr line and exit
// status 143 instead of dropping the connection (issue 11 item 16), and
// the request's child cleans up (fxmark removes what it made).
func TestAgentSIGTERMSendsStatus(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "broot")
	fx := filepath.Join(root, "fx")
	if err := os.MkdirAll(fx, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(base, "agent.sock")
	agent, stderr := startSyncord(t, "agent", "--listen", "unix://"+sock, "--bench-root", root, "--policy-root", root, "--bpf-root", root, "--reconcile=false")
	// The socket file exists from bind(2) on, before listen(2): a client
	// that saw it could be refused. The agent logs "listening on" once
	// Listen has returned, which is after listen(2).
	stderr.waitContains(t, "listening on unix://"+sock, nil)
	c, err := control.Dial(context.Background(), "unix://"+sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	type res struct {
		code   int
		stderr string
		err    error
	}
	done := make(chan res, 1)
	go func() {
		var o, e bytes.Buffer
		code, err := c.Run(context.Background(), []string{"bench", "fxmark", "--type", "MWRL", "--ncore", "1", "--duration", "60", "-n", "1", "--no-affinity", "--root", fx}, &o, &e)
		done <- res{code, e.String(), err}
	}()
	waitFor(t, "the request's worker directory", func() bool {
		_, err := os.Stat(filepath.Join(fx, "0"))
		return err == nil
	})
	if err := agent.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var r res
	select {
	case r = <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("no answer 60 s after SIGTERM; agent stderr:\n%s", stderr)
	}
	if r.err != nil || r.code != control.ExitStopped || !strings.Contains(r.stderr, "the agent is stopping") {
		t.Fatalf("client of an agent stopped by SIGTERM: status %d, err %v, stderr %q; want %d and a last line", r.code, r.err, r.stderr, control.ExitStopped)
	}
	agent.Wait()
	if ents, _ := os.ReadDir(fx); len(ents) != 0 {
		t.Fatalf("%s after the cancelled run: %v, want it cleaned", fx, ents)
	}
}
