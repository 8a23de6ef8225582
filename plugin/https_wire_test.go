package gtm

import (
	"bytes"
	"context"
	"crypto"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin/cache"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"

	"github.com/gtm-dns/coredns-gtm/policy"
)

// asHTTPS is the dns.HTTPS form of an HTTPS answer record: the record itself, or the one
// gtm's packed record (https_wire.go) stands for.
func asHTTPS(rr dns.RR) (*dns.HTTPS, bool) {
	switch x := rr.(type) {
	case *dns.HTTPS:
		return x, true
	case *dns.PrivateRR:
		if d, ok := x.Data.(*httpsRdata); ok && x.Hdr.Rrtype == dns.TypeHTTPS {
			h, err := d.record(x.Hdr)
			return h, err == nil
		}
	}
	return nil, false
}

// randomHTTPS is an https setting with random priority, alpn IDs (any bytes, 1 to 255
// long), port and hints.
func randomHTTPS(r *mrand.Rand) *policy.HTTPS {
	var params []dns.SVCBKeyValue
	if n := r.IntN(5); n > 0 {
		ids := make([]string, n)
		for i := range ids {
			l := 1 + r.IntN(12)
			if r.IntN(10) == 0 {
				l = 1 + r.IntN(255)
			}
			id := make([]byte, l)
			for j := range id {
				id[j] = byte(r.IntN(256))
			}
			ids[i] = string(id)
		}
		params = append(params, &dns.SVCBAlpn{Alpn: ids})
	}
	if r.IntN(2) == 0 {
		params = append(params, &dns.SVCBPort{Port: uint16(r.IntN(65536))})
	}
	return policy.NewHTTPS(uint16(1+r.IntN(65535)), params, r.IntN(4) != 0)
}

// randomAddrs is n random addresses of family fam, as compile makes them.
func randomAddrs(r *mrand.Rand, fam policy.Family, n int) []*policy.Address {
	out := make([]*policy.Address, n)
	for i := range out {
		var ip netip.Addr
		if fam == policy.IPv4 {
			ip = netip.AddrFrom4([4]byte{byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
		} else {
			var b [16]byte
			for j := range b {
				b[j] = byte(r.IntN(256))
			}
			b[0] = 0x20 // never IPv4-mapped
			ip = netip.AddrFrom16(b)
		}
		out[i] = &policy.Address{IP: ip, Raw: ip.AsSlice()}
	}
	return out
}

// packWith packs a reply to name's HTTPS query with answer, compressed or not.
func packWith(t *testing.T, name string, compress bool, answer ...dns.RR) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeHTTPS)
	m.Id, m.Response, m.Authoritative, m.Compress = 27, true, true, compress
	m.Answer = answer
	b, err := m.Pack()
	if err != nil {
		t.Fatalf("pack %v: %v", answer, err)
	}
	return b
}

// gtm's packed HTTPS record is byte for byte miekg/dns's dns.HTTPS of the same data, for
// random params and hints, alone and after a CNAME (name compression), compressed or not;
// it prints, measures and copies as that record does, and a client parses it back into it.
func TestHTTPSWireMatchesMiekg(t *testing.T) {
	r := mrand.New(mrand.NewPCG(27, 1))
	cname := &dns.CNAME{Hdr: hdr("a.gtm.example.net.", dns.TypeCNAME, 30), Target: "www.gtm.example.net."}
	for i := range 3000 {
		h := randomHTTPS(r)
		v4 := randomAddrs(r, policy.IPv4, r.IntN(10))
		v6 := randomAddrs(r, policy.IPv6, r.IntN(6))
		if i%7 == 0 {
			v4 = nil
		}
		name, ttl := "www.gtm.example.net.", uint32(r.IntN(1<<31))
		want := httpsRecord(h, name, ttl, raws(v4), raws(v6))
		ans := appendHTTPS(nil, h, name, ttl, v4, v6)
		if len(ans) != 1 {
			t.Fatalf("case %d: %d records", i, len(ans))
		}
		got := ans[0]
		if _, ok := got.(*dns.PrivateRR); !ok {
			t.Fatalf("case %d: %T, want gtm's packed record", i, got)
		}
		for _, compress := range []bool{false, true} {
			w := packWith(t, name, compress, want)
			if g := packWith(t, name, compress, got); !bytes.Equal(g, w) {
				t.Fatalf("case %d (compress %v): %s\npacked %x\nmiekg  %x", i, compress, want, g, w)
			}
			w = packWith(t, "a.gtm.example.net.", compress, cname, want)
			if g := packWith(t, "a.gtm.example.net.", compress, cname, got); !bytes.Equal(g, w) {
				t.Fatalf("case %d after a CNAME (compress %v): packed %x, miekg %x", i, compress, g, w)
			}
		}
		if got.String() != want.String() {
			t.Fatalf("case %d: String %q, want %q", i, got.String(), want.String())
		}
		if dns.Len(got) != dns.Len(want) {
			t.Fatalf("case %d: Len %d, want %d", i, dns.Len(got), dns.Len(want))
		}
		cp := dns.Copy(got)
		if !bytes.Equal(packWith(t, name, false, cp), packWith(t, name, false, want)) {
			t.Fatalf("case %d: the copy packs differently", i)
		}
		if &cp.(*dns.PrivateRR).Data.(*httpsRdata).b[0] == &got.(*dns.PrivateRR).Data.(*httpsRdata).b[0] {
			t.Fatalf("case %d: the copy shares its bytes", i)
		}
		back := new(dns.Msg)
		if err := back.Unpack(packWith(t, name, true, got)); err != nil {
			t.Fatalf("case %d: unpack: %v", i, err)
		}
		if hb, ok := back.Answer[0].(*dns.HTTPS); !ok || hb.String() != want.String() {
			t.Fatalf("case %d: parsed back %v, want %v", i, back.Answer[0], want)
		}
	}
}

// Answers that the packer does not handle are miekg/dns's record, which fails to pack as it
// always did: an IPv4-mapped address as ipv6hint.
func TestHTTPSWireFallback(t *testing.T) {
	h := policy.NewHTTPS(1, []dns.SVCBKeyValue{&dns.SVCBAlpn{Alpn: []string{"h2"}}}, true)
	mapped := netip.MustParseAddr("::ffff:192.0.2.1")
	v6 := []*policy.Address{{IP: mapped, Raw: net.IP(mapped.AsSlice())}}
	ans := appendHTTPS(nil, h, "www.gtm.example.net.", 30, nil, v6)
	if _, ok := ans[0].(*dns.HTTPS); !ok {
		t.Fatalf("%T, want miekg/dns's record", ans[0])
	}
	m := new(dns.Msg)
	m.SetQuestion("www.gtm.example.net.", dns.TypeHTTPS)
	m.Answer = ans
	if _, err := m.Pack(); err == nil {
		t.Fatal("an IPv4-mapped ipv6hint packed")
	}
	// A record whose fixed part did not pack (no Wire) is built from Params.
	h = &policy.HTTPS{Priority: 1, Params: []dns.SVCBKeyValue{&dns.SVCBPort{Port: 443}}, Hints: true}
	ans = appendHTTPS(nil, h, "www.gtm.example.net.", 30, randomAddrs(mrand.New(mrand.NewPCG(1, 2)), policy.IPv4, 2), nil)
	if rr, ok := ans[0].(*dns.HTTPS); !ok || len(rr.Value) != 2 {
		t.Fatalf("%v, want miekg/dns's record with port and ipv4hint", ans[0])
	}
}

// A signature over gtm's packed record verifies over miekg/dns's record of the same data and
// the other way round: RRSIG.Sign copies and packs both the same.
func TestHTTPSWireSigned(t *testing.T) {
	key := &dns.DNSKEY{Hdr: hdr("gtm.example.net.", dns.TypeDNSKEY, 3600), Flags: 257, Protocol: 3, Algorithm: dns.ECDSAP256SHA256}
	pk, err := key.Generate(256)
	if err != nil {
		t.Fatal(err)
	}
	priv := pk.(crypto.Signer)
	r := mrand.New(mrand.NewPCG(27, 2))
	for i := range 50 {
		h := randomHTTPS(r)
		v4, v6 := randomAddrs(r, policy.IPv4, r.IntN(4)), randomAddrs(r, policy.IPv6, r.IntN(3))
		ours := appendHTTPS(nil, h, "www.gtm.example.net.", 60, v4, v6)
		theirs := []dns.RR{httpsRecord(h, "www.gtm.example.net.", 60, raws(v4), raws(v6))}
		for _, pair := range [][2][]dns.RR{{ours, theirs}, {theirs, ours}} {
			sig := &dns.RRSIG{Hdr: hdr("www.gtm.example.net.", dns.TypeRRSIG, 60), Algorithm: key.Algorithm,
				KeyTag: key.KeyTag(), SignerName: key.Hdr.Name, OrigTtl: 60, Inception: 1, Expiration: 1 << 31}
			if err := sig.Sign(priv, pair[0]); err != nil {
				t.Fatalf("case %d: sign: %v", i, err)
			}
			if sig.TypeCovered != dns.TypeHTTPS {
				t.Fatalf("case %d: the RRSIG covers %s", i, dns.TypeToString[sig.TypeCovered])
			}
			if err := sig.Verify(key, pair[1]); err != nil {
				t.Fatalf("case %d: verify: %v", i, err)
			}
		}
	}
}

// CoreDNS's cache before gtm stores the packed record and answers copies of it (dns.Copy,
// through the generator the template carries): the cached answer is the same record.
func TestHTTPSThroughCache(t *testing.T) {
	g := newTestGTM(t, httpsBlock)
	c := cache.New()
	c.Zones, c.Next = []string{"."}, g
	var texts []string
	for range 2 {
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		if _, err := c.ServeDNS(context.Background(), rec, httpsQuery("www.gtm.example.net.")); err != nil {
			t.Fatal(err)
		}
		if rec.Msg == nil || len(rec.Msg.Answer) != 1 {
			t.Fatalf("answer %v, want one HTTPS record", rec.Msg)
		}
		wire, err := rec.Msg.Pack()
		if err != nil {
			t.Fatal(err)
		}
		back := new(dns.Msg)
		if err := back.Unpack(wire); err != nil {
			t.Fatal(err)
		}
		h, ok := back.Answer[0].(*dns.HTTPS)
		if !ok {
			t.Fatalf("%v, want an HTTPS record", back.Answer[0])
		}
		h.Hdr.Ttl = 0 // the cache counts it down
		texts = append(texts, h.String())
	}
	if texts[0] != texts[1] || !strings.Contains(texts[0], `alpn="h3,h2"`) || !strings.Contains(texts[0], "ipv6hint") {
		t.Fatalf("first %q, from the cache %q", texts[0], texts[1])
	}
}
