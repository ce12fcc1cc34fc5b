// Package control is the SynCord control protocol: a client asks the agent
// in the guest (`syncord agent`) to run one syncord subcommand, and the agent
// streams the command's stdout and stderr back and ends with its exit status.
// The server runs each request through a Runner, which cmd/syncord wires to
// the same Run function the command line uses, so a remote command behaves
// exactly like a local one; the agent runs it in a child process of its own
// (ExecRunner: the agent's binary re-executed, in its own process group,
// killed with it on cancel), so no request can take the agent down.
//
// # Wire format (version 1)
//
// Both directions carry frames. All integers are big-endian.
//
//	offset size field
//	0      4    magic "SCRD" (0x53 0x43 0x52 0x44)
//	4      1    version, 1
//	5      1    type (see below)
//	6      2    flags (request: bit 0 = queue when a mutating command is busy)
//	8      4    request id, chosen by the client; replies carry it back
//	12     4    payload length n, at most MaxPayload (65536)
//	16     4    header check: CRC-32 (Castagnoli) of bytes 0 .. 15
//	20     n    payload
//	20+n   4    CRC-32 (Castagnoli) of the payload
//
// Frame types:
//
//	1 request  client -> agent  payload: argc uint32, then per argument a
//	                             uint32 length and its bytes (the argv of
//	                             syncord, without the program name)
//	2 cancel   client -> agent  empty; cancels the running request with that id
//	3 stdout   agent -> client  a chunk of the command's standard output
//	4 stderr   agent -> client  a chunk of the command's standard error
//	5 exit     agent -> client  int32 exit status; the last frame of a request
//	6 accepted agent -> client  empty; the first reply to a request, so a
//	                             client can tell a missing agent (on a serial
//	                             port the host socket is there without one)
//	                             from a command that prints nothing yet
//	7 keepalive client -> agent empty; sent every second by serial clients
//	                             while their request runs
//
// A connection carries one request at a time, any number one after another.
// A client that goes away cancels its request. A request that arrives while
// another runs on the same connection cancels the older one (on a serial port
// it means a new host client took over) and its exit frame is discarded by
// the client, which ignores frames carrying another request id.
//
// On a serial port the end of a host session is not a reliable signal: the
// guest learns of a host close and reopen through a control queue that is
// not ordered with the data, so the request of a new host client can be
// read before the old client's close is seen. The agent therefore ends a
// serial session on end of file only while no request runs; a running
// request is cancelled when its client sends no keepalive for
// KeepaliveTimeout (10 s by default), by a cancel frame, or by a newer
// request.
//
// On sockets (unix, vsock) a malformed frame (bad magic, version, type,
// length or checksum) closes that connection and nothing else. On a serial
// port there are no connection boundaries and stale bytes from an earlier
// host session may arrive, so the decoder resynchronises: it drops bytes
// until the magic, and after a bad frame drops one byte and scans again. The
// header check makes a false match in garbage harmless: the decoder never
// waits for a payload whose length it read from garbage.
//
// Exit statuses the agent itself produces: 2 malformed request, 75 busy (a
// mutating command runs already; the stderr frame says which and since when),
// 77 refused (the agent command, or a path outside the configured roots), 124
// per-request timeout, 70 internal error (the command crashed: one stderr
// line names the command and the panic; the Go stack goes to the agent's log,
// never to a client), 130 cancelled (while queued behind a mutating command,
// or by the client), 143 the agent is stopping (SIGTERM): the running request
// was cancelled, and its client gets a last stderr line and this exit frame
// before the connection closes (the agent waits up to 10 s for that).
//
// # Limits
//
// A socket agent serves at most 256 connections at once (--max-conns). A new
// connection beyond that closes an idle one (no request running) to make
// room: first the oldest of those that never sent a whole frame, else the
// one idle the longest; when all of them run requests the new connection is
// closed. Once the first byte of a frame has arrived, the rest of the frame
// must follow within 10 s (the frame timeout), or the connection is closed;
// a connection that sends nothing is closed after the idle timeout. The
// agent allocates a connection's read buffer only when its first byte
// arrives.
//
// # Transports and defaults
//
// Listen addresses, comma-separated on `syncord agent --listen`:
//
//	unix:///run/syncord/agent.sock  unix socket, mode 0600, a stale socket is removed
//	vsock://:5250                   vsock port DefaultVsockPort on any local CID;
//	                                connections are accepted only from the host
//	                                (CID 2) unless more CIDs are allowed
//	virtio-serial://org.syncord.agent  the virtio-serial port of that name, found
//	                                through /sys/class/virtio-ports/*/name and
//	                                opened as /dev/<vportNpM> (made with mknod from
//	                                the sysfs dev file when udev did not); the
//	                                agent keeps it open across host sessions
//	                                (closing it would discard input a new host
//	                                client has sent) and polls it while the host
//	                                side is closed
//
// The defaults are DefaultVsockPort (5250) and DefaultPortName
// ("org.syncord.agent"). The QEMU side of the serial port is
//
//	-device virtio-serial-pci -chardev socket,id=agent,path=HOST.sock,server=on,wait=off
//	-device virtserialport,chardev=agent,name=org.syncord.agent
//
// and a host client (`syncord-host guest --serial HOST.sock`) connects to that
// unix socket; Dial addresses are unix:///path, vsock://CID:PORT and
// serial:///path (the host socket of a serial port: the client resynchronises
// like the agent does).
package control
