package setting

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"
)

var flags = map[string]string{"NCore": "--ncore", "NBg": "--nbg", "StateDir": "--state-dir"}

func TestErrorNamesSettings(t *testing.T) {
	err := Invalid("{NBg} must be >= 0 and < {NCore}, got %d with %d cores", -1, 4)
	if got := err.Error(); got != "NBg must be >= 0 and < NCore, got -1 with 4 cores" {
		t.Errorf("Error() = %q; want Go names", got)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Error("Invalid does not wrap ErrInvalid")
	}
	var se *Error
	if !errors.As(err, &se) || fmt.Sprint(se.Settings()) != "[NBg NCore]" {
		t.Errorf("Settings = %v", se.Settings())
	}
	outer := fmt.Errorf("fxmark MWRL: %w", err)
	r := Render(outer, flags)
	if got := r.Error(); got != "fxmark MWRL: --nbg must be >= 0 and < --ncore, got -1 with 4 cores" {
		t.Errorf("Render = %q", got)
	}
	if !errors.Is(r, ErrInvalid) || !errors.As(r, &se) {
		t.Error("Render lost the chain")
	}
}

func TestRenderWrapped(t *testing.T) {
	cause := &fs.PathError{Op: "open", Path: "/run/x/lock", Err: fs.ErrPermission}
	err := fmt.Errorf("install policy p: %w", Errorf("lock state: %w (set {StateDir} to a writable directory)", cause))
	if got := Render(err, flags).Error(); got != "install policy p: lock state: open /run/x/lock: permission denied (set --state-dir to a writable directory)" {
		t.Errorf("Render = %q", got)
	}
	if !errors.Is(Render(err, flags), fs.ErrPermission) || errors.Is(err, ErrInvalid) {
		t.Error("chain: want ErrPermission, not ErrInvalid")
	}
	// Unknown names keep their Go name; errors without settings pass.
	if got := Render(Errorf("set {Other}"), flags).Error(); got != "set Other" {
		t.Errorf("unknown name: %q", got)
	}
	plain := errors.New("boom")
	if Render(plain, flags) != plain || Render(nil, flags) != nil {
		t.Error("Render changed an error without settings")
	}
	// Two settings errors joined: both rendered.
	j := errors.Join(Errorf("{NCore} bad"), Errorf("{NBg} bad"))
	if got := Render(j, flags).Error(); got != "--ncore bad\n--nbg bad" {
		t.Errorf("joined: %q", got)
	}
}

// TestArgumentsAreNotSettings: braces in an argument (a path) are text;
// Name marks a setting built apart from the format.
func TestArgumentsAreNotSettings(t *testing.T) {
	err := Errorf("open %s: not a directory (%s)", "/tmp/{NCore}", "use "+Name("NBg"))
	if got := Render(err, flags).Error(); got != "open /tmp/{NCore}: not a directory (use --nbg)" {
		t.Errorf("Render = %q", got)
	}
	if got := err.Error(); got != "open /tmp/{NCore}: not a directory (use NBg)" {
		t.Errorf("Error() = %q", got)
	}
	if got := Render(Errorf("start the agent with {Roots.Bench} DIR"), map[string]string{"Roots.Bench": "--bench-root"}).Error(); got != "start the agent with --bench-root DIR" {
		t.Errorf("dotted: %q", got)
	}
}
