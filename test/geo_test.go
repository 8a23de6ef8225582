package test

import (
	"path/filepath"
	"testing"

	"github.com/miekg/dns"

	"github.com/gtm-dns/coredns-gtm/geo/geotest"
)

func geoCorefile(t *testing.T, withCache bool) string {
	t.Helper()
	dir := t.TempDir()
	city, asn := filepath.Join(dir, "city.mmdb"), filepath.Join(dir, "asn.mmdb")
	if err := geotest.WriteDemo(city, asn); err != nil {
		t.Fatal(err)
	}
	cache := ""
	if withCache {
		cache = "cache 300"
	}
	return `.:0 {
    bind 127.0.0.1
    ` + cache + `
    gtm gtm.example.net {
        geoip ` + city + `
        asn ` + asn + `
        pool asia {
            address 192.0.2.10
            location 1.35 103.82
        }
        pool europe {
            address 192.0.2.20
            location 50.11 8.68
        }
        pool america {
            address 192.0.2.30
            location 39.04 -77.49
        }
        pool google {
            address 192.0.2.40
        }
        domain www.gtm.example.net {
            route continent:AS asia
            route continent:EU europe
            route country:US america
            route asn:15169 google
            route default europe
        }
        domain near.gtm.example.net {
            route default america europe asia select nearest
        }
    }
}`
}

func TestGeoRoutingOverTheWire(t *testing.T) {
	s := start(t, geoCorefile(t, false))
	cases := []struct {
		name, subnet, want string
		scope              int
	}{
		{"www", "1.0.16.0/24", "192.0.2.10", 20},
		{"www", "81.2.69.0/24", "192.0.2.20", 24},
		// Canada: the default route, as everything from 8.8.9.0 to 81.2.68.255 (the database
		// network is a /16): the widest prefix around the client inside that is 16.0.0.0/4.
		{"www", "24.48.0.0/24", "192.0.2.20", 4},
		{"www", "4.2.2.0/24", "192.0.2.30", 24},
		{"www", "8.8.8.0/24", "192.0.2.40", 24},      // asn beats country
		{"www", "2001:db8:2::/48", "192.0.2.10", 48}, // IPv6 client, India: Asia
		{"near", "1.1.1.0/24", "192.0.2.10", 24},     // Sydney: Singapore is nearest
		{"near", "85.214.0.0/24", "192.0.2.20", 15},  // Berlin: Frankfurt
		{"near", "24.48.0.0/24", "192.0.2.30", 16},   // Montreal: Ashburn
	}
	for _, tc := range cases {
		for _, tcp := range []bool{false, true} {
			m := s.ask(query{name: tc.name + ".gtm.example.net", qtype: dns.TypeA, subnet: tc.subnet, tcp: tcp})
			if got := join(answers(m)); got != tc.want {
				t.Errorf("%s from %s: %s, want %s", tc.name, tc.subnet, got, tc.want)
			}
			if sc := scope(m); sc != tc.scope {
				t.Errorf("%s from %s: scope %d, want %d", tc.name, tc.subnet, sc, tc.scope)
			}
		}
	}
	// Without ECS the source address (127.0.0.1, unknown to the database) decides: default,
	// and no option is echoed when none was sent.
	m := s.ask(query{name: "www.gtm.example.net", qtype: dns.TypeA, edns: true})
	if got := join(answers(m)); got != "192.0.2.20" || scope(m) != -1 {
		t.Fatalf("no ECS: %s scope %d", got, scope(m))
	}
}

// With cache in the same server block, an answer for one client is never served to another:
// gtm runs before cache, so its answers never enter it.
func TestGeoAnswersNotSharedThroughCache(t *testing.T) {
	s := start(t, geoCorefile(t, true))
	for range 3 {
		for subnet, want := range map[string]string{"1.0.16.0/24": "192.0.2.10", "81.2.69.0/24": "192.0.2.20", "4.2.2.0/24": "192.0.2.30"} {
			if got := join(answers(s.ask(query{name: "www.gtm.example.net", qtype: dns.TypeA, subnet: subnet}))); got != want {
				t.Fatalf("with cache, client %s got %s, want %s", subnet, got, want)
			}
		}
	}
}

// A replaced database file is picked up on reload.
func TestGeoDatabaseReplacedOnReload(t *testing.T) {
	city := filepath.Join(t.TempDir(), "city.mmdb")
	write := func(continent string) {
		if err := geotest.WriteCity(city, []geotest.CityNet{{CIDR: "1.0.16.0/20", Continent: continent, Country: "JP"}}); err != nil {
			t.Fatal(err)
		}
	}
	write("AS")
	corefile := `.:0 {
    bind 127.0.0.1
    gtm gtm.example.net {
        geoip ` + city + `
        pool asia {
            address 192.0.2.10
        }
        pool europe {
            address 192.0.2.20
        }
        domain www.gtm.example.net {
            route continent:AS asia
            route default europe
        }
    }
}`
	s := start(t, corefile)
	ask := func() string {
		return join(answers(s.ask(query{name: "www.gtm.example.net", qtype: dns.TypeA, subnet: "1.0.16.0/24"})))
	}
	if got := ask(); got != "192.0.2.10" {
		t.Fatalf("before: %s", got)
	}
	write("EU")
	if err := s.reload(corefile); err != nil {
		t.Fatal(err)
	}
	if got := ask(); got != "192.0.2.20" {
		t.Fatalf("after replacing the database and reloading: %s", got)
	}
}
