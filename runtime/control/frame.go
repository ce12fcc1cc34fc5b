package control

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"syscall"

	"golang.org/x/sys/unix"
)

// Protocol constants; see the package documentation for the layout.
const (
	Magic      = "SCRD"
	Version    = 1
	HeaderSize = 20
	TrailerLen = 4
	// MaxPayload bounds every frame's payload, so a request is at most
	// MaxPayload bytes of argv.
	MaxPayload = 64 << 10
	// MaxArgs bounds the number of arguments of one request.
	MaxArgs = 4096
)

// Type is a frame type.
type Type uint8

// Frame types.
const (
	TypeRequest Type = 1
	TypeCancel  Type = 2
	TypeStdout  Type = 3
	TypeStderr  Type = 4
	TypeExit    Type = 5
	// TypeAccepted is the agent's first reply to a request: it tells a
	// client that the agent is there before the command says anything.
	TypeAccepted Type = 6
	// TypeKeepalive is sent by serial clients every second while they wait
	// for a reply: on a serial port the agent cannot tell reliably when a
	// host client has gone, so it cancels a request whose client fell
	// silent.
	TypeKeepalive Type = 7
)

func (t Type) String() string {
	switch t {
	case TypeRequest:
		return "request"
	case TypeCancel:
		return "cancel"
	case TypeStdout:
		return "stdout"
	case TypeStderr:
		return "stderr"
	case TypeExit:
		return "exit"
	case TypeAccepted:
		return "accepted"
	case TypeKeepalive:
		return "keepalive"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

func (t Type) valid() bool { return t >= TypeRequest && t <= TypeKeepalive }

// FlagQueue on a request asks the agent to wait for a busy mutating command
// to finish instead of refusing.
const FlagQueue uint16 = 1 << 0

// Frame is one protocol message.
type Frame struct {
	Type    Type
	Flags   uint16
	ID      uint32
	Payload []byte
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrMalformed is wrapped by every decoding error caused by the bytes on the
// wire (as opposed to the transport failing).
var ErrMalformed = errors.New("malformed frame")

// AppendFrame appends the encoding of f to b.
func AppendFrame(b []byte, f Frame) ([]byte, error) {
	if !f.Type.valid() {
		return b, fmt.Errorf("encode frame: unknown type %d", f.Type)
	}
	if len(f.Payload) > MaxPayload {
		return b, fmt.Errorf("encode %s frame: payload of %d bytes exceeds %d", f.Type, len(f.Payload), MaxPayload)
	}
	start := len(b)
	b = append(b, Magic...)
	b = append(b, Version, byte(f.Type))
	b = binary.BigEndian.AppendUint16(b, f.Flags)
	b = binary.BigEndian.AppendUint32(b, f.ID)
	b = binary.BigEndian.AppendUint32(b, uint32(len(f.Payload)))
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
	b = append(b, f.Payload...)
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(f.Payload, castagnoli))
	return b, nil
}

// EncodeArgs encodes argv as a request payload.
func EncodeArgs(args []string) ([]byte, error) {
	if len(args) > MaxArgs {
		return nil, fmt.Errorf("encode request: %d arguments exceed %d", len(args), MaxArgs)
	}
	n := 4
	for _, a := range args {
		n += 4 + len(a)
	}
	if n > MaxPayload {
		return nil, fmt.Errorf("encode request: %d bytes of arguments exceed the request limit of %d", n, MaxPayload)
	}
	b := make([]byte, 0, n)
	b = binary.BigEndian.AppendUint32(b, uint32(len(args)))
	for _, a := range args {
		b = binary.BigEndian.AppendUint32(b, uint32(len(a)))
		b = append(b, a...)
	}
	return b, nil
}

// DecodeArgs decodes a request payload.
func DecodeArgs(p []byte) ([]string, error) {
	if len(p) < 4 {
		return nil, fmt.Errorf("decode request: %w: %d bytes, want at least 4", ErrMalformed, len(p))
	}
	argc := binary.BigEndian.Uint32(p)
	if argc > MaxArgs {
		return nil, fmt.Errorf("decode request: %w: %d arguments exceed %d", ErrMalformed, argc, MaxArgs)
	}
	p = p[4:]
	args := make([]string, 0, argc)
	for i := uint32(0); i < argc; i++ {
		if len(p) < 4 {
			return nil, fmt.Errorf("decode request: %w: argument %d truncated", ErrMalformed, i)
		}
		n := binary.BigEndian.Uint32(p)
		p = p[4:]
		if uint64(n) > uint64(len(p)) {
			return nil, fmt.Errorf("decode request: %w: argument %d of %d bytes, %d left", ErrMalformed, i, n, len(p))
		}
		args = append(args, string(p[:n]))
		p = p[n:]
	}
	if len(p) != 0 {
		return nil, fmt.Errorf("decode request: %w: %d trailing bytes", ErrMalformed, len(p))
	}
	return args, nil
}

// EncodeExit encodes an exit status payload.
func EncodeExit(code int) []byte {
	return binary.BigEndian.AppendUint32(nil, uint32(int32(code)))
}

// DecodeExit decodes an exit status payload.
func DecodeExit(p []byte) (int, error) {
	if len(p) != 4 {
		return 0, fmt.Errorf("decode exit: %w: %d bytes, want 4", ErrMalformed, len(p))
	}
	return int(int32(binary.BigEndian.Uint32(p))), nil
}

// Decoder reads frames from a stream. It allocates as it goes: nothing
// until the first byte arrives (Wait), then a small read buffer, and a
// payload buffer only as large as the largest payload seen; in Resync mode
// a buffer for a whole frame, since a frame that fails its checks must be
// re-scanned. An agent holding many idle connections holds little memory.
type Decoder struct {
	src io.Reader
	r   *bufio.Reader
	// Resync makes the decoder skip garbage instead of failing: bytes before
	// the magic are dropped, and a frame that fails its checks is dropped by
	// one byte and the scan starts again. Skipped counts the dropped bytes.
	Resync  bool
	Skipped int64
	buf     []byte
}

// readBufSize is the read buffer of a decoder outside Resync mode: headers
// and small payloads; larger payloads are read straight into the payload
// buffer.
const readBufSize = 4 << 10

// NewDecoder returns a decoder reading from r.
func NewDecoder(r io.Reader) *Decoder {
	return &Decoder{src: r}
}

// reader returns the buffered reader, made on first use.
func (d *Decoder) reader() *bufio.Reader {
	size := readBufSize
	if d.Resync {
		size = HeaderSize + MaxPayload + TrailerLen
	}
	if d.r == nil {
		d.r = bufio.NewReaderSize(d.src, size)
	} else if d.r.Size() < size {
		// Resync was set after reading began: keep what is buffered.
		d.r = bufio.NewReaderSize(d.r, size)
	}
	return d.r
}

// Wait blocks until the next frame's first byte has arrived (or the stream
// ends). On a socket it waits for the socket to be readable (recv with
// MSG_PEEK) before it allocates the read buffer, so a connection that sends
// nothing costs no buffer. A server calls it before Decode to tell an idle
// connection from one that started a frame, so that it can bound how long
// a frame may take to arrive.
func (d *Decoder) Wait() error {
	if d.r == nil {
		if sc, ok := d.src.(syscall.Conn); ok {
			if rc, err := sc.SyscallConn(); err == nil {
				err := rc.Read(func(fd uintptr) bool {
					var b [1]byte
					_, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
					return err != unix.EAGAIN && err != unix.EINTR
				})
				if err != nil {
					return err // closed, or a read deadline
				}
			}
		}
	}
	_, err := d.reader().Peek(1)
	return err
}

// Decode reads the next frame. The payload is valid until the next call.
// Errors from the bytes on the wire wrap ErrMalformed; a transport error or
// end of stream is returned as it is (io.EOF, or io.ErrUnexpectedEOF
// inside a frame).
func (d *Decoder) Decode() (Frame, error) {
	d.reader()
	for {
		f, err := d.try()
		if err == nil || !d.Resync || !errors.Is(err, ErrMalformed) {
			return f, err
		}
		// Drop one byte and look for the next magic.
		if _, err := d.r.Discard(1); err != nil {
			return Frame{}, err
		}
		d.Skipped++
	}
}

// try decodes one frame at the current position without consuming it when
// it is malformed (so a resync can step one byte), except for garbage before
// the magic in resync mode, which it skips.
func (d *Decoder) try() (Frame, error) {
	if d.Resync {
		if err := d.seekMagic(); err != nil {
			return Frame{}, err
		}
	}
	// Check the magic as soon as its bytes arrive, so garbage shorter than
	// a header fails at once instead of waiting for more.
	for i := 1; i <= len(Magic); i++ {
		b, err := d.r.Peek(i)
		if err != nil {
			if len(b) == 0 {
				return Frame{}, err
			}
			break // handled below
		}
		if b[i-1] != Magic[i-1] {
			return Frame{}, fmt.Errorf("decode frame: %w: bad magic % x", ErrMalformed, b)
		}
	}
	h, err := d.r.Peek(HeaderSize)
	if err != nil {
		if len(h) > 0 && err == io.EOF {
			if !d.Resync && string(h[:min(len(h), 4)]) != Magic[:min(len(h), 4)] {
				return Frame{}, fmt.Errorf("decode frame: %w: bad magic % x", ErrMalformed, h[:min(len(h), 4)])
			}
			return Frame{}, io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	if string(h[:4]) != Magic {
		return Frame{}, fmt.Errorf("decode frame: %w: bad magic % x", ErrMalformed, h[:4])
	}
	if h[4] != Version {
		return Frame{}, fmt.Errorf("decode frame: %w: version %d, this agent speaks %d (update syncord or syncord-host)", ErrMalformed, h[4], Version)
	}
	if got, want := crc32.Checksum(h[:16], castagnoli), binary.BigEndian.Uint32(h[16:]); got != want {
		return Frame{}, fmt.Errorf("decode frame: %w: header checksum %08x, want %08x", ErrMalformed, got, want)
	}
	t := Type(h[5])
	if !t.valid() {
		return Frame{}, fmt.Errorf("decode frame: %w: unknown type %d", ErrMalformed, h[5])
	}
	flags := binary.BigEndian.Uint16(h[6:])
	id := binary.BigEndian.Uint32(h[8:])
	n := binary.BigEndian.Uint32(h[12:])
	if n > MaxPayload {
		return Frame{}, fmt.Errorf("decode %s frame: %w: payload of %d bytes exceeds %d", t, ErrMalformed, n, MaxPayload)
	}
	total := HeaderSize + int(n) + TrailerLen
	if !d.Resync {
		// A bad frame ends the connection, so the header can be consumed
		// now and the payload read into the payload buffer, whatever the
		// size of the read buffer.
		if _, err := d.r.Discard(HeaderSize); err != nil {
			return Frame{}, err
		}
		if cap(d.buf) < int(n)+TrailerLen {
			d.buf = make([]byte, int(n)+TrailerLen)
		}
		d.buf = d.buf[:int(n)+TrailerLen]
		if _, err := io.ReadFull(d.r, d.buf); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return Frame{}, err
		}
		want := binary.BigEndian.Uint32(d.buf[n:])
		if got := crc32.Checksum(d.buf[:n], castagnoli); got != want {
			return Frame{}, fmt.Errorf("decode %s frame: %w: checksum %08x, want %08x", t, ErrMalformed, got, want)
		}
		return Frame{Type: t, Flags: flags, ID: id, Payload: d.buf[:n]}, nil
	}
	all, err := d.r.Peek(total)
	if err != nil {
		if err == io.EOF {
			return Frame{}, io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	want := binary.BigEndian.Uint32(all[total-TrailerLen:])
	if got := crc32.Checksum(all[HeaderSize:total-TrailerLen], castagnoli); got != want {
		return Frame{}, fmt.Errorf("decode %s frame: %w: checksum %08x, want %08x", t, ErrMalformed, got, want)
	}
	d.buf = append(d.buf[:0], all[HeaderSize:HeaderSize+int(n)]...)
	if _, err := d.r.Discard(total); err != nil {
		return Frame{}, err
	}
	return Frame{Type: t, Flags: flags, ID: id, Payload: d.buf}, nil
}

// seekMagic drops bytes until the buffered input starts with the magic.
func (d *Decoder) seekMagic() error {
	for {
		b, err := d.r.Peek(len(Magic))
		if err != nil {
			// Fewer than 4 bytes until the end: skip what cannot be a frame.
			if err == io.EOF && len(b) > 0 {
				d.Skipped += int64(len(b))
				d.r.Discard(len(b))
			}
			return err
		}
		if string(b) == Magic {
			return nil
		}
		// Skip to the next possible start of the magic.
		skip := 1
		for skip < len(Magic) && b[skip] != Magic[0] {
			skip++
		}
		d.r.Discard(skip)
		d.Skipped += int64(skip)
	}
}
