package control

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/vsock"
)

// TestVsockLocal serves the agent on vsock.Local (CID 1) and runs requests
// through it. It needs the vsock_loopback transport and connects only to
// CID 1, never to the host CID 2.
func TestVsockLocal(t *testing.T) {
	if err := LocalVsockAvailable(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	// Bind to CID 1 so nothing but the loopback can reach the listener.
	l, err := ListenVsock(vsock.Local, 0, []uint32{vsock.Local}, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*vsock.Addr).Port
	f := newFake()
	srv := NewServer(Config{Run: f.run, Mutating: fakeMutating})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	defer func() {
		cancel()
		<-done
	}()
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	c, err := Dial(dctx, fmt.Sprintf("vsock://%d:%d", vsock.Local, port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := run(context.Background(), c, "echo", "over", "vsock")
	if r.err != nil || r.code != 0 || r.stdout != "over vsock\n" {
		t.Fatalf("got %+v", r)
	}
}

// TestVsockRefusesOtherCIDs checks the CID filter without a peer: the local
// CID is not the host's, so a listener that does not allow it refuses it.
func TestVsockRefusesOtherCIDs(t *testing.T) {
	if err := LocalVsockAvailable(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	l, err := ListenVsock(vsock.Local, 0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*vsock.Addr).Port
	go func() {
		c, err := l.Accept()
		if err == nil {
			c.Close()
			t.Error("a CID 1 connection was accepted without --allow-cid 1")
		}
	}()
	c, err := vsock.Dial(vsock.Local, port, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	if err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("read on a refused connection: %v, want it closed", err)
	}
}
