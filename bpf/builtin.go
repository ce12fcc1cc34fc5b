package bpf

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

//go:generate go run ./policies/gen -dir policies

// builtinFS holds the built-in policies: sources, compiled objects and
// manifests, made by `go generate ./bpf/`.
//
//go:embed policies/*/*_kern.o policies/*/manifest.json policies/*/*.pfile policies/*/*.h policies/lockstat/*.map
var builtinFS embed.FS

// Builtin is a policy shipped inside the binary.
type Builtin struct {
	Manifest *Manifest
	// Object is the compiled ELF object.
	Object []byte
	// Sources maps file names (.pfile, .map, .h) to their text.
	Sources map[string]string
}

// Policy returns the load specification of the built-in policy with params
// as overrides of its defaults.
func (b *Builtin) Policy(params map[string]uint64) *Policy {
	return &Policy{
		Name:     b.Manifest.Name,
		Object:   b.Object,
		Programs: append([]Program(nil), b.Manifest.Programs...),
		Map:      b.Manifest.Map,
		Params:   params,
		Branches: b.Manifest.branches(),
		Target:   b.Manifest.TargetOrDefault(),
	}
}

// Builtins returns every built-in policy, sorted by name.
func Builtins() ([]*Builtin, error) {
	ents, err := fs.ReadDir(builtinFS, "policies")
	if err != nil {
		return nil, err
	}
	var out []*Builtin
	for _, e := range ents {
		if !e.IsDir() || e.Name() == "include" || e.Name() == "gen" {
			continue
		}
		b, err := loadBuiltin(e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Manifest.Name < out[j].Manifest.Name })
	return out, nil
}

// BuiltinNames lists the built-in policies.
func BuiltinNames() []string {
	ents, _ := fs.ReadDir(builtinFS, "policies")
	var out []string
	for _, e := range ents {
		if e.IsDir() && e.Name() != "include" && e.Name() != "gen" {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

// LookupBuiltin returns the built-in policy called name.
func LookupBuiltin(name string) (*Builtin, error) {
	for _, n := range BuiltinNames() {
		if n == name {
			return loadBuiltin(name)
		}
	}
	return nil, fmt.Errorf("no built-in policy %q (built-in: %s)", name, strings.Join(BuiltinNames(), ", "))
}

func loadBuiltin(name string) (*Builtin, error) {
	dir := path.Join("policies", name)
	mb, err := builtinFS.ReadFile(path.Join(dir, ManifestName))
	if err != nil {
		return nil, fmt.Errorf("built-in policy %s: %w (run go generate ./bpf/)", name, err)
	}
	m, err := ParseManifest(mb)
	if err != nil {
		return nil, fmt.Errorf("built-in policy %s: %w", name, err)
	}
	obj, err := builtinFS.ReadFile(path.Join(dir, m.Object))
	if err != nil {
		return nil, fmt.Errorf("built-in policy %s: %w (run go generate ./bpf/)", name, err)
	}
	b := &Builtin{Manifest: m, Object: obj, Sources: map[string]string{}}
	ents, _ := fs.ReadDir(builtinFS, dir)
	for _, e := range ents {
		switch path.Ext(e.Name()) {
		case ".pfile", ".map", ".h":
			t, err := builtinFS.ReadFile(path.Join(dir, e.Name()))
			if err != nil {
				return nil, err
			}
			b.Sources[e.Name()] = string(t)
		}
	}
	return b, nil
}

// IsBuiltin reports whether name is a built-in policy.
func IsBuiltin(name string) bool {
	for _, n := range BuiltinNames() {
		if n == name {
			return true
		}
	}
	return false
}

// WriteBuiltin writes the built-in policy name in the artifact's layout,
// <outRoot>/<name>/eBPFGen/<object> and manifest.json, as Build would have
// made it (no clang needed).
func WriteBuiltin(name, outRoot string) (*BuildResult, error) {
	b, err := LookupBuiltin(name)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(outRoot, name, "eBPFGen")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("write built-in policy %s: %w", name, err)
	}
	res := &BuildResult{Dir: dir, Object: filepath.Join(dir, b.Manifest.Object), ManifestPath: filepath.Join(dir, ManifestName), Manifest: b.Manifest}
	if err := os.WriteFile(res.Object, b.Object, 0o644); err != nil {
		return nil, fmt.Errorf("write built-in policy %s: %w", name, err)
	}
	if err := WriteManifest(dir, b.Manifest); err != nil {
		return nil, fmt.Errorf("write built-in policy %s: %w", name, err)
	}
	return res, nil
}
