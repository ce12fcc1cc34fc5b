package bpf

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/syncord/syncord/internal/setting"
)

// PolicyFromSource returns the load specification of an object built from
// the policy source directory srcDir (for example by the artifact's
// concord.py, which writes no manifest): one program per .pfile, pinned
// under the .pfile's basename, and the object's one legacy map pinned at
// hash_map.
func PolicyFromSource(srcDir, objPath string) (*Policy, error) {
	src, err := ParseSource(srcDir)
	if err != nil {
		return nil, err
	}
	obj, err := os.ReadFile(objPath)
	if err != nil {
		return nil, fmt.Errorf("policy %s: read object: %w", src.Name, err)
	}
	spec, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(obj))
	if err != nil {
		return nil, fmt.Errorf("policy %s: parse ELF object %s: %w", src.Name, objPath, err)
	}
	p := &Policy{Name: src.Name, ObjectPath: objPath, Object: obj, Programs: src.Programs()}
	for i, pr := range p.Programs {
		if _, ok := spec.Programs[pr.Function]; !ok {
			// Built from other sources than these: fall back to the section.
			p.Programs[i].Function = ""
		}
	}
	var legacy []string
	for name := range spec.Maps {
		if !strings.HasPrefix(name, ".") {
			legacy = append(legacy, name)
		}
	}
	switch len(legacy) {
	case 0:
	case 1:
		p.Map = &MapPin{Name: DefaultMapPin}
		if legacy[0] != DefaultMapPin {
			p.Map.Symbol = legacy[0]
		}
	default:
		return nil, fmt.Errorf("policy %s: object %s has %d maps (%s); a SynCord policy has one, pinned at hash_map", src.Name, objPath, len(legacy), strings.Join(legacy, ", "))
	}
	return p, nil
}

// OpenPolicy resolves what a user names as a policy:
//
//   - a built-in policy name (syncord policy list);
//   - a directory holding manifest.json, or its eBPFGen subdirectory, or
//     output/<name>/eBPFGen below it (objects built by syncord policy build);
//   - a policy source directory (.pfile files) together with object, the
//     object built from it (the artifact's output/<p>/eBPFGen/<p>_kern.o):
//     pin names then come from the .pfile names.
//
// params override the policy's defaults.
func OpenPolicy(arg, object string, params map[string]uint64) (*Policy, error) {
	if object != "" {
		return withParams(PolicyFromSource(arg, object))(params)
	}
	st, err := os.Stat(arg)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && !strings.ContainsRune(arg, os.PathSeparator) {
			b, berr := LookupBuiltin(arg)
			if berr != nil {
				return nil, berr
			}
			return b.Policy(params), nil
		}
		return nil, fmt.Errorf("open policy %s: %w", arg, err)
	}
	if !st.IsDir() {
		return nil, setting.Errorf("open policy %s: not a directory (give a built-in name, a build output directory, or a source directory with {Object})", arg)
	}
	name := filepath.Base(filepath.Clean(arg))
	for _, d := range []string{arg, filepath.Join(arg, "eBPFGen"), filepath.Join(arg, "output", name, "eBPFGen")} {
		if _, err := os.Stat(filepath.Join(d, ManifestName)); err == nil {
			m, err := ReadManifest(d)
			if err != nil {
				return nil, err
			}
			return m.Policy(d, params), nil
		}
	}
	if src, err := ParseSource(arg); err == nil {
		for _, obj := range []string{
			filepath.Join(arg, "output", src.Name, "eBPFGen", src.Name+"_kern.o"),
			filepath.Join(arg, "..", "..", "output", src.Name, "eBPFGen", src.Name+"_kern.o"),
		} {
			if _, err := os.Stat(obj); err == nil {
				return withParams(PolicyFromSource(arg, obj))(params)
			}
		}
		return nil, setting.Errorf("open policy %s: source directory without a compiled object (run syncord policy build %s, or give the object with {Object})", arg, arg)
	}
	return nil, fmt.Errorf("open policy %s: no %s and no .pfile sources there (objects without a manifest need their source directory, to read the pin names from the .pfile names)", arg, ManifestName)
}

func withParams(p *Policy, err error) func(map[string]uint64) (*Policy, error) {
	return func(params map[string]uint64) (*Policy, error) {
		if err != nil {
			return nil, err
		}
		p.Params = params
		return p, nil
	}
}

// ParseParams parses name=value pairs (--param); values are unsigned
// integers in Go syntax (22000000, 22_000_000, 0x10).
func ParseParams(kvs []string) (map[string]uint64, error) {
	out := map[string]uint64{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("parameter %q: want name=value", kv)
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 0, 64)
		if err != nil {
			return nil, fmt.Errorf("parameter %s: value %q is not an unsigned integer", k, v)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("parameter %s given twice", k)
		}
		out[k] = n
	}
	return out, nil
}
