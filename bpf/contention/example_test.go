package contention_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/syncord/syncord/bpf/contention"
	"github.com/syncord/syncord/internal/pseudofs"
	"github.com/syncord/syncord/kernel"
)

// Profile every lock for five seconds and print the ten with the most
// wait time as the SynCord lockstat table, named from kallsyms, with
// their top three call sites.
func ExampleRun() {
	if err := contention.Check(pseudofs.DefaultRoots()); err != nil {
		fmt.Println(err) // e.g. a SynCord 5.4 kernel: use the lockstat policy
		return
	}
	syms, err := kernel.NewDefaultFS().Kallsyms()
	if err != nil {
		fmt.Println(err)
		return
	}
	err = contention.Run(context.Background(), contention.Options{Callers: true}, 5*time.Second, 0,
		func(p *contention.Period) error {
			r := contention.NewReport(p, syms, contention.ReportOptions{Symbols: true, Top: 10, Callers: 3})
			return r.WriteTable(os.Stdout, true)
		})
	if err != nil {
		fmt.Println(err)
	}
}

// Only writers of rwsems, in one process.
func ExampleParseTypes() {
	allowed, err := contention.ParseTypes("rwsem:W")
	if err != nil {
		panic(err)
	}
	opts := contention.Options{PID: 1234, AllowedFlags: allowed}
	fmt.Printf("%#x\n", opts.AllowedFlags)
	// Output: 0x10
}
