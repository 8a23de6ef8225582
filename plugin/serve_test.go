package gtm

import (
	"context"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
)

// An IPv4-mapped IPv6 subnet is the IPv4 client it maps: routed by geo and IPv4 net: terms
// alike, with the scope in the IPv6 family (96 + the IPv4 scope), never the IPv4 bits alone.
func TestECSMappedIPv4(t *testing.T) {
	city, asn := geoDBs(t)
	g := newTestGTM(t, geoBlock(city, asn))
	for _, tc := range []struct {
		name   string
		q      *dns.Msg
		answer string
		scope  int
	}{
		{"continent AS, mmdb /20", ecsQuery("www.gtm.example.net.", 2, 120, "::ffff:1.0.16.0", 0), "192.0.2.2", 116},
		{"continent EU, mmdb /24 inside a net: split", ecsQuery("www.gtm.example.net.", 2, 120, "::ffff:81.2.69.0", 0), "192.0.2.1", 121},
		{"IPv4 net: term", ecsQuery("www.gtm.example.net.", 2, 121, "::ffff:81.2.69.128", 0), "192.0.2.5", 121},
		{"answer independent of the client", ecsQuery("flat.gtm.example.net.", 2, 120, "::ffff:1.0.16.0", 0), "192.0.2.1", 0},
		{"mapped /96: location unknown", ecsQuery("www.gtm.example.net.", 2, 96, "::ffff:0.0.0.0", 0), "192.0.2.1", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := serve(t, g, tc.q)
			if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != tc.answer {
				t.Fatalf("answer %v, want %s", r.Answer, tc.answer)
			}
			e := echoed(r)
			if e == nil || e.Family != 2 || e.SourceNetmask != tc.q.IsEdns0().Option[0].(*dns.EDNS0_SUBNET).SourceNetmask {
				t.Fatalf("echo %v, want family 2 and the query's source prefix", e)
			}
			if int(e.SourceScope) != tc.scope {
				t.Fatalf("scope %d, want %d", e.SourceScope, tc.scope)
			}
		})
	}
}

// A net: term written as a mapped prefix matches the IPv4 clients it maps.
func TestMappedNetTerm(t *testing.T) {
	g := newTestGTM(t, `gtm gtm.example.net {
    pool a {
        address 192.0.2.1
    }
    pool b {
        address 192.0.2.2
    }
    domain www.gtm.example.net {
        route net:::ffff:10.1.0.0/112 a
        route default b
    }
}`)
	for q, want := range map[*dns.Msg]string{
		ecsQuery("www.gtm.example.net.", 1, 24, "10.1.2.0", 0):         "192.0.2.1",
		ecsQuery("www.gtm.example.net.", 2, 120, "::ffff:10.1.2.0", 0): "192.0.2.1",
		ecsQuery("www.gtm.example.net.", 1, 24, "10.2.2.0", 0):         "192.0.2.2",
	} {
		if r := serve(t, g, q); len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != want {
			t.Errorf("%v: answer %v, want %s", q.IsEdns0().Option[0], r.Answer, want)
		}
	}
}

// Zones and empty non-terminals are matched label by label: an escaped dot is inside a label.
func TestEscapedDots(t *testing.T) {
	g := newTestGTM(t, `gtm gtm.example.net {
    pool p {
        address 192.0.2.1
    }
    domain a\.b.gtm.example.net {
        route default p
    }
}`)
	// One label "foo.gtm" under example.net.: outside the zone, so the next plugin's.
	m := new(dns.Msg)
	m.SetQuestion(`foo\.gtm.example.net.`, dns.TypeA)
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	if code, _ := g.ServeDNS(context.Background(), rec, m); code != dns.RcodeRefused || rec.Msg != nil {
		t.Errorf(`foo\.gtm.example.net.: gtm answered it (rcode %s, msg %v); want the next plugin's`, dns.RcodeToString[code], rec.Msg)
	}
	for _, tc := range []struct {
		name    string
		rcode   int
		answers int
	}{
		{`a\.b.gtm.example.net.`, dns.RcodeSuccess, 1},
		{"b.gtm.example.net.", dns.RcodeNameError, 0}, // not an empty non-terminal: "a.b" is one label
		{"a.b.gtm.example.net.", dns.RcodeNameError, 0},
	} {
		m := new(dns.Msg)
		m.SetQuestion(tc.name, dns.TypeA)
		r := serve(t, g, m)
		if r.Rcode != tc.rcode || len(r.Answer) != tc.answers {
			t.Errorf("%s: rcode %s with %d answers, want %s with %d", tc.name, dns.RcodeToString[r.Rcode], len(r.Answer), dns.RcodeToString[tc.rcode], tc.answers)
		}
	}
}
