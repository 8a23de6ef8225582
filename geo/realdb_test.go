package geo

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// realDB opens the real public database named by env, else the one scripts/fetch-realdb.sh
// leaves in .cache/realdb/ (which `make test` runs). Under CI a missing database fails the test:
// the real-data check must never pass by being skipped.
func realDB(t *testing.T, env, file string) *DB {
	t.Helper()
	path := os.Getenv(env)
	if path == "" {
		if p := filepath.Join("..", ".cache", "realdb", file); fileExists(p) {
			path = p
		}
	}
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set and ../.cache/realdb/%s is missing: CI must run the real-database test (run scripts/fetch-realdb.sh)", env, file)
		}
		t.Skipf("%s not set and no ../.cache/realdb/%s: run scripts/fetch-realdb.sh", env, file)
	}
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// Addresses whose location and holder are stable for years: public resolvers, registries,
// universities, a national broadcaster.
var realCases = []struct {
	ip, country, continent string
	asn                    uint32
}{
	{"8.8.8.8", "US", "NA", 15169},       // Google Public DNS
	{"1.1.1.1", "AU", "OC", 13335},       // Cloudflare (registered to APNIC research, Australia)
	{"9.9.9.9", "US", "NA", 19281},       // Quad9
	{"85.214.132.117", "DE", "EU", 6724}, // STRATO, Berlin
	{"133.11.0.1", "JP", "AS", 2501},     // University of Tokyo
	{"203.2.218.214", "AU", "OC", 9342},  // ABC, Sydney
	{"200.160.2.3", "BR", "SA", 0},       // NIC.br
	{"196.216.2.1", "ZA", "AF", 0},       // AFRINIC services network
	{"2001:4860:4860::8888", "US", "NA", 15169},
	{"2a01:238::1", "DE", "EU", 6724}, // STRATO IPv6
}

// TestRealCountry: ip-location-db's geo-whois-asn-country (CC0), flat layout, IPv4 and IPv6.
func TestRealCountry(t *testing.T) {
	db := realDB(t, "GTM_REAL_COUNTRY_MMDB", "country.mmdb")
	if db.Kind() != KindCountry {
		t.Fatalf("kind %s, want country", db.Kind())
	}
	for _, tc := range realCases {
		if tc.ip == "1.1.1.1" || tc.ip == "9.9.9.9" {
			continue // anycast: whois-based countries of these move around
		}
		l, err := db.City(netip.MustParseAddr(tc.ip))
		if err != nil {
			t.Fatalf("%s: %v", tc.ip, err)
		}
		if !l.Found || l.Country != tc.country || l.Continent != tc.continent || l.Prefix == 0 {
			t.Errorf("%s: got %+v, want %s/%s", tc.ip, l, tc.continent, tc.country)
		}
	}
}

// TestRealCity: DB-IP City Lite (CC BY 4.0) in ip-location-db's flat layout, an IPv4 tree.
func TestRealCity(t *testing.T) {
	db := realDB(t, "GTM_REAL_CITY_MMDB", "city.mmdb")
	if db.Kind() != KindCity {
		t.Fatalf("kind %s, want city", db.Kind())
	}
	for _, tc := range realCases {
		ip := netip.MustParseAddr(tc.ip)
		l, err := db.City(ip)
		if err != nil {
			t.Fatalf("%s: %v", tc.ip, err)
		}
		if ip.Is6() && db.r.Metadata.IPVersion == 4 {
			if l.Found || l.Prefix != 0 {
				t.Errorf("%s in an IPv4-only database: %+v, want not found with prefix 0", tc.ip, l)
			}
			continue
		}
		if !l.Found || l.Country != tc.country || l.Continent != tc.continent || !l.HasLocation || l.Prefix < 8 || l.Prefix > 32 {
			t.Errorf("%s: got %+v, want %s/%s with a location", tc.ip, l, tc.continent, tc.country)
		}
	}
	// The location is the city's: Google's resolver in California, STRATO in Berlin.
	l, _ := db.City(netip.MustParseAddr("85.214.132.117"))
	if d := Distance(l.Lat, l.Lon, 52.52, 13.40); d > 100 {
		t.Errorf("85.214.132.117 is %.0f km from Berlin: %+v", d, l)
	}
}

// TestRealASN: RouteViews/DB-IP ASN data (CC BY 4.0) converted to GeoLite2-ASN layout.
func TestRealASN(t *testing.T) {
	db := realDB(t, "GTM_REAL_ASN_MMDB", "asn.mmdb")
	if db.Kind() != KindASN {
		t.Fatalf("kind %s, want ASN", db.Kind())
	}
	for _, tc := range realCases {
		if tc.asn == 0 {
			continue
		}
		n, bits, found, err := db.ASN(netip.MustParseAddr(tc.ip))
		if err != nil || !found || n != tc.asn || bits == 0 {
			t.Errorf("%s: AS%d /%d found %v err %v, want AS%d", tc.ip, n, bits, found, err, tc.asn)
		}
	}
	if _, _, found, _ := db.ASN(netip.MustParseAddr("10.1.2.3")); found {
		t.Error("10.1.2.3 (private) has an ASN")
	}
}

func BenchmarkRealCity(b *testing.B) {
	path := os.Getenv("GTM_REAL_CITY_MMDB")
	if path == "" {
		path = filepath.Join("..", ".cache", "realdb", "city.mmdb")
	}
	db, err := Open(path)
	if err != nil {
		b.Skip(err)
	}
	defer db.Close()
	// Spread over many records so the cache is not always hit.
	ips := make([]netip.Addr, 4096)
	for i := range ips {
		ips[i] = netip.AddrFrom4([4]byte{byte(1 + i%223), byte(i * 7), byte(i * 13), 1})
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		db.City(ips[i%len(ips)])
		i++
	}
}
