package test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

const zoneFile = `$ORIGIN gtm.example.net.
@	3600 IN SOA ns.example.net. admin.example.net. 7 7200 3600 1209600 3600
@	3600 IN NS ns.example.net.
static	300 IN A 192.0.2.200
`

func answersCorefile(t *testing.T, extra string) string {
	return `.:0 {
    bind 127.0.0.1
    gtm gtm.example.net {
        ttl 45
        pool v4 {
            address 192.0.2.1
            address 192.0.2.2
            address 192.0.2.3 disabled
            lb all
        }
        pool dual {
            address 198.51.100.1
            address 2001:db8::1
        }
        pool two {
            address 192.0.2.11
            address 192.0.2.12
            address 192.0.2.13
            answers 2
        }
        pool alias {
            address edge.cdn.example.org
        }
        pool local {
            address 203.0.113.9
        }
        domain www.gtm.example.net {
            route default v4
            ttl 20
        }
        domain dual.gtm.example.net {
            route default dual
        }
        domain two.gtm.example.net {
            route default two
        }
        domain cdn.gtm.example.net {
            route default alias
        }
        domain www.eu.gtm.example.net {
            route net:127.0.0.0/8 local
            route default v4
        }
        domain fenced.gtm.example.net {
            route net:10.0.0.0/8 local
        }
        ` + extra + `
    }
    whoami
}`
}

func TestAnswers(t *testing.T) {
	s := start(t, answersCorefile(t, ""))
	for _, tcp := range []bool{false, true} {
		name := "udp"
		if tcp {
			name = "tcp"
		}
		t.Run(name, func(t *testing.T) {
			m := s.ask(query{name: "www.gtm.example.net", qtype: dns.TypeA, tcp: tcp})
			if m.Rcode != dns.RcodeSuccess || !m.Authoritative {
				t.Fatalf("rcode %d aa %v", m.Rcode, m.Authoritative)
			}
			got := answers(m)
			slices.Sort(got)
			if join(got) != "192.0.2.1 192.0.2.2" {
				t.Fatalf("lb all must answer every enabled address: %v", got)
			}
			if ttl := m.Answer[0].Header().Ttl; ttl != 20 {
				t.Fatalf("domain ttl: %d", ttl)
			}

			m = s.ask(query{name: "dual.gtm.example.net", qtype: dns.TypeAAAA, tcp: tcp})
			if join(answers(m)) != "2001:db8::1" || m.Answer[0].Header().Ttl != 45 {
				t.Fatalf("AAAA from a mixed pool, plugin ttl: %v", m.Answer)
			}
			m = s.ask(query{name: "dual.gtm.example.net", qtype: dns.TypeA, tcp: tcp})
			if join(answers(m)) != "198.51.100.1" {
				t.Fatalf("A from a mixed pool: %v", answers(m))
			}
		})
	}
}

func TestNegativeAnswers(t *testing.T) {
	s := start(t, answersCorefile(t, ""))
	soaOnly := func(m *dns.Msg, rcode int, what string) {
		t.Helper()
		if m.Rcode != rcode || len(m.Answer) != 0 || len(m.Ns) != 1 || m.Ns[0].Header().Rrtype != dns.TypeSOA || !m.Authoritative {
			t.Fatalf("%s: want rcode %s with SOA in authority, got\n%v", what, dns.RcodeToString[rcode], m)
		}
		if m.Ns[0].Header().Name != "gtm.example.net." {
			t.Fatalf("%s: SOA owner %s", what, m.Ns[0].Header().Name)
		}
	}
	soaOnly(s.ask(query{name: "www.gtm.example.net", qtype: dns.TypeAAAA}), dns.RcodeSuccess, "AAAA for an IPv4-only pool")
	soaOnly(s.ask(query{name: "www.gtm.example.net", qtype: dns.TypeMX}), dns.RcodeSuccess, "MX for a managed domain")
	soaOnly(s.ask(query{name: "nope.gtm.example.net", qtype: dns.TypeA}), dns.RcodeNameError, "unmanaged name in the zone")
	soaOnly(s.ask(query{name: "eu.gtm.example.net", qtype: dns.TypeA}), dns.RcodeSuccess, "empty non-terminal")
	soaOnly(s.ask(query{name: "gtm.example.net", qtype: dns.TypeA}), dns.RcodeSuccess, "apex A")
	soaOnly(s.ask(query{name: "fenced.gtm.example.net", qtype: dns.TypeA}), dns.RcodeSuccess, "no route matches (geo-fencing)")

	m := s.ask(query{name: "gtm.example.net", qtype: dns.TypeSOA})
	if len(m.Answer) != 1 || m.Answer[0].Header().Rrtype != dns.TypeSOA || !m.Authoritative {
		t.Fatalf("apex SOA: %v", m)
	}
	m = s.ask(query{name: "gtm.example.net", qtype: dns.TypeNS})
	if len(m.Answer) != 1 || m.Answer[0].(*dns.NS).Ns != "ns1.gtm.example.net." {
		t.Fatalf("apex NS: %v", m)
	}
	// Outside the zones the next plugin (whoami) answers.
	m = s.ask(query{name: "example.com", qtype: dns.TypeA})
	if len(m.Extra) == 0 || m.Extra[0].Header().Rrtype != dns.TypeA || len(m.Ns) != 0 {
		t.Fatalf("a name outside the zones must reach whoami: %v", m)
	}
}

func TestCNAMEPoolAndNetRoute(t *testing.T) {
	s := start(t, answersCorefile(t, ""))
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeCNAME} {
		m := s.ask(query{name: "cdn.gtm.example.net", qtype: qt})
		if len(m.Answer) != 1 || m.Answer[0].(*dns.CNAME).Target != "edge.cdn.example.org." {
			t.Fatalf("CNAME pool for %s: %v", dns.TypeToString[qt], m.Answer)
		}
	}
	// The test client asks from 127.0.0.1, so the net: route applies.
	if got := join(answers(s.ask(query{name: "www.eu.gtm.example.net", qtype: dns.TypeA}))); got != "203.0.113.9" {
		t.Fatalf("net: route by source address: %v", got)
	}
}

func TestAnswersCountAndRotation(t *testing.T) {
	s := start(t, answersCorefile(t, ""))
	seen := map[string]bool{}
	firsts := map[string]bool{}
	for range 60 {
		got := answers(s.ask(query{name: "two.gtm.example.net", qtype: dns.TypeA}))
		if len(got) != 2 || got[0] == got[1] {
			t.Fatalf("answers 2: %v", got)
		}
		seen[got[0]], seen[got[1]] = true, true
		firsts[answers(s.ask(query{name: "www.gtm.example.net", qtype: dns.TypeA}))[0]] = true
	}
	if len(seen) != 3 {
		t.Fatalf("weighted answers 2 never used every address: %v", seen)
	}
	if len(firsts) != 2 {
		t.Fatalf("lb all must rotate the order: first addresses %v", firsts)
	}
}

func TestFallthrough(t *testing.T) {
	dir := t.TempDir()
	db := writeFile(t, filepath.Join(dir, "db.gtm"), zoneFile)
	corefile := `.:0 {
    bind 127.0.0.1
    gtm gtm.example.net {
        fallthrough
        pool v4 {
            address 192.0.2.1
        }
        domain www.gtm.example.net {
            route default v4
        }
        domain www.eu.gtm.example.net {
            route default v4
        }
    }
    file ` + db + ` gtm.example.net
}`
	s := start(t, corefile)
	if got := join(answers(s.ask(query{name: "static.gtm.example.net", qtype: dns.TypeA}))); got != "192.0.2.200" {
		t.Fatalf("fallthrough to file: %q", got)
	}
	m := s.ask(query{name: "gtm.example.net", qtype: dns.TypeSOA})
	if len(m.Answer) != 1 || !strings.Contains(m.Answer[0].String(), "ns.example.net.") {
		t.Fatalf("apex with fallthrough comes from file: %v", m.Answer)
	}
	if got := join(answers(s.ask(query{name: "www.gtm.example.net", qtype: dns.TypeA}))); got != "192.0.2.1" {
		t.Fatalf("managed name with fallthrough: %q", got)
	}
	// eu.gtm.example.net is an empty non-terminal above www.eu: file does not know it, but the
	// answer must be NODATA, never NXDOMAIN (RFC 8020); file's SOA is in it.
	m = s.ask(query{name: "eu.gtm.example.net", qtype: dns.TypeA})
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 || len(m.Ns) != 1 || m.Ns[0].Header().Rrtype != dns.TypeSOA {
		t.Fatalf("empty non-terminal with fallthrough: %s, answer %v, authority %v", dns.RcodeToString[m.Rcode], m.Answer, m.Ns)
	}
	if m := s.ask(query{name: "nope.gtm.example.net", qtype: dns.TypeA}); m.Rcode != dns.RcodeNameError {
		t.Fatalf("a name that does not exist falls through to file's NXDOMAIN: %s", dns.RcodeToString[m.Rcode])
	}
}

func TestSelectModes(t *testing.T) {
	corefile := `.:0 {
    bind 127.0.0.1
    gtm gtm.example.net {
        pool a {
            address 192.0.2.1
        }
        pool b {
            address 192.0.2.2
            weight 3
        }
        domain all.gtm.example.net {
            route default a b select all
        }
        domain weighted.gtm.example.net {
            route default a b select weighted
        }
        domain failover.gtm.example.net {
            route default b a
        }
    }
}`
	s := start(t, corefile)
	got := answers(s.ask(query{name: "all.gtm.example.net", qtype: dns.TypeA}))
	slices.Sort(got)
	if join(got) != "192.0.2.1 192.0.2.2" {
		t.Fatalf("select all: %v", got)
	}
	if got := join(answers(s.ask(query{name: "failover.gtm.example.net", qtype: dns.TypeA}))); got != "192.0.2.2" {
		t.Fatalf("select failover takes the first listed: %v", got)
	}
	count := map[string]int{}
	for range 400 {
		count[answers(s.ask(query{name: "weighted.gtm.example.net", qtype: dns.TypeA}))[0]]++
	}
	// 1:3 over 400 draws: b expects 300 (sd ~8.7); 250 is more than five deviations away.
	if count["192.0.2.2"] < 250 || count["192.0.2.1"] < 50 {
		t.Fatalf("select weighted 1:3: %v", count)
	}
}
