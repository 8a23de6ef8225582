package gtm

import (
	"crypto"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/pkg/nonwriter"
	"github.com/coredns/coredns/plugin/test"
	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"

	"github.com/gtm-dns/coredns-gtm/policy"
)

// wrapper is a writer as plugins make them: a struct embedding the writer it wraps.
type wrapper struct{ dns.ResponseWriter }

// unexportedWrapper embeds through an unexported field name: not unwrapped (and no panic).
type unexportedWrapper struct{ w dns.ResponseWriter }

func (u *unexportedWrapper) WriteMsg(m *dns.Msg) error   { return u.w.WriteMsg(m) }
func (u *unexportedWrapper) Write(b []byte) (int, error) { return u.w.Write(b) }
func (u *unexportedWrapper) Close() error                { return u.w.Close() }
func (u *unexportedWrapper) TsigStatus() error           { return u.w.TsigStatus() }
func (u *unexportedWrapper) TsigTimersOnly(b bool)       { u.w.TsigTimersOnly(b) }
func (u *unexportedWrapper) Hijack()                     { u.w.Hijack() }
func (u *unexportedWrapper) LocalAddr() net.Addr         { return u.w.LocalAddr() }
func (u *unexportedWrapper) RemoteAddr() net.Addr        { return u.w.RemoteAddr() }
func (u *unexportedWrapper) Network() string             { return "udp" }

func TestCapturedWriter(t *testing.T) {
	client := &test.ResponseWriter{}
	r := new(dns.Msg)
	r.SetQuestion("www.gtm.test.", dns.TypeA)
	for name, tc := range map[string]struct {
		w    dns.ResponseWriter
		want bool
	}{
		"client":                      {client, false},
		"client through wrappers":     {request.NewScrubWriter(r, &wrapper{ResponseWriter: dnstest.NewRecorder(client)}), false},
		"nonwriter":                   {nonwriter.New(client), true},
		"nonwriter in server's scrub": {request.NewScrubWriter(r, nonwriter.New(client)), true},
		"nonwriter under wrappers":    {dnstest.NewRecorder(&wrapper{ResponseWriter: request.NewScrubWriter(r, nonwriter.New(client))}), true},
		"opaque wrapper":              {&unexportedWrapper{w: nonwriter.New(client)}, false},
		"nil inner":                   {&wrapper{}, false},
	} {
		if got := capturedWriter(tc.w); got != tc.want {
			t.Errorf("%s: captured %v, want %v", name, got, tc.want)
		}
	}
}

func TestExistsWriter(t *testing.T) {
	own := &dns.SOA{Hdr: hdr("gtm.test.", dns.TypeSOA, 30), Ns: "ns1.gtm.test.", Mbox: "h.gtm.test.", Minttl: 30}
	theirs := &dns.SOA{Hdr: hdr("gtm.test.", dns.TypeSOA, 60), Ns: "ns.gtm.test.", Mbox: "x.gtm.test.", Minttl: 60}
	for name, tc := range map[string]struct {
		in        *dns.Msg
		rcode     int
		authority dns.RR
	}{
		"NXDOMAIN with the zone's SOA": {&dns.Msg{MsgHdr: dns.MsgHdr{Rcode: dns.RcodeNameError}, Ns: []dns.RR{theirs}}, dns.RcodeSuccess, theirs},
		"NXDOMAIN without SOA":         {&dns.Msg{MsgHdr: dns.MsgHdr{Rcode: dns.RcodeNameError}}, dns.RcodeSuccess, own},
		"NODATA stays":                 {&dns.Msg{Ns: []dns.RR{theirs}}, dns.RcodeSuccess, theirs},
		"REFUSED stays":                {&dns.Msg{MsgHdr: dns.MsgHdr{Rcode: dns.RcodeRefused}}, dns.RcodeRefused, nil},
	} {
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		existsWriterFor(rec, own).WriteMsg(tc.in)
		got := rec.Msg
		var auth dns.RR
		if len(got.Ns) > 0 {
			auth = got.Ns[0]
		}
		if got.Rcode != tc.rcode || auth != tc.authority {
			t.Errorf("%s: rcode %s, authority %v", name, dns.RcodeToString[got.Rcode], got.Ns)
		}
	}
}

func TestNoPoolAnswers(t *testing.T) {
	v4 := &policy.Pool{Addrs: []*policy.Address{{IP: netip.MustParseAddr("192.0.2.1")}}}
	v6 := &policy.Pool{Addrs: []*policy.Address{{IP: netip.MustParseAddr("2001:db8::1")}}}
	names := &policy.Pool{CNAME: true}
	d := func(fallback *policy.Pool, pools ...*policy.Pool) *policy.Domain {
		return &policy.Domain{Routes: []*policy.Route{{Pools: pools}}, FallbackPool: fallback}
	}
	for _, tc := range []struct {
		d     *policy.Domain
		qtype uint16
		want  bool
	}{
		{d(nil, v4), dns.TypeAAAA, true},
		{d(nil, v4), dns.TypeA, false},
		{d(nil, v4, v6), dns.TypeAAAA, false},
		{d(v6, v4), dns.TypeAAAA, false}, // the fallback pool answers AAAA
		{d(nil, v4, v6), dns.TypeMX, true},
		{d(nil, names), dns.TypeMX, false}, // a CNAME answers every type
	} {
		if got := noPoolAnswers(tc.d, tc.qtype); got != tc.want {
			t.Errorf("%v for %s: %v, want %v", tc.d.Routes[0].Pools, dns.TypeToString[tc.qtype], got, tc.want)
		}
	}
}

// RFC 4034 section 3.1.4: the original TTL is the RRset's, and the signature verifies.
func TestRRSIGOriginalTTLIsTheRRsets(t *testing.T) {
	key := &dns.DNSKEY{Hdr: hdr("gtm.test.", dns.TypeDNSKEY, 3600), Flags: 257, Protocol: 3, Algorithm: dns.ECDSAP256SHA256}
	priv, err := key.Generate(256)
	if err != nil {
		t.Fatal(err)
	}
	s := newSigner([]*zoneKey{{K: key, s: priv.(crypto.Signer), tag: key.KeyTag()}}, 100, "test")
	for _, ttl := range []uint32{60, 3600, 86400} {
		m := new(dns.Msg)
		m.SetQuestion("www.gtm.test.", dns.TypeA)
		m.Answer = []dns.RR{&dns.A{Hdr: hdr("www.gtm.test.", dns.TypeA, ttl), A: []byte{192, 0, 2, 1}}}
		m = s.sign("www.gtm.test.", dns.TypeA, m, time.Now())
		if len(m.Answer) != 2 {
			t.Fatalf("ttl %d: %v", ttl, m.Answer)
		}
		sig := m.Answer[1].(*dns.RRSIG)
		if sig.OrigTtl != ttl || sig.Hdr.Ttl != ttl {
			t.Errorf("ttl %d: RRSIG original TTL %d, TTL %d", ttl, sig.OrigTtl, sig.Hdr.Ttl)
		}
		if err := sig.Verify(key, m.Answer[:1]); err != nil {
			t.Errorf("ttl %d: %v", ttl, err)
		}
	}
}
