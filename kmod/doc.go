// Package kmod inserts and removes kernel modules with finit_module(2)
// (init_module(2) for compressed files and kernels without finit_module) and
// delete_module(2) with O_NONBLOCK, reads <proc>/modules with each module's
// state, and reads a module file's .modinfo and strings without inserting it.
// Errors are *Error values that unwrap to the errno and carry advice
// (EPERM: CAP_SYS_MODULE or signing; EEXIST: already loaded; EBUSY/EAGAIN:
// in use; ENOEXEC: built for another kernel).
package kmod
