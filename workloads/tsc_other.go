//go:build !amd64

package workloads

func rdtsc() uint64 { return 0 }

const haveRDTSC = false
