package geo

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/gtm-dns/coredns-gtm/geo/geotest"
)

func testDBs(tb testing.TB) (city, asn string) {
	tb.Helper()
	dir := tb.TempDir()
	city, asn = filepath.Join(dir, "city.mmdb"), filepath.Join(dir, "asn.mmdb")
	if err := geotest.WriteCity(city, geotest.Demo()); err != nil {
		tb.Fatal(err)
	}
	if err := geotest.WriteASN(asn, geotest.DemoASN()); err != nil {
		tb.Fatal(err)
	}
	return city, asn
}

func TestCityAndASN(t *testing.T) {
	city, asn := testDBs(t)
	c, err := Open(city)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a, err := Open(asn)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if c.Kind() != KindCity || a.Kind() != KindASN {
		t.Fatalf("kinds %s %s", c.Kind(), a.Kind())
	}
	cases := []struct {
		ip                    string
		cont, country, region string
		prefix                int
		found                 bool
	}{
		{"1.0.16.1", "AS", "JP", "JP-13", 20, true},
		{"81.2.69.160", "EU", "GB", "GB-ENG", 24, true},
		{"203.0.113.5", "AS", "SG", "", 24, true},
		{"2001:db8:1::1", "EU", "FR", "FR-IDF", 48, true},
		{"::ffff:8.8.8.8", "NA", "US", "US-CA", 24, true}, // IPv4-mapped IPv6 is the IPv4 address
		{"127.2.0.1", "EU", "DE", "DE-HE", 16, true},      // loopback, for source-address tests
		{"9.9.9.9", "", "", "", 0, false},
		{"2001:db9::1", "", "", "", 0, false},
	}
	for _, tc := range cases {
		l, err := c.City(netip.MustParseAddr(tc.ip))
		if err != nil {
			t.Fatalf("%s: %v", tc.ip, err)
		}
		if l.Found != tc.found || l.Continent != tc.cont || l.Country != tc.country || l.Region != tc.region {
			t.Errorf("%s: %+v", tc.ip, l)
		}
		if tc.found && (l.Prefix != tc.prefix || !l.HasLocation) {
			t.Errorf("%s: prefix %d location %v, want /%d", tc.ip, l.Prefix, l.HasLocation, tc.prefix)
		}
		if !tc.found && l.Prefix == 0 {
			t.Errorf("%s: a miss must still report the network it fell in", tc.ip)
		}
		// The cache must give the same answer the second time.
		if l2, _ := c.City(netip.MustParseAddr(tc.ip)); l2 != l {
			t.Errorf("%s: cached lookup differs: %+v vs %+v", tc.ip, l2, l)
		}
	}
	n, bits, found, err := a.ASN(netip.MustParseAddr("8.8.8.8"))
	if err != nil || !found || n != 15169 || bits != 24 {
		t.Fatalf("ASN 8.8.8.8: %d /%d %v %v", n, bits, found, err)
	}
	if _, _, found, _ := a.ASN(netip.MustParseAddr("9.9.9.9")); found {
		t.Fatal("9.9.9.9 has no ASN in the demo data")
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.mmdb")
	os.WriteFile(garbage, []byte(strings.Repeat("not an mmdb ", 100)), 0o600)
	for path, want := range map[string]string{
		filepath.Join(dir, "missing.mmdb"): "does not exist",
		garbage:                            "not a readable MaxMind-format",
		dir:                                "is a directory",
	} {
		_, err := Open(path)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
			t.Errorf("Open(%s) = %v, want an error naming it and saying %q", path, err, want)
		}
	}
}

func TestContinentOf(t *testing.T) {
	for cc, want := range map[string]string{"DE": "EU", "JP": "AS", "US": "NA", "BR": "SA", "AU": "OC", "ZA": "AF", "AQ": "AN", "XX": ""} {
		if got := ContinentOf(cc); got != want {
			t.Errorf("ContinentOf(%s) = %q, want %q", cc, got, want)
		}
	}
}

func TestParseECS(t *testing.T) {
	mk := func(fam uint16, src, scope uint8, ip string) *dns.EDNS0_SUBNET {
		return &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: fam, SourceNetmask: src, SourceScope: scope, Address: net.ParseIP(ip)}
	}
	good := []*dns.EDNS0_SUBNET{
		mk(1, 24, 0, "192.0.2.0"),
		mk(2, 48, 0, "2001:db8:1::"),
		mk(1, 0, 0, "0.0.0.0"),
		mk(0, 0, 0, ""),
		mk(1, 32, 0, "192.0.2.7"),
	}
	for _, o := range good {
		s, err := ParseECS(o)
		if err != nil {
			t.Errorf("%v: %v", o, err)
			continue
		}
		if s.SourceBits != int(o.SourceNetmask) {
			t.Errorf("%v: bits %d", o, s.SourceBits)
		}
	}
	bad := map[string]*dns.EDNS0_SUBNET{
		"bad family":               mk(3, 24, 0, "192.0.2.0"),
		"family 0 with a prefix":   mk(0, 8, 0, ""),
		"IPv4 prefix beyond 32":    mk(1, 33, 0, "192.0.2.0"),
		"IPv6 prefix beyond 128":   mk(2, 129, 0, "2001:db8::"),
		"non-zero scope in query":  mk(1, 24, 24, "192.0.2.0"),
		"bits beyond the prefix":   mk(1, 16, 0, "192.0.2.0"),
		"IPv6 bits beyond prefix":  mk(2, 32, 0, "2001:db8:1::"),
		"IPv6 address in family 1": mk(1, 24, 0, "2001:db8::"),
	}
	for name, o := range bad {
		if _, err := ParseECS(o); err == nil {
			t.Errorf("%s: accepted %v", name, o)
		}
	}
}

func TestEchoRoundTrip(t *testing.T) {
	for _, o := range []*dns.EDNS0_SUBNET{
		{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.ParseIP("192.0.2.0")},
		{Code: dns.EDNS0SUBNET, Family: 2, SourceNetmask: 56, Address: net.ParseIP("2001:db8:1:200::")},
		{Code: dns.EDNS0SUBNET, Family: 0, SourceNetmask: 0},
	} {
		s, err := ParseECS(o)
		if err != nil {
			t.Fatal(err)
		}
		m := new(dns.Msg)
		m.SetQuestion("example.org.", dns.TypeA)
		m.SetEdns0(1232, false)
		m.IsEdns0().Option = []dns.EDNS0{s.Echo(17)}
		b, err := m.Pack()
		if err != nil {
			t.Fatalf("%v: pack: %v", o, err)
		}
		var back dns.Msg
		if err := back.Unpack(b); err != nil {
			t.Fatal(err)
		}
		e := back.IsEdns0().Option[0].(*dns.EDNS0_SUBNET)
		wantScope := uint8(17)
		if o.Family == 0 {
			wantScope = 0
		}
		if e.Family != o.Family || e.SourceNetmask != o.SourceNetmask || e.SourceScope != wantScope {
			t.Errorf("echo of %v came back as %v", o, e)
		}
	}
}

func FuzzParseECS(f *testing.F) {
	f.Add([]byte{0, 1, 24, 0, 192, 0, 2})
	f.Add([]byte{0, 2, 48, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 1})
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		// Raw option bytes go through miekg's own decoder, as from the wire.
		m := new(dns.Msg)
		m.SetQuestion("example.org.", dns.TypeA)
		m.SetEdns0(1232, false)
		m.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_LOCAL{Code: dns.EDNS0SUBNET, Data: b}}
		wire, err := m.Pack()
		if err != nil {
			return
		}
		var q dns.Msg
		if q.Unpack(wire) != nil || q.IsEdns0() == nil {
			return
		}
		for _, opt := range q.IsEdns0().Option {
			if o, ok := opt.(*dns.EDNS0_SUBNET); ok {
				if s, err := ParseECS(o); err == nil {
					s.Echo(s.SourceBits)
				}
			}
		}
	})
}

func BenchmarkCity(b *testing.B) {
	city, _ := testDBs(b)
	db, err := Open(city)
	if err != nil {
		b.Fatal(err)
	}
	ips := []netip.Addr{netip.MustParseAddr("1.0.16.1"), netip.MustParseAddr("81.2.69.160"), netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("2001:db8:1::1")}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		db.City(ips[i&3])
		i++
	}
}

func BenchmarkASN(b *testing.B) {
	_, asn := testDBs(b)
	db, err := Open(asn)
	if err != nil {
		b.Fatal(err)
	}
	ip := netip.MustParseAddr("8.8.8.8")
	b.ReportAllocs()
	for b.Loop() {
		db.ASN(ip)
	}
}
