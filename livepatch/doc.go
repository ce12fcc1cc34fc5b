// Package livepatch reads and drives /sys/kernel/livepatch: the patches that
// are loaded, their enabled and transition state, disabling a patch and
// waiting for its transition, nudging stuck tasks through signal.
package livepatch
