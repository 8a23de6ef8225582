package gtm

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"

	"github.com/gtm-dns/coredns-gtm/config"
	"github.com/gtm-dns/coredns-gtm/control"
	"github.com/gtm-dns/coredns-gtm/geo"
	"github.com/gtm-dns/coredns-gtm/geo/geotest"
	"github.com/gtm-dns/coredns-gtm/state"
)

// newTestGTM builds a handler from a gtm block the way setup and OnStartup do, without a
// server around it.
func newTestGTM(tb testing.TB, block string) *GTM {
	tb.Helper()
	cfg, err := parse(caddy.NewTestController("dns", block))
	if err != nil {
		tb.Fatal(err)
	}
	g := &GTM{Fall: cfg.fall, ecs: cfg.ecs, Next: test.NextHandler(dns.RcodeRefused, nil), block: cfg}
	if cfg.geoip != "" {
		if g.geo, err = geo.Open(cfg.geoip); err != nil {
			tb.Fatal(err)
		}
	}
	if cfg.asn != "" {
		if g.asn, err = geo.Open(cfg.asn); err != nil {
			tb.Fatal(err)
		}
	}
	cc := g.controlConfig()
	cc.Store = newMemStore(tb)
	if g.ctl, err = control.New(cc); err != nil {
		tb.Fatal(err)
	}
	if err := g.ctl.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { g.ctl.Stop(); g.closeDBs() })
	return g
}

// template is the prober's template of a check resource.
var template = control.Template

// staticSnapshot is b's resources res compiled as a block would, without probers.
func staticSnapshot(b *block, res *config.Config) *control.Snapshot {
	return control.NewStatic((&GTM{block: b}).controlConfig(), res, nil).Snapshot()
}

// newMemStore is an empty in-memory state, as a block without a state file has.
func newMemStore(tb testing.TB) *state.Store {
	tb.Helper()
	st, err := state.Open(context.Background(), state.NewMemory())
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

func geoDBs(tb testing.TB) (city, asn string) {
	tb.Helper()
	dir := tb.TempDir()
	city, asn = filepath.Join(dir, "city.mmdb"), filepath.Join(dir, "asn.mmdb")
	err := geotest.WriteCity(city, []geotest.CityNet{
		{CIDR: "81.2.69.0/24", Continent: "EU", Country: "GB", Region: "ENG", Lat: 51.5, Lon: -0.13},
		{CIDR: "1.0.16.0/20", Continent: "AS", Country: "JP", Region: "13", Lat: 35.69, Lon: 139.69},
		{CIDR: "2001:db8:100::/40", Continent: "AS", Country: "SG", Lat: 1.35, Lon: 103.82},
		{CIDR: "8.8.0.0/16", Continent: "NA", Country: "US", Region: "CA", Lat: 37.4, Lon: -122.1},
	})
	if err != nil {
		tb.Fatal(err)
	}
	if err := geotest.WriteASN(asn, []geotest.ASNNet{{CIDR: "8.8.8.0/24", ASN: 15169, Org: "GOOGLE"}}); err != nil {
		tb.Fatal(err)
	}
	return city, asn
}

func geoBlock(city, asn string) string {
	return `gtm gtm.example.net {
    geoip ` + city + `
    asn ` + asn + `
    pool eu {
        address 192.0.2.1
    }
    pool as {
        address 192.0.2.2
    }
    pool us {
        address 192.0.2.3
    }
    pool google {
        address 192.0.2.4
    }
    pool office {
        address 192.0.2.5
    }
    domain www.gtm.example.net {
        route continent:EU eu
        route continent:AS as
        route region:US-CA us
        route asn:15169 google
        route net:81.2.69.128/25 office
        route default eu
    }
    domain flat.gtm.example.net {
        route default eu
    }
}`
}

func ecsQuery(name string, family uint16, source uint8, addr string, scopeBits uint8) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	m.SetEdns0(1232, false)
	e := &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: family, SourceNetmask: source, SourceScope: scopeBits, Address: net.ParseIP(addr)}
	m.IsEdns0().Option = append(m.IsEdns0().Option, e)
	return m
}

func serve(t *testing.T, g *GTM, m *dns.Msg) *dns.Msg {
	t.Helper()
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	if _, err := g.ServeDNS(context.Background(), rec, m); err != nil {
		t.Fatal(err)
	}
	if rec.Msg == nil {
		t.Fatal("no response written")
	}
	return rec.Msg
}

func echoed(m *dns.Msg) *dns.EDNS0_SUBNET {
	if o := m.IsEdns0(); o != nil {
		for _, opt := range o.Option {
			if e, ok := opt.(*dns.EDNS0_SUBNET); ok {
				return e
			}
		}
	}
	return nil
}

func TestECSRoutingAndScope(t *testing.T) {
	city, asn := geoDBs(t)
	g := newTestGTM(t, geoBlock(city, asn))
	cases := []struct {
		name   string
		q      *dns.Msg
		answer string
		scope  int
	}{
		{"continent EU by the mmdb /24", ecsQuery("www.gtm.example.net.", 1, 25, "81.2.69.0", 0), "192.0.2.1", 25},
		{"net beats continent", ecsQuery("www.gtm.example.net.", 1, 25, "81.2.69.128", 0), "192.0.2.5", 25},
		{"continent AS, mmdb /20", ecsQuery("www.gtm.example.net.", 1, 24, "1.0.16.0", 0), "192.0.2.2", 20},
		{"asn beats region", ecsQuery("www.gtm.example.net.", 1, 24, "8.8.8.0", 0), "192.0.2.4", 24},
		{"region US-CA: the ASN miss holds for a /21", ecsQuery("www.gtm.example.net.", 1, 24, "8.8.4.0", 0), "192.0.2.3", 21},
		{"IPv6 subnet in the mmdb /40", ecsQuery("www.gtm.example.net.", 2, 48, "2001:db8:100::", 0), "192.0.2.2", 40},
		{"source prefix 0: unknown location", ecsQuery("www.gtm.example.net.", 1, 0, "0.0.0.0", 0), "192.0.2.1", 0},
		{"answer independent of the client", ecsQuery("flat.gtm.example.net.", 1, 24, "1.0.16.0", 0), "192.0.2.1", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := serve(t, g, tc.q)
			if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != tc.answer {
				t.Fatalf("answer %v, want %s", r.Answer, tc.answer)
			}
			e := echoed(r)
			if e == nil {
				t.Fatal("ECS option not echoed")
			}
			if int(e.SourceScope) != tc.scope {
				t.Fatalf("scope %d, want %d", e.SourceScope, tc.scope)
			}
			q := tc.q.IsEdns0().Option[0].(*dns.EDNS0_SUBNET)
			if e.SourceNetmask != q.SourceNetmask || e.Family != q.Family {
				t.Fatalf("echo changed source prefix or family: %+v", e)
			}
		})
	}
}

func TestECSInvalidIsFormErr(t *testing.T) {
	city, asn := geoDBs(t)
	g := newTestGTM(t, geoBlock(city, asn))
	for name, q := range map[string]*dns.Msg{
		"non-zero scope in a query":      ecsQuery("www.gtm.example.net.", 1, 24, "81.2.69.0", 8),
		"address bits beyond the prefix": ecsQuery("www.gtm.example.net.", 1, 16, "81.2.69.0", 0),
	} {
		if r := serve(t, g, q); r.Rcode != dns.RcodeFormatError {
			t.Errorf("%s: rcode %s, want FORMERR", name, dns.RcodeToString[r.Rcode])
		}
	}
}

// Every answer from the zone echoes a valid ECS option, with scope 0 when it is empty or does not
// depend on the client, and an invalid option is FORMERR for any name in the zone.
func TestECSEchoOnEveryZoneAnswer(t *testing.T) {
	city, asn := geoDBs(t)
	g := newTestGTM(t, geoBlock(city, asn))
	for _, tc := range []struct {
		name  string
		qtype uint16
		rcode int
	}{
		{"nope.gtm.example.net.", dns.TypeA, dns.RcodeNameError},
		{"gtm.example.net.", dns.TypeSOA, dns.RcodeSuccess},
		{"gtm.example.net.", dns.TypeNS, dns.RcodeSuccess},
		{"gtm.example.net.", dns.TypeA, dns.RcodeSuccess},
		{"www.gtm.example.net.", dns.TypeAAAA, dns.RcodeSuccess},
		{"www.gtm.example.net.", dns.TypeMX, dns.RcodeSuccess},
	} {
		q := ecsQuery(tc.name, 1, 24, "1.0.16.0", 0)
		q.Question[0].Qtype = tc.qtype
		r := serve(t, g, q)
		if r.Rcode != tc.rcode {
			t.Errorf("%s %s: rcode %s, want %s", tc.name, dns.TypeToString[tc.qtype], dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
		}
		e := echoed(r)
		if e == nil || e.SourceScope != 0 || e.SourceNetmask != 24 {
			t.Errorf("%s %s: echoed ECS %v, want 1.0.16.0/24 scope 0", tc.name, dns.TypeToString[tc.qtype], e)
		}
	}
	if r := serve(t, g, ecsQuery("nope.gtm.example.net.", 1, 24, "81.2.69.0", 8)); r.Rcode != dns.RcodeFormatError {
		t.Errorf("invalid ECS for an unmanaged name: rcode %s, want FORMERR", dns.RcodeToString[r.Rcode])
	}
}

func TestECSOff(t *testing.T) {
	city, asn := geoDBs(t)
	g := newTestGTM(t, "gtm gtm.example.net {\n ecs off\n"+geoBlock(city, asn)[len("gtm gtm.example.net {"):])
	r := serve(t, g, ecsQuery("www.gtm.example.net.", 1, 24, "1.0.16.0", 0))
	if echoed(r) != nil {
		t.Fatal("ecs off must not echo the option")
	}
	// The test writer's client is 10.240.0.1, unknown to the database: the default route.
	if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.1" {
		t.Fatalf("ecs off routes by the source address: %v", r.Answer)
	}
}

func BenchmarkServeDNSWeighted(b *testing.B) {
	g := newTestGTM(b, `gtm gtm.example.net {
    pool web {
        address 192.0.2.1 weight 1
        address 192.0.2.2 weight 2
        address 192.0.2.3 weight 3
        address 192.0.2.4 weight 4
    }
    domain www.gtm.example.net {
        route default web
    }
}`)
	m := new(dns.Msg)
	m.SetQuestion("www.gtm.example.net.", dns.TypeA)
	w := &packWriter{}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		g.ServeDNS(ctx, w, m)
	}
}

// BenchmarkServeDNSGeoECS is the geo path with ECS and health checks running (TCP probes
// every 100 ms against a local listener), answers packed as the server packs them.
func BenchmarkServeDNSGeoECS(b *testing.B) {
	city, asn := geoDBs(b)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	block := strings.Replace(geoBlock(city, asn), "    pool eu {", "    healthcheck hc {\n protocol tcp\n port "+port+"\n interval 1s\n timeout 900ms\n }\n    pool eu {", 1)
	block = strings.ReplaceAll(block, "        address 192.0.2.", "        healthcheck hc\n        address 127.0.0.")
	g := newTestGTM(b, block)
	qs := []*dns.Msg{
		ecsQuery("www.gtm.example.net.", 1, 24, "81.2.69.0", 0),
		ecsQuery("www.gtm.example.net.", 1, 24, "1.0.16.0", 0),
		ecsQuery("www.gtm.example.net.", 1, 24, "8.8.8.0", 0),
		ecsQuery("www.gtm.example.net.", 2, 48, "2001:db8:100::", 0),
	}
	w := &packWriter{}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		g.ServeDNS(ctx, w, qs[i&3])
		i++
	}
}

// A managed domain at the zone apex still answers SOA and NS; its A answer comes from the pool.
func TestManagedApex(t *testing.T) {
	g := newTestGTM(t, "gtm gtm.example.net {\n pool p {\n address 192.0.2.1\n }\n domain gtm.example.net {\n route default p\n }\n}")
	for qt, want := range map[uint16]uint16{dns.TypeSOA: dns.TypeSOA, dns.TypeNS: dns.TypeNS, dns.TypeA: dns.TypeA} {
		m := new(dns.Msg)
		m.SetQuestion("gtm.example.net.", qt)
		r := serve(t, g, m)
		if len(r.Answer) != 1 || r.Answer[0].Header().Rrtype != want {
			t.Errorf("%s at a managed apex: %v", dns.TypeToString[qt], r.Answer)
		}
	}
}
