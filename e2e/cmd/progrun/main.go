// Command progrun runs a pinned BPF program N times with BPF_PROG_TEST_RUN
// (a zeroed 64-byte packet), so an e2e test can check that the kernel's run
// counter of the program (bpf_prog_info run_cnt) grows by exactly N while
// kernel.bpf_stats_enabled is on. It works for program types with a
// test_run (socket filters), not for lock policy programs. The e2e tests
// copy it into the guest; it is not installed anywhere.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"

	"github.com/cilium/ebpf"
)

func main() {
	flag.Usage = func() { fmt.Fprintln(os.Stderr, "usage: progrun PINNED-PROGRAM N") }
	flag.Parse()
	if flag.NArg() != 2 {
		flag.Usage()
		os.Exit(2)
	}
	n, err := strconv.ParseUint(flag.Arg(1), 10, 32)
	if err != nil || n == 0 {
		fmt.Fprintf(os.Stderr, "progrun: bad count %q (want a positive integer)\n", flag.Arg(1))
		os.Exit(2)
	}
	prog, err := ebpf.LoadPinnedProgram(flag.Arg(0), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "progrun:", err)
		os.Exit(1)
	}
	defer prog.Close()
	if _, err := prog.Run(&ebpf.RunOptions{Data: make([]byte, 64), Repeat: uint32(n)}); err != nil {
		fmt.Fprintf(os.Stderr, "progrun: test run of %s: %v\n", flag.Arg(0), err)
		os.Exit(1)
	}
}
