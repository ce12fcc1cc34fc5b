package concord_test

import (
	"context"
	"fmt"

	"github.com/syncord/syncord/bpf"
	"github.com/syncord/syncord/livepatch/concord"
)

// Build the concord livepatch of the built-in lockstat policy against a
// SynCord kernel's extracted headers.
func ExampleBuild() {
	b, err := bpf.LookupBuiltin("lockstat")
	if err != nil {
		panic(err)
	}
	res, err := concord.Build(context.Background(), b.Manifest,
		"linux-headers-5.4.0-stock-syncord", "output/lockstat/LivePatchGen", concord.Options{})
	if err != nil {
		fmt.Println(err != nil)
		return
	}
	fmt.Println(res.Module)
}
