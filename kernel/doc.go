// Package kernel probes the running kernel through procfs and sysfs: its
// release, whether it is a SynCord kernel (detected from /proc/kallsyms, not
// assumed from the name), whether it has BTF, and a symbol table built from
// /proc/kallsyms to name lock addresses.
package kernel
