package setting

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// flagRE is a command-line flag in a message: "--name" or "-x" after a
// space, a parenthesis or at the start; group 1 is the word before it.
var flagRE = regexp.MustCompile(`(?:^|(\S*)[\s(])(--[a-z][a-z0-9-]*|-[a-z])\b`)

// otherPrograms are commands whose flags a message may quote (the remedy
// is to run them): they are not flags of the library's caller.
var otherPrograms = map[string]bool{"mount": true, "dpkg-deb": true, "ulimit": true, "df": true, "clang": true}

// commandExample names a syncord command line the library itself runs or
// tells to run: its flags are that command's, not the caller's.
var commandExample = regexp.MustCompile(`\bsyncord(-host)? (policy|bench|lockstat|topology|agent|guest|experiment|vm|pin|amp|image|plot) `)

func namesFlag(s string) bool {
	if commandExample.MatchString(s) {
		return false
	}
	for _, m := range flagRE.FindAllStringSubmatch(s, -1) {
		if !otherPrograms[m[1]] && !strings.HasPrefix(m[1], "./") {
			return true
		}
	}
	return false
}

// TestLibraryErrorsNameNoFlags: no error message built in a library
// package (everything but cmd/, internal/cli and e2e/) names a
// command-line flag;
// libraries name settings with {Name} (Errorf, Invalid) and cmd/ renders
// the flag. Found by parsing the calls of fmt.Errorf, errors.New,
// Errorf and Invalid with a constant format.
func TestLibraryErrorsNameNoFlags(t *testing.T) {
	root := filepath.Join("..", "..")
	var bad []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			switch {
			case rel == ".":
				return nil
			case rel == "cmd", rel == "e2e", rel == filepath.Join("internal", "cli"), strings.HasPrefix(d.Name(), "."), d.Name() == "testdata", d.Name() == "bench":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			switch sel.Sel.Name {
			case "Errorf", "New", "Invalid":
			default:
				return true
			}
			if x, ok := sel.X.(*ast.Ident); !ok || (x.Name != "fmt" && x.Name != "errors" && x.Name != "setting") {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				return true
			}
			if namesFlag(s) {
				bad = append(bad, fset.Position(lit.Pos()).String()+": "+s)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bad {
		t.Errorf("library error names a flag (use setting.Errorf with {Name}; cmd/ maps it): %s", b)
	}
}

func TestNamesFlag(t *testing.T) {
	for s, want := range map[string]bool{
		"--ncore must be > 0":                              true,
		"leveldb: no database directory (give --db)":       true,
		"-t must be > 0, got %d":                           true,
		"mmap: %w (lower -s or free memory)":               true,
		"NCore must be > 0":                                false,
		"%w (try: mount -t sysfs sysfs /sys)":              false,
		"%w (raise it with ulimit -n)":                     false,
		"start it with -accel tcg,thread=multi or kvm":     false,
		"cpu-index -1 is not a CPU":                        false,
		"(this needs syncord policy build --livepatch)":    false,
		"(capture it first: go run ./x/capture -o dir)":    false,
		"which syncord did not make: choose another --dir": true,
	} {
		if namesFlag(s) != want {
			t.Errorf("namesFlag(%q) = %v, want %v", s, !want, want)
		}
	}
}
