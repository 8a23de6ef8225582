package geo

import (
	"net/netip"
	"os"
	"testing"
)

// TestRealDatabase checks well-known addresses against a real public database, fetched by
// scripts/fetch-realdb.sh (which `make test` runs): ip-location-db's CC0 geo-whois-asn-country.
func TestRealDatabase(t *testing.T) {
	path := os.Getenv("GTM_REAL_COUNTRY_MMDB")
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("GTM_REAL_COUNTRY_MMDB is not set: CI must run the real-database test (make test sets it)")
		}
		t.Skip("GTM_REAL_COUNTRY_MMDB not set; run scripts/fetch-realdb.sh and make test")
	}
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.Kind() != KindCountry && db.Kind() != KindCity {
		t.Fatalf("kind %s", db.Kind())
	}
	cases := []struct{ ip, country, continent string }{
		{"8.8.8.8", "US", "NA"},        // Google Public DNS
		{"85.214.132.117", "DE", "EU"}, // STRATO, Berlin
		{"133.11.0.1", "JP", "AS"},     // University of Tokyo
		{"203.2.218.214", "AU", "OC"},  // Telstra
		{"200.160.2.3", "BR", "SA"},    // NIC.br
		{"196.216.2.1", "ZA", "AF"},    // AFRINIC services network
		{"2001:4860:4860::8888", "US", "NA"},
		{"2a01:238::1", "DE", "EU"}, // STRATO IPv6
	}
	for _, tc := range cases {
		l, err := db.City(netip.MustParseAddr(tc.ip))
		if err != nil {
			t.Fatalf("%s: %v", tc.ip, err)
		}
		if !l.Found || l.Country != tc.country || l.Continent != tc.continent || l.Prefix == 0 {
			t.Errorf("%s: got %+v, want %s/%s", tc.ip, l, tc.continent, tc.country)
		}
	}
}
