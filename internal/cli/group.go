package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Group is a command made of subcommands ("syncord policy install",
// "syncord bench xdir run"): one registry per level, and one dispatcher
// for all of them. A subcommand may itself run a Group.
type Group struct {
	// Prog and Name say where the group sits ("syncord", "bench xdir").
	Prog, Name string
	// Synopsis follows "Usage: Prog Name" ("DRIVER [ARGS...]"); "" means
	// "SUBCOMMAND [ARGS...]".
	Synopsis string
	// Noun names a subcommand in messages ("bench driver"); "" means
	// "subcommand".
	Noun string
	// Help is printed between the usage line and the list.
	Help string

	subs map[string]Command
}

// Add registers c; a name registered twice is a programming error. A
// command with a Group and no Run runs the group.
func (g *Group) Add(c Command) {
	if c.Run == nil && c.Group != nil {
		c.Run = c.Group.Run
	}
	if g.subs == nil {
		g.subs = map[string]Command{}
	}
	if _, dup := g.subs[c.Name]; dup {
		panic("cli: duplicate subcommand " + g.Name + " " + c.Name)
	}
	g.subs[c.Name] = c
}

// Lookup finds the subcommand called name.
func (g *Group) Lookup(name string) (Command, bool) {
	c, ok := g.subs[name]
	return c, ok
}

// List returns the subcommands sorted by name.
func (g *Group) List() []Command {
	l := make([]Command, 0, len(g.subs))
	for _, c := range g.subs {
		l = append(l, c)
	}
	sort.Slice(l, func(i, j int) bool { return l[i].Name < l[j].Name })
	return l
}

// Mutates reports whether the command line args (below g) runs a
// mutating command: the deepest command args name decides, so a group's
// subcommand may only read ("policy status") where the group mutates;
// help never mutates; a name g does not know mutates as its parent does
// (none at the top).
func (g *Group) Mutates(args []string) bool {
	mut := false
	for len(args) > 0 && g != nil {
		if IsHelp(args[0]) {
			return false
		}
		c, ok := g.subs[args[0]]
		if !ok {
			break
		}
		mut, g, args = c.Mutating, c.Group, args[1:]
	}
	return mut
}

// IsHelp reports whether arg asks for help ("-h", "--help", "help").
func IsHelp(arg string) bool { return arg == "-h" || arg == "--help" || arg == "help" }

// Run dispatches args to the subcommand they name. Without arguments it
// prints the usage on stderr (exit status 2); "-h", "--help" or "help"
// print it on stdout (0); an unknown name is an error that lists the
// known ones (exit status 2).
func (g *Group) Run(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 {
		g.Usage(env.Stderr)
		return ErrUsage
	}
	if IsHelp(args[0]) {
		g.Usage(env.Stdout)
		return nil
	}
	c, ok := g.subs[args[0]]
	if !ok {
		var names []string
		for _, s := range g.List() {
			names = append(names, s.Name)
		}
		return Exit(2, fmt.Errorf("%s: unknown %s %q (%s; see '%s %s --help')", g.Name, g.noun(), args[0], strings.Join(names, ", "), g.Prog, g.Name))
	}
	return c.Run(ctx, env, args[1:])
}

func (g *Group) noun() string {
	if g.Noun == "" {
		return "subcommand"
	}
	return g.Noun
}

// Usage prints the usage line, the help and the subcommands.
func (g *Group) Usage(w io.Writer) {
	syn := g.Synopsis
	if syn == "" {
		syn = "SUBCOMMAND [ARGS...]"
	}
	ph := "SUBCOMMAND" // the synopsis's placeholder, when it starts with one
	if f := strings.Fields(syn); len(f) > 0 && f[0] == strings.ToUpper(f[0]) && !strings.Contains(f[0], "|") {
		ph = f[0]
	}
	fmt.Fprintf(w, "Usage: %s %s %s   (%s %s %s --help for details)\n", g.Prog, g.Name, syn, g.Prog, g.Name, ph)
	if h := strings.TrimRight(strings.TrimLeft(g.Help, "\n"), " \n"); h != "" {
		fmt.Fprintf(w, "\n%s\n", h)
	}
	fmt.Fprintln(w)
	for _, c := range g.List() {
		fmt.Fprintf(w, "  %-14s %s\n", c.Name, c.Summary)
	}
}

// ParseArgs parses the flags of fs wherever they stand among the
// positional arguments ("will-it-scale lock1 -t 4" as well as
// "-t 4 lock1") and returns the positional ones in order. As POSIX
// utilities do, "--" ends the flags: everything after it is positional,
// "-t" and "--" included; the first "--" itself is not returned.
func ParseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := Parse(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// flag stops at the first non-flag (kept in rest) or after "--"
		// (consumed): tell them apart by what preceded rest.
		if end := len(args) - len(rest) - 1; end >= 0 && args[end] == "--" && !isValue(fs, args, end) {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// isValue reports whether args[i] is the value of the flag before it
// ("--db --" sets db to "--").
func isValue(fs *flag.FlagSet, args []string, i int) bool {
	if i == 0 {
		return false
	}
	name, ok := strings.CutPrefix(args[i-1], "-")
	if !ok || strings.Contains(name, "=") {
		return false
	}
	name = strings.TrimPrefix(name, "-")
	f := fs.Lookup(name)
	if f == nil {
		return false
	}
	b, isBool := f.Value.(interface{ IsBoolFlag() bool })
	return !isBool || !b.IsBoolFlag()
}
