package gtm

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"

	"github.com/gtm-dns/coredns-gtm/policy"
)

func TestAppendAddrs(t *testing.T) {
	addr := func(s string) *policy.Address {
		a := netip.MustParseAddr(s)
		return &policy.Address{Raw: net.IP(a.AsSlice())}
	}
	cname := &dns.CNAME{Hdr: hdr("a.example.", dns.TypeCNAME, 5), Target: "b.example."}
	for _, tc := range []struct {
		name   string
		before []dns.RR
		qtype  uint16
		addrs  []string
	}{
		{"one A", nil, dns.TypeA, []string{"192.0.2.1"}},
		{"two A", nil, dns.TypeA, []string{"192.0.2.1", "192.0.2.2"}},
		{"one AAAA", nil, dns.TypeAAAA, []string{"2001:db8::1"}},
		{"three AAAA", nil, dns.TypeAAAA, []string{"2001:db8::1", "2001:db8::2", "2001:db8::3"}},
		{"one A after a CNAME", []dns.RR{cname}, dns.TypeA, []string{"192.0.2.9"}},
		{"two AAAA after a CNAME", []dns.RR{cname}, dns.TypeAAAA, []string{"2001:db8::8", "2001:db8::9"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var addrs []*policy.Address
			for _, s := range tc.addrs {
				addrs = append(addrs, addr(s))
			}
			got := appendAddrs(tc.before, "b.example.", tc.qtype, 30, addrs)
			if len(got) != len(tc.before)+len(addrs) {
				t.Fatalf("%d records, want %d", len(got), len(tc.before)+len(addrs))
			}
			if len(tc.before) > 0 && got[0] != cname {
				t.Errorf("the records before are not kept: %v", got)
			}
			for i, s := range tc.addrs {
				rr := got[len(tc.before)+i]
				want := fmt.Sprintf("b.example.\t30\tIN\t%s\t%s", dns.TypeToString[tc.qtype], s)
				if rr.String() != want {
					t.Errorf("record %d: %q, want %q", i, rr.String(), want)
				}
			}
		})
	}
}

// A plugin that changes a reply's records in place (rewrite's ttl rule, cache's TTL
// capping) must not change the next reply: every reply has records of its own.
func TestReplyRecordsNotShared(t *testing.T) {
	g := newTestGTM(t, "gtm gtm.example.net {\n pool p {\n address 192.0.2.1\n address 192.0.2.2\n lb all\n }\n domain www.gtm.example.net {\n route default p\n ttl 30\n }\n}")
	for range 3 {
		m := new(dns.Msg)
		m.SetQuestion("www.gtm.example.net.", dns.TypeA)
		r := serve(t, g, m)
		if len(r.Answer) != 2 {
			t.Fatalf("answer %v, want both addresses", r.Answer)
		}
		for _, rr := range r.Answer {
			if rr.Header().Ttl != 30 || rr.Header().Name != "www.gtm.example.net." {
				t.Fatalf("a reply saw the previous one's change: %v", rr)
			}
			// What rewrite and cache do to the records of a reply (the address bytes are
			// the compiled snapshot's, read-only: no plugin writes into them).
			rr.Header().Ttl = 1
			rr.Header().Name = "rewritten.example."
		}
	}
}

// gtm writes without scrubbing: the server's ScrubWriter (which wraps every query's writer)
// still truncates an answer too large for the client's buffer.
func TestReplyScrubbedByServerWriter(t *testing.T) {
	var addrs strings.Builder
	for i := 1; i <= 60; i++ {
		fmt.Fprintf(&addrs, " address 192.0.2.%d\n", i)
	}
	g := newTestGTM(t, "gtm gtm.example.net {\n pool p {\n"+addrs.String()+" lb all\n }\n domain www.gtm.example.net {\n route default p\n }\n}")
	q := new(dns.Msg)
	q.SetQuestion("www.gtm.example.net.", dns.TypeA) // no EDNS: 512 bytes
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	if _, err := g.ServeDNS(context.Background(), request.NewScrubWriter(q, rec), q); err != nil {
		t.Fatal(err)
	}
	if rec.Msg == nil {
		t.Fatal("no reply")
	}
	if !rec.Msg.Truncated || len(rec.Msg.Answer) >= 60 {
		t.Fatalf("60 A records over 512 bytes: truncated %v with %d records", rec.Msg.Truncated, len(rec.Msg.Answer))
	}
	if n, err := rec.Msg.Pack(); err != nil || len(n) > 512 {
		t.Fatalf("packed reply of %d bytes (%v), want at most 512", len(n), err)
	}
}

// The benchmarks below write through request.ScrubWriter as CoreDNS's server does, so they
// count the scrub (truncate, length) and the pack the real reply path pays.

func BenchmarkReplyWeighted(b *testing.B) {
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
	w := request.NewScrubWriter(m, &packWriter{})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		g.ServeDNS(ctx, w, m)
	}
}

func BenchmarkReplyGeoECS(b *testing.B) {
	city, asn := geoDBs(b)
	g := newTestGTM(b, geoBlock(city, asn))
	qs := []*dns.Msg{
		ecsQuery("www.gtm.example.net.", 1, 24, "81.2.69.0", 0),
		ecsQuery("www.gtm.example.net.", 1, 24, "1.0.16.0", 0),
		ecsQuery("www.gtm.example.net.", 1, 24, "8.8.8.0", 0),
		ecsQuery("www.gtm.example.net.", 2, 48, "2001:db8:100::", 0),
	}
	ws := make([]dns.ResponseWriter, len(qs))
	for i, q := range qs {
		ws[i] = request.NewScrubWriter(q, &packWriter{})
	}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		g.ServeDNS(ctx, ws[i&3], qs[i&3])
		i++
	}
}
