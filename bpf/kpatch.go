package bpf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// LivepatchModule is the module the artifact's compiler produces and the
// installer inserts.
const LivepatchModule = "livepatch-concord.ko"

// ErrNoKpatchBuild is returned (wrapped) when kpatch-build is not installed.
var ErrNoKpatchBuild = errors.New("kpatch-build not found")

// KpatchOptions is the livepatch half of `syncord policy build`.
type KpatchOptions struct {
	// Patch is the kernel patch to turn into a livepatch module.
	Patch string
	// LinuxSrc is the built SynCord kernel tree (with vmlinux).
	LinuxSrc string
	// Header is the policy's .h, copied to include/linux/lock_policy.h of
	// LinuxSrc with ${NCPU} replaced, as the artifact did; "" for none.
	Header string
	NCPU   int
	// KpatchBuild is the kpatch-build binary; "" looks it up in PATH.
	KpatchBuild string
	// Log receives kpatch-build's output.
	Log io.Writer
}

// BuildLivepatch runs kpatch-build as the artifact's concord.py did and
// returns the path of <outRoot>/<policy>/LivePatchGen/livepatch-concord.ko.
func BuildLivepatch(ctx context.Context, policy, outRoot string, o KpatchOptions) (string, error) {
	kb := o.KpatchBuild
	if kb == "" {
		kb = "kpatch-build"
	}
	kbPath, err := exec.LookPath(kb)
	if err != nil {
		return "", fmt.Errorf("%w: %s is not in PATH (install kpatch-build: the Debian/Ubuntu package kpatch-build, or build it from the kpatch sources, then retry; the eBPF object was built anyway)", ErrNoKpatchBuild, kb)
	}
	if o.Patch == "" || o.LinuxSrc == "" {
		return "", errors.New("livepatch build: needs both --livepatch PATCH and --linux-src SRC")
	}
	vmlinux := filepath.Join(o.LinuxSrc, "vmlinux")
	if _, err := os.Stat(vmlinux); err != nil {
		return "", fmt.Errorf("livepatch build: %w (build the SynCord kernel in %s first: make -C %s)", err, o.LinuxSrc, o.LinuxSrc)
	}
	patch, err := os.ReadFile(o.Patch)
	if err != nil {
		return "", fmt.Errorf("livepatch build: read patch: %w", err)
	}
	dir := filepath.Join(outRoot, policy, "LivePatchGen")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// kpatch-build names the module livepatch-<patch basename>.ko.
	const patchName = "concord.patch"
	if err := os.WriteFile(filepath.Join(dir, patchName), patch, 0o644); err != nil {
		return "", err
	}
	ncpu := o.NCPU
	if ncpu <= 0 {
		ncpu = runtime.NumCPU()
	}
	if o.Header != "" {
		h, err := os.ReadFile(o.Header)
		if err != nil {
			return "", fmt.Errorf("livepatch build: read policy header: %w", err)
		}
		h = bytes.ReplaceAll(h, []byte("${NCPU}"), []byte(strconv.Itoa(ncpu)))
		if err := os.WriteFile(filepath.Join(o.LinuxSrc, "include/linux/lock_policy.h"), h, 0o644); err != nil {
			return "", fmt.Errorf("livepatch build: install policy header in the kernel tree: %w", err)
		}
	}
	cmd := exec.CommandContext(ctx, kbPath, "-j", strconv.Itoa(runtime.NumCPU()), "-t", "vmlinux",
		"-s", o.LinuxSrc, "--vmlinux", vmlinux, patchName)
	cmd.Dir = dir
	if o.Log != nil {
		cmd.Stdout, cmd.Stderr = o.Log, o.Log
	}
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("livepatch build: %s: %w (its log is in ~/.kpatch/build.log)", strings.Join(cmd.Args, " "), err)
	}
	ko := filepath.Join(dir, LivepatchModule)
	if _, err := os.Stat(ko); err != nil {
		return "", fmt.Errorf("livepatch build: kpatch-build succeeded but %s is missing: %w", ko, err)
	}
	return ko, nil
}
