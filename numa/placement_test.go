package numa

import (
	"reflect"
	"testing"
)

func TestPlaceCPU(t *testing.T) {
	for _, tc := range []struct {
		name   string
		n, cps int
		want   []int
	}{
		{"one task", 1, 28, []int{0}},
		{"two tasks: one fast one slow", 2, 28, []int{0, 14}},
		{"four tasks split halves", 4, 28, []int{0, 1, 14, 15}},
		{"odd count: slow half gets the extra", 5, 28, []int{0, 1, 14, 15, 16}},
		{"sixteen tasks", 16, 28, []int{0, 1, 2, 3, 4, 5, 6, 7, 14, 15, 16, 17, 18, 19, 20, 21}},
		{"a full socket is identity", 28, 28, seq(28)},
		{"more than a socket is identity", 56, 28, seq(56)},
		{"small socket", 3, 4, []int{0, 2, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make([]int, tc.n)
			for i := range got {
				got[i] = PlaceCPU(i, tc.n, tc.cps)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("PlaceCPU(i, %d, %d) = %v, want %v", tc.n, tc.cps, got, tc.want)
			}
			p, err := Placement(tc.n, tc.cps)
			if err != nil || !reflect.DeepEqual(p, tc.want) {
				t.Fatalf("Placement(%d, %d) = %v, %v; want %v", tc.n, tc.cps, p, err, tc.want)
			}
			// Below a socket the first half of the tasks is fast and the
			// rest slow (SYNCORD-ABI.md section 3).
			if tc.n < tc.cps {
				for i, cpu := range got {
					if fast := i == 0 || i < tc.n/2; IsFast(cpu, tc.cps) != fast {
						t.Errorf("task %d on cpu %d: IsFast = %v, want %v", i, cpu, !fast, fast)
					}
				}
			}
		})
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func TestPlacementErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		n, cps int
	}{{"zero cps", 4, 0}, {"negative cps", 4, -1}, {"zero tasks", 0, 28}} {
		t.Run(tc.name, func(t *testing.T) {
			if p, err := Placement(tc.n, tc.cps); err == nil {
				t.Fatalf("Placement(%d, %d) = %v, want an error", tc.n, tc.cps, p)
			}
		})
	}
}

func TestIsFast(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cpu, cps int
		want     bool
		role     Role
	}{
		{"first cpu", 0, 28, true, Fast},
		{"last fast of socket 0", 13, 28, true, Fast},
		{"first slow of socket 0", 14, 28, false, Slow},
		{"last of socket 0", 27, 28, false, Slow},
		{"first of socket 1 is fast", 28, 28, true, Fast},
		{"socket 7 slow half", 223, 28, false, Slow},
		{"one core per socket: all slow", 3, 1, false, Slow},
		{"two per socket", 1, 2, false, Slow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsFast(tc.cpu, tc.cps); got != tc.want {
				t.Errorf("IsFast(%d, %d) = %v, want %v", tc.cpu, tc.cps, got, tc.want)
			}
			if got := RoleOf(tc.cpu, tc.cps); got != tc.role {
				t.Errorf("RoleOf(%d, %d) = %v, want %v", tc.cpu, tc.cps, got, tc.role)
			}
		})
	}
	if Fast.String() != "fast" || Slow.String() != "slow" {
		t.Errorf("Role strings = %q, %q", Fast, Slow)
	}
}

func TestSweepPoints(t *testing.T) {
	for _, tc := range []struct {
		name       string
		total, cps int
		want       []int
	}{
		{"artifact 8x28 VM", 224, 28, []int{1, 2, 4, 8, 16, 28, 56, 84, 112, 140, 168, 196, 224}},
		{"2 sockets x 2 cores", 4, 2, []int{1, 2, 4}},
		{"4 sockets x 1 core", 4, 1, []int{1, 2, 3, 4}},
		{"one socket of 2", 2, 2, []int{1, 2}},
		{"power-of-two socket", 32, 16, []int{1, 2, 4, 8, 16, 32}},
		{"total not a socket multiple ends at total", 30, 8, []int{1, 2, 4, 8, 16, 24, 30}},
		{"socket larger than machine", 1, 2, []int{1}},
		{"no cpus", 0, 28, nil},
		{"zero cps", 4, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := SweepPoints(tc.total, tc.cps); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("SweepPoints(%d, %d) = %v, want %v", tc.total, tc.cps, got, tc.want)
			}
		})
	}
}
