// Command capture copies the sysfs files the numa topology reader uses into a
// fixture tree:
//
//	go run ./numa/internal/capture -root /sys -o numa/testdata/host
//
// It replaces OUT/devices and keeps OUT/README.md. The same capture runs in
// the e2e VM as `syncord topology --capture DIR` (or `-` for JSON on stdout).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/syncord/syncord/numa"
)

func main() {
	root := flag.String("root", numa.DefaultRoot, "sysfs `root` to capture from")
	out := flag.String("o", "", "fixture `directory` to write (required)")
	flag.Parse()
	if *out == "" || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	fs, err := numa.NewFS(*root)
	if err == nil {
		err = fs.Capture(*out)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "capture: %v\n", err)
		os.Exit(1)
	}
}
