// Package bpf loads SynCord lock policies (eBPF objects whose lock_* sections
// become BPF_PROG_TYPE_LOCK_POLICY programs, type 26 on SynCord kernels) and
// pins them at the paths the livepatch module looks up, reads the lockstat
// map, and holds the built-in policy sources and compiled objects and the
// portable contention profiler for stock kernels.
//
// # Specification and live handle
//
// A *Policy says what to load: the ELF object (Object bytes or ObjectPath),
// the Programs (ELF section, optional function, bpffs pin name, hook), the
// Map to pin (normally hash_map) and Params (values of the object's
// `volatile const` globals, rewritten before loading). Policies come from:
//
//   - LookupBuiltin(name).Policy(params): the built-in policies (Builtins,
//     BuiltinNames), compiled into bpf/policies/<name>/ and embedded;
//   - (*Manifest).Policy(dir, params) for objects built by Build (ReadManifest
//     reads output/<p>/eBPFGen/manifest.json);
//   - PolicyFromSource(srcDir, obj) for objects without a manifest (the
//     artifact's concord.py output): pins are the .pfile basenames;
//   - OpenPolicy(arg, obj, params), which tries all of the above.
//
// Pin names are read, never guessed.
//
// LoadPolicy(p, LoadOptions{Kernel: info}) refuses a policy with lock_*
// programs on a kernel that is not a SynCord kernel (CheckKernel, error
// wrapping ErrNotSynCordKernel and ebpf.ErrNotSupported) before anything is
// loaded, raises RLIMIT_MEMLOCK (5.4 kernels charge BPF memory to it), gives
// lock_* sections LockPolicyProgramType and loads the rest (kprobe/, socket,
// ...) with their usual types, so stock-kernel test policies load too.
// Verifier failures wrap *ebpf.VerifierError: print them with %+v or
// VerifierLog. The result is a *Loaded: (*Loaded).Pin(dir) pins each program
// at <dir>/<pin> and the map at <dir>/hash_map, refuses to replace a file
// (ErrPinExists) and removes its own pins on failure; (*Loaded).Close drops
// the file descriptors (pins stay); Unpin(paths) removes pins and is
// idempotent. EnsureBPFFS(dir) mounts a bpffs (statfs BPF_FS_MAGIC) where
// there is none and reports whether it did.
//
// # Building policies
//
// ParseSource reads a policy directory in the artifact's convention (*.pfile,
// at most one *.map and one *.h), (*Source).Check applies its rules, GenerateC
// and Build compile it with clang -target bpf -O2 (no BTF: SynCord kernels
// have none) against syncord's own headers (policies/include), whose helper
// table has the SynCord ids (bpf_back_off=1, upstream ids + 1), and write
// <out>/<p>/eBPFGen/<p>_kern.o and manifest.json. The livepatch half is
// package livepatch/concord (syncord's own module, built with kbuild). `go generate ./bpf/` rebuilds the
// built-in objects; TestBuiltinsUpToDate checks they match their sources.
//
// # lockstat
//
// OpenLockstatMap opens the pinned map (BPF_OBJ_GET) and checks its layout
// (hash, u64 key, 11 u64 value); ReadLockStats reads it with
// BPF_MAP_LOOKUP_BATCH where the kernel has it and BPF_MAP_GET_NEXT_KEY
// otherwise; WriteLockstatTable prints the artifact's exact table.
package bpf
