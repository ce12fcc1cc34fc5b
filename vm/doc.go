// Package vm is the host side: the QEMU command line for a NUMA guest, a QMP
// client, and the plan that pins vCPU threads to host CPUs.
package vm
