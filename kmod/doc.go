// Package kmod inserts and removes kernel modules with finit_module(2) and
// delete_module(2) and reads /proc/modules, turning errno values into advice.
package kmod
