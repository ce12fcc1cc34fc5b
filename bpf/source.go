package bpf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Hook is one entry of the SynCord hook API (the artifact's list_APIs.h).
type Hook struct {
	Name string
	// Bool hooks return a decision; the value of void hooks is ignored
	// (their BPF programs still return int, 0 by convention).
	Bool bool
}

// Hooks is the SynCord hook API in the order of list_APIs.h.
var Hooks = []Hook{
	{"lock_to_acquire", false},
	{"lock_acquired", false},
	{"lock_to_release", false},
	{"lock_released", false},
	{"lock_to_enter_slowpath", false},
	{"lock_enable_fastpath", true},
	{"should_reorder", true},
	{"skip_reorder", true},
	{"lock_bypass_acquire", true},
	{"lock_bypass_release", true},
}

// LookupHook returns the hook called name.
func LookupHook(name string) (Hook, bool) {
	for _, h := range Hooks {
		if h.Name == name {
			return h, true
		}
	}
	return Hook{}, false
}

// sectionHooks maps the suffix of a lock_<lock>_<suffix> section to its hook,
// as the SynCord kernels wire them; the bare lock_qspinlock section of the
// CNA kernel is its reorder decision.
var sectionHooks = []struct{ suffix, hook string }{
	{"_bypass_acquire", "lock_bypass_acquire"},
	{"_bypass_release", "lock_bypass_release"},
	{"_skip_reorder", "skip_reorder"},
	{"_enable_fastpath", "lock_enable_fastpath"},
	{"_fastpath", "lock_enable_fastpath"},
	{"_to_acquire", "lock_to_acquire"},
	{"_contended", "lock_to_enter_slowpath"},
	{"_slowpath", "lock_to_enter_slowpath"},
	{"_acquired", "lock_acquired"},
	{"_acqed", "lock_acquired"},
	{"_released", "lock_released"},
	{"_release", "lock_to_release"},
	{"_cmp", "should_reorder"},
	{"_reorder", "should_reorder"},
	{"lock_qspinlock", "should_reorder"},
}

// PFile is one program of a policy source directory.
type PFile struct {
	// Path of the .pfile.
	Path string
	// Pin is the basename without .pfile: the bpffs name of the program.
	Pin string
	// Text is the file's content.
	Text string
	// Section, Function and ReturnType are read from the SEC(...) line and
	// the function definition that follows it.
	Section, Function, ReturnType string
	// Hook is the hook the program implements: from a "syncord:hook NAME"
	// comment, else the hook name inside the function name, else the
	// section's suffix.
	Hook string
}

// Source is a policy source directory in the artifact's convention: one or
// more *.pfile (one program each), at most one *.map and at most one *.h.
type Source struct {
	Dir  string
	Name string
	// PFiles sorted by file name.
	PFiles []PFile
	// MapFile and Header are paths, or "".
	MapFile, Header string
}

// Compiled on first use (sync.OnceValue), not in package init: every
// syncord start would pay for them.
var (
	secRE     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`SEC\(\s*"([^"]*)"\s*\)`) })
	funcAfter = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^\s*((?:(?:static|inline|__always_inline|const|unsigned|signed|long|int|bool|_Bool|void|char|short|u8|u16|u32|u64|__u8|__u16|__u32|__u64|__s32|__s64)\s+)*\w+)(\s*\*+\s*|\s+)(\w+)\s*\(`)
	})
	hookTagRE  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`syncord:hook\s+(\w+)`) })
	commentsRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?s)/\*.*?\*/|//[^\n]*`) })
)

// ParseSource reads a policy source directory and finds, for every .pfile,
// its section, function, return type and hook. It does not judge them; see
// Check.
func ParseSource(dir string) (*Source, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read policy directory: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	s := &Source{Dir: dir, Name: filepath.Base(abs)}
	var maps, headers []string
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		path := filepath.Join(dir, e.Name())
		switch filepath.Ext(e.Name()) {
		case ".pfile":
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("read policy program: %w", err)
			}
			pf, err := parsePFile(path, string(b))
			if err != nil {
				return nil, err
			}
			s.PFiles = append(s.PFiles, pf)
		case ".map":
			maps = append(maps, path)
		case ".h":
			headers = append(headers, path)
		}
	}
	sort.Slice(s.PFiles, func(i, j int) bool { return s.PFiles[i].Pin < s.PFiles[j].Pin })
	if len(s.PFiles) == 0 {
		return nil, fmt.Errorf("policy directory %s: no .pfile (a policy is one or more .pfile, at most one .map and one .h)", dir)
	}
	if len(maps) > 1 {
		return nil, fmt.Errorf("policy directory %s: %d .map files (%s); at most one is allowed", dir, len(maps), strings.Join(baseNames(maps), ", "))
	}
	if len(headers) > 1 {
		return nil, fmt.Errorf("policy directory %s: %d .h files (%s); at most one is allowed", dir, len(headers), strings.Join(baseNames(headers), ", "))
	}
	if len(maps) == 1 {
		s.MapFile = maps[0]
	}
	if len(headers) == 1 {
		s.Header = headers[0]
	}
	return s, nil
}

// parsePFile finds the section, function and hook of one .pfile.
func parsePFile(path, text string) (PFile, error) {
	pf := PFile{Path: path, Pin: strings.TrimSuffix(filepath.Base(path), ".pfile"), Text: text}
	code := commentsRE().ReplaceAllStringFunc(text, func(c string) string { return strings.Repeat(" ", len(c)) })
	secs := secRE().FindAllStringSubmatchIndex(code, -1)
	switch len(secs) {
	case 0:
		return pf, fmt.Errorf("%s: no SEC(\"lock_...\") line (each .pfile holds one program)", path)
	case 1:
	default:
		return pf, fmt.Errorf("%s: %d SEC(...) lines; each .pfile holds exactly one program", path, len(secs))
	}
	pf.Section = code[secs[0][2]:secs[0][3]]
	m := funcAfter().FindStringSubmatch(code[secs[0][1]:])
	if m == nil {
		return pf, fmt.Errorf("%s: no function definition after SEC(%q)", path, pf.Section)
	}
	pf.ReturnType = strings.Join(strings.Fields(m[1]+" "+strings.TrimSpace(m[2])), " ")
	pf.ReturnType = strings.TrimPrefix(strings.TrimPrefix(pf.ReturnType, "static "), "inline ")
	pf.Function = m[3]
	if t := hookTagRE().FindStringSubmatch(text); t != nil {
		pf.Hook = t[1]
	} else {
		pf.Hook = inferHook(pf.Function, pf.Section)
	}
	return pf, nil
}

// hookWords maps words found in program function names (lower case,
// underscores removed) to hooks; the longest word contained in a name wins.
// They cover the hook names and the artifact's custom_* naming
// (custom_lock_contended, custom_cmp_func, custom_to_enter_slow_path).
var hookWords = map[string]string{
	"toenterslowpath": "lock_to_enter_slowpath",
	"enterslowpath":   "lock_to_enter_slowpath",
	"contended":       "lock_to_enter_slowpath",
	"acquired":        "lock_acquired",
	"acqed":           "lock_acquired",
	"torelease":       "lock_to_release",
	"released":        "lock_released",
	"toacquire":       "lock_to_acquire",
	"enablefastpath":  "lock_enable_fastpath",
	"shouldreorder":   "should_reorder",
	"cmp":             "should_reorder",
	"skipreorder":     "skip_reorder",
	"bypassacquire":   "lock_bypass_acquire",
	"bypassacq":       "lock_bypass_acquire",
	"bypassrelease":   "lock_bypass_release",
}

// inferHook finds the hook of a program from its function name or, failing
// that, its section suffix.
func inferHook(function, section string) string {
	norm := strings.ToLower(strings.ReplaceAll(function, "_", ""))
	best, hook := "", ""
	for w, h := range hookWords {
		if strings.Contains(norm, w) && (len(w) > len(best) || (len(w) == len(best) && w < best)) {
			best, hook = w, h
		}
	}
	if hook != "" {
		return hook
	}
	for _, sh := range sectionHooks {
		if strings.HasSuffix(section, sh.suffix) {
			return sh.hook
		}
	}
	return ""
}

// Check applies the rules of the artifact's compiler: every section starts
// with lock_ (unless allowStock, used only for stock-kernel test policies),
// functions are distinct (programs may share a section: the artifact's
// lockstat put all three in lock_qspinlock), every program names a known hook
// (add a "syncord:hook NAME" comment when it cannot be inferred) and its
// return type fits the hook: bool or int for decision hooks, int for the
// others (a BPF program must return a value; void hooks return 0).
func (s *Source) Check(allowStock bool) error {
	var errs []error
	funcs := map[string]string{}
	for _, pf := range s.PFiles {
		name := filepath.Base(pf.Path)
		if !strings.HasPrefix(pf.Section, LockSectionPrefix) && !allowStock {
			errs = append(errs, fmt.Errorf("%s: section %q does not start with lock_", name, pf.Section))
		}
		if o, dup := funcs[pf.Function]; dup {
			errs = append(errs, fmt.Errorf("%s: function %s already defined in %s", name, pf.Function, o))
		}
		funcs[pf.Function] = name
		if !strings.HasPrefix(pf.Section, LockSectionPrefix) {
			continue
		}
		h, ok := LookupHook(pf.Hook)
		if !ok {
			if pf.Hook == "" {
				errs = append(errs, fmt.Errorf("%s: cannot tell which hook %s (section %s) implements; add a comment \"syncord:hook NAME\" with NAME one of %s", name, pf.Function, pf.Section, hookNames()))
			} else {
				errs = append(errs, fmt.Errorf("%s: unknown hook %q (hooks: %s)", name, pf.Hook, hookNames()))
			}
			continue
		}
		if err := checkReturn(h, pf.ReturnType); err != nil {
			errs = append(errs, fmt.Errorf("%s: %s: %w", name, pf.Function, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("check policy %s:\n%w", s.Name, err)
	}
	return nil
}

func checkReturn(h Hook, rt string) error {
	switch rt {
	case "int", "long", "unsigned int", "unsigned long", "u32", "u64", "__u32", "__u64", "__s32", "__s64":
		return nil
	case "bool", "_Bool":
		if h.Bool {
			return nil
		}
		return fmt.Errorf("returns %s but hook %s returns void (declare int and return 0)", rt, h.Name)
	case "void":
		if h.Bool {
			return fmt.Errorf("returns void but hook %s returns bool", h.Name)
		}
		return fmt.Errorf("returns void; BPF programs must return a value (declare int and return 0 for hook %s)", h.Name)
	default:
		want := "int"
		if h.Bool {
			want = "bool or int"
		}
		return fmt.Errorf("returns %s; hook %s needs %s", rt, h.Name, want)
	}
}

func hookNames() string {
	var n []string
	for _, h := range Hooks {
		n = append(n, h.Name)
	}
	return strings.Join(n, ", ")
}

func baseNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(p)
	}
	return out
}

// Programs returns the program list of the policy: one per .pfile, pinned
// under the .pfile's basename.
func (s *Source) Programs() []Program {
	out := make([]Program, len(s.PFiles))
	for i, pf := range s.PFiles {
		out[i] = Program{Section: pf.Section, Function: pf.Function, Pin: pf.Pin, Hook: pf.Hook}
	}
	return out
}

// paramRE matches SYNCORD_PARAM(name, default) with an optional trailing
// "// [from=fact] help" comment.
var paramRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`SYNCORD_PARAM\(\s*(\w+)\s*,\s*([^)]*?)\s*\)\s*;?[ \t]*(?://[ \t]*(?:from=(\w+)[ \t]+)?([^\n]*))?`)
})

// declaredParams returns the SYNCORD_PARAM declarations of the sources,
// with their help text; defaults come from the compiled object.
func (s *Source) declaredParams() map[string]Param {
	out := map[string]Param{}
	texts := []string{}
	for _, pf := range s.PFiles {
		texts = append(texts, pf.Text)
	}
	for _, p := range []string{s.MapFile, s.Header} {
		if p != "" {
			if b, err := os.ReadFile(p); err == nil {
				texts = append(texts, string(b))
			}
		}
	}
	for _, t := range texts {
		for _, m := range paramRE().FindAllStringSubmatch(t, -1) {
			p := Param{Name: m[1], From: m[3], Help: strings.TrimSpace(m[4])}
			if v, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSuffix(m[2], "ULL"), "UL"), 0, 64); err == nil {
				p.Default = v
			}
			out[p.Name] = p
		}
	}
	return out
}
