package control

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"reflect"
	"strings"
	"testing"
)

func mustFrame(t testing.TB, f Frame) []byte {
	t.Helper()
	b, err := AppendFrame(nil, f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFrameRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte("x"), MaxPayload)
	for _, tc := range []struct {
		name string
		f    Frame
	}{
		{"request", Frame{Type: TypeRequest, Flags: FlagQueue, ID: 7, Payload: []byte{0, 0, 0, 0}}},
		{"cancel empty", Frame{Type: TypeCancel, ID: 0xffffffff}},
		{"stdout max payload", Frame{Type: TypeStdout, ID: 1, Payload: big}},
		{"stderr binary", Frame{Type: TypeStderr, ID: 2, Payload: []byte{0, 'S', 'C', 'R', 'D', 0xff}}},
		{"exit", Frame{Type: TypeExit, ID: 3, Payload: EncodeExit(-1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := mustFrame(t, tc.f)
			if len(b) != HeaderSize+len(tc.f.Payload)+TrailerLen {
				t.Fatalf("encoded %d bytes, want %d", len(b), HeaderSize+len(tc.f.Payload)+TrailerLen)
			}
			got, err := NewDecoder(bytes.NewReader(b)).Decode()
			if err != nil {
				t.Fatal(err)
			}
			if got.Type != tc.f.Type || got.Flags != tc.f.Flags || got.ID != tc.f.ID || !bytes.Equal(got.Payload, tc.f.Payload) {
				t.Fatalf("decoded %v %x %d %d bytes, want %v %x %d %d bytes", got.Type, got.Flags, got.ID, len(got.Payload), tc.f.Type, tc.f.Flags, tc.f.ID, len(tc.f.Payload))
			}
		})
	}
}

// TestFrameLayout pins the wire format documented in the package doc.
func TestFrameLayout(t *testing.T) {
	b := mustFrame(t, Frame{Type: TypeExit, Flags: 0x0102, ID: 0x0a0b0c0d, Payload: EncodeExit(3)})
	want := []byte{'S', 'C', 'R', 'D', 1, 5, 1, 2, 0x0a, 0x0b, 0x0c, 0x0d, 0, 0, 0, 4}
	if !bytes.Equal(b[:16], want) {
		t.Fatalf("header % x, want % x", b[:16], want)
	}
	if !bytes.Equal(b[20:24], []byte{0, 0, 0, 3}) {
		t.Fatalf("payload % x, want exit status 3", b[20:24])
	}
}

func TestEncodeErrors(t *testing.T) {
	if _, err := AppendFrame(nil, Frame{Type: 9}); err == nil {
		t.Error("unknown type encoded")
	}
	if _, err := AppendFrame(nil, Frame{Type: TypeStdout, Payload: make([]byte, MaxPayload+1)}); err == nil {
		t.Error("oversized payload encoded")
	}
	if _, err := EncodeArgs([]string{strings.Repeat("a", MaxPayload)}); err == nil {
		t.Error("oversized request encoded")
	}
	if _, err := EncodeArgs(make([]string, MaxArgs+1)); err == nil {
		t.Error("too many arguments encoded")
	}
}

func TestArgsRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"none", []string{}},
		{"topology", []string{"topology", "--json"}},
		{"empty and unicode", []string{"", "bench", "wïll-it-scale", "a b\x00c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := EncodeArgs(tc.args)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeArgs(p)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.args) {
				t.Fatalf("got %q, want %q", got, tc.args)
			}
		})
	}
}

func TestDecodeArgsMalformed(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    []byte
	}{
		{"short", []byte{0, 0}},
		{"too many", []byte{0xff, 0xff, 0xff, 0xff}},
		{"truncated length", []byte{0, 0, 0, 1, 0, 0}},
		{"length past end", []byte{0, 0, 0, 1, 0, 0, 0, 9, 'a'}},
		{"trailing", []byte{0, 0, 0, 0, 'x'}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeArgs(tc.p); !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestDecodeMalformed(t *testing.T) {
	good := mustFrame(t, Frame{Type: TypeStdout, ID: 1, Payload: []byte("hello")})
	mod := func(i int, v byte) []byte {
		b := bytes.Clone(good)
		b[i] = v
		return b
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"bad magic", mod(0, 'X'), ErrMalformed},
		{"bad version", mod(4, 2), ErrMalformed},
		{"bad header checksum", mod(9, 9), ErrMalformed},
		{"bad payload checksum", mod(21, 'E'), ErrMalformed},
		{"bad trailer", mod(len(good)-1, good[len(good)-1]^1), ErrMalformed},
		{"truncated header", good[:10], io.ErrUnexpectedEOF},
		{"truncated payload", good[:22], io.ErrUnexpectedEOF},
		{"garbage short", []byte("xy"), ErrMalformed},
		{"empty", nil, io.EOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewDecoder(bytes.NewReader(tc.in)).Decode()
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestDecodeHugeLengthRejected checks that a header claiming a payload over
// the limit is refused before anything is read, even with a valid header
// checksum.
func TestDecodeHugeLengthRejected(t *testing.T) {
	b := mustFrame(t, Frame{Type: TypeStdout, ID: 1})
	b[12], b[13], b[14], b[15] = 0, 0x10, 0, 1 // 1 MiB + 1
	b = append(b[:16], crcBytes(b[:16])...)
	_, err := NewDecoder(bytes.NewReader(b)).Decode()
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("err = %v, want a payload limit error", err)
	}
}

func crcBytes(b []byte) []byte {
	return binary.BigEndian.AppendUint32(nil, crc32.Checksum(b, castagnoli))
}

func TestDecodeResync(t *testing.T) {
	f1 := mustFrame(t, Frame{Type: TypeRequest, ID: 1, Payload: mustArgs(t, "topology")})
	f2 := mustFrame(t, Frame{Type: TypeCancel, ID: 2})
	// A fake header: magic, version, type, a length of 60000 but a wrong
	// header check. A decoder trusting the length would swallow f2.
	fake := []byte{'S', 'C', 'R', 'D', 1, 3, 0, 0, 0, 0, 0, 1, 0, 0, 0xea, 0x60, 1, 2, 3, 4}
	for _, tc := range []struct {
		name    string
		in      []byte
		wantIDs []uint32
	}{
		{"leading garbage", cat([]byte("\x00\xffnoise SCR SC"), f1, f2), []uint32{1, 2}},
		{"garbage between", cat(f1, []byte("SCRDSCRD\x01"), f2), []uint32{1, 2}},
		{"fake header with long length", cat(fake, f1, f2), []uint32{1, 2}},
		{"truncated frame then frame", cat(f1[:len(f1)-3], f2), []uint32{2}},
		{"corrupt payload then frame", cat(flip(f1, 22), f2), []uint32{2}},
		{"trailing garbage", cat(f1, []byte("SC")), []uint32{1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder(bytes.NewReader(tc.in))
			d.Resync = true
			var ids []uint32
			for {
				f, err := d.Decode()
				if err != nil {
					if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
						t.Fatalf("decode: %v", err)
					}
					break
				}
				ids = append(ids, f.ID)
			}
			if !reflect.DeepEqual(ids, tc.wantIDs) {
				t.Fatalf("decoded ids %v, want %v (skipped %d bytes)", ids, tc.wantIDs, d.Skipped)
			}
		})
	}
}

func mustArgs(t testing.TB, args ...string) []byte {
	p, err := EncodeArgs(args)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x40
	return c
}

// FuzzDecode feeds arbitrary bytes to the decoder in both modes: it must
// never panic, never return a payload over the limit, and every frame it
// returns must encode back to the bytes it came from.
func FuzzDecode(f *testing.F) {
	f.Add(mustFrame(f, Frame{Type: TypeRequest, ID: 1, Payload: mustArgs(f, "topology", "--json")}))
	f.Add(cat([]byte("garbage"), mustFrame(f, Frame{Type: TypeExit, ID: 9, Payload: EncodeExit(0)})))
	f.Add([]byte("SCRD\x01\x01\x00\x00\x00\x00\x00\x01\xff\xff\xff\xff"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, resync := range []bool{false, true} {
			d := NewDecoder(bytes.NewReader(in))
			d.Resync = resync
			for i := 0; i < len(in)+1; i++ {
				fr, err := d.Decode()
				if err != nil {
					if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrMalformed) {
						t.Fatalf("unexpected error kind: %v", err)
					}
					if resync && errors.Is(err, ErrMalformed) {
						t.Fatalf("resync decoder returned %v", err)
					}
					break
				}
				if len(fr.Payload) > MaxPayload {
					t.Fatalf("payload of %d bytes", len(fr.Payload))
				}
				enc, err := AppendFrame(nil, fr)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Contains(in, enc) {
					t.Fatalf("decoded frame does not re-encode to input bytes")
				}
				if fr.Type == TypeRequest {
					DecodeArgs(fr.Payload) // must not panic
				}
			}
		}
	})
}
