package bpf_test

import (
	"fmt"
	"log"

	"github.com/syncord/syncord/bpf"
)

// Install the built-in lockstat policy's programs and map at the paths the
// livepatch module looks up, and remove them again.
func ExampleLoadPolicy() {
	b, err := bpf.LookupBuiltin("lockstat")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := bpf.EnsureBPFFS(bpf.DefaultBPFFS); err != nil {
		log.Fatal(err)
	}
	l, err := bpf.LoadPolicy(b.Policy(nil), bpf.LoadOptions{})
	if err != nil {
		// On a stock kernel: "... is not a SynCord kernel ...".
		log.Fatalf("%+v", err)
	}
	defer l.Close()
	paths, err := l.Pin(bpf.DefaultBPFFS)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(paths)
	// ... insert livepatch-concord.ko, profile, remove it ...
	if err := bpf.Unpin(paths); err != nil {
		log.Fatal(err)
	}
}

// Set amp's load-time constants.
func ExampleBuiltin_Policy() {
	b, err := bpf.LookupBuiltin("amp")
	if err != nil {
		log.Fatal(err)
	}
	p := b.Policy(map[string]uint64{"cores_per_socket": 4})
	fmt.Println(p.Name, p.PinPaths("/sys/fs/bpf"), b.Manifest.ParamDefaults()["patience"])
	// Output: amp [/sys/fs/bpf/amp_cont_lock] 22000000
}
