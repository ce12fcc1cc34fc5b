//go:build !amd64

package xdir

func rdtsc() uint64 { return 0 }

const haveRDTSC = false
