package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/syncord/syncord/runtime/control"
)

// guestAgent serves a small runner on a unix socket: "echo ARGS" prints,
// "exit N" exits N with a message, "wait" runs until cancelled and prints
// "cancelled" then.
func guestAgent(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := control.ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := control.NewServer(control.Config{
		Run: func(ctx context.Context, stdout, stderr io.Writer, args []string) int {
			switch args[0] {
			case "echo":
				fmt.Fprintln(stdout, strings.Join(args[1:], " "))
				return 0
			case "exit":
				n, _ := strconv.Atoi(args[1])
				fmt.Fprintf(stderr, "exiting %d\n", n)
				return n
			case "wait":
				<-ctx.Done()
				fmt.Fprintln(stderr, "cancelled")
				return 3
			}
			return 2
		},
		Mutating: func([]string) bool { return false },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ctx, l) }()
	t.Cleanup(func() { cancel(); <-done })
	return sock
}

// silentSocket accepts connections and never answers, like QEMU's chardev
// socket of a serial port with no agent behind it.
func silentSocket(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "silent.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go io.Copy(io.Discard, c)
		}
	}()
	return path
}

func TestGuest(t *testing.T) {
	sock := guestAgent(t)
	silent := silentSocket(t)
	for _, tc := range []struct {
		name           string
		args           []string
		code           int
		stdout, stderr string
	}{
		{"stdout and status 0", []string{"guest", "--unix", sock, "--", "echo", "a", "-b"}, 0, "a -b\n", ""},
		{"guest status passed through", []string{"guest", "--unix", sock, "--", "exit", "42"}, 42, "", "exiting 42\n"},
		{"timeout cancels", []string{"guest", "--unix", sock, "--timeout", "100ms", "--", "wait"}, control.ExitTimeout, "", "cancelled after --timeout 100ms"},
		{"no transport", []string{"guest", "--", "echo"}, 2, "", "exactly one of --serial, --vsock, --unix"},
		{"two transports", []string{"guest", "--unix", sock, "--serial", sock, "--", "echo"}, 2, "", "exactly one"},
		{"no command", []string{"guest", "--unix", sock}, 2, "", "no command"},
		{"no agent", []string{"guest", "--unix", sock + ".missing", "--", "echo"}, 1, "", "is the agent or the VM running?"},
		{"serial socket without an agent", []string{"guest", "--serial", silent, "--connect-timeout", "200ms", "--", "echo"}, 1, "", "no agent answering"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, e, code := vmTestRun(t, context.Background(), tc.args...)
			if code != tc.code || o != tc.stdout || !strings.Contains(e, tc.stderr) {
				t.Fatalf("got %d %q %q, want %d %q stderr containing %q", code, o, e, tc.code, tc.stdout, tc.stderr)
			}
		})
	}
}

// TestGuestInterrupt cancels the context as SIGINT does in main: the guest
// command is cancelled and its own status returned.
func TestGuestInterrupt(t *testing.T) {
	sock := guestAgent(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, e, code := vmTestRun(t, ctx, "guest", "--unix", sock, "--", "wait")
	if code != 3 || !strings.Contains(e, "cancelled") {
		t.Fatalf("got %d %q, want the cancelled command's status 3", code, e)
	}
}
