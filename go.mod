module github.com/syncord/syncord

go 1.26.8

require (
	github.com/cilium/ebpf v0.22.0
	github.com/mdlayher/vsock v1.2.1
	golang.org/x/sys v0.43.0
)

require (
	github.com/mdlayher/socket v0.5.1 // indirect
	golang.org/x/net v0.48.0 // indirect
	golang.org/x/sync v0.20.0 // indirect
)

tool github.com/cilium/ebpf/cmd/bpf2go
