// Package progresstest holds the Config.Progress recorder the drivers'
// tests share.
package progresstest

import (
	"bytes"
	"strings"
	"sync"
	"testing"
)

// Recorder collects the lines a run writes to its Progress and fails the
// test for a write after Close (after Run returned).
type Recorder struct {
	t      testing.TB
	mu     sync.Mutex
	buf    bytes.Buffer
	closed bool
}

// New returns a Recorder that reports late writes on t.
func New(t testing.TB) *Recorder { return &Recorder{t: t} }

func (r *Recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		r.t.Errorf("progress written after Run returned: %q", p)
	}
	return r.buf.Write(p)
}

// Close marks Run as returned and returns the lines written.
func (r *Recorder) Close() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.buf.Len() == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(r.buf.String(), "\n"), "\n")
}
