package control_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/syncord/syncord/runtime/control"
)

// A server running a small Runner on a unix socket, and a client running a
// command through it. syncord agent wires Run to the syncord command line
// and listens on virtio-serial and vsock instead.
func Example() {
	dir, _ := os.MkdirTemp("", "control-example-")
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "agent.sock")

	l, err := control.ListenUnix(sock)
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := control.NewServer(control.Config{
		Run: func(ctx context.Context, stdout, stderr io.Writer, args []string) int {
			fmt.Fprintf(stdout, "ran %s\n", strings.Join(args, " "))
			return 0
		},
		Mutating: func(args []string) bool { return args[0] == "bench" },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ctx, l) }()
	defer func() { cancel(); <-done }()

	c, err := control.Dial(context.Background(), "unix://"+sock)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	code, err := c.Run(context.Background(), []string{"topology", "--json"}, os.Stdout, os.Stderr)
	fmt.Println("exit status", code, err)
	// Output:
	// ran topology --json
	// exit status 0 <nil>
}
