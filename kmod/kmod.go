package kmod

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Error is a failed module system call with advice on what to do about it.
// It unwraps to the unix.Errno, so errors.Is(err, unix.EEXIST) and
// errors.Is(err, fs.ErrExist) work.
type Error struct {
	Op     string // "finit_module", "init_module", "delete_module"
	Object string // module file or module name
	Err    error
	Advice string
}

func (e *Error) Error() string {
	if e.Advice == "" {
		return fmt.Sprintf("%s %s: %v", e.Op, e.Object, e.Err)
	}
	return fmt.Sprintf("%s %s: %v (%s)", e.Op, e.Object, e.Err, e.Advice)
}

func (e *Error) Unwrap() error { return e.Err }

// advice turns the errno of a module system call into what to do about it.
func advice(op string, err error) string {
	var errno unix.Errno
	if !errors.As(err, &errno) {
		return ""
	}
	switch errno {
	case unix.EPERM:
		return "needs CAP_SYS_MODULE; is module signing enforced or module loading disabled (kernel.modules_disabled)?"
	case unix.EKEYREJECTED:
		return "module signature rejected: sign it with a key the kernel trusts or boot without module.sig_enforce"
	case unix.EEXIST:
		return "a module of that name is already loaded: uninstall it first"
	case unix.EBUSY, unix.EAGAIN:
		if op == "delete_module" {
			return "module is in use: disable its livepatch and wait for the transition, or stop its users"
		}
		return "the kernel is busy with this module (being loaded or removed): retry shortly"
	case unix.ENOEXEC:
		return "not a module for this kernel: wrong architecture, vermagic or a corrupt file; rebuild it against this kernel's headers"
	case unix.ENOENT:
		if op == "delete_module" {
			return "no such module is loaded"
		}
		return "unknown symbol or the module's init failed; see dmesg"
	case unix.EINVAL:
		return "invalid module or parameters (symbol version mismatch?); see dmesg"
	case unix.ENOSYS:
		return "the kernel has no loadable module support (CONFIG_MODULES)"
	}
	return ""
}

func wrap(op, object string, err error) error {
	return &Error{Op: op, Object: object, Err: err, Advice: advice(op, err)}
}

// Load inserts the module file at path with the given parameters (the
// kernel's space-separated "name=value" form). Uncompressed modules go
// through finit_module(2), falling back to init_module(2) when the kernel
// answers ENOSYS; .ko.gz, .ko.xz and .ko.zst files are decompressed in memory
// and passed to init_module(2).
func Load(path, params string) error {
	name := filepath.Base(path)
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("load module %s: %w", path, err)
	}
	defer f.Close()
	kind, err := sniff(f, path)
	if err != nil {
		return fmt.Errorf("load module %s: %w", path, err)
	}
	if kind == compNone {
		err := unix.FinitModule(int(f.Fd()), params, 0)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.ENOSYS) {
			return wrap("finit_module", name, err)
		}
	}
	image, err := ReadImage(path)
	if err != nil {
		return err
	}
	if err := unix.InitModule(image, params); err != nil {
		return wrap("init_module", name, err)
	}
	return nil
}

// Unload removes the loaded module name with delete_module(2) and
// O_NONBLOCK: a module in use fails at once with EBUSY or EAGAIN instead of
// waiting. A module that is not loaded is not an error.
func Unload(name string) error {
	err := unix.DeleteModule(name, unix.O_NONBLOCK)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return wrap("delete_module", name, err)
}
