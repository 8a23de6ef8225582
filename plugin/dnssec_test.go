package gtm

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
)

// writeKey makes a key pair for zone as dnssec-keygen does (ECDSA P-256, the K<zone>+013+<tag>
// .key and .private files) and returns its base name and public key.
func writeTestKey(tb testing.TB, dir, zone string, flags uint16) (string, *dns.DNSKEY) {
	tb.Helper()
	k := &dns.DNSKEY{Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
		Flags: flags, Protocol: 3, Algorithm: dns.ECDSAP256SHA256}
	priv, err := k.Generate(256)
	if err != nil {
		tb.Fatal(err)
	}
	base := filepath.Join(dir, fmt.Sprintf("K%s+%03d+%05d", zone, k.Algorithm, k.KeyTag()))
	if err := os.WriteFile(base+".key", []byte(k.String()+"\n"), 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(base+".private", []byte(k.PrivateKeyString(priv)), 0o600); err != nil {
		tb.Fatal(err)
	}
	return base, k
}

const signedZone = `gtm gtm.example.net {
    %s
    dnssec {
        key file %s
        key file %s.key
    }
    pool web {
        address 192.0.2.1
        address 2001:db8::1
    }
    pool to-web {
        address web.gtm.example.net
    }
    pool to-missing {
        address missing.gtm.example.net
    }
    domain web.gtm.example.net {
        route default web
    }
    domain www.gtm.example.net {
        route default to-web
    }
    domain gone.gtm.example.net {
        route default to-missing
    }
}`

// newSignedGTM is a signed gtm block with two keys of the zone (a rollover: both sign).
func newSignedGTM(tb testing.TB, extra string) (*GTM, []*dns.DNSKEY) {
	tb.Helper()
	dir := tb.TempDir()
	b1, k1 := writeTestKey(tb, dir, "gtm.example.net.", 257)
	b2, k2 := writeTestKey(tb, dir, "gtm.example.net.", 257)
	block := fmt.Sprintf(signedZone, extra, b1, b2)
	g := newTestGTM(tb, block)
	cfg, err := parse(caddy.NewTestController("dns", block))
	if err != nil {
		tb.Fatal(err)
	}
	g.block = cfg
	return g, []*dns.DNSKEY{k1, k2}
}

func askDNSSEC(t *testing.T, g *GTM, name string, qtype uint16, do bool, subnet string) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if do || subnet != "" {
		m.SetEdns0(1232, do)
	}
	if subnet != "" {
		_, n, _ := net.ParseCIDR(subnet)
		bits, _ := n.Mask.Size()
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: uint8(bits), Address: n.IP})
	}
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	if _, err := g.ServeDNS(context.Background(), rec, m); err != nil {
		t.Fatal(err)
	}
	if rec.Msg == nil {
		t.Fatalf("%s %s: nothing written", name, dns.TypeToString[qtype])
	}
	return rec.Msg
}

// verifySigned checks that every RRset of the answer and authority sections carries a valid
// RRSIG, in its validity period, from every key.
func verifySigned(t *testing.T, m *dns.Msg, keys []*dns.DNSKEY) {
	t.Helper()
	for _, sec := range [][]dns.RR{m.Answer, m.Ns} {
		sets := map[[2]string][]dns.RR{}
		var sigs []*dns.RRSIG
		for _, rr := range sec {
			if s, ok := rr.(*dns.RRSIG); ok {
				sigs = append(sigs, s)
				continue
			}
			k := [2]string{strings.ToLower(rr.Header().Name), dns.TypeToString[rr.Header().Rrtype]}
			sets[k] = append(sets[k], rr)
		}
		for k, set := range sets {
			for _, key := range keys {
				i := slices.IndexFunc(sigs, func(s *dns.RRSIG) bool {
					return s.KeyTag == key.KeyTag() && strings.EqualFold(s.Hdr.Name, k[0]) && dns.TypeToString[s.TypeCovered] == k[1]
				})
				if i < 0 {
					t.Errorf("%s %s: no RRSIG by key %d in\n%s", k[0], k[1], key.KeyTag(), m)
					continue
				}
				if err := sigs[i].Verify(key, set); err != nil {
					t.Errorf("%s %s: RRSIG by key %d does not verify: %v", k[0], k[1], key.KeyTag(), err)
				}
				if !sigs[i].ValidityPeriod(time.Now()) {
					t.Errorf("%s %s: RRSIG outside its validity period: %s", k[0], k[1], sigs[i])
				}
			}
		}
	}
}

// nsecDenies checks the black lie for name: an NSEC at name, next \000.name, without qtype
// and CNAME in its bit map.
func nsecDenies(t *testing.T, m *dns.Msg, name string, qtype uint16) {
	t.Helper()
	for _, rr := range m.Ns {
		if n, ok := rr.(*dns.NSEC); ok && strings.EqualFold(n.Hdr.Name, name) {
			if n.NextDomain != `\000.`+name {
				t.Errorf("NSEC next %q, want \\000.%s", n.NextDomain, name)
			}
			if slices.Contains(n.TypeBitMap, qtype) || slices.Contains(n.TypeBitMap, dns.TypeCNAME) {
				t.Errorf("NSEC for %s lists %s or CNAME: %v", name, dns.TypeToString[qtype], n)
			}
			return
		}
	}
	t.Errorf("no NSEC for %s in\n%s", name, m)
}

func TestDNSSECSigns(t *testing.T) {
	g, keys := newSignedGTM(t, "")
	cases := []struct {
		name    string
		qtype   uint16
		answers []uint16 // the answer's types, RRSIGs aside
		denied  string   // the name an NSEC denies, "" for none
	}{
		{"web.gtm.example.net.", dns.TypeA, []uint16{dns.TypeA}, ""},
		{"web.gtm.example.net.", dns.TypeAAAA, []uint16{dns.TypeAAAA}, ""},
		{"www.gtm.example.net.", dns.TypeA, []uint16{dns.TypeCNAME, dns.TypeA}, ""},
		{"WWW.gtm.Example.net.", dns.TypeAAAA, []uint16{dns.TypeCNAME, dns.TypeAAAA}, ""},
		{"gone.gtm.example.net.", dns.TypeA, []uint16{dns.TypeCNAME}, "missing.gtm.example.net."},
		{"nope.gtm.example.net.", dns.TypeA, nil, "nope.gtm.example.net."},
		{"web.gtm.example.net.", dns.TypeMX, nil, "web.gtm.example.net."},
		{"gtm.example.net.", dns.TypeTXT, nil, "gtm.example.net."},
		{"gtm.example.net.", dns.TypeSOA, []uint16{dns.TypeSOA}, ""},
		{"gtm.example.net.", dns.TypeNS, []uint16{dns.TypeNS}, ""},
		{"gtm.example.net.", dns.TypeDNSKEY, []uint16{dns.TypeDNSKEY, dns.TypeDNSKEY}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name+dns.TypeToString[tc.qtype], func(t *testing.T) {
			m := askDNSSEC(t, g, tc.name, tc.qtype, true, "")
			if m.Rcode != dns.RcodeSuccess || !m.Authoritative {
				t.Errorf("rcode %s, aa %v; want NOERROR (black lies), aa", dns.RcodeToString[m.Rcode], m.Authoritative)
			}
			var types []uint16
			for _, rr := range m.Answer {
				if rr.Header().Rrtype != dns.TypeRRSIG {
					types = append(types, rr.Header().Rrtype)
				}
			}
			if !slices.Equal(types, tc.answers) {
				t.Errorf("answer types %v, want %v:\n%s", types, tc.answers, m)
			}
			verifySigned(t, m, keys)
			if tc.denied != "" {
				nsecDenies(t, m, tc.denied, tc.qtype)
			}
			if o := m.IsEdns0(); o == nil || !o.Do() {
				t.Errorf("reply without the DO bit: %v", o)
			}
		})
	}
}

func TestDNSSECOnlyWithDO(t *testing.T) {
	g, _ := newSignedGTM(t, "")
	for _, q := range []struct {
		name  string
		qtype uint16
		rcode int
	}{
		{"web.gtm.example.net.", dns.TypeA, dns.RcodeSuccess},
		{"nope.gtm.example.net.", dns.TypeA, dns.RcodeNameError},
	} {
		m := askDNSSEC(t, g, q.name, q.qtype, false, "")
		if m.Rcode != q.rcode {
			t.Errorf("%s: rcode %s without DO, want %s", q.name, dns.RcodeToString[m.Rcode], dns.RcodeToString[q.rcode])
		}
		for _, rr := range append(m.Answer, m.Ns...) {
			if typ := rr.Header().Rrtype; typ == dns.TypeRRSIG || typ == dns.TypeNSEC {
				t.Errorf("%s: %s without DO", q.name, rr)
			}
		}
	}
}

// The apex DNSKEY RRset is answered with or without DO (signed only with DO), also when
// fallthrough hands the apex to the next plugin.
func TestDNSSECKeysWithoutDO(t *testing.T) {
	for _, extra := range []string{"", "fallthrough"} {
		g, keys := newSignedGTM(t, extra)
		m := askDNSSEC(t, g, "gtm.example.net.", dns.TypeDNSKEY, false, "")
		var tags []uint16
		for _, rr := range m.Answer {
			k, ok := rr.(*dns.DNSKEY)
			if !ok {
				t.Errorf("%q: %s without DO", extra, rr)
				continue
			}
			tags = append(tags, k.KeyTag())
		}
		if want := []uint16{keys[0].KeyTag(), keys[1].KeyTag()}; len(tags) != 2 || !slices.Contains(tags, want[0]) || !slices.Contains(tags, want[1]) || !m.Authoritative {
			t.Errorf("%q: DNSKEY without DO: tags %v, want %v:\n%s", extra, tags, want, m)
		}
	}
}

func TestDNSSECWithECS(t *testing.T) {
	g, keys := newSignedGTM(t, "")
	for _, q := range []struct {
		name  string
		qtype uint16
	}{{"web.gtm.example.net.", dns.TypeA}, {"nope.gtm.example.net.", dns.TypeA}, {"gtm.example.net.", dns.TypeDNSKEY}} {
		m := askDNSSEC(t, g, q.name, q.qtype, true, "198.51.100.0/24")
		verifySigned(t, m, keys)
		if ecsScope(m) < 0 {
			t.Errorf("%s: signed answer without the ECS option:\n%s", q.name, m)
		}
		if o := m.IsEdns0(); o == nil || !o.Do() {
			t.Errorf("%s: no DO in the reply's OPT", q.name)
		}
	}
}

func ecsScope(m *dns.Msg) int {
	if o := m.IsEdns0(); o != nil {
		for _, opt := range o.Option {
			if e, ok := opt.(*dns.EDNS0_SUBNET); ok {
				return int(e.SourceScope)
			}
		}
	}
	return -1
}

// A hot name is signed once: the second answer carries the same (cached) signatures, which
// for ECDSA, whose signatures are randomised, means it was not signed again.
func TestDNSSECSignatureCache(t *testing.T) {
	g, _ := newSignedGTM(t, "")
	sigs := func() []string {
		var out []string
		for _, rr := range askDNSSEC(t, g, "web.gtm.example.net.", dns.TypeA, true, "").Answer {
			if s, ok := rr.(*dns.RRSIG); ok {
				out = append(out, s.Signature)
			}
		}
		return out
	}
	first, second := sigs(), sigs()
	if len(first) != 2 || !slices.Equal(first, second) {
		t.Errorf("signatures not reused:\n%v\n%v", first, second)
	}
}

// The next plugin's answers (fallthrough) go out signed too, and the apex DNSKEY is gtm's.
func TestDNSSECFallthrough(t *testing.T) {
	g, keys := newSignedGTM(t, "fallthrough")
	g.Next = plugin.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		if r.Question[0].Qtype == dns.TypeMX {
			m.Answer = []dns.RR{test.MX("gtm.example.net. 300 IN MX 10 mail.example.org.")}
		} else {
			m.Rcode = dns.RcodeNameError
			m.Ns = []dns.RR{test.SOA("gtm.example.net. 300 IN SOA ns1.example.org. hostmaster.example.org. 1 7200 1800 86400 30")}
		}
		w.WriteMsg(m)
		return dns.RcodeSuccess, nil
	})
	m := askDNSSEC(t, g, "gtm.example.net.", dns.TypeMX, true, "")
	if len(m.Answer) != 3 { // MX and an RRSIG by each key
		t.Errorf("MX from the next plugin:\n%s", m)
	}
	verifySigned(t, m, keys)
	m = askDNSSEC(t, g, "gtm.example.net.", dns.TypeDNSKEY, true, "192.0.2.0/24")
	if len(m.Answer) != 4 || ecsScope(m) != 0 {
		t.Errorf("DNSKEY with fallthrough:\n%s", m)
	}
	verifySigned(t, m, keys)
	m = askDNSSEC(t, g, "other.gtm.example.net.", dns.TypeA, true, "")
	verifySigned(t, m, keys)
	nsecDenies(t, m, "other.gtm.example.net.", dns.TypeA)
}

func TestParseDNSSEC(t *testing.T) {
	dir := t.TempDir()
	good, _ := writeTestKey(t, dir, "gtm.example.net.", 257)
	other, _ := writeTestKey(t, dir, "example.org.", 256)
	notZone, _ := writeTestKey(t, dir, "gtm.example.net.", 0)
	garbage := filepath.Join(dir, "Kbad")
	os.WriteFile(garbage+".key", []byte("this is not a key\n"), 0o644)
	os.WriteFile(garbage+".private", []byte("nor this\n"), 0o600)
	noPriv := filepath.Join(dir, "Knopriv")
	k, _ := os.ReadFile(good + ".key")
	os.WriteFile(noPriv+".key", k, 0o644)
	cases := []struct {
		name, body string
		line       int
		want       []string
	}{
		{"missing key file", "dnssec {\n key file " + dir + "/Kmissing\n}", 3, []string{"dnssec: key file " + dir + "/Kmissing", "no such file"}},
		{"missing private key", "dnssec {\n key file " + noPriv + "\n}", 3, []string{"Knopriv.private", "no such file"}},
		{"unreadable key", "dnssec {\n key file " + garbage + ".key\n}", 3, []string{"dnssec: key file " + garbage + ".key"}},
		{"key of another zone", "dnssec {\n key file " + good + "\n key file " + other + ".private\n}", 4, []string{"a key for example.org.", "does not serve", "zones: gtm.example.net."}},
		{"not a zone key", "dnssec {\n key file " + notZone + "\n}", 3, []string{"not a zone key"}},
		{"key listed twice", "dnssec {\n key file " + good + "\n key file " + good + ".key\n}", 4, []string{"listed twice"}},
		{"no key", "dnssec {\n cache_capacity 10\n}", 2, []string{"dnssec: no key"}},
		{"no block", "dnssec", 2, []string{"expected a block"}},
		{"zones as arguments", "dnssec example.org {\n key file " + good + "\n}", 2, []string{`unexpected "example.org"`}},
		{"key without file", "dnssec {\n key " + good + "\n}", 3, []string{"key: expected key file FILE"}},
		{"aws keys", "dnssec {\n key aws_secretsmanager x\n}", 3, []string{"key: expected key file FILE"}},
		{"bad cache capacity", "dnssec {\n key file " + good + "\n cache_capacity lots\n}", 4, []string{`cache_capacity "lots"`}},
		{"unknown directive", "dnssec {\n key file " + good + "\n nsec3\n}", 4, []string{`"nsec3"`, "key or cache_capacity"}},
		{"two dnssec blocks", "dnssec {\n key file " + good + "\n}\ndnssec {\n key file " + good + "\n}", 5, []string{"only one dnssec"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			input := "gtm gtm.example.net {\n" + tc.body + "\n}"
			_, err := parse(caddy.NewTestController("dns", input))
			if err == nil {
				t.Fatalf("no error for\n%s", input)
			}
			for _, w := range []string{"Testfile:" + itoa(tc.line) + " ", tc.want[0]} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			for _, w := range tc.want[1:] {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	// Relative key files are read below the server block's root, as the dnssec plugin does.
	c := caddy.NewTestController("dns", "gtm gtm.example.net {\n dnssec {\n key file "+filepath.Base(good)+"\n }\n}")
	dnsserver.GetConfig(c).Root = dir
	if b, err := parse(c); err != nil || b.dnssec == nil || len(b.dnssec.zones["gtm.example.net."].keys) != 1 {
		t.Errorf("relative key file under root: %v", err)
	}
}

// BenchmarkSignedAnswer is the query path of a hot signed name: the signatures come from
// the cache, as they do for every answer after the first.
func BenchmarkSignedAnswer(b *testing.B) {
	g, _ := newSignedGTM(b, "")
	for _, bc := range []struct {
		name string
		do   bool
	}{{"unsigned", false}, {"signed", true}} {
		b.Run(bc.name, func(b *testing.B) {
			m := new(dns.Msg)
			m.SetQuestion("web.gtm.example.net.", dns.TypeA)
			m.SetEdns0(1232, bc.do)
			w := &sigCounter{}
			ctx := context.Background()
			g.ServeDNS(ctx, w, m) // the first answer signs and fills the cache
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				g.ServeDNS(ctx, w, m)
			}
			if bc.do && w.sigs != 2 {
				b.Fatalf("%d RRSIGs in the answer, want 2", w.sigs)
			}
		})
	}
}

// sigCounter is a ResponseWriter that only counts the last answer's RRSIGs.
type sigCounter struct {
	test.ResponseWriter
	sigs int
}

func (d *sigCounter) WriteMsg(m *dns.Msg) error {
	d.sigs = 0
	for _, rr := range m.Answer {
		if rr.Header().Rrtype == dns.TypeRRSIG {
			d.sigs++
		}
	}
	return nil
}
