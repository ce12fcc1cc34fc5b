// Package setting is the error a library returns when the caller's
// setting (a Config field, an option) is wrong, or when changing one is
// the remedy. Libraries name settings by their Go names and know nothing
// of command lines; cmd/ renders the same message with the flag that sets
// each one (Render), so the user still reads "--ncore must be > 0" while a
// library caller reads "NCore must be > 0".
package setting

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ErrInvalid is wrapped by the errors of Invalid: a setting's value is out
// of its range or conflicts with another one.
var ErrInvalid = errors.New("invalid setting")

// Error is a message that names settings. Error() prints their Go names;
// Text and Render the flags.
type Error struct {
	msg string // the formatted message, each setting as marker(name)
	err error  // what the caller wrapped with %w, if anything
}

// A setting is kept in the message between NUL bytes, which no path,
// name or number the arguments bring can hold: only the format's {Name}
// and Name's results become settings.
const mark = "\x00"

var (
	braceRE  = regexp.MustCompile(`\{([A-Z][A-Za-z0-9]*(?:\.[A-Z][A-Za-z0-9]*)*)\}`)
	markerRE = regexp.MustCompile(mark + `([A-Za-z0-9.]+)` + mark)
)

// Name returns setting name as a piece of message to pass as an argument
// of Errorf (a remedy built apart from the format).
func Name(name string) string { return mark + name + mark }

// Errorf formats like fmt.Errorf (%w wraps); every {Name} in format names
// the setting Name (a Go identifier, or a dotted path such as
// {Roots.Bench}).
func Errorf(format string, args ...any) error {
	w := fmt.Errorf(braceRE.ReplaceAllString(format, mark+"$1"+mark), args...)
	e := &Error{msg: w.Error()}
	switch u := w.(type) {
	case interface{ Unwrap() error }:
		e.err = u.Unwrap()
	case interface{ Unwrap() []error }:
		e.err = errors.Join(u.Unwrap()...)
	}
	return e
}

// Invalid is Errorf for a value out of range; the error also wraps
// ErrInvalid.
func Invalid(format string, args ...any) error {
	e := Errorf(format, args...).(*Error)
	if e.err == nil {
		e.err = ErrInvalid
	} else {
		e.err = errors.Join(ErrInvalid, e.err)
	}
	return e
}

func (e *Error) Error() string { return markerRE.ReplaceAllString(e.msg, "$1") }

// Unwrap returns what the message wrapped (and ErrInvalid for Invalid).
func (e *Error) Unwrap() error { return e.err }

// Settings are the names the message mentions, in order.
func (e *Error) Settings() []string {
	var out []string
	for _, m := range markerRE.FindAllStringSubmatch(e.msg, -1) {
		out = append(out, m[1])
	}
	return out
}

// Text is the message with each setting named by flag(name); a name flag
// does not know keeps its Go name.
func (e *Error) Text(flag func(name string) (string, bool)) string {
	return markerRE.ReplaceAllStringFunc(e.msg, func(m string) string {
		name := m[1 : len(m)-1]
		if f, ok := flag(name); ok {
			return f
		}
		return name
	})
}

// Render returns err with the message of every *Error in its chain
// written with flags (Go name -> "--flag"): the whole message reads as
// before, errors.Is and errors.As see the same chain. err comes back
// unchanged when it holds no *Error.
func Render(err error, flags map[string]string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	changed := false
	var walk func(error)
	walk = func(e error) {
		for e != nil {
			if se, ok := e.(*Error); ok {
				plain, with := se.Error(), se.Text(func(n string) (string, bool) { f, ok := flags[n]; return f, ok })
				if plain != with && strings.Contains(msg, plain) {
					msg = strings.Replace(msg, plain, with, 1)
					changed = true
				}
			}
			switch u := e.(type) {
			case interface{ Unwrap() error }:
				e = u.Unwrap()
			case interface{ Unwrap() []error }:
				for _, x := range u.Unwrap() {
					walk(x)
				}
				return
			default:
				return
			}
		}
	}
	walk(err)
	if !changed {
		return err
	}
	return &rendered{msg: msg, err: err}
}

// rendered is an error chain whose message speaks of flags.
type rendered struct {
	msg string
	err error
}

func (r *rendered) Error() string { return r.msg }
func (r *rendered) Unwrap() error { return r.err }
