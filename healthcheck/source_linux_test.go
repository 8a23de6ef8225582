package healthcheck

import (
	"encoding/binary"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Every address of 127.0.0.0/8 is this host's on Linux, so the tests send from 127.0.0.2 and
// 127.0.0.3 without configuring anything.
var (
	srcAllowed = netip.MustParseAddr("127.0.0.2")
	srcOther   = netip.MustParseAddr("127.0.0.3")
)

// listenOnlyFrom listens for TCP on ip where the kernel completes handshakes only with peer:
// a socket filter on the listening socket drops every other SYN, so a connection from
// anywhere else times out as it would behind a firewall. (Checking the peer after Accept is
// too late for a TCP probe, which passes once the handshake is done.)
func listenOnlyFrom(t *testing.T, ip string, peer netip.Addr) net.Listener {
	t.Helper()
	const skfNetOff = -0x100000    // classic BPF: offsets from the network header (SKF_NET_OFF)
	var off int32 = skfNetOff + 12 // the IPv4 source address
	raw, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: uint32(off), Size: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: binary.BigEndian.Uint32(peer.AsSlice()), SkipFalse: 1},
		bpf.RetConstant{Val: 0xffff},
		bpf.RetConstant{Val: 0},
	})
	if err != nil {
		t.Fatal(err)
	}
	filter := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		filter[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	prog := &unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		if cerr := c.Control(func(fd uintptr) {
			err = unix.SetsockoptSockFprog(int(fd), unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, prog)
		}); cerr != nil {
			return cerr
		}
		return err
	}}
	ln, err := lc.Listen(t.Context(), "tcp4", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if got := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr(); got != peer {
				t.Errorf("the filter let %s through", got)
			}
			c.Close()
		}
	}()
	return ln
}

func TestSourceTCP(t *testing.T) {
	ln := listenOnlyFrom(t, "127.0.43.1", srcAllowed)
	tmpl := func(src netip.Addr) *Template {
		return &Template{Protocol: TCP, Port: ln.Addr().(*net.TCPAddr).Port, Source: src, Interval: time.Minute, Timeout: 300 * time.Millisecond, Fall: 1, Rise: 1}
	}
	if res, _, msg := firstVerdict(t, "127.0.43.1", tmpl(srcAllowed)); res != ResultOK {
		t.Fatalf("from %s: %s %s", srcAllowed, res, msg)
	}
	if res, _, msg := firstVerdict(t, "127.0.43.1", tmpl(srcOther)); res != ResultTimeout {
		t.Fatalf("from %s: %s %s; want a timeout", srcOther, res, msg)
	}
	if res, _, msg := firstVerdict(t, "127.0.43.1", tmpl(netip.Addr{})); res != ResultTimeout {
		t.Fatalf("without a source (127.0.0.1): %s %s; want a timeout", res, msg)
	}
}

func TestSourceHTTP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.43.2:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err != nil || ap.Addr() != srcAllowed {
			http.Error(w, "not from "+srcAllowed.String(), http.StatusForbidden)
		}
	})}
	go srv.Serve(ln)
	defer srv.Close()
	tmpl := func(src netip.Addr) *Template {
		return &Template{Protocol: HTTP, Port: ln.Addr().(*net.TCPAddr).Port, Source: src, Interval: time.Minute, Timeout: 2 * time.Second, Fall: 1, Rise: 1}
	}
	if res, _, msg := firstVerdict(t, "127.0.43.2", tmpl(srcAllowed)); res != ResultOK {
		t.Fatalf("from %s: %s %s", srcAllowed, res, msg)
	}
	if res, _, msg := firstVerdict(t, "127.0.43.2", tmpl(srcOther)); res != ResultStatus || !strings.Contains(msg, "403") {
		t.Fatalf("from %s: %s %s; want HTTP 403", srcOther, res, msg)
	}
}

// A source of the other family than the target, or one this host does not have, is a probe
// error that says so, for every protocol.
func TestSourceErrors(t *testing.T) {
	cases := []struct {
		name, addr, src string
		want            []string
	}{
		{"IPv4 source, IPv6 target", "::1", "127.0.0.2", []string{"source 127.0.0.2 is IPv4", "target ::1 is IPv6"}},
		{"IPv6 source, IPv4 target", "127.0.0.1", "::1", []string{"source ::1 is IPv6", "target 127.0.0.1 is IPv4"}},
		{"not this host's", "127.0.0.1", "192.0.2.1", []string{"source 192.0.2.1 is not an address of this host"}},
	}
	protocols := []Protocol{HTTP, HTTPS, TCP}
	if icmpAllowed() {
		protocols = append(protocols, ICMP)
	}
	for _, c := range cases {
		for _, proto := range protocols {
			tmpl := &Template{Protocol: proto, Source: netip.MustParseAddr(c.src), Interval: time.Minute, Timeout: time.Second, Fall: 1, Rise: 1}
			if proto == TCP {
				tmpl.Port = 9
			}
			res, _, msg := firstVerdict(t, c.addr, tmpl)
			if res != ResultError {
				t.Errorf("%s, %s: %s %q; want error", c.name, proto, res, msg)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%s, %s: %q does not say %q", c.name, proto, msg, w)
				}
			}
		}
	}
}

// icmpAllowed says whether this process can send ICMP echo (see TestICMPLoopback).
func icmpAllowed() bool {
	if os.Geteuid() == 0 {
		return true
	}
	b, _ := os.ReadFile("/proc/sys/net/ipv4/ping_group_range")
	f := strings.Fields(string(b))
	return !(len(f) == 2 && f[0] == "1" && f[1] == "0")
}

// An ICMP probe with a source sends its echo requests from it. As root the test sees the
// request arrive, on a raw socket bound to the target address, and checks where it came from.
func TestSourceICMP(t *testing.T) {
	if !icmpAllowed() {
		t.Skip("not root and net.ipv4.ping_group_range is closed: ICMP probes are not possible here")
	}
	const target = "127.0.43.3"
	from := make(chan net.Addr, 16)
	if os.Geteuid() == 0 {
		c, err := net.ListenPacket("ip4:icmp", target)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		go func() {
			buf := make([]byte, 1500)
			for {
				n, peer, err := c.ReadFrom(buf)
				if err != nil {
					return
				}
				if n > 0 && buf[0] == 8 { // ICMP type echo request (the IP header is stripped)
					from <- peer
				}
			}
		}()
	}
	res, _, msg := firstVerdict(t, target, &Template{Protocol: ICMP, Source: srcAllowed, Interval: time.Minute, Timeout: time.Second, Fall: 1, Rise: 1})
	if res != ResultOK {
		t.Fatalf("ICMP to %s from %s: %s (%s)", target, srcAllowed, res, msg)
	}
	if os.Geteuid() != 0 {
		return
	}
	select {
	case peer := <-from:
		if peer.String() != srcAllowed.String() {
			t.Fatalf("the echo request came from %s; want %s", peer, srcAllowed)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the raw socket saw no echo request")
	}
}

func TestSourceFingerprint(t *testing.T) {
	a := Template{Protocol: TCP, Port: 1, Interval: time.Second, Timeout: time.Millisecond}
	b, c := a, a
	b.Source, c.Source = srcAllowed, srcOther
	if a.Fingerprint() == b.Fingerprint() || b.Fingerprint() == c.Fingerprint() || a.checkKey() == b.checkKey() {
		t.Fatal("another source must be another prober and another check")
	}
}
