package test

import (
	"path/filepath"
	"testing"

	"github.com/miekg/dns"
)

// Issue 19 item 2: with fallthrough, the apex SOA and NS and the types gtm does not answer
// at a managed name come from the next plugin (file), and gtm's own negative answers carry
// that zone's SOA.
func TestApexFallsThroughToFile(t *testing.T) {
	zone := writeFile(t, filepath.Join(t.TempDir(), "db.gtm.test"), `$ORIGIN gtm.test.
@	3600 IN SOA ns.dns-host.example. ops.example. 2026120101 7200 3600 1209600 300
@	3600 IN NS ns.dns-host.example.
@	3600 IN MX 10 mail.example.
@	3600 IN TXT "v=spf1 -all"
www	3600 IN TXT "owned by file"
`)
	s := start(t, `gtm.test:0 {
    bind 127.0.0.1
    gtm {
        fallthrough
        pool web {
            address 192.0.2.1
        }
        domain www.gtm.test {
            route default web
        }
    }
    file `+zone+`
}`)
	soa := s.ask(query{name: "gtm.test", qtype: dns.TypeSOA})
	if len(soa.Answer) != 1 || soa.Answer[0].(*dns.SOA).Serial != 2026120101 {
		t.Fatalf("apex SOA not the file's: %v", soa.Answer)
	}
	if ns := s.ask(query{name: "gtm.test", qtype: dns.TypeNS}); len(ns.Answer) != 1 || ns.Answer[0].(*dns.NS).Ns != "ns.dns-host.example." {
		t.Fatalf("apex NS not the file's: %v", ns.Answer)
	}
	if mx := s.ask(query{name: "gtm.test", qtype: dns.TypeMX}); len(mx.Answer) != 1 {
		t.Fatalf("apex MX not the file's: %v", mx)
	}
	if txt := s.ask(query{name: "www.gtm.test", qtype: dns.TypeTXT}); len(txt.Answer) != 1 {
		t.Fatalf("TXT at a managed name not the file's: %v", txt)
	}
	if a := s.ask(query{name: "www.gtm.test", qtype: dns.TypeA}); join(answers(a)) != "192.0.2.1" {
		t.Fatalf("gtm's A: %v", a)
	}
	// AAAA of an IPv4 pool: gtm's NODATA, with the zone's (file's) SOA.
	m := s.ask(query{name: "www.gtm.test", qtype: dns.TypeAAAA})
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 || len(m.Ns) != 1 || m.Ns[0].(*dns.SOA).Serial != 2026120101 {
		t.Fatalf("NODATA does not carry the file's SOA: %v", m)
	}
}

// Issue 19 item 3: without fallthrough the apex NS names no host the server denies: the
// `ns` names are answered with their addresses, and without `ns` ns1.ZONE is a name that
// exists; `soa` sets the SOA's names and negative TTL.
func TestApexNSAndSOA(t *testing.T) {
	s := start(t, `gtm.test:0 {
    bind 127.0.0.1
    gtm {
        ns ns1.gtm.test 192.0.2.53 2001:db8::53
        ns ns2.dns-host.example
        soa ns1.gtm.test hostmaster.example.net 60
        pool web {
            address 192.0.2.1
        }
        domain www.gtm.test {
            route default web
        }
    }
}`)
	ns := s.ask(query{name: "gtm.test", qtype: dns.TypeNS})
	if len(ns.Answer) != 2 || ns.Answer[0].(*dns.NS).Ns != "ns1.gtm.test." || ns.Answer[1].(*dns.NS).Ns != "ns2.dns-host.example." {
		t.Fatalf("NS set: %v", ns.Answer)
	}
	if a := s.ask(query{name: "ns1.gtm.test", qtype: dns.TypeA}); join(answers(a)) != "192.0.2.53" || !a.Authoritative {
		t.Fatalf("in-zone NS host A: %v", a)
	}
	if a := s.ask(query{name: "ns1.gtm.test", qtype: dns.TypeAAAA}); join(answers(a)) != "2001:db8::53" {
		t.Fatalf("in-zone NS host AAAA: %v", a)
	}
	soa := s.ask(query{name: "gtm.test", qtype: dns.TypeSOA}).Answer[0].(*dns.SOA)
	if soa.Ns != "ns1.gtm.test." || soa.Mbox != "hostmaster.example.net." || soa.Minttl != 60 {
		t.Fatalf("SOA: %v", soa)
	}

	plain := start(t, `gtm.test:0 {
    bind 127.0.0.1
    gtm {
        pool web {
            address 192.0.2.1
        }
        domain www.gtm.test {
            route default web
        }
    }
}`)
	host := plain.ask(query{name: "gtm.test", qtype: dns.TypeNS}).Answer[0].(*dns.NS).Ns
	if m := plain.ask(query{name: host, qtype: dns.TypeA}); m.Rcode == dns.RcodeNameError {
		t.Fatalf("the synthesized NS %s is denied by the server itself (NXDOMAIN)", host)
	}
}
