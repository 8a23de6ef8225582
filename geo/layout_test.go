package geo

import (
	"bytes"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
	"github.com/miekg/dns"

	"github.com/gtm-dns/coredns-gtm/geo/geotest"
)

func open(t *testing.T, path string) *DB {
	t.Helper()
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// writeTree writes a custom tree: records of any layout, IPv4 or IPv6 trees.
func writeTree(t *testing.T, dbType string, ipVersion int, nets map[string]mmdbtype.Map) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: dbType, IPVersion: ipVersion, RecordSize: 24, IncludeReservedNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	for cidr, rec := range nets {
		_, n, _ := net.ParseCIDR(cidr)
		if err := tree.Insert(n, rec); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "custom.mmdb")
	if err := geotest.Write(path, tree); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestKinds(t *testing.T) {
	dir := t.TempDir()
	city, country, flat, asn := filepath.Join(dir, "c.mmdb"), filepath.Join(dir, "n.mmdb"), filepath.Join(dir, "f.mmdb"), filepath.Join(dir, "a.mmdb")
	for _, err := range []error{
		geotest.WriteCity(city, geotest.Demo()),
		geotest.WriteCountry(country, geotest.Demo()),
		geotest.WriteFlatCity(flat, geotest.Demo()),
		geotest.WriteASN(asn, geotest.DemoASN()),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	asnRec := mmdbtype.Map{"autonomous_system_number": mmdbtype.Uint32(64500), "isp": mmdbtype.String("x")}
	for _, tc := range []struct {
		path string
		want Kind
	}{
		{city, KindCity},
		{country, KindCountry},
		{flat, KindCity},
		{asn, KindASN},
		// No telling type in the metadata: the records decide.
		{writeTree(t, "GeoIP2-ISP", 6, map[string]mmdbtype.Map{"192.0.2.0/24": asnRec}), KindASN},
		{writeTree(t, "custom", 6, map[string]mmdbtype.Map{"192.0.2.0/24": {"country_code": mmdbtype.String("de")}}), KindCountry},
		{writeTree(t, "custom", 4, map[string]mmdbtype.Map{"192.0.2.0/24": {"latitude": mmdbtype.Float64(1), "longitude": mmdbtype.Float64(2)}}), KindCity},
	} {
		if got := open(t, tc.path).Kind(); got != tc.want {
			t.Errorf("%s: kind %s, want %s", tc.path, got, tc.want)
		}
	}
	// The records decide nothing: the error says what the file holds and what was expected.
	path := writeTree(t, "Anonymous-IP", 6, map[string]mmdbtype.Map{"192.0.2.0/24": {"is_anonymous": mmdbtype.Bool(true)}})
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "neither locations") {
		t.Errorf("Open(anonymous-ip db) = %v", err)
	}
	empty := writeTree(t, "custom", 6, nil)
	if _, err := Open(empty); err == nil || !strings.Contains(err.Error(), "no networks") {
		t.Errorf("Open(empty db) = %v", err)
	}
}

// TestLayouts: the same network reads the same through every supported layout (continent
// derived from the country where the file has none; no region from subdivision names).
func TestLayouts(t *testing.T) {
	dir := t.TempDir()
	ip := netip.MustParseAddr("81.2.69.160")
	for name, write := range map[string]func(string, []geotest.CityNet) error{
		"GeoIP2-City": geotest.WriteCity, "GeoIP2-Country": geotest.WriteCountry, "ip-location-db": geotest.WriteFlatCity,
	} {
		path := filepath.Join(dir, name+".mmdb")
		if err := write(path, geotest.Demo()); err != nil {
			t.Fatal(err)
		}
		l, err := open(t, path).City(ip)
		if err != nil || !l.Found || l.Continent != "EU" || l.Country != "GB" || l.Prefix != 24 {
			t.Errorf("%s: %+v %v", name, l, err)
		}
		switch name {
		case "GeoIP2-City":
			if l.Region != "GB-ENG" || !l.HasLocation || math.Abs(l.Lat-51.51) > 1e-9 {
				t.Errorf("%s: %+v", name, l)
			}
		case "GeoIP2-Country":
			if l.Region != "" || l.HasLocation {
				t.Errorf("%s: %+v", name, l)
			}
		case "ip-location-db":
			if l.Region != "" || !l.HasLocation || math.Abs(l.Lat-51.51) > 1e-4 {
				t.Errorf("%s: %+v", name, l)
			}
		}
	}
}

func TestLoopbackAndPrefixes(t *testing.T) {
	city, asn := testDBs(t)
	c, a := open(t, city), open(t, asn)
	for _, tc := range []struct {
		ip      string
		country string
		prefix  int
	}{
		{"127.2.0.1", "DE", 16},
		{"127.1.255.254", "JP", 16},
		{"::ffff:127.3.0.9", "US", 16},
		{"127.0.0.1", "", 16},        // 127.0.0.0/16 is empty, next to 127.1/16
		{"2001:db8:3::53", "US", 48}, // documentation IPv6
		{"2001:db8:4::1", "", 48},    // the empty sibling of 2001:db8:3::/48... down to /46
		{"2002:801:101::1", "", 0},   // 6to4 of 8.1.1.1 (no data): aliased to IPv4 space
		{"2002:808:808::1", "US", 0}, // 6to4 of 8.8.8.8: the alias finds 8.8.8.0/24
	} {
		l, err := c.City(netip.MustParseAddr(tc.ip))
		if err != nil {
			t.Fatalf("%s: %v", tc.ip, err)
		}
		if l.Country != tc.country || l.Found != (tc.country != "") {
			t.Errorf("%s: %+v, want %q", tc.ip, l, tc.country)
		}
		if tc.prefix != 0 && tc.country != "" && l.Prefix != tc.prefix {
			t.Errorf("%s: prefix %d, want %d", tc.ip, l.Prefix, tc.prefix)
		}
		if netip.MustParseAddr(tc.ip).Unmap().Is4() && (l.Prefix < 1 || l.Prefix > 32) {
			t.Errorf("%s: IPv4 prefix %d out of range", tc.ip, l.Prefix)
		}
	}
	if n, bits, found, err := a.ASN(netip.MustParseAddr("127.2.3.4")); err != nil || !found || n != 3320 || bits != 16 {
		t.Errorf("ASN 127.2.3.4: %d /%d %v %v", n, bits, found, err)
	}
	if _, err := c.City(netip.Addr{}); err == nil {
		t.Error("the zero Addr must be an error")
	}
}

// TestIPv4PrefixWithoutIPv4Data: an IPv6 tree holding no IPv4 networks stops above ::/96 for
// an IPv4 address; its prefix in IPv4 terms is 0, not the IPv6 depth.
func TestIPv4PrefixWithoutIPv4Data(t *testing.T) {
	path := writeTree(t, "GeoIP2-Country", 6, map[string]mmdbtype.Map{
		"2001:db8::/32": {"country": mmdbtype.Map{"iso_code": mmdbtype.String("DE")}},
	})
	tree, _ := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoIP2-Country", DisableIPv4Aliasing: true, IncludeReservedNetworks: true})
	_, n, _ := net.ParseCIDR("2001:db8::/32")
	tree.Insert(n, mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String("DE")}})
	noAlias := filepath.Join(t.TempDir(), "noalias.mmdb")
	if err := geotest.Write(noAlias, tree); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, noAlias} {
		l, err := open(t, p).City(netip.MustParseAddr("192.0.2.1"))
		if err != nil || l.Found || l.Prefix < 0 || l.Prefix > 32 {
			t.Errorf("%s: %+v %v", p, l, err)
		}
	}
}

// TestIPv4OnlyTree: an IPv6 client of an IPv4-only database (like DB-IP's ipv4 files) is a
// miss with prefix 0, not an error: no IPv6 client differs from another there.
func TestIPv4OnlyTree(t *testing.T) {
	path := writeTree(t, "city ipv4", 4, map[string]mmdbtype.Map{
		"192.0.2.0/24": {"country_code": mmdbtype.String("JP"), "latitude": mmdbtype.Float32(35.7), "longitude": mmdbtype.Float32(139.7)},
	})
	db := open(t, path)
	l, err := db.City(netip.MustParseAddr("192.0.2.77"))
	if err != nil || !l.Found || l.Country != "JP" || l.Continent != "AS" || l.Prefix != 24 {
		t.Errorf("192.0.2.77: %+v %v", l, err)
	}
	for _, ip := range []string{"2001:db8::1", "::ffff:192.0.2.77"} {
		l, err := db.City(netip.MustParseAddr(ip))
		if err != nil {
			t.Errorf("%s: %v", ip, err)
		}
		if ip == "2001:db8::1" && (l.Found || l.Prefix != 0) {
			t.Errorf("%s: %+v", ip, l)
		}
		if ip != "2001:db8::1" && l.Country != "JP" {
			t.Errorf("%s (IPv4-mapped): %+v", ip, l)
		}
	}
}

func TestOpenCorrupt(t *testing.T) {
	city, _ := testDBs(t)
	good, err := os.ReadFile(city)
	if err != nil {
		t.Fatal(err)
	}
	meta := bytes.LastIndex(good, []byte("\xab\xcd\xefMaxMind.com"))
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// Everything before the metadata overwritten: the tree points nowhere.
	mangled := bytes.Clone(good)
	for i := range meta {
		mangled[i] = 0xff
	}
	for path, want := range map[string]string{
		write("truncated.mmdb", good[:len(good)/2]): "not a readable MaxMind-format",
		write("mangled.mmdb", mangled):              "corrupt",
		write("empty.mmdb", nil):                    "is empty",
	} {
		_, err := Open(path)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), want) {
			t.Errorf("Open(%s) = %v, want an error naming it and saying %q", filepath.Base(path), err, want)
		}
	}
}

// TestConcurrentLookups runs the lock-free record cache under the race detector.
func TestConcurrentLookups(t *testing.T) {
	city, _ := testDBs(t)
	db := open(t, city)
	ips := []string{"1.0.16.1", "81.2.69.160", "8.8.8.8", "2001:db8:1::1", "127.2.0.1", "9.9.9.9"}
	want := make([]Location, len(ips))
	for i, ip := range ips {
		want[i], _ = db.City(netip.MustParseAddr(ip))
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				k := (i + g) % len(ips)
				if l, _ := db.City(netip.MustParseAddr(ips[k])); l != want[k] {
					t.Errorf("%s: %+v, want %+v", ips[k], l, want[k])
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestDistance(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		lat1, lon1, lat2, lon2 float64
		km                     float64
	}{
		{"London-Paris", 51.5074, -0.1278, 48.8566, 2.3522, 343.5},
		{"New York-Los Angeles", 40.7128, -74.0060, 34.0522, -118.2437, 3935.7},
		{"Frankfurt-Singapore", 50.1109, 8.6821, 1.3521, 103.8198, 10265},
		{"Sydney-Tokyo", -33.8688, 151.2093, 35.6762, 139.6503, 7823},
		{"antipodes", 0, 0, 0, 180, 20015.1},
		{"pole to pole", 90, 0, -90, 0, 20015.1},
		{"same point", 35, 139, 35, 139, 0},
		{"across the date line", 0, 179.5, 0, -179.5, 111.2},
	} {
		got := Distance(tc.lat1, tc.lon1, tc.lat2, tc.lon2)
		if math.Abs(got-tc.km) > 0.005*tc.km+0.1 {
			t.Errorf("%s: %.1f km, want %.1f", tc.name, got, tc.km)
		}
		if back := Distance(tc.lat2, tc.lon2, tc.lat1, tc.lon1); math.Abs(back-got) > 1e-9 {
			t.Errorf("%s: not symmetric", tc.name)
		}
	}
}

// TestECSWire: raw option bytes as a resolver sends them. miekg's decoder rejects some
// invalid options itself (the whole message fails to unpack, and its server answers FORMERR
// before any plugin runs); ParseECS must reject the rest.
func TestECSWire(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opt      []byte
		unpackOK bool // miekg decodes the message
		valid    bool // ParseECS accepts it
	}{
		{"IPv4 /24", []byte{0, 1, 24, 0, 192, 0, 2}, true, true},
		{"IPv6 /56", []byte{0, 2, 56, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 1, 2}, true, true},
		{"family 0 prefix 0 (dig)", []byte{0, 0, 0, 0}, true, true},
		{"IPv4 /0 no address", []byte{0, 1, 0, 0}, true, true},
		{"bad family 3", []byte{0, 3, 24, 0, 192, 0, 2}, false, false},
		{"family 0 with a prefix", []byte{0, 0, 8, 0, 10}, false, false},
		{"IPv4 source /33", []byte{0, 1, 33, 0, 192, 0, 2, 1, 0}, false, false},
		{"IPv6 source /129", append([]byte{0, 2, 129, 0}, make([]byte, 17)...), false, false},
		{"IPv4 scope /33", []byte{0, 1, 24, 33, 192, 0, 2}, false, false},
		{"too short", []byte{0, 1, 24}, false, false},
		{"non-zero scope in a query", []byte{0, 1, 24, 16, 192, 0, 2}, true, false},
		{"bits beyond the source prefix", []byte{0, 1, 22, 0, 192, 0, 3}, true, false},
		{"IPv6 bits beyond the prefix", []byte{0, 2, 32, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 1}, true, false},
		// RFC 7871 wants FORMERR for these too, but miekg zero-pads or drops the octets
		// before anyone can see them: accepted (documented limitation).
		{"too few address octets", []byte{0, 1, 24, 0, 192}, true, true},
		{"too many address octets", []byte{0, 1, 8, 0, 10, 0, 0, 0}, true, true},
	} {
		m := new(dns.Msg)
		m.SetQuestion("www.gtm.example.net.", dns.TypeA)
		m.SetEdns0(1232, false)
		m.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_LOCAL{Code: dns.EDNS0SUBNET, Data: tc.opt}}
		wire, err := m.Pack()
		if err != nil {
			t.Fatalf("%s: pack: %v", tc.name, err)
		}
		var q dns.Msg
		err = q.Unpack(wire)
		if (err == nil) != tc.unpackOK {
			t.Errorf("%s: miekg unpack error %v, want ok=%v", tc.name, err, tc.unpackOK)
			continue
		}
		if err != nil {
			continue
		}
		o := q.IsEdns0().Option[0].(*dns.EDNS0_SUBNET)
		if _, err := ParseECS(o); (err == nil) != tc.valid {
			t.Errorf("%s: ParseECS(%v) = %v, want valid=%v", tc.name, o, err, tc.valid)
		}
	}
}

func TestEchoScopeClamp(t *testing.T) {
	for _, tc := range []struct {
		s     ClientSubnet
		scope int
		want  uint8
	}{
		{ClientSubnet{netip.MustParseAddr("192.0.2.0"), 24, 1}, 40, 32},
		{ClientSubnet{netip.MustParseAddr("192.0.2.0"), 24, 1}, -1, 0},
		{ClientSubnet{netip.MustParseAddr("2001:db8::"), 32, 2}, 200, 128},
		{ClientSubnet{netip.IPv4Unspecified(), 0, 0}, 24, 0},
	} {
		e := tc.s.Echo(tc.scope)
		if e.SourceScope != tc.want {
			t.Errorf("%+v Echo(%d): scope %d, want %d", tc.s, tc.scope, e.SourceScope, tc.want)
		}
		m := new(dns.Msg)
		m.SetQuestion("a.", dns.TypeA)
		m.SetEdns0(1232, false)
		m.IsEdns0().Option = []dns.EDNS0{e}
		wire, err := m.Pack()
		if err != nil {
			t.Fatalf("%+v: %v", tc.s, err)
		}
		if err := new(dns.Msg).Unpack(wire); err != nil {
			t.Errorf("%+v: the echo does not unpack: %v", tc.s, err)
		}
	}
}
