package numa

import "fmt"

// PlaceCPU returns the CPU task i of n runs on, by the placement rule the
// SynCord drivers share (SYNCORD-ABI.md section 3): with n >= cps every task
// i runs on CPU i; with fewer tasks than a socket's cores, the first half of
// the tasks take the first (fast) half of socket 0 and the rest start at the
// socket's slow half, (i - n/2) + cps/2. cps must be > 0.
func PlaceCPU(i, n, cps int) int {
	if n >= cps || i == 0 || i < n/2 {
		return i
	}
	return (i - n/2) + cps/2
}

// IsFast reports whether cpu is in the fast half of its socket: the AMP
// emulation runs the first cps/2 cores of every socket at the fast frequency.
func IsFast(cpu, cps int) bool {
	return cpu%cps < cps/2
}

// Role is a CPU's part in AMP emulation.
type Role int

const (
	Fast Role = iota
	Slow
)

func (r Role) String() string {
	if r == Fast {
		return "fast"
	}
	return "slow"
}

// RoleOf returns the role of cpu with cps cores per socket.
func RoleOf(cpu, cps int) Role {
	if IsFast(cpu, cps) {
		return Fast
	}
	return Slow
}

// Placement returns the CPU of each of n tasks with cps cores per socket.
func Placement(n, cps int) ([]int, error) {
	if cps <= 0 {
		return nil, fmt.Errorf("cores per socket must be > 0, got %d", cps)
	}
	if n <= 0 {
		return nil, fmt.Errorf("number of tasks must be > 0, got %d", n)
	}
	cpus := make([]int, n)
	for i := range cpus {
		cpus[i] = PlaceCPU(i, n, cps)
	}
	return cpus, nil
}

// SweepPoints returns runtest.py's core counts for a machine with total CPUs
// and cps cores per socket: powers of two below one socket, the socket
// itself, then multiples of a socket up to total (on the artifact's 8x28 VM:
// 1,2,4,8,16,28,56,...,224). A total that is not a multiple of cps ends with
// total itself.
func SweepPoints(total, cps int) []int {
	if total <= 0 || cps <= 0 {
		return nil
	}
	if cps > total {
		cps = total
	}
	var pts []int
	for p := 1; p < cps; p *= 2 {
		pts = append(pts, p)
	}
	for p := cps; p <= total; p += cps {
		pts = append(pts, p)
	}
	if pts[len(pts)-1] != total {
		pts = append(pts, total)
	}
	return pts
}
