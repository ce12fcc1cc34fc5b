package control

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

func countFDs(t testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("count file descriptors: %v", err)
	}
	return len(ents)
}

// malformed returns the i-th malformed input of a small zoo.
func malformed(t testing.TB, rng *rand.Rand, i int) []byte {
	good := mustFrame(t, Frame{Type: TypeRequest, ID: uint32(i), Payload: mustArgs(t, "echo", "x")})
	switch i % 7 {
	case 0: // random bytes
		b := make([]byte, 1+rng.IntN(200))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		return b
	case 1: // one flipped bit anywhere
		b := append([]byte(nil), good...)
		b[rng.IntN(len(b))] ^= 1 << rng.IntN(8)
		return b
	case 2: // a consistent header claiming more than the limit
		b := append([]byte(nil), good[:16]...)
		binary.BigEndian.PutUint32(b[12:], MaxPayload+1+uint32(rng.IntN(1<<20)))
		return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	case 3: // a future version
		b := append([]byte(nil), good...)
		b[4] = 2
		return b
	case 4: // a truncated frame, then the client goes away
		return good[:rng.IntN(len(good))]
	case 5: // a reply frame from a client
		return mustFrame(t, Frame{Type: TypeExit, ID: 1, Payload: EncodeExit(0)})
	default: // a request whose argv does not parse
		return mustFrame(t, Frame{Type: TypeRequest, ID: 1, Payload: []byte{0, 0, 0, 3, 0, 0}})
	}
}

// TestStress runs 50 concurrent clients and 1,000 malformed frames (each on
// its own connection, since a malformed frame ends its connection) against
// a unix-socket agent: every well-formed request must be answered, and once
// the connections are gone the agent holds no more goroutines or file
// descriptors than before.
func TestStress(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping stress test in -short mode")
	}
	a := startAgent(t, Config{})
	// Warm up: one request, so lazily started runtime goroutines exist.
	if r := run(context.Background(), a.dial(t), "echo", "warm"); r.code != 0 {
		t.Fatalf("warm-up: %+v", r)
	}
	runtime.GC()
	baseG, baseFD := runtime.NumGoroutine(), countFDs(t)

	const clients, perClient, bad = 50, 20, 1000
	var wg sync.WaitGroup
	answered := make(chan int, clients)
	for i := range clients {
		wg.Go(func() {
			conn, err := net.Dial("unix", a.path)
			if err != nil {
				t.Errorf("client %d: %v", i, err)
				return
			}
			defer conn.Close()
			c := NewClient(conn, false)
			c.Queue = true
			n := 0
			for j := range perClient {
				args := []string{"echo", strconv.Itoa(i), strconv.Itoa(j)}
				want := args[1] + " " + args[2] + "\n"
				if j%5 == 4 {
					args, want = []string{"sleep", "1ms"}, "slept\n" // mutating, queued
				}
				r := run(context.Background(), c, args...)
				if r.err != nil || r.code != 0 || r.stdout != want {
					t.Errorf("client %d request %d: %+v", i, j, r)
					return
				}
				n++
			}
			answered <- n
		})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	inputs := make([][]byte, bad)
	for i := range inputs {
		inputs[i] = malformed(t, rng, i)
	}
	sem := make(chan struct{}, 20)
	for i := range bad {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			conn, err := net.Dial("unix", a.path)
			if err != nil {
				t.Errorf("malformed %d: %v", i, err)
				return
			}
			defer conn.Close()
			conn.Write(inputs[i])
			if i%7 == 4 {
				return // truncated: the client leaves
			}
			// The agent must close the connection without answering.
			conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			var buf [256]byte
			for {
				_, err := conn.Read(buf[:])
				if err != nil {
					if ne, ok := err.(net.Error); ok && ne.Timeout() {
						t.Errorf("malformed input %d (kind %d) left its connection open", i, i%7)
					}
					return
				}
			}
		})
	}
	wg.Wait()
	close(answered)
	total := 0
	for n := range answered {
		total += n
	}
	if total != clients*perClient {
		t.Fatalf("%d of %d well-formed requests answered", total, clients*perClient)
	}

	// The agent still serves.
	after := a.dial(t)
	if r := run(context.Background(), after, "echo", "after"); r.code != 0 || r.stdout != "after\n" {
		t.Fatalf("request after the stress: %+v", r)
	}
	after.Close()
	// Connection goroutines end a little after their peers close: wait.
	var g, fd int
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		g, fd = runtime.NumGoroutine(), countFDs(t)
		if (g <= baseG && fd <= baseFD) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if g > baseG || fd > baseFD {
		t.Fatalf("after the stress: %d goroutines (before %d), %d fds (before %d)", g, baseG, fd, baseFD)
	}
	t.Logf("%d requests answered, %d malformed connections closed; goroutines %d -> %d, fds %d -> %d", total, bad, baseG, g, baseFD, fd)
}
