package vm

import (
	"net"
	"strings"
	"testing"
)

// Whatever the input, an accepted tcp monitor address is on loopback.
func FuzzParseMonitorAddr(f *testing.F) {
	for _, s := range []string{"/run/q.sock", "unix:/q", "tcp:127.0.0.1:5555", "tcp:[::1]:1", "tcp:localhost:9",
		"tcp:10.0.0.1:5555", "tcp:[::ffff:10.0.0.1]:5", "tcp:127.0.0.1.nip.io:5", "tcp:0:5", "tcp:[::]:5", "tcp::5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		network, a, err := ParseMonitorAddr(addr)
		if err != nil {
			return
		}
		switch network {
		case "unix":
			if a == "" {
				t.Fatalf("%q: empty unix path accepted", addr)
			}
		case "tcp":
			host, _, err := net.SplitHostPort(a)
			if err != nil {
				t.Fatalf("%q: accepted unsplittable %q", addr, a)
			}
			if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
				t.Fatalf("%q: accepted non-loopback host %q", addr, host)
			}
		default:
			t.Fatalf("%q: network %q", addr, network)
		}
	})
}

func FuzzParseFreq(f *testing.F) {
	for _, s := range []string{"2200000", "2.2GHz", "1500MHz", "1e3kHz", "0x10", "-1", "inf", "1e400"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		khz, err := ParseFreq(s)
		if err != nil {
			return
		}
		if khz < 1 || khz > 1e9 {
			t.Fatalf("ParseFreq(%q) = %d kHz, outside 1 kHz .. 1 THz", s, khz)
		}
		if strings.TrimSpace(s) == "" {
			t.Fatalf("ParseFreq(%q) accepted blank input", s)
		}
	})
}
