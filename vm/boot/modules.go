package boot

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// moduleIndex maps module names (with '-' as '_') to .ko paths under a
// kernel's modules dir, and knows which names are built in.
type moduleIndex struct {
	dir     string
	paths   map[string]string
	builtin map[string]bool
}

func normModName(s string) string { return strings.ReplaceAll(s, "-", "_") }

func loadModuleIndex(modulesDir string) (*moduleIndex, error) {
	idx := &moduleIndex{dir: modulesDir, paths: map[string]string{}, builtin: map[string]bool{}}
	err := filepath.WalkDir(filepath.Join(modulesDir, "kernel"), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".ko") {
			idx.paths[normModName(strings.TrimSuffix(d.Name(), ".ko"))] = p
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index modules in %s: %w", modulesDir, err)
	}
	if b, err := os.ReadFile(filepath.Join(modulesDir, "modules.builtin")); err == nil {
		for _, l := range strings.Fields(string(b)) {
			idx.builtin[normModName(strings.TrimSuffix(filepath.Base(l), ".ko"))] = true
		}
	}
	return idx, nil
}

// modinfoDepends reads the depends= field of a module's .modinfo section.
func modinfoDepends(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("%s: no .modinfo section", path)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, err
	}
	for _, kv := range bytes.Split(data, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			var deps []string
			for _, d := range strings.Split(string(v), ",") {
				if d != "" {
					deps = append(deps, normModName(d))
				}
			}
			return deps, nil
		}
	}
	return nil, nil
}

// resolve returns the .ko paths to insmod, dependencies first, for the
// named modules (modprobe's order); built-in names are skipped.
func (idx *moduleIndex) resolve(names []string) ([]string, error) {
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(n string, from string) error
	visit = func(n, from string) error {
		n = normModName(n)
		switch state[n] {
		case 2:
			return nil
		case 1:
			return fmt.Errorf("module dependency cycle at %s", n)
		}
		if idx.builtin[n] {
			state[n] = 2
			return nil
		}
		p, ok := idx.paths[n]
		if !ok {
			if from != "" {
				return fmt.Errorf("module %s (needed by %s) not found in %s", n, from, idx.dir)
			}
			return fmt.Errorf("module %s not found in %s and not built in", n, idx.dir)
		}
		state[n] = 1
		deps, err := modinfoDepends(p)
		if err != nil {
			return err
		}
		sort.Strings(deps)
		for _, d := range deps {
			if err := visit(d, n); err != nil {
				return err
			}
		}
		state[n] = 2
		order = append(order, p)
		return nil
	}
	for _, n := range names {
		if err := visit(n, ""); err != nil {
			return nil, err
		}
	}
	return order, nil
}
