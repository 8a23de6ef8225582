package gtm

import (
	"context"
	"net/netip"
	"slices"
	"testing"

	"github.com/miekg/dns"
)

const srvBlock = `gtm gtm.example.net {
    pool dual {
        address 192.0.2.1 weight 3
        address 192.0.2.2
        address 2001:db8::1 weight 2
        lb all
    }
    pool heavy {
        address 192.0.2.7 weight 1000000
        address 192.0.2.8 weight 10
        lb all
    }
    pool names {
        address edge.example.org
    }
    domain www.gtm.example.net {
        route default dual
        srv _sip._udp 5060 10
        srv _sip._udp 5061
        srv _xmpp-server._tcp 5269
    }
    domain heavy.gtm.example.net {
        route default heavy
        srv _h._tcp 1
    }
    domain *.wild.gtm.example.net {
        route default dual
        srv _sip._udp 5060
    }
    domain cname.gtm.example.net {
        route default names
        srv _sip._udp 5060
    }
}`

// The SRV RRset lists each answered address per srv line, with the address's weight and a
// target name that answers that one address.
func TestSRVAnswer(t *testing.T) {
	g := newTestGTM(t, srvBlock)
	r := serve(t, g, query("_sip._udp.www.gtm.example.net.", dns.TypeSRV))
	if len(r.Answer) != 6 || !r.Authoritative {
		t.Fatalf("answer %v, want 2 lines x 3 addresses", r.Answer)
	}
	got := map[string]*dns.SRV{}
	for _, rr := range r.Answer {
		s := rr.(*dns.SRV)
		got[s.Target+" "+itoa16(s.Port)] = s
	}
	for _, want := range []struct {
		target         string
		port, pri, wgt uint16
	}{
		{"192-0-2-1.www.gtm.example.net.", 5060, 10, 3},
		{"192-0-2-2.www.gtm.example.net.", 5060, 10, 1},
		{"2001-db8-0-0-0-0-0-1.www.gtm.example.net.", 5060, 10, 2},
		{"192-0-2-1.www.gtm.example.net.", 5061, 0, 3},
	} {
		s := got[want.target+" "+itoa16(want.port)]
		if s == nil || s.Priority != want.pri || s.Weight != want.wgt || s.Hdr.Ttl != 30 {
			t.Errorf("%s port %d: %v, want priority %d weight %d ttl 30", want.target, want.port, s, want.pri, want.wgt)
		}
	}
	// Following the targets gives each its one address; the other family is NODATA.
	for name, want := range map[string]string{"192-0-2-1.www.gtm.example.net.": "192.0.2.1", "2001-db8-0-0-0-0-0-1.www.gtm.example.net.": "2001:db8::1"} {
		qt := dns.TypeA
		if want == "2001:db8::1" {
			qt = dns.TypeAAAA
		}
		r := serve(t, g, query(name, qt))
		if len(r.Answer) != 1 || answerIP(r.Answer[0]) != want {
			t.Errorf("%s: %v, want %s", name, r.Answer, want)
		}
		other := map[uint16]uint16{dns.TypeA: dns.TypeAAAA, dns.TypeAAAA: dns.TypeA}[qt]
		if r := serve(t, g, query(name, other)); len(r.Answer) != 0 || r.Rcode != dns.RcodeSuccess || len(r.Ns) != 1 {
			t.Errorf("%s %s: %v, want NODATA", name, dns.TypeToString[other], r)
		}
	}
	for name, rcode := range map[string]int{
		"_udp.www.gtm.example.net.":             dns.RcodeSuccess,   // an empty non-terminal
		"_tcp.www.gtm.example.net.":             dns.RcodeSuccess,   // ... of the other service
		"_ldap._tcp.www.gtm.example.net.":       dns.RcodeNameError, // no such service
		"192-0-2-9.www.gtm.example.net.":        dns.RcodeNameError, // not an address of the domain
		"192-0-2-7.www.gtm.example.net.":        dns.RcodeNameError, // another domain's address
		"192-000-2-1.www.gtm.example.net.":      dns.RcodeNameError, // not the one label form
		"2001-db8--1.www.gtm.example.net.":      dns.RcodeNameError,
		"_sip._udp.plain.www.gtm.example.net.":  dns.RcodeNameError,
		"_sip._udp.heavy.gtm.example.net.":      dns.RcodeNameError,
		"192-0-2-1.heavy.gtm.example.net.":      dns.RcodeNameError,
		"_sip._udp.www.gtm.example.net.extra.x": -1,
	} {
		if rcode < 0 {
			continue
		}
		r := serve(t, g, query(name, dns.TypeSRV))
		if r.Rcode != rcode || len(r.Answer) != 0 {
			t.Errorf("%s: rcode %s answer %v, want %s and no answer", name, dns.RcodeToString[r.Rcode], r.Answer, dns.RcodeToString[rcode])
		}
	}
	// SRV of another type at the SRV name: NODATA.
	if r := serve(t, g, query("_sip._udp.www.gtm.example.net.", dns.TypeA)); len(r.Answer) != 0 || r.Rcode != dns.RcodeSuccess {
		t.Errorf("A at the SRV name: %v, want NODATA", r)
	}
}

// Weights larger than 16 bits are scaled; a pool of names gives its names as targets; a
// wildcard domain has SRV names under each name it answers.
func TestSRVWeightsNamesWildcard(t *testing.T) {
	g := newTestGTM(t, srvBlock)
	r := serve(t, g, query("_h._tcp.heavy.gtm.example.net.", dns.TypeSRV))
	var w []uint16
	for _, rr := range r.Answer {
		w = append(w, rr.(*dns.SRV).Weight)
	}
	slices.Sort(w)
	if !slices.Equal(w, []uint16{1, 65535}) {
		t.Errorf("weights %v, want [1 65535] (10 and 1000000 scaled)", w)
	}
	r = serve(t, g, query("_sip._udp.cname.gtm.example.net.", dns.TypeSRV))
	if len(r.Answer) != 1 || r.Answer[0].(*dns.SRV).Target != "edge.example.org." {
		t.Errorf("names: %v, want the target edge.example.org.", r.Answer)
	}
	r = serve(t, g, query("_sip._udp.foo.wild.gtm.example.net.", dns.TypeSRV))
	if len(r.Answer) != 3 || r.Answer[0].Header().Name != "_sip._udp.foo.wild.gtm.example.net." {
		t.Fatalf("wildcard: %v, want 3 records", r.Answer)
	}
	for _, rr := range r.Answer {
		target := rr.(*dns.SRV).Target
		qt := dns.TypeA
		if target[0] == '2' && target[1] == '0' && target[2] == '0' {
			qt = dns.TypeAAAA
		}
		if a := serve(t, g, query(target, qt)); len(a.Answer) != 1 || a.Answer[0].Header().Name != target {
			t.Errorf("wildcard target %s: %v", target, a.Answer)
		}
	}
	// The wildcard still answers its own names (A at a name that is no address label).
	if a := serve(t, g, query("bar.wild.gtm.example.net.", dns.TypeA)); len(a.Answer) != 2 {
		t.Errorf("wildcard A: %v", a.Answer)
	}
}

func TestAddrLabel(t *testing.T) {
	for _, s := range []string{"192.0.2.10", "0.0.0.0", "255.255.255.255", "2001:db8::1", "::", "::1", "fe80::1:ff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::ffff:0:1"} {
		ip := netip.MustParseAddr(s)
		l := addrLabel(ip)
		back, ok := parseAddrLabel(l)
		if ip.Is4In6() {
			if ok {
				t.Errorf("%s: label %s parsed back as %v; a mapped address has no label", s, l, back)
			}
			continue
		}
		if !ok || back != ip {
			t.Errorf("%s: label %s parsed back as %v %v", s, l, back, ok)
		}
		if _, ok := dns.IsDomainName(l + ".x."); !ok || l[0] == '-' || l[len(l)-1] == '-' {
			t.Errorf("%s: label %q is no host name label", s, l)
		}
	}
	for _, bad := range []string{"", "1-2-3", "1-2-3-4-5", "256-0-0-1", "01-2-3-4", "a-b-c-d", "1--2-3", "2001-db8--1", "0-0-0-0-0-0-0-0-0", "12345-0-0-0-0-0-0-0", "www", "-1-2-3-4"} {
		if ip, ok := parseAddrLabel(bad); ok {
			t.Errorf("%q parsed as %v", bad, ip)
		}
	}
}

// FuzzAddrLabel: every label that parses is the label of the address it parses to.
func FuzzAddrLabel(f *testing.F) {
	for _, s := range []string{"192-0-2-10", "2001-db8-0-0-0-0-0-1", "0-0-0-0", "ffff-0-0-0-0-0-0-1", "1-2-3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ip, ok := parseAddrLabel(s)
		if ok && addrLabel(ip) != s {
			t.Fatalf("%q parsed as %v, whose label is %q", s, ip, addrLabel(ip))
		}
	})
}

func itoa16(v uint16) string { return netip.AddrFrom4([4]byte{0, 0, byte(v >> 8), byte(v)}).String() }

func answerIP(rr dns.RR) string {
	switch v := rr.(type) {
	case *dns.A:
		return v.A.String()
	case *dns.AAAA:
		return v.AAAA.String()
	}
	return ""
}

// FuzzServices feeds arbitrary wire messages through a configuration with https and srv
// (wildcard, pool of names, large weights): no panic, and every answer packs.
func FuzzServices(f *testing.F) {
	g := newTestGTM(f, srvBlock)
	h := newTestGTM(f, httpsBlock)
	for _, q := range []*dns.Msg{
		query("_sip._udp.www.gtm.example.net.", dns.TypeSRV),
		query("192-0-2-1.www.gtm.example.net.", dns.TypeA),
		query("2001-db8-0-0-0-0-0-1.www.gtm.example.net.", dns.TypeAAAA),
		query("_udp.www.gtm.example.net.", dns.TypeSRV),
		query("_sip._udp.x.wild.gtm.example.net.", dns.TypeSRV),
		query("_sip._udp.cname.gtm.example.net.", dns.TypeSRV),
		ecsQuery("www.gtm.example.net.", 1, 24, "81.2.69.0", 0),
		httpsQuery("www.gtm.example.net."),
	} {
		b, err := q.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, wire []byte) {
		r := new(dns.Msg)
		if r.Unpack(wire) != nil {
			return
		}
		g.ServeDNS(ctx, &packWriter{}, r)
		h.ServeDNS(ctx, &packWriter{}, r.Copy())
	})
}
