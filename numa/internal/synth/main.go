// Command synth writes the synthesized and derived sysfs fixtures of
// package numa (see package numa/internal/fixtures):
//
//	go run ./numa/internal/synth -o numa/testdata
//
// It reads numa/testdata/host (captured by numa/internal/capture) for the
// derived trees.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/syncord/syncord/numa/internal/fixtures"
)

func main() {
	out := flag.String("o", "numa/testdata", "testdata `directory` of package numa")
	flag.Parse()
	if flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := fixtures.WriteAll(*out); err != nil {
		fmt.Fprintf(os.Stderr, "synth: %v\n", err)
		os.Exit(1)
	}
}
