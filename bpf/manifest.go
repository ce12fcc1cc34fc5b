package bpf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/syncord/syncord/kernel"
)

// Targets are the kernel locks a policy can target, as its manifest names
// them: rename_lock (the seqlock d_move takes; lockstat, amp), rwsem (the
// read side of every rw_semaphore; bravo), s_vfs_rename (the cross-directory
// rename lock lock_rename takes; scl, numa-scl) and all_spinlocks (every
// queued spinlock's slow path; numa-grouping, numa-grouping-cna).
var Targets = []string{"rename_lock", "rwsem", "s_vfs_rename", "all_spinlocks"}

func knownTarget(t string) bool {
	for _, k := range Targets {
		if k == t {
			return true
		}
	}
	return false
}

// DefaultTarget is the target of a policy whose manifest names none: rwsem
// when its sections are rwsem hooks (lock_rwsem_...), else rename_lock, the
// lock the artifact's spinlock policies were patched onto.
func DefaultTarget(progs []Program) string {
	for _, p := range progs {
		if strings.HasPrefix(p.Section, "lock_rwsem") {
			return "rwsem"
		}
	}
	return "rename_lock"
}

// TargetOrDefault is m.Target, or DefaultTarget of its programs when unset.
func (m *Manifest) TargetOrDefault() string {
	if m.Target != "" {
		return m.Target
	}
	return DefaultTarget(m.Programs)
}

// ManifestName is the file written beside every object syncord builds
// (output/<p>/eBPFGen/manifest.json), so that pin names are read, never
// guessed.
const ManifestName = "manifest.json"

// Manifest describes a compiled policy object: which section becomes which
// pin and hook, the map, and the load-time parameters with their defaults.
type Manifest struct {
	// Name of the policy.
	Name string `json:"name"`
	// Object is the object's file name, relative to the manifest.
	Object string `json:"object"`
	// Description is one line on what the policy does.
	Description string `json:"description,omitempty"`
	// Target is the kernel lock the policy's livepatch attaches it to (see
	// Targets): "rename_lock", "rwsem", "s_vfs_rename" or "all_spinlocks".
	Target string `json:"target,omitempty"`
	// Programs in pin order.
	Programs []Program `json:"programs"`
	// Map is the pinned map, if the policy has one.
	Map *MapPin `json:"map,omitempty"`
	// Params are the load-time constants of the object.
	Params []Param `json:"params,omitempty"`
	// Branches are the SynCord kernel branches (stock-syncord,
	// shfllock-syncord, cna-syncord) the policy works on; empty means any
	// SynCord kernel. Install refuses the policy on another branch before
	// anything is loaded.
	Branches []string `json:"branches,omitempty"`
}

// Param is a load-time constant of a policy (a global volatile const in the
// object, set with --param name=value).
type Param struct {
	Name string `json:"name"`
	// Default is the value compiled into the object.
	Default uint64 `json:"default"`
	// Help says what the value means.
	Help string `json:"help,omitempty"`
	// From names the machine fact the installer sets it from when the user
	// gives no value: "cores_per_socket", "nr_cpus", or "" for none.
	From string `json:"from,omitempty"`
}

// Policy returns the load specification of the manifest's object found in
// dir (the directory holding the manifest), with params as the overrides.
func (m *Manifest) Policy(dir string, params map[string]uint64) *Policy {
	return &Policy{
		Name:       m.Name,
		ObjectPath: filepath.Join(dir, m.Object),
		Programs:   append([]Program(nil), m.Programs...),
		Map:        m.Map,
		Params:     params,
		Branches:   m.branches(),
		Target:     m.TargetOrDefault(),
	}
}

// branches returns the validated branch names (Validate checked them).
func (m *Manifest) branches() []kernel.Branch {
	bs, _ := parseBranches(m.Branches)
	return bs
}

// Validate checks that the manifest names an object and well-formed pins.
func (m *Manifest) Validate() error {
	if m.Object == "" {
		return fmt.Errorf("manifest of %s: no object", m.Name)
	}
	if m.Target != "" && !knownTarget(m.Target) {
		return fmt.Errorf("manifest of %s: unknown target %q (known: %s)", m.Name, m.Target, strings.Join(Targets, ", "))
	}
	p := &Policy{Name: m.Name, Programs: m.Programs, Map: m.Map}
	if err := p.Validate(); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	if _, err := parseBranches(m.Branches); err != nil {
		return fmt.Errorf("manifest of %s: %w", m.Name, err)
	}
	seen := map[string]bool{}
	for _, pa := range m.Params {
		if pa.Name == "" || seen[pa.Name] {
			return fmt.Errorf("manifest of %s: empty or repeated parameter %q", m.Name, pa.Name)
		}
		seen[pa.Name] = true
	}
	return nil
}

// ParamDefaults returns the parameters with their defaults.
func (m *Manifest) ParamDefaults() map[string]uint64 {
	out := make(map[string]uint64, len(m.Params))
	for _, p := range m.Params {
		out[p.Name] = p.Default
	}
	return out
}

// MarshalManifest encodes m as indented JSON with a trailing newline.
func MarshalManifest(m *Manifest) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	ps := append([]Param(nil), m.Params...)
	sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
	c := *m
	c.Params = ps
	b, err := json.MarshalIndent(&c, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// ParseManifest decodes and validates a manifest. Unknown fields are errors.
func ParseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("parse manifest: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// WriteManifest writes m to dir/manifest.json.
func WriteManifest(dir string, m *Manifest) error {
	b, err := MarshalManifest(m)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, ManifestName), b, 0o644)
}

// ReadManifest reads dir/manifest.json.
func ReadManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("read manifest: %w (objects built by the artifact's concord.py have none: give the policy source directory so pin names come from its .pfile files, or rebuild with syncord policy build)", err)
		}
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	m, err := ParseManifest(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ManifestName), err)
	}
	return m, nil
}
