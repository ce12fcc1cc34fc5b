package workloads

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// Sample is one sampling interval: the per-task deltas of the counters
// reduced as will-it-scale's threads build prints them.
type Sample struct {
	Min   uint64 `json:"min"`
	Max   uint64 `json:"max"`
	Total uint64 `json:"total"`
	Fast  uint64 `json:"fast"`
	Slow  uint64 `json:"slow"`
}

// Reduce computes a Sample from per-task deltas and the tasks' roles
// (fast[i] for task i). Min of no tasks is 0.
func Reduce(deltas []uint64, fast []bool) Sample {
	var s Sample
	if len(deltas) == 0 {
		return s
	}
	s.Min = ^uint64(0)
	for i, d := range deltas {
		s.Min = min(s.Min, d)
		s.Max = max(s.Max, d)
		s.Total += d
		if fast[i] {
			s.Fast += d
		} else {
			s.Slow += d
		}
	}
	return s
}

// Sampler reads a Run's counters at a fixed interval and reduces the
// deltas. Ticks are scheduled from the start time (no drift), except that
// a late tick restarts the schedule (no near-empty catch-up samples). It
// sleeps on one timer, reset for every tick: Next does not allocate (the
// collector is off while a run is active, see Launch).
type Sampler struct {
	run      *Run
	interval time.Duration
	next     time.Time
	timer    *time.Timer
	prev     []uint64
	cur      []uint64
	deltas   []uint64
	fast     []bool
}

// NewSampler returns a sampler for r whose first sample covers the
// interval starting now.
func NewSampler(r *Run, interval time.Duration) *Sampler {
	s := &Sampler{run: r, interval: interval, next: time.Now().Add(interval)}
	s.timer = time.NewTimer(interval)
	s.timer.Stop()
	s.prev = r.Counts(nil)
	s.cur = make([]uint64, 0, len(s.prev))
	s.deltas = make([]uint64, len(s.prev))
	// Only Fast, by index: copying a Task would read the fields its
	// thread writes as it runs (cpu0 at the start barrier), a data race.
	for i := range r.tasks {
		s.fast = append(s.fast, r.tasks[i].Fast)
	}
	return s
}

// Next waits for the end of the current interval and returns its sample.
// It returns early with an error when ctx ends or a task fails.
func (s *Sampler) Next(ctx context.Context) (Sample, error) {
	// Since Go 1.23 a Reset timer never delivers a stale tick.
	s.timer.Reset(time.Until(s.next))
	select {
	case <-s.timer.C:
	case <-ctx.Done():
		s.timer.Stop()
		return Sample{}, ctx.Err()
	case <-s.run.Failed():
		s.timer.Stop()
		return Sample{}, s.run.Err()
	}
	s.cur = s.run.Counts(s.cur)
	// The next tick is one interval on, unless this one came so late that
	// the next would cover less than half an interval: then one interval
	// from now, as will-it-scale's sleep(1) does.
	s.next = s.next.Add(s.interval)
	if now := time.Now(); s.next.Sub(now) < s.interval/2 {
		s.next = now.Add(s.interval)
	}
	for i, v := range s.cur {
		s.deltas[i] = v - s.prev[i]
	}
	s.prev, s.cur = s.cur, s.prev
	return Reduce(s.deltas, s.fast), nil
}

// Counts returns each task's count as read at the end of the interval
// Next last returned (before the first Next: at NewSampler). The slice is
// the sampler's own: read it before the next call of Next.
func (s *Sampler) Counts() []uint64 { return s.prev }

// ProgressTime is the "E/D s" of a driver's status line: the whole
// seconds elapsed since the tasks were released and the run's duration
// in seconds.
func ProgressTime(elapsed, duration time.Duration) string {
	return fmt.Sprintf("%d/%s s", elapsed.Round(time.Second)/time.Second, strconv.FormatFloat(duration.Seconds(), 'f', -1, 64))
}

// PerSecond is n over elapsed, 0 before any time elapsed.
func PerSecond(n uint64, elapsed time.Duration) float64 {
	if elapsed <= 0 {
		return 0
	}
	return float64(n) / elapsed.Seconds()
}

// Report calls line once per interval, from a goroutine of its own, with
// the time since Report was called and each task's count, until stop is
// called, ctx ends or a task fails: a driver's status lines while one run
// goes. It reads the counters with atomic loads only (a Sampler), so the
// tasks' loops are not slowed. stop waits for a call of line in progress,
// so none runs after stop returned; it is idempotent.
func Report(ctx context.Context, r *Run, interval time.Duration, line func(elapsed time.Duration, counts []uint64)) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	s := NewSampler(r, interval)
	start := time.Now()
	go func() {
		defer close(done)
		for {
			if _, err := s.Next(ctx); err != nil {
				return
			}
			line(time.Since(start), s.Counts())
		}
	}()
	return func() {
		cancel()
		<-done
	}
}
