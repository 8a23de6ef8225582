package test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// rawExchange sends m as it is (any opcode, any option) and returns the response.
func (s *server) rawExchange(m *dns.Msg, tcp bool) *dns.Msg {
	s.t.Helper()
	c := &dns.Client{Timeout: 3 * time.Second}
	addr := s.udp
	if tcp {
		c.Net, addr = "tcp", s.tcp
	}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		s.t.Fatalf("%s %s opcode %s: %v", m.Question[0].Name, dns.TypeToString[m.Question[0].Qtype], dns.OpcodeToString[m.Opcode], err)
	}
	return r
}

// gtm last in its server block, as an authoritative server is set up.
const lastCorefile = `.:0 {
    bind 127.0.0.1
    gtm gtm.example.net {
        pool p {
            address 192.0.2.1
        }
        domain www.gtm.example.net {
            route default p
        }
    }
}`

// Zone transfers and NOTIFY are refused, as the file plugin refuses them without transfer;
// they used to get NOERROR with the SOA and an authoritative A answer.
func TestTransferAndNotifyRefused(t *testing.T) {
	s := start(t, lastCorefile)
	for _, tc := range []struct {
		name   string
		qtype  uint16
		opcode int
		tcp    bool
	}{
		{"gtm.example.net.", dns.TypeAXFR, dns.OpcodeQuery, true},
		{"gtm.example.net.", dns.TypeIXFR, dns.OpcodeQuery, true},
		{"gtm.example.net.", dns.TypeIXFR, dns.OpcodeQuery, false},
		{"gtm.example.net.", dns.TypeSOA, dns.OpcodeNotify, false},
		{"www.gtm.example.net.", dns.TypeA, dns.OpcodeNotify, false},
	} {
		m := new(dns.Msg)
		m.SetQuestion(tc.name, tc.qtype)
		m.Opcode = tc.opcode
		r := s.rawExchange(m, tc.tcp)
		if r.Rcode != dns.RcodeRefused || len(r.Answer) != 0 || r.Authoritative {
			t.Errorf("%s %s opcode %s: want REFUSED with no answer, got\n%v", tc.name, dns.TypeToString[tc.qtype], dns.OpcodeToString[tc.opcode], r)
		}
	}
	// Ordinary queries are still answered.
	if m := s.ask(query{name: "www.gtm.example.net", qtype: dns.TypeA}); join(answers(m)) != "192.0.2.1" {
		t.Fatalf("A after the refusals: %v", m)
	}
}

// A name outside gtm's zones with no plugin after gtm is REFUSED, as file answers it, not
// SERVFAIL.
func TestOutOfZoneLastPluginRefused(t *testing.T) {
	s := start(t, lastCorefile)
	for _, name := range []string{"example.org", "example.net", `foo\.gtm.example.net`} {
		m := s.ask(query{name: name, qtype: dns.TypeA})
		if m.Rcode != dns.RcodeRefused {
			t.Errorf("%s: rcode %s, want REFUSED", name, dns.RcodeToString[m.Rcode])
		}
	}
}

// ecsRaw is a query whose ECS option carries exactly the given bytes (family, source, scope,
// address), as a client on the wire may send it.
func ecsRaw(name string, payload []byte, extra ...dns.EDNS0) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	m.SetEdns0(1232, false)
	o := m.IsEdns0()
	o.Option = append(o.Option, extra...)
	o.Option = append(o.Option, &dns.EDNS0_LOCAL{Code: dns.EDNS0SUBNET, Data: payload})
	return m
}

// ECS options whose address has more or fewer octets than the source prefix needs are
// FORMERR (RFC 7871 section 6), though miekg's decoder pads or truncates them; so is an
// invalid option for a name that falls through to the next plugin (the README promises
// FORMERR for any name in the zones).
func TestECSWireLengthAndFallthroughFormErr(t *testing.T) {
	s := start(t, answersCorefile(t, "fallthrough"))
	cookie := &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"}
	for _, tc := range []struct {
		what  string
		q     *dns.Msg
		rcode int
	}{
		{"IPv4 /24 with 3 octets", ecsRaw("www.gtm.example.net.", []byte{0, 1, 24, 0, 1, 0, 16}), dns.RcodeSuccess},
		{"IPv4 /24 with 4 octets", ecsRaw("www.gtm.example.net.", []byte{0, 1, 24, 0, 1, 0, 16, 0}), dns.RcodeFormatError},
		{"IPv4 /24 with 2 octets", ecsRaw("www.gtm.example.net.", []byte{0, 1, 24, 0, 1, 0}), dns.RcodeFormatError},
		{"IPv4 /0 with no octets", ecsRaw("www.gtm.example.net.", []byte{0, 1, 0, 0}), dns.RcodeSuccess},
		{"family 0 /0 (dig +subnet=0)", ecsRaw("www.gtm.example.net.", []byte{0, 0, 0, 0}), dns.RcodeSuccess},
		{"IPv6 /48 with 16 octets", ecsRaw("www.gtm.example.net.", append([]byte{0, 2, 48, 0, 0x20, 0x01, 0x0d, 0xb8, 1}, make([]byte, 11)...)), dns.RcodeFormatError},
		{"IPv6 /48 with 6 octets", ecsRaw("www.gtm.example.net.", []byte{0, 2, 48, 0, 0x20, 0x01, 0x0d, 0xb8, 1, 0}), dns.RcodeSuccess},
		{"a cookie beside, 3 octets", ecsRaw("www.gtm.example.net.", []byte{0, 1, 24, 0, 1, 0, 16}, cookie), dns.RcodeSuccess},
		{"a cookie beside, 4 octets", ecsRaw("www.gtm.example.net.", []byte{0, 1, 24, 0, 1, 0, 16, 0}, cookie), dns.RcodeFormatError},
		{"unmanaged name that falls through, 4 octets", ecsRaw("nope.gtm.example.net.", []byte{0, 1, 24, 0, 1, 0, 16, 0}), dns.RcodeFormatError},
		{"unmanaged name that falls through, non-zero scope", ecsRaw("nope.gtm.example.net.", []byte{0, 1, 24, 8, 1, 0, 16}), dns.RcodeFormatError},
		{"unmanaged name that falls through, valid", ecsRaw("nope.gtm.example.net.", []byte{0, 1, 24, 0, 1, 0, 16}), dns.RcodeSuccess},
	} {
		for _, tcp := range []bool{false, true} {
			r := s.rawExchange(tc.q, tcp)
			if r.Rcode != tc.rcode {
				t.Errorf("%s (tcp %v): rcode %s, want %s", tc.what, tcp, dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
			}
		}
	}
}

// `domain *.ZONE` is an RFC 4592 wildcard: it answers names that do not exist, with the
// query name as owner; an exact domain wins, and names at or below existing names are not
// synthesized.
func TestWildcardDomain(t *testing.T) {
	s := start(t, `.:0 {
    bind 127.0.0.1
    gtm gtm.example.net {
        pool wild {
            address 192.0.2.7
        }
        pool exact {
            address 192.0.2.8
        }
        pool alias {
            address www.gtm.example.net
        }
        domain *.gtm.example.net {
            route default wild
        }
        domain www.gtm.example.net {
            route default exact
        }
        domain *.cdn.gtm.example.net {
            route default alias
        }
    }
}`)
	for _, tc := range []struct {
		name  string
		rcode int
		want  string // owner>data, space separated
	}{
		{"foo.gtm.example.net.", dns.RcodeSuccess, "foo.gtm.example.net.>192.0.2.7"},
		{"a.b.gtm.example.net.", dns.RcodeSuccess, "a.b.gtm.example.net.>192.0.2.7"},
		{"www.gtm.example.net.", dns.RcodeSuccess, "www.gtm.example.net.>192.0.2.8"},
		{"x.www.gtm.example.net.", dns.RcodeNameError, ""},
		{"cdn.gtm.example.net.", dns.RcodeSuccess, ""}, // an empty non-terminal: NODATA
		{"img.cdn.gtm.example.net.", dns.RcodeSuccess, "img.cdn.gtm.example.net.>www.gtm.example.net. www.gtm.example.net.>192.0.2.8"},
	} {
		m := s.ask(query{name: tc.name, qtype: dns.TypeA})
		var got []string
		for _, rr := range m.Answer {
			got = append(got, rr.Header().Name+">"+answers(&dns.Msg{Answer: []dns.RR{rr}})[0])
		}
		if m.Rcode != tc.rcode || join(got) != tc.want || !m.Authoritative {
			t.Errorf("%s: rcode %s answer %q aa %v, want %s %q", tc.name, dns.RcodeToString[m.Rcode], join(got), m.Authoritative, dns.RcodeToString[tc.rcode], tc.want)
		}
	}
}

// file chasing its CNAME to a geo-routed gtm domain (plugin/pkg/upstream sends the target
// through the server) must not let cache store gtm's answer for one client under file's name
// for all: gtm refuses such internal lookups, file answers the CNAME alone, and the resolver
// asks gtm for the target with ECS. Client-independent targets are still chased.
func TestUpstreamChaseDoesNotLeakGeoAnswers(t *testing.T) {
	dir := t.TempDir()
	db := writeFile(t, filepath.Join(dir, "db.gtm.test"), `$ORIGIN gtm.test.
@	3600 IN SOA ns.example.net. admin.example.net. 1 7200 3600 1209600 3600
@	3600 IN NS ns.example.net.
alias	300 IN CNAME geo.gtm.test.
flatalias	300 IN CNAME flat.gtm.test.
hopalias	300 IN CNAME hop.gtm.test.
`)
	s := start(t, `.:0 {
    bind 127.0.0.1
    cache 60
    gtm gtm.test {
        fallthrough
        pool a {
            address 192.0.2.1
        }
        pool b {
            address 192.0.2.2
        }
        domain geo.gtm.test {
            route net:10.1.0.0/16 a
            route default b
        }
        domain flat.gtm.test {
            route default a
        }
        pool to-geo {
            address geo.gtm.test
        }
        domain hop.gtm.test {
            route default to-geo
        }
    }
    file `+db+` gtm.test
}`)
	for _, subnet := range []string{"10.1.0.0/16", "10.2.0.0/16", "10.1.0.0/16"} {
		m := s.ask(query{name: "alias.gtm.test", qtype: dns.TypeA, subnet: subnet})
		if m.Rcode != dns.RcodeSuccess || join(answers(m)) != "geo.gtm.test." {
			t.Errorf("alias from %s: %s %v, want the CNAME alone", subnet, dns.RcodeToString[m.Rcode], answers(m))
		}
	}
	for subnet, want := range map[string]string{"10.1.0.0/16": "192.0.2.1", "10.2.0.0/16": "192.0.2.2"} {
		m := s.ask(query{name: "geo.gtm.test", qtype: dns.TypeA, subnet: subnet})
		if join(answers(m)) != want || scope(m) < 15 {
			t.Errorf("geo from %s: %v scope %d, want %s with a scope of at least 15", subnet, answers(m), scope(m), want)
		}
	}
	m := s.ask(query{name: "flatalias.gtm.test", qtype: dns.TypeA, subnet: "10.2.0.0/16"})
	if join(answers(m)) != "flat.gtm.test. 192.0.2.1" {
		t.Errorf("flatalias: %v, want the chased chain", answers(m))
	}
	// gtm's own chase stops before a client-routed name inside another plugin's lookup too.
	for _, subnet := range []string{"10.1.0.0/16", "10.2.0.0/16"} {
		m := s.ask(query{name: "hopalias.gtm.test", qtype: dns.TypeA, subnet: subnet})
		if join(answers(m)) != "hop.gtm.test. geo.gtm.test." {
			t.Errorf("hopalias from %s: %v, want the two CNAMEs alone", subnet, answers(m))
		}
	}
}
