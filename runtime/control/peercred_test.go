package control

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// peerSockEnv names the socket TestPeerCredClient dials when this test
// binary is re-executed under another uid.
const peerSockEnv = "SYNCORD_TEST_PEERCRED_SOCK"

// TestPeerCredClient is not a test of its own: it is the client that
// TestListenUnixPeerCred runs as another user (this binary re-executed).
// It prints "status N" and the stderr of an echo request.
func TestPeerCredClient(t *testing.T) {
	sock := os.Getenv(peerSockEnv)
	if sock == "" {
		t.Skip("skipping: the client half of TestListenUnixPeerCred")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := Dial(ctx, "unix://"+sock)
	if err != nil {
		fmt.Printf("dial: %v\n", err)
		os.Exit(3)
	}
	var out, errb bytes.Buffer
	code, err := c.Run(ctx, []string{"echo", "hello"}, &out, &errb)
	fmt.Printf("status %d err %v stdout %q stderr %q\n", code, err, out.String(), errb.String())
	os.Exit(0)
}

// TestListenUnixPeerCred serves a unix socket whose file mode lets anyone
// connect and runs a client as uid 65534 (nobody): refused; the same uid
// with an allowed primary or supplementary group: served.
func TestListenUnixPeerCred(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root to run a client as another uid (run: sudo go test ./runtime/control/)")
	}
	const nobody, allowed = 65534, 54321
	// A directory others can enter, with a copy of this test binary they
	// can run (go test's build directory is private).
	dir, err := os.MkdirTemp("", "syncord-peercred-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "control.test")
	copyFile(t, self, bin)

	sock := filepath.Join(dir, "agent.sock")
	var logs bytes.Buffer
	var logMu sync.Mutex
	e, err := Listen("unix://"+sock, ListenOptions{AllowGIDs: []uint32{allowed}, Logf: func(f string, a ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		fmt.Fprintf(&logs, f+"\n", a...)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o660 || fi.Sys().(*syscall.Stat_t).Gid != allowed {
		t.Fatalf("socket mode %v, stat %+v: want 0660, group %d", fi.Mode(), fi.Sys(), allowed)
	}
	// The file mode lets anyone in; only the credentials check remains.
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	srv := NewServer(Config{Run: newFake().run, Mutating: fakeMutating})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Serve(ctx, srv) }()
	t.Cleanup(func() {
		cancel()
		e.Close()
		<-done
	})

	client := func(cred *syscall.Credential) string {
		t.Helper()
		cmd := exec.Command(bin, "-test.run=^TestPeerCredClient$")
		cmd.Env = []string{peerSockEnv + "=" + sock}
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("client as uid %d gid %d groups %v: %v\n%s", cred.Uid, cred.Gid, cred.Groups, err, out.String())
		}
		return out.String()
	}
	for _, tc := range []struct {
		name string
		cred syscall.Credential
		want string
	}{
		{"other user", syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}}, `status 77`},
		{"allowed primary group", syscall.Credential{Uid: nobody, Gid: allowed, Groups: []uint32{}}, `status 0 err <nil> stdout "hello\n"`},
		{"allowed supplementary group", syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{allowed}}, `status 0 err <nil> stdout "hello\n"`},
		{"root", syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{}}, `status 0 err <nil> stdout "hello\n"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := client(&tc.cred)
			if !strings.Contains(out, tc.want) {
				t.Fatalf("client said %q, want %q", out, tc.want)
			}
			if tc.want == "status 77" && !strings.Contains(out, "only root and members of the groups 54321 may connect") {
				t.Fatalf("refusal does not say who may connect: %q", out)
			}
		})
	}
	logMu.Lock()
	l := logs.String()
	logMu.Unlock()
	if !strings.Contains(l, "refused a connection from pid ") || !strings.Contains(l, fmt.Sprintf("uid %d gid %d", nobody, nobody)) {
		t.Errorf("refusal not logged: %q", l)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
