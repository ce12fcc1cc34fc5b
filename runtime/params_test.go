package runtime

import (
	"errors"
	"maps"
	"testing"

	"github.com/syncord/syncord/bpf"
	"github.com/syncord/syncord/internal/pseudofs"
)

// TestParams: parameters take the user's value, else the machine fact
// they name from the topology (the 8x28 fixture: 28 cores per socket,
// 224 CPUs), else none; a fact that cannot be read is a *ParamError
// naming the parameter.
func TestParams(t *testing.T) {
	decl := []bpf.Param{
		{Name: "cps", From: "cores_per_socket"},
		{Name: "ncpu", From: "nr_cpus"},
		{Name: "patience", Default: 22000000},
	}
	sys := pseudofs.FS("../numa/testdata/synth-8x28")
	for _, tc := range []struct {
		name string
		user map[string]uint64
		want map[string]uint64
	}{
		{"from the topology", nil, map[string]uint64{"cps": 28, "ncpu": 224}},
		{"the user's first", map[string]uint64{"cps": 4, "patience": 7}, map[string]uint64{"cps": 4, "ncpu": 224, "patience": 7}},
	} {
		got, err := Params(decl, tc.user, sys)
		if err != nil || !maps.Equal(got, tc.want) {
			t.Errorf("%s: Params = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	if got, err := Params(decl[2:], nil, sys); got != nil || err != nil {
		t.Errorf("no machine facts, no user values: %v, %v; want nil", got, err)
	}
	_, err := Params(decl, nil, pseudofs.FS(t.TempDir()))
	var pe *ParamError
	if !errors.As(err, &pe) || pe.Name != "cps" || pe.From != "cores_per_socket" {
		t.Fatalf("empty sysfs: %v, want a *ParamError for cps", err)
	}
}
