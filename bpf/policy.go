package bpf

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/syncord/syncord/kernel"
)

// LockPolicyProgramType is BPF_PROG_TYPE_LOCK_POLICY on SynCord kernels
// (SYNCORD-ABI.md section 1). Upstream kernels use 26 for
// BPF_PROG_TYPE_TRACING, so a lock policy never loads on them.
const LockPolicyProgramType = ebpf.ProgramType(26)

// LockSectionPrefix starts the ELF section name of every lock policy program.
const LockSectionPrefix = "lock_"

// DefaultMapPin is the bpffs name the livepatch module looks the policy map
// up under (/sys/fs/bpf/hash_map).
const DefaultMapPin = "hash_map"

// DefaultBPFFS is where bpffs is mounted and where the livepatch module looks
// pins up.
const DefaultBPFFS = "/sys/fs/bpf"

// ErrNotSynCordKernel is returned (wrapped, together with
// ebpf.ErrNotSupported) when a policy with lock_* programs is loaded on a
// kernel that has no BPF_PROG_TYPE_LOCK_POLICY.
var ErrNotSynCordKernel = errors.New("not a SynCord kernel")

// ErrPinExists is returned (wrapped) by Pin when a path it would pin at is
// already taken; Pin never replaces a pin.
var ErrPinExists = errors.New("pin already exists")

// Program is one program of a policy: the ELF section it comes from, the
// bpffs name it is pinned under and the SynCord hook it implements.
type Program struct {
	// Section is the ELF section (SEC("lock_qspinlock_contended")).
	Section string `json:"section"`
	// Function is the ELF symbol of the program; it picks the program when
	// several share a section. Optional.
	Function string `json:"function,omitempty"`
	// Pin is the file name under the bpffs directory (the .pfile basename
	// without .pfile).
	Pin string `json:"pin"`
	// Hook is the hook API name (lock_to_enter_slowpath, should_reorder, ...).
	Hook string `json:"hook,omitempty"`
}

// IsLock reports whether the program is a lock policy program (section
// lock_*), which needs a SynCord kernel.
func (p Program) IsLock() bool { return strings.HasPrefix(p.Section, LockSectionPrefix) }

// MapPin names the policy map in the object and in bpffs.
type MapPin struct {
	// Name is the file name under the bpffs directory; "hash_map" for every
	// SynCord policy.
	Name string `json:"name"`
	// Symbol is the map's name in the ELF object; empty means Name.
	Symbol string `json:"symbol,omitempty"`
}

func (m *MapPin) symbol() string {
	if m.Symbol != "" {
		return m.Symbol
	}
	return m.Name
}

// Policy says what to load and where to pin it. It is a specification only;
// LoadPolicy turns it into a live *Loaded.
type Policy struct {
	// Name of the policy (lockstat, amp, or a directory name).
	Name string
	// Object is the ELF object. When nil, ObjectPath is read.
	Object []byte
	// ObjectPath is the ELF object on disk (output/<p>/eBPFGen/<p>_kern.o).
	ObjectPath string
	// Programs to load and pin; programs of the object not listed are not
	// loaded.
	Programs []Program
	// Map is the map to pin, or nil when the policy has none.
	Map *MapPin
	// Params sets load-time constants: global `volatile const` variables of
	// the object (in .rodata), by name. Unknown names are an error.
	Params map[string]uint64
	// Branches are the SynCord kernel branches the policy works on; empty
	// means any (see NeededBranches).
	Branches []kernel.Branch
	// Target is the kernel lock the policy's livepatch attaches it to (see
	// Targets and Manifest.TargetOrDefault); "" when unknown. Install
	// allows one livepatched policy per target at a time.
	Target string
}

// HasLockPrograms reports whether any program needs a SynCord kernel.
func (p *Policy) HasLockPrograms() bool {
	for _, pr := range p.Programs {
		if pr.IsLock() {
			return true
		}
	}
	return false
}

// PinPaths returns the paths Pin would create under dir, programs first and
// the map last.
func (p *Policy) PinPaths(dir string) []string {
	var out []string
	for _, pr := range p.Programs {
		out = append(out, filepath.Join(dir, pr.Pin))
	}
	if p.Map != nil {
		out = append(out, filepath.Join(dir, p.Map.Name))
	}
	return out
}

// Validate checks the specification without touching the kernel: a name,
// programs with sections and distinct, plain pin names.
func (p *Policy) Validate() error {
	if p.Name == "" {
		return errors.New("policy: empty name")
	}
	if len(p.Programs) == 0 {
		return fmt.Errorf("policy %s: no programs", p.Name)
	}
	seen := map[string]bool{}
	check := func(pin string) error {
		if pin == "" || pin == "." || pin == ".." || strings.ContainsAny(pin, "/\x00") {
			return fmt.Errorf("policy %s: bad pin name %q (a plain file name is needed)", p.Name, pin)
		}
		if seen[pin] {
			return fmt.Errorf("policy %s: pin name %q used twice", p.Name, pin)
		}
		seen[pin] = true
		return nil
	}
	for _, pr := range p.Programs {
		if pr.Section == "" && pr.Function == "" {
			return fmt.Errorf("policy %s: program %q names neither section nor function", p.Name, pr.Pin)
		}
		if err := check(pr.Pin); err != nil {
			return err
		}
	}
	if p.Map != nil {
		if err := check(p.Map.Name); err != nil {
			return err
		}
	}
	return nil
}

// LoadOptions tunes LoadPolicy. The zero value probes the running kernel.
type LoadOptions struct {
	// Kernel is what is known about the running kernel; nil probes /proc
	// and /sys with kernel.NewDefaultFS().
	Kernel *kernel.Info
	// LogLevel of the verifier; 0 asks for a log only on failure.
	LogLevel ebpf.LogLevel
	// LogSizeStart is the first verifier log buffer size; 0 is cilium's
	// default.
	LogSizeStart uint32
}

// Loaded is a policy whose programs and map are in the kernel. Close releases
// the file descriptors; pins made by Pin stay until Unpin.
type Loaded struct {
	Policy *Policy
	// Programs by pin name.
	Programs map[string]*ebpf.Program
	// Map is the policy map, or nil.
	Map *ebpf.Map

	coll *ebpf.Collection
}

// LoadSpec parses the policy object and prepares it for loading: lock_*
// sections get LockPolicyProgramType, programs not in the policy are dropped
// and Params are written into the object's constants. It does not touch the
// kernel.
func LoadSpec(p *Policy) (*ebpf.CollectionSpec, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	obj := p.Object
	if obj == nil {
		if p.ObjectPath == "" {
			return nil, fmt.Errorf("policy %s: no object (set Object or ObjectPath)", p.Name)
		}
		b, err := os.ReadFile(p.ObjectPath)
		if err != nil {
			return nil, fmt.Errorf("policy %s: read object: %w", p.Name, err)
		}
		obj = b
	}
	spec, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(obj))
	if err != nil {
		return nil, fmt.Errorf("policy %s: parse ELF object %s: %w", p.Name, objectName(p), err)
	}
	keep := map[string]bool{}
	for _, pr := range p.Programs {
		name, ps, err := findProgram(spec, pr)
		if err != nil {
			return nil, fmt.Errorf("policy %s: %w", p.Name, err)
		}
		if keep[name] {
			return nil, fmt.Errorf("policy %s: program %s listed twice", p.Name, name)
		}
		keep[name] = true
		if pr.IsLock() {
			ps.Type = LockPolicyProgramType
			ps.AttachType = ebpf.AttachNone
		}
	}
	for name := range spec.Programs {
		if !keep[name] {
			delete(spec.Programs, name)
		}
	}
	if p.Map != nil {
		if _, ok := spec.Maps[p.Map.symbol()]; !ok {
			return nil, fmt.Errorf("policy %s: object %s has no map %q (maps: %s)", p.Name, objectName(p), p.Map.symbol(), strings.Join(sortedKeys(spec.Maps), ", "))
		}
	}
	if err := setParams(spec, p); err != nil {
		return nil, err
	}
	return spec, nil
}

// findProgram picks the ProgramSpec for pr: by function when given, else the
// one program in pr.Section.
func findProgram(spec *ebpf.CollectionSpec, pr Program) (string, *ebpf.ProgramSpec, error) {
	if pr.Function != "" {
		ps, ok := spec.Programs[pr.Function]
		if !ok {
			return "", nil, fmt.Errorf("object has no program %q (for pin %s)", pr.Function, pr.Pin)
		}
		if pr.Section != "" && ps.SectionName != pr.Section {
			return "", nil, fmt.Errorf("program %s is in section %q, not %q", pr.Function, ps.SectionName, pr.Section)
		}
		return pr.Function, ps, nil
	}
	var found []string
	for name, ps := range spec.Programs {
		if ps.SectionName == pr.Section {
			found = append(found, name)
		}
	}
	switch len(found) {
	case 0:
		var secs []string
		for _, ps := range spec.Programs {
			secs = append(secs, ps.SectionName)
		}
		sort.Strings(secs)
		return "", nil, fmt.Errorf("object has no program in section %q (for pin %s; sections: %s)", pr.Section, pr.Pin, strings.Join(secs, ", "))
	case 1:
		return found[0], spec.Programs[found[0]], nil
	default:
		sort.Strings(found)
		return "", nil, fmt.Errorf("section %q holds several programs (%s): name the function for pin %s", pr.Section, strings.Join(found, ", "), pr.Pin)
	}
}

// setParams writes p.Params into the object's global constants.
func setParams(spec *ebpf.CollectionSpec, p *Policy) error {
	names := make([]string, 0, len(p.Params))
	for n := range p.Params {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v, ok := spec.Variables[n]
		if !ok {
			return fmt.Errorf("policy %s: unknown parameter %q (parameters: %s)", p.Name, n, strings.Join(paramNames(spec), ", "))
		}
		val := p.Params[n]
		var err error
		switch v.Size() {
		case 8:
			err = v.Set(val)
		case 4:
			if val > 0xffffffff {
				return fmt.Errorf("policy %s: parameter %s=%d does not fit in 32 bits", p.Name, n, val)
			}
			err = v.Set(uint32(val))
		default:
			return fmt.Errorf("policy %s: parameter %s has size %d (only 4 and 8 byte integers are settable)", p.Name, n, v.Size())
		}
		if err != nil {
			return fmt.Errorf("policy %s: set parameter %s: %w", p.Name, n, err)
		}
	}
	return nil
}

// paramNames lists the settable constants of spec.
func paramNames(spec *ebpf.CollectionSpec) []string {
	var out []string
	for n, v := range spec.Variables {
		if v.Constant() && (v.Size() == 4 || v.Size() == 8) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return []string{"none"}
	}
	return out
}

// ObjectParams returns the settable constants of an ELF object with their
// built-in values.
func ObjectParams(obj []byte) (map[string]uint64, error) {
	spec, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(obj))
	if err != nil {
		return nil, fmt.Errorf("parse ELF object: %w", err)
	}
	out := map[string]uint64{}
	for n, v := range spec.Variables {
		if !v.Constant() {
			continue
		}
		switch v.Size() {
		case 8:
			var x uint64
			if err := v.Get(&x); err != nil {
				return nil, err
			}
			out[n] = x
		case 4:
			var x uint32
			if err := v.Get(&x); err != nil {
				return nil, err
			}
			out[n] = uint64(x)
		}
	}
	return out, nil
}

// CheckKernel returns nil when k can run p: a policy with lock_* programs
// needs a SynCord kernel, and one of the branches it needs
// (NeededBranches; the object is read to see whether it calls
// bpf_back_off). The error wraps ErrNotSynCordKernel or ErrWrongBranch,
// and ebpf.ErrNotSupported, and says which kernel to boot.
//
// The kallsyms symbols decide; only when /proc/kallsyms cannot be read does
// a release ending in -syncord count (the kernel then has the last word).
func CheckKernel(p *Policy, k *kernel.Info) error {
	return checkKernel(p, k, nil)
}

func checkKernel(p *Policy, k *kernel.Info, spec *ebpf.CollectionSpec) error {
	if !p.HasLockPrograms() {
		return nil
	}
	if k.SynCord || (!k.Kallsyms && k.SynCordName) {
		if spec == nil && len(p.Branches) == 0 && k.Branch != "" && k.Branch != kernel.BranchShfllock {
			var err error
			if spec, err = LoadSpec(p); err != nil {
				return err
			}
		}
		return checkBranch(p, k, spec)
	}
	var why string
	switch {
	case !k.Kallsyms:
		why = "/proc/kallsyms is unreadable, so no SynCord symbol (" + strings.Join(kernel.SynCordSymbols, ", ") + ") could be found"
	default:
		why = "/proc/kallsyms has none of " + strings.Join(kernel.SynCordSymbols, ", ")
	}
	return &notSynCordError{fmt.Sprintf("load policy %s: kernel %s is not a SynCord kernel (%s; a SynCord kernel's uname -r ends in -syncord): its lock_* programs need BPF_PROG_TYPE_LOCK_POLICY (26), which upstream kernels use for tracing programs; boot a SynCord kernel (5.4.0-stock-syncord, -cna-syncord or -shfllock-syncord, built with the artifact's scripts/config-syncord)",
		p.Name, k.Release, why)}
}

// notSynCordError is ErrNotSynCordKernel and ebpf.ErrNotSupported with its
// own message.
type notSynCordError struct{ msg string }

func (e *notSynCordError) Error() string { return e.msg }

func (e *notSynCordError) Is(target error) bool {
	return target == ErrNotSynCordKernel || target == ebpf.ErrNotSupported
}

// LoadPolicy loads the programs and map of p into the kernel. A policy with
// lock_* programs is refused on a kernel that is not a SynCord kernel before
// anything is loaded. Verifier failures wrap *ebpf.VerifierError; print them
// with %+v (or VerifierLog) to see the log.
func LoadPolicy(p *Policy, opts LoadOptions) (*Loaded, error) {
	spec, err := LoadSpec(p)
	if err != nil {
		return nil, err
	}
	k := opts.Kernel
	if k == nil && p.HasLockPrograms() {
		k, err = kernel.NewDefaultFS().Probe()
		if err != nil {
			return nil, fmt.Errorf("load policy %s: probe kernel: %w", p.Name, err)
		}
	}
	if k != nil {
		if err := checkKernel(p, k, spec); err != nil {
			return nil, err
		}
	}
	// Kernels before 5.11 (all SynCord kernels) charge BPF memory to
	// RLIMIT_MEMLOCK; newer ones make this a no-op.
	if err := RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("load policy %s: raise RLIMIT_MEMLOCK: %w (run as root)", p.Name, err)
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{
		Programs: ebpf.ProgramOptions{LogLevel: opts.LogLevel, LogSizeStart: opts.LogSizeStart},
	})
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("load policy %s: verifier rejected a program (log below): %w", p.Name, err)
		}
		return nil, fmt.Errorf("load policy %s: %w", p.Name, err)
	}
	l := &Loaded{Policy: p, Programs: map[string]*ebpf.Program{}, coll: coll}
	for _, pr := range p.Programs {
		name, _, err := findProgram(spec, pr)
		if err != nil {
			coll.Close()
			return nil, fmt.Errorf("policy %s: %w", p.Name, err)
		}
		l.Programs[pr.Pin] = coll.Programs[name]
	}
	if p.Map != nil {
		l.Map = coll.Maps[p.Map.symbol()]
	}
	return l, nil
}

// VerifierLog returns the verifier log carried by err, formatted with %+v,
// or "" when err holds no *ebpf.VerifierError.
func VerifierLog(err error) string {
	var ve *ebpf.VerifierError
	if !errors.As(err, &ve) {
		return ""
	}
	return fmt.Sprintf("%+v", ve)
}

// Pin pins every program at <dir>/<pin> and the map at <dir>/<map name>, in
// the order of PinPaths, and returns the paths made. It refuses to replace an
// existing file (ErrPinExists) and, on any failure, removes the pins it made
// before returning the error.
func (l *Loaded) Pin(dir string) (paths []string, err error) {
	defer func() {
		if err != nil {
			_ = Unpin(paths)
			paths = nil
		}
	}()
	pin := func(path string, do func(string) error) error {
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("pin policy %s at %s: %w (remove it, or uninstall the policy that made it)", l.Policy.Name, path, ErrPinExists)
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("pin policy %s: %w", l.Policy.Name, err)
		}
		if err := do(path); err != nil {
			if errors.Is(err, os.ErrExist) {
				return fmt.Errorf("pin policy %s at %s: %w", l.Policy.Name, path, ErrPinExists)
			}
			return fmt.Errorf("pin policy %s at %s: %w (is %s a bpffs? see EnsureBPFFS)", l.Policy.Name, path, err, dir)
		}
		paths = append(paths, path)
		return nil
	}
	for _, pr := range l.Policy.Programs {
		prog := l.Programs[pr.Pin]
		if prog == nil {
			return paths, fmt.Errorf("pin policy %s: program %s is not loaded", l.Policy.Name, pr.Pin)
		}
		if err := pin(filepath.Join(dir, pr.Pin), func(path string) error {
			// Pin a duplicate: cilium's Pin of an object pinned before
			// moves the old pin instead of adding one.
			c, err := prog.Clone()
			if err != nil {
				return err
			}
			defer c.Close()
			return c.Pin(path)
		}); err != nil {
			return paths, err
		}
	}
	if l.Policy.Map != nil && l.Map != nil {
		if err := pin(filepath.Join(dir, l.Policy.Map.Name), func(path string) error {
			c, err := l.Map.Clone()
			if err != nil {
				return err
			}
			defer c.Close()
			return c.Pin(path)
		}); err != nil {
			return paths, err
		}
	}
	return paths, nil
}

// Close releases the file descriptors of the programs and maps. Pins stay.
// Close is idempotent.
func (l *Loaded) Close() error {
	if l == nil || l.coll == nil {
		return nil
	}
	l.coll.Close()
	l.coll = nil
	l.Programs = nil
	l.Map = nil
	return nil
}

// Unpin removes the given bpffs pins. A path that does not exist is not an
// error, so Unpin is idempotent; it tries every path and returns the errors
// joined.
func Unpin(paths []string) error {
	var errs []error
	for i := len(paths) - 1; i >= 0; i-- {
		if err := os.Remove(paths[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("unpin %s: %w", paths[i], err))
		}
	}
	return errors.Join(errs...)
}

func objectName(p *Policy) string {
	if p.ObjectPath != "" {
		return p.ObjectPath
	}
	return p.Name + "_kern.o"
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
