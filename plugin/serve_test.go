package gtm

import (
	"context"
	"strings"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"

	"github.com/gtm-dns/coredns-gtm/config"
	"github.com/gtm-dns/coredns-gtm/control"
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

// A CNAME pool whose target is another managed name of the zones is followed, as file
// follows in-zone targets; the chain is bounded, and a target that does not exist makes the
// answer NXDOMAIN (RFC 6604).
func TestCNAMEChaseInZone(t *testing.T) {
	city, asn := geoDBs(t)
	g := newTestGTM(t, `gtm gtm.example.net other.example.net {
    geoip `+city+`
    asn `+asn+`
    pool web {
        address 192.0.2.1
        address 2001:db8::1
    }
    pool v4 {
        address 192.0.2.9
    }
    pool to-web {
        address web.other.example.net
    }
    pool to-hop {
        address hop.gtm.example.net
    }
    pool to-missing {
        address missing.gtm.example.net
    }
    pool to-outside {
        address edge.cdn.example.org
    }
    pool to-v4 {
        address v4.gtm.example.net
    }
    domain web.other.example.net {
        route continent:AS web
        route default v4
    }
    domain v4.gtm.example.net {
        route default v4
    }
    domain hop.gtm.example.net {
        route default to-web
    }
    domain www.gtm.example.net {
        route default to-hop
    }
    domain missing-target.gtm.example.net {
        route default to-missing
    }
    domain out.gtm.example.net {
        route default to-outside
    }
    domain aaaa.gtm.example.net {
        route default to-v4
    }
}`)
	for _, tc := range []struct {
		name  string
		qtype uint16
		rcode int
		chain string // owner>data of each answer record
		soa   bool
	}{
		{"www.gtm.example.net.", dns.TypeA, dns.RcodeSuccess,
			"www.gtm.example.net.>hop.gtm.example.net. hop.gtm.example.net.>web.other.example.net. web.other.example.net.>192.0.2.2", false},
		{"www.gtm.example.net.", dns.TypeCNAME, dns.RcodeSuccess, "www.gtm.example.net.>hop.gtm.example.net.", false},
		{"missing-target.gtm.example.net.", dns.TypeA, dns.RcodeNameError, "missing-target.gtm.example.net.>missing.gtm.example.net.", true},
		{"out.gtm.example.net.", dns.TypeA, dns.RcodeSuccess, "out.gtm.example.net.>edge.cdn.example.org.", false},
		{"aaaa.gtm.example.net.", dns.TypeAAAA, dns.RcodeSuccess, "aaaa.gtm.example.net.>v4.gtm.example.net.", true},
	} {
		q := ecsQuery(tc.name, 1, 24, "81.2.69.0", 0)
		q.Question[0].Qtype = tc.qtype
		r := serve(t, g, q)
		var got []string
		for _, rr := range r.Answer {
			data := ""
			switch x := rr.(type) {
			case *dns.CNAME:
				data = x.Target
			case *dns.A:
				data = x.A.String()
			case *dns.AAAA:
				data = x.AAAA.String()
			}
			got = append(got, rr.Header().Name+">"+data)
		}
		// The EU client gets v4 (192.0.2.9) from web.other's default route.
		want := strings.ReplaceAll(tc.chain, "192.0.2.2", "192.0.2.9")
		if r.Rcode != tc.rcode || strings.Join(got, " ") != want || (len(r.Ns) == 1) != tc.soa {
			t.Errorf("%s %s: rcode %s answer %v authority %v; want %s %s soa=%v", tc.name, dns.TypeToString[tc.qtype],
				dns.RcodeToString[r.Rcode], got, r.Ns, dns.RcodeToString[tc.rcode], want, tc.soa)
		}
	}
	// The chain's last link is routed by continent: the answer's scope is the mmdb network's.
	r := serve(t, g, ecsQuery("www.gtm.example.net.", 1, 24, "1.0.16.0", 0))
	if n := len(r.Answer); n != 3 || r.Answer[2].(*dns.A).A.String() != "192.0.2.1" {
		t.Fatalf("AS client: %v", r.Answer)
	}
	if e := echoed(r); e == nil || e.SourceScope != 20 {
		t.Fatalf("AS client: scope %v, want 20 (from the chain's last link)", e)
	}
}

// CNAME loops are refused by the validator; the query path still bounds a chain (state
// compiled without validation, or a future rule's gap must not loop a query): a self-loop and
// a two-name loop, compiled here without validating, answer each link once.
func TestCNAMEChaseLoopBound(t *testing.T) {
	b, err := parse(caddy.NewTestController("dns", "gtm gtm.example.net {\n}"))
	if err != nil {
		t.Fatal(err)
	}
	pool := func(name, target string) *config.Pool {
		p := config.NewPool(name)
		p.Addresses = []config.Address{config.NewAddress(target)}
		return p
	}
	domain := func(name, pool string) *config.Domain {
		d := config.NewDomain(name, 30)
		d.Routes = []config.Route{config.NewRoute("default", pool)}
		return d
	}
	res := &config.Config{
		Pools:   []*config.Pool{pool("to-self", "self.gtm.example.net"), pool("to-ping", "ping.gtm.example.net"), pool("to-pong", "pong.gtm.example.net")},
		Domains: []*config.Domain{domain("self.gtm.example.net.", "to-self"), domain("ping.gtm.example.net.", "to-pong"), domain("pong.gtm.example.net.", "to-ping")},
	}
	if errs := config.Validate(res, b.env()); len(errs) != 3 {
		t.Fatalf("the validator should refuse all three loops: %v", errs)
	}
	g := &GTM{Next: test.NextHandler(dns.RcodeRefused, nil), block: b}
	g.ctl = control.NewStatic(g.controlConfig(), res, nil)
	for name, want := range map[string]int{"self.gtm.example.net.": 1, "ping.gtm.example.net.": 2} {
		r := serve(t, g, new(dns.Msg).SetQuestion(name, dns.TypeA))
		if len(r.Answer) != want {
			t.Errorf("%s: %d answer records, want %d (each link once): %v", name, len(r.Answer), want, r.Answer)
		}
	}
}

// With fallthrough, transfers and NOTIFY go to the next plugin (transfer, secondary); without
// it they are REFUSED, and other opcodes NOTIMP.
func TestTransferNotifyFallthrough(t *testing.T) {
	block := "gtm gtm.example.net {\n %s\n pool p {\n address 192.0.2.1\n }\n domain www.gtm.example.net {\n route default p\n }\n}"
	for _, tc := range []struct {
		fall   string
		qtype  uint16
		opcode int
		want   int
	}{
		{"fallthrough", dns.TypeAXFR, dns.OpcodeQuery, dns.RcodeBadCookie}, // the next plugin's
		{"fallthrough", dns.TypeSOA, dns.OpcodeNotify, dns.RcodeBadCookie},
		{"", dns.TypeAXFR, dns.OpcodeQuery, dns.RcodeRefused},
		{"", dns.TypeSOA, dns.OpcodeNotify, dns.RcodeRefused},
		{"", dns.TypeSOA, dns.OpcodeUpdate, dns.RcodeNotImplemented},
	} {
		g := newTestGTM(t, strings.Replace(block, "%s", tc.fall, 1))
		g.Next = test.NextHandler(dns.RcodeBadCookie, nil)
		m := new(dns.Msg)
		m.SetQuestion("www.gtm.example.net.", tc.qtype)
		m.Opcode = tc.opcode
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		if code, _ := g.ServeDNS(context.Background(), rec, m); code != tc.want || rec.Msg != nil {
			t.Errorf("%q %s opcode %s: rcode %s (written %v), want %s", tc.fall, dns.TypeToString[tc.qtype], dns.OpcodeToString[tc.opcode], dns.RcodeToString[code], rec.Msg != nil, dns.RcodeToString[tc.want])
		}
	}
}
