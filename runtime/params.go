package runtime

import (
	"fmt"

	"github.com/syncord/syncord/bpf"
	"github.com/syncord/syncord/internal/pseudofs"
	"github.com/syncord/syncord/numa"
)

// ParamError says which parameter's machine fact could not be read.
type ParamError struct {
	// Name is the parameter, From the fact it is taken from
	// ("cores_per_socket", "nr_cpus").
	Name, From string
	Err        error
}

func (e *ParamError) Error() string {
	return fmt.Sprintf("policy parameter %s from %s: %v", e.Name, e.From, e.Err)
}

func (e *ParamError) Unwrap() error { return e.Err }

// Params gives every parameter a policy declares its value: the user's
// (user, which may name parameters decl does not: the loader refuses
// those), else the machine fact its From names, read from the topology
// under sys (cores_per_socket: numa.Topology.CoresPerSocket; nr_cpus: the
// online CPUs), else none, leaving the compiled default. It returns nil
// when no parameter gets a value.
func Params(decl []bpf.Param, user map[string]uint64, sys pseudofs.FS) (map[string]uint64, error) {
	out := map[string]uint64{}
	for k, v := range user {
		out[k] = v
	}
	var top *numa.Topology
	for _, p := range decl {
		if _, set := out[p.Name]; set || p.From == "" {
			continue
		}
		if top == nil {
			var err error
			if top, err = numa.New(sys).Topology(); err != nil {
				return nil, &ParamError{Name: p.Name, From: p.From, Err: err}
			}
		}
		switch p.From {
		case "cores_per_socket":
			if c := top.CoresPerSocket(); c > 0 {
				out[p.Name] = uint64(c)
			}
		case "nr_cpus":
			out[p.Name] = uint64(top.Online.Len())
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}
