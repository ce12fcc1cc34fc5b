package contention

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
)

// Drops counts events the profiler could not record, or could not pair.
type Drops struct {
	// LockMapFull: a contention ended on a new lock while the lock map
	// was full (raise --max-locks).
	LockMapFull uint64 `json:"lock_map_full"`
	// TaskMapFull: a sleeping wait began while the per-task map was full.
	TaskMapFull uint64 `json:"task_map_full"`
	// NestTooDeep: a wait began with MaxNest waits already open on that
	// CPU or task; the oldest was forgotten to make room.
	NestTooDeep uint64 `json:"nest_too_deep"`
	// LostWaits: open waits forgotten because their end was never seen
	// (a wait below them ended first, or their CPU spun on the same lock
	// again). They are counted as contentions, without a wait time.
	LostWaits uint64 `json:"lost_waits"`
	// StackFailed: no stack id (stack map full or a hash collision); the
	// contention is counted, its caller is not.
	StackFailed uint64 `json:"stack_failed"`
	// CallerMapFull: the (lock, stack) map was full.
	CallerMapFull uint64 `json:"caller_map_full"`
	// UnmatchedEnds: contention_end with no recorded begin: the wait began
	// before the profiler attached, or its begin was filtered out. Not a
	// loss; reported for completeness.
	UnmatchedEnds uint64 `json:"unmatched_ends"`
}

// Uncounted sums the counters that mean a contention or a caller was not
// counted at all (a full map), as opposed to counted without its wait time.
func (d Drops) Uncounted() uint64 {
	return d.LockMapFull + d.TaskMapFull + d.CallerMapFull
}

func (d Drops) sub(o Drops) Drops {
	return Drops{d.LockMapFull - o.LockMapFull, d.TaskMapFull - o.TaskMapFull,
		d.NestTooDeep - o.NestTooDeep, d.LostWaits - o.LostWaits, d.StackFailed - o.StackFailed,
		d.CallerMapFull - o.CallerMapFull, d.UnmatchedEnds - o.UnmatchedEnds}
}

// MaxNest is how many waits may be open at once per CPU (spinning) or per
// task (sleeping); it matches MAX_NEST in contention.bpf.c.
const MaxNest = 4

// Lock is one lock's contention since the previous reset.
type Lock struct {
	Addr        uint64
	Flags       uint32 // OR of the contention_begin flags seen
	Contentions uint64 // contention_begin events
	ConBounces  uint64
	// Waits is how many of the contentions were timed: their
	// contention_end was seen. The wait fields cover those; WaitMin is 0
	// when Waits is.
	Waits     uint64
	WaitMin   uint64 // ns
	WaitMax   uint64 // ns
	WaitTotal uint64 // ns
	// Stacks are the kernel stacks the contentions began from (Options.Callers).
	Stacks []Stack
}

// Stack is one call stack of contentions on a lock.
type Stack struct {
	ID          int32
	Contentions uint64
	WaitTotal   uint64   // ns
	PCs         []uint64 // innermost first; nil if the stack was evicted
}

// Snapshot is what the profiler has aggregated.
type Snapshot struct {
	Locks []Lock
	Drops Drops
}

// Snapshot reads the aggregated contention. With reset, each entry is
// read and deleted atomically (BPF_MAP_LOOKUP_AND_DELETE_ELEM), so the
// next Snapshot holds only what happened after this one.
func (p *Profiler) Snapshot(reset bool) (*Snapshot, error) {
	if p.objs.Locks == nil {
		return nil, errors.New("read contention profile: profiler is closed")
	}
	snap := &Snapshot{}
	byAddr := map[uint64]int{}
	var addrs []uint64
	var addr uint64
	var st contentionLockStat
	it := p.objs.Locks.Iterate()
	for it.Next(&addr, &st) {
		addrs = append(addrs, addr)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("iterate lock map: %w", err)
	}
	for _, a := range addrs {
		var err error
		if reset {
			err = p.objs.Locks.LookupAndDelete(&a, &st)
		} else {
			err = p.objs.Locks.Lookup(&a, &st)
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read lock map entry %#x: %w", a, err)
		}
		if st.Contentions == 0 {
			continue // inserted, not yet counted
		}
		if st.Waits == 0 {
			st.WaitMin = 0 // still the "none yet" sentinel
		}
		byAddr[a] = len(snap.Locks)
		snap.Locks = append(snap.Locks, Lock{Addr: a, Flags: st.Flags, Contentions: st.Contentions,
			ConBounces: st.ConBounces, Waits: st.Waits, WaitMin: st.WaitMin, WaitMax: st.WaitMax, WaitTotal: st.WaitTotal})
	}

	if p.opts.Callers {
		if err := p.readCallers(snap, byAddr, reset); err != nil {
			return nil, err
		}
	}

	d, err := p.readDrops()
	if err != nil {
		return nil, err
	}
	snap.Drops = d.sub(p.drops0)
	if reset {
		p.drops0 = d
	}
	return snap, nil
}

func (p *Profiler) readCallers(snap *Snapshot, byAddr map[uint64]int, reset bool) error {
	var keys []contentionCallerKey
	var k contentionCallerKey
	var c contentionCallerStat
	it := p.objs.Callers.Iterate()
	for it.Next(&k, &c) {
		keys = append(keys, k)
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("iterate caller map: %w", err)
	}
	stacks := map[int32][]uint64{}
	for _, k := range keys {
		var err error
		if reset {
			err = p.objs.Callers.LookupAndDelete(&k, &c)
		} else {
			err = p.objs.Callers.Lookup(&k, &c)
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read caller map entry: %w", err)
		}
		i, ok := byAddr[k.Lock]
		if !ok || c.Contentions == 0 {
			continue
		}
		pcs, seen := stacks[k.StackId]
		if !seen {
			var raw [127]uint64
			if err := p.objs.Stacks.Lookup(uint32(k.StackId), &raw); err == nil {
				for _, pc := range raw {
					if pc == 0 {
						break
					}
					pcs = append(pcs, pc)
				}
			}
			stacks[k.StackId] = pcs
		}
		snap.Locks[i].Stacks = append(snap.Locks[i].Stacks,
			Stack{ID: k.StackId, Contentions: c.Contentions, WaitTotal: c.WaitTotal, PCs: pcs})
	}
	if reset {
		// Stack ids are reused for identical stacks; dropping the ones
		// read keeps the map from filling over a long run. A wait still
		// open on one of them loses its caller (counted as evicted).
		for id := range stacks {
			_ = p.objs.Stacks.Delete(uint32(id))
		}
	}
	return nil
}

func (p *Profiler) readDrops() (Drops, error) {
	var v [7]uint64
	for i := range v {
		var per []uint64
		if err := p.objs.Drops.Lookup(uint32(i), &per); err != nil {
			return Drops{}, fmt.Errorf("read drop counter %d: %w", i, err)
		}
		for _, n := range per {
			v[i] += n
		}
	}
	return Drops{v[0], v[1], v[2], v[3], v[4], v[5], v[6]}, nil
}
