package geo

import (
	"errors"
	"net"
	"testing"

	"github.com/miekg/dns"
)

// decoded packs a query with the ECS payload given byte for byte and decodes it, as the
// server does.
func decoded(t *testing.T, payload []byte, extra ...dns.EDNS0) (*dns.OPT, *dns.EDNS0_SUBNET) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("www.example.net.", dns.TypeA)
	m.SetEdns0(1232, false)
	o := m.IsEdns0()
	o.Option = append(o.Option, extra...)
	o.Option = append(o.Option, &dns.EDNS0_LOCAL{Code: dns.EDNS0SUBNET, Data: payload})
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	r := new(dns.Msg)
	if err := r.Unpack(b); err != nil {
		t.Fatal(err)
	}
	for _, opt := range r.IsEdns0().Option {
		if e, ok := opt.(*dns.EDNS0_SUBNET); ok {
			return r.IsEdns0(), e
		}
	}
	t.Fatal("no ECS option decoded")
	return nil, nil
}

func TestCheckWireLength(t *testing.T) {
	nsid := &dns.EDNS0_NSID{Code: dns.EDNS0NSID, Nsid: "abcd"}
	for _, tc := range []struct {
		what    string
		payload []byte
		extra   []dns.EDNS0
		bad     bool
	}{
		{"IPv4 /24, 3 octets", []byte{0, 1, 24, 0, 81, 2, 69}, nil, false},
		{"IPv4 /24, 4 octets", []byte{0, 1, 24, 0, 81, 2, 69, 0}, nil, true},
		{"IPv4 /25, 3 octets", []byte{0, 1, 25, 0, 81, 2, 69}, nil, true},
		{"IPv4 /32, 4 octets", []byte{0, 1, 32, 0, 81, 2, 69, 1}, nil, false},
		{"IPv6 /56, 7 octets", []byte{0, 2, 56, 0, 0x20, 1, 0xd, 0xb8, 0, 1, 2}, nil, false},
		{"IPv6 /56, 8 octets", []byte{0, 2, 56, 0, 0x20, 1, 0xd, 0xb8, 0, 1, 2, 0}, nil, true},
		{"family 0, no address", []byte{0, 0, 0, 0}, nil, false},
		{"beside NSID, right", []byte{0, 1, 24, 0, 81, 2, 69}, []dns.EDNS0{nsid}, false},
		{"beside NSID, long", []byte{0, 1, 24, 0, 81, 2, 69, 0}, []dns.EDNS0{nsid}, true},
	} {
		opt, e := decoded(t, tc.payload, tc.extra...)
		err := CheckWireLength(opt, e)
		if (err != nil) != tc.bad || (err != nil && !errors.Is(err, ErrECS)) {
			t.Errorf("%s: %v, want bad=%v", tc.what, err, tc.bad)
		}
	}
	// An option a plugin (rewrite edns0 subnet) put into a decoded OPT is not judged by the
	// wire length it never had.
	opt, e := decoded(t, []byte{0, 1, 24, 0, 81, 2, 69})
	e.SourceNetmask, e.Address = 16, net.ParseIP("10.1.0.0").To4()
	if err := CheckWireLength(opt, e); err != nil {
		t.Errorf("rewritten in place: %v", err)
	}
	opt.Option = append(opt.Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 2, SourceNetmask: 56, Address: net.ParseIP("2001:db8::")})
	if err := CheckWireLength(opt, opt.Option[1].(*dns.EDNS0_SUBNET)); err != nil {
		t.Errorf("appended: %v", err)
	}
	built := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	built.Option = []dns.EDNS0{&dns.EDNS0_SUBNET{Family: 1, SourceNetmask: 24, Address: net.ParseIP("81.2.69.0")}}
	if err := CheckWireLength(built, built.Option[0].(*dns.EDNS0_SUBNET)); err != nil {
		t.Errorf("built in code: %v", err)
	}
}
