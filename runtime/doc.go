// Package runtime is the agent: policy install, uninstall and status with
// rollback, the state recorded under /run/syncord, and the control protocol
// (framed requests that run a syncord subcommand, streamed replies) with its
// transports: unix sockets, vsock and virtio-serial ports.
package runtime
