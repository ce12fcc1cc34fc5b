package runtime

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/syncord/syncord/bpf"
)

// Resolved is a policy named on the command line, ready to install.
type Resolved struct {
	Policy *bpf.Policy
	// Source is the built-in name or the directory as given.
	Source string
	// Livepatch is the module found beside the object in the artifact's
	// layout (output/<p>/LivePatchGen/livepatch-concord.ko), or "".
	Livepatch string
	// Params are the manifest's parameters (defaults and help).
	Params []bpf.Param
}

// Resolve turns NAME|DIR into a policy:
//   - a built-in policy's name without a slash is that policy, even when a
//     directory of that name exists here ("./NAME" is the directory);
//   - a directory with manifest.json (what syncord policy build writes);
//   - the artifact's output/<p> directory, or its eBPFGen/ (manifest.json
//     in eBPFGen, the livepatch module in LivePatchGen);
//   - a policy source directory (.pfile files) with the compiled
//     <name>_kern.o beside them, pin names from the .pfile names;
//   - otherwise an error.
//
// params override the parameters' defaults.
func Resolve(arg string, params map[string]uint64) (*Resolved, error) {
	if IsBuiltinName(arg) {
		b, err := bpf.LookupBuiltin(arg)
		if err != nil {
			return nil, fmt.Errorf("policy %s: %w", arg, err)
		}
		return &Resolved{Policy: b.Policy(params), Source: arg, Params: b.Manifest.Params}, nil
	}
	st, err := os.Stat(arg)
	if err != nil || !st.IsDir() {
		if err == nil {
			return nil, fmt.Errorf("policy %s: a file; give a policy directory or a built-in policy name", arg)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("policy %s: %w", arg, err)
		}
		b, lerr := bpf.LookupBuiltin(arg)
		if lerr != nil {
			return nil, fmt.Errorf("policy %s: no such directory, and %w", arg, lerr)
		}
		return &Resolved{Policy: b.Policy(params), Source: arg, Params: b.Manifest.Params}, nil
	}
	for _, dir := range []string{arg, filepath.Join(arg, "eBPFGen")} {
		if _, err := os.Stat(filepath.Join(dir, bpf.ManifestName)); err != nil {
			continue
		}
		m, err := bpf.ReadManifest(dir)
		if err != nil {
			return nil, err
		}
		res := &Resolved{Policy: m.Policy(dir, params), Source: arg, Params: m.Params}
		ko := filepath.Join(filepath.Dir(filepath.Clean(dir)), "LivePatchGen", "livepatch-concord.ko")
		if filepath.Base(filepath.Clean(dir)) == "eBPFGen" && fileExists(ko) {
			res.Livepatch = ko
		}
		return res, nil
	}
	src, err := bpf.ParseSource(arg)
	if err != nil {
		return nil, fmt.Errorf("policy %s: no %s here or in eBPFGen/, and not a policy source directory: %w", arg, bpf.ManifestName, err)
	}
	obj := filepath.Join(arg, src.Name+"_kern.o")
	if !fileExists(obj) {
		return nil, fmt.Errorf("policy %s: source directory without %s (run syncord policy build %s first)", arg, filepath.Base(obj), arg)
	}
	p := &bpf.Policy{Name: src.Name, ObjectPath: obj, Programs: src.Programs(), Params: params}
	if p.HasLockPrograms() {
		p.Target = bpf.DefaultTarget(p.Programs)
	}
	if src.MapFile != "" {
		p.Map = &bpf.MapPin{Name: bpf.DefaultMapPin}
	}
	return &Resolved{Policy: p, Source: arg}, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// IsBuiltinName reports whether arg, an argument of policy install, names a
// built-in policy: a built-in's name without a slash. A built-in name wins
// over a directory of the same name in the working directory; "./NAME"
// names the directory.
func IsBuiltinName(arg string) bool {
	if strings.Contains(arg, "/") {
		return false
	}
	_, err := bpf.LookupBuiltin(arg)
	return err == nil
}
