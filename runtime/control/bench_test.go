package control

import (
	"context"
	"io"
	"slices"
	"testing"
	"time"
)

// BenchmarkStatusRoundTrip measures one request and its reply (a status
// line on stdout and the exit frame) over a unix socket, on one connection
// as syncord-host guest uses it. It reports the median latency (target
// below 1 ms).
func BenchmarkStatusRoundTrip(b *testing.B) {
	a := startAgent(b, Config{})
	c := a.dial(b)
	lat := make([]time.Duration, 0, b.N)
	for b.Loop() {
		start := time.Now()
		code, err := c.Run(context.Background(), []string{"status", "no policy installed"}, io.Discard, io.Discard)
		if err != nil || code != 0 {
			b.Fatalf("status: %d %v", code, err)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "median-µs")
}

// BenchmarkDialAndStatus includes the connect, as one syncord-host guest
// invocation does.
func BenchmarkDialAndStatus(b *testing.B) {
	a := startAgent(b, Config{})
	lat := make([]time.Duration, 0, b.N)
	for b.Loop() {
		start := time.Now()
		c, err := Dial(context.Background(), "unix://"+a.path)
		if err != nil {
			b.Fatal(err)
		}
		code, err := c.Run(context.Background(), []string{"status"}, io.Discard, io.Discard)
		c.Close()
		if err != nil || code != 0 {
			b.Fatalf("status: %d %v", code, err)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "median-µs")
}
