package gtm

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"
)

const httpsBlock = `gtm gtm.example.net {
    pool dual {
        address 192.0.2.1
        address 192.0.2.2
        address 2001:db8::1
        lb all
    }
    pool names {
        address edge.example.org
    }
    domain www.gtm.example.net {
        route default dual
        ttl 60
        https 1 {
            alpn h3 h2
            port 8443
        }
    }
    domain oneline.gtm.example.net {
        route default dual
        https { alpn h2; hints off }
    }
    domain plain.gtm.example.net {
        route default dual
    }
    domain cname.gtm.example.net {
        route default names
        https {
            alpn h3
        }
    }
}`

func httpsQuery(name string) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeHTTPS)
	m.SetEdns0(1232, false)
	return m
}

// The HTTPS record of a domain with `https`: ServiceMode, target ".", the fixed params,
// and hints that are the A and AAAA answers; a domain without it answers NODATA; a pool
// of names answers a CNAME as for every type.
func TestHTTPSAnswer(t *testing.T) {
	g := newTestGTM(t, httpsBlock)
	r := serve(t, g, httpsQuery("www.gtm.example.net."))
	if len(r.Answer) != 1 {
		t.Fatalf("answer %v, want one HTTPS record", r.Answer)
	}
	h, ok := asHTTPS(r.Answer[0])
	if !ok || h.Priority != 1 || h.Target != "." || h.Hdr.Ttl != 60 || !r.Authoritative {
		t.Fatalf("record %v (aa %v), want priority 1 target . ttl 60, authoritative", r.Answer[0], r.Authoritative)
	}
	// Packed and parsed again: what a client reads.
	wire, err := r.Pack()
	if err != nil {
		t.Fatal(err)
	}
	back := new(dns.Msg)
	if err := back.Unpack(wire); err != nil {
		t.Fatal(err)
	}
	text := back.Answer[0].String()
	for _, want := range []string{`alpn="h3,h2"`, `port="8443"`, "ipv4hint=", "192.0.2.1", "192.0.2.2", `ipv6hint="2001:db8::1"`} {
		if !strings.Contains(text, want) {
			t.Errorf("%s: missing %s", text, want)
		}
	}

	r = serve(t, g, httpsQuery("oneline.gtm.example.net."))
	if len(r.Answer) != 1 || strings.Contains(r.Answer[0].String(), "hint") || !strings.Contains(r.Answer[0].String(), `alpn="h2"`) {
		t.Fatalf("oneline: %v, want alpn h2 and no hints", r.Answer)
	}

	r = serve(t, g, httpsQuery("plain.gtm.example.net."))
	if len(r.Answer) != 0 || r.Rcode != dns.RcodeSuccess || len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != dns.TypeSOA {
		t.Fatalf("plain: %v, want NODATA with the SOA", r)
	}

	r = serve(t, g, httpsQuery("cname.gtm.example.net."))
	if len(r.Answer) != 1 || r.Answer[0].(*dns.CNAME).Target != "edge.example.org." {
		t.Fatalf("cname: %v, want the CNAME", r.Answer)
	}
}

// The hints are the addresses the A and AAAA queries get: a downed address leaves both.
func TestHTTPSHintsFollowHealth(t *testing.T) {
	g := newTestGTM(t, httpsBlock)
	cs := g.ctl.Snapshot()
	cs.Pool("dual").Addrs[0].Mode.Set(2) // down
	r := serve(t, g, httpsQuery("www.gtm.example.net."))
	h, ok := asHTTPS(r.Answer[0])
	if !ok {
		t.Fatalf("answer %v, want an HTTPS record", r.Answer)
	}
	var v4 []string
	for _, kv := range h.Value {
		if x, ok := kv.(*dns.SVCBIPv4Hint); ok {
			for _, ip := range x.Hint {
				v4 = append(v4, ip.String())
			}
		}
	}
	a := serve(t, g, query("www.gtm.example.net.", dns.TypeA))
	var got []string
	for _, rr := range a.Answer {
		got = append(got, rr.(*dns.A).A.String())
	}
	slices.Sort(v4)
	slices.Sort(got)
	if !slices.Equal(v4, got) || slices.Contains(v4, "192.0.2.1") {
		t.Fatalf("ipv4hint %v, A %v: want equal, without the downed 192.0.2.1", v4, got)
	}
}

func query(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return m
}

// Bad https and srv settings stop the Corefile with the line and what was wrong.
func TestHTTPSCorefileErrors(t *testing.T) {
	pre := "gtm gtm.example.net {\n    pool p {\n        address 192.0.2.1\n    }\n    pool n {\n        address edge.example.org\n    }\n    domain www.gtm.example.net {\n        route default p\n"
	for _, tc := range []struct{ body, want string }{
		{"        https {\n            ech abc\n        }\n", `Testfile:11 - Error during parsing: domain www.gtm.example.net.: https: unknown SvcParam key "ech"; expected alpn, port, hints`},
		{"        https {\n            key65000 x\n        }\n", `:11 - Error during parsing: domain www.gtm.example.net.: https: unknown SvcParam key "key65000"`},
		{"        https {\n            alpn\n        }\n", `:11 - Error during parsing: domain www.gtm.example.net.: https: alpn: expected at least one protocol ID`},
		{"        https { alpn; port 443 }\n", `:10 - Error during parsing: domain www.gtm.example.net.: https: alpn: expected at least one protocol ID`},
		{"        https {\n            port 65536\n        }\n", `:11 - Error during parsing: domain www.gtm.example.net.: https: port "65536": expected a number from 1 to 65535`},
		{"        https {\n            port 0\n        }\n", `port "0": expected a number from 1 to 65535`},
		{"        https 0 {\n            alpn h2\n        }\n", `:10 - Error during parsing: domain www.gtm.example.net.: https: priority "0": expected a number from 1 to 65535`},
		{"        https {\n            hints maybe\n        }\n", `https: hints: expected on or off`},
		{"        https {\n            alpn h2,h3\n        }\n", `:11 - Error during parsing: domain www.gtm.example.net.: https: alpn: protocol ID "h2,h3"`},
		{"        https {\n            alpn h2 h2\n        }\n", `https: alpn: "h2" listed twice`},
		{"        srv sip._udp 5060\n", `:10 - Error during parsing: domain www.gtm.example.net.: srv "sip._udp": expected _SERVICE._PROTO`},
		{"        srv _sip.udp 5060\n", `:10 - Error during parsing: domain www.gtm.example.net.: srv "_sip.udp": label "udp" must start with _`},
		{"        srv _sip._udp 70000\n", `:10 - Error during parsing: domain www.gtm.example.net.: srv _sip._udp: port 70000: expected a number from 1 to 65535`},
		{"        srv _sip._udp 0\n", `srv _sip._udp: port 0: expected a number from 1 to 65535`},
		{"        srv _sip._udp 5060 65536\n", `srv _sip._udp: priority 65536: expected a number from 0 to 65535`},
		{"        srv _sip._udp x\n", `srv _sip._udp: port "x": expected a number`},
		{"        srv _sip._udp 5060\n        srv _SIP._udp 5060\n", `:11 - Error during parsing: domain www.gtm.example.net.: srv _SIP._udp 5060: listed twice`},
	} {
		block := pre + tc.body + "    }\n}"
		_, err := parse(caddy.NewTestController("dns", block))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.body, err, tc.want)
		}
	}
	// https hints on with a pool of names.
	block := "gtm gtm.example.net {\n    pool n {\n        address edge.example.org\n    }\n    domain www.gtm.example.net {\n        route default n\n        https {\n            alpn h3\n            hints on\n        }\n    }\n}"
	_, err := parse(caddy.NewTestController("dns", block))
	if want := `Testfile:9 - Error during parsing: domain www.gtm.example.net.: https: hints on: the domain answers with pools of domain names (n)`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("hints on with names: %v, want %q", err, want)
	}
	// ... and the same without hints, or with hints off, is fine.
	for _, h := range []string{"", "            hints off\n"} {
		block := "gtm gtm.example.net {\n    pool n {\n        address edge.example.org\n    }\n    domain www.gtm.example.net {\n        route default n\n        https {\n            alpn h3\n" + h + "        }\n    }\n}"
		if _, err := parse(caddy.NewTestController("dns", block)); err != nil {
			t.Errorf("%q: %v", h, err)
		}
	}
}

// When no pool is available, HTTPS and SRV answer as A and AAAA do: fail-open (every
// address), the fallback pool, nodata (with the degraded TTL capping the negative one) or
// servfail (not authoritative).
func TestHTTPSAndSRVFallback(t *testing.T) {
	g := newTestGTM(t, `gtm gtm.example.net {
    pool main {
        address 192.0.2.1
        address 2001:db8::1
    }
    pool spare {
        address 198.51.100.1
    }
    domain open.gtm.example.net {
        route default main
        https
        srv _s._tcp 1
    }
    domain pool.gtm.example.net {
        route default main
        fallback spare
        https
        srv _s._tcp 1
    }
    domain nodata.gtm.example.net {
        route default main
        ttl 30 5
        fallback nodata
        https
        srv _s._tcp 1
    }
    domain servfail.gtm.example.net {
        route default main
        fallback servfail
        https
        srv _s._tcp 1
    }
}`)
	for _, a := range g.ctl.Snapshot().Pool("main").Addrs {
		a.Health = downHealth{}
	}
	for _, tc := range []struct {
		name  string
		rcode int
		want  []string // HTTPS hints (sorted), also the SRV targets' addresses
	}{
		{"open", dns.RcodeSuccess, []string{"192.0.2.1", "2001:db8::1"}},
		{"pool", dns.RcodeSuccess, []string{"198.51.100.1"}},
		{"nodata", dns.RcodeSuccess, nil},
		{"servfail", dns.RcodeServerFailure, nil},
	} {
		name := tc.name + ".gtm.example.net."
		for _, qt := range []uint16{dns.TypeHTTPS, dns.TypeSRV} {
			q := name
			if qt == dns.TypeSRV {
				q = "_s._tcp." + name
			}
			r := serve(t, g, query(q, qt))
			var got []string
			for _, rr := range r.Answer {
				if h, ok := asHTTPS(rr); ok {
					rr = h
				}
				switch x := rr.(type) {
				case *dns.HTTPS:
					for _, kv := range x.Value {
						if s := kv.String(); kv.Key() == dns.SVCB_IPV4HINT || kv.Key() == dns.SVCB_IPV6HINT {
							got = append(got, strings.Split(s, ",")...)
						}
					}
				case *dns.SRV:
					ip, _ := parseAddrLabel(strings.SplitN(x.Target, ".", 2)[0])
					got = append(got, ip.String())
				}
			}
			slices.Sort(got)
			if r.Rcode != tc.rcode || !slices.Equal(got, tc.want) || r.Authoritative != (tc.rcode == dns.RcodeSuccess) {
				t.Errorf("%s %s: rcode %s aa %v addresses %v, want %s %v", q, dns.TypeToString[qt], dns.RcodeToString[r.Rcode], r.Authoritative, got, dns.RcodeToString[tc.rcode], tc.want)
			}
			if tc.name == "nodata" && (len(r.Ns) != 1 || r.Ns[0].Header().Ttl != 5) {
				t.Errorf("%s %s: authority %v, want the SOA with the degraded TTL 5", q, dns.TypeToString[qt], r.Ns)
			}
		}
	}
}

// downHealth is a failed health check.
type downHealth struct{}

func (downHealth) Healthy() bool          { return false }
func (downHealth) RTT() (d time.Duration) { return }

// BenchmarkReplyHTTPS is BenchmarkReplyWeighted's pool and domain with `https`, asked HTTPS:
// two decisions and an SVCB record per reply, scrubbed and packed as the server does.
func BenchmarkReplyHTTPS(b *testing.B) {
	g := newTestGTM(b, `gtm gtm.example.net {
    pool web {
        address 192.0.2.1 weight 1
        address 192.0.2.2 weight 2
        address 192.0.2.3 weight 3
        address 192.0.2.4 weight 4
    }
    domain www.gtm.example.net {
        route default web
        https {
            alpn h3 h2
        }
    }
}`)
	m := new(dns.Msg)
	m.SetQuestion("www.gtm.example.net.", dns.TypeHTTPS)
	w := request.NewScrubWriter(m, &packWriter{})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		g.ServeDNS(ctx, w, m)
	}
}
