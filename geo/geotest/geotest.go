// Package geotest writes small MaxMind-format databases with mmdbwriter, for tests and for
// the demo that Corefile.example runs on. Fixtures are generated, never checked-in blobs.
package geotest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// CityNet is one network of a City database. Region is the subdivision code without the
// country ("CA" for US-CA).
type CityNet struct {
	CIDR      string
	Continent string
	Country   string
	Region    string
	Lat, Lon  float64
}

// ASNNet is one network of an ASN database.
type ASNNet struct {
	CIDR string
	ASN  uint32
	Org  string
}

// NewTree is an empty IPv6 tree as MaxMind builds them (IPv4 at ::/96, aliased from
// ::ffff:0:0/96 and 2002::/16), so IPv4 lookups take the real path; reserved networks such as
// 127.0.0.0/8 are allowed, because tests and the demo route loopback clients.
func NewTree(dbType string) (*mmdbwriter.Tree, error) {
	return mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            dbType,
		Description:             map[string]string{"en": "coredns-gtm test data (" + dbType + " layout)"},
		RecordSize:              28,
		IPVersion:               6,
		IncludeReservedNetworks: true, // mmdbwriter refuses 127/8, 10/8, 2001:db8::/32 ... otherwise
		// A fixed build time makes the output reproducible, so the demo databases committed
		// in demo/ can be checked against the generator byte for byte.
		BuildEpoch: 1764000000,
	})
}

// WriteDemo writes the demo City and ASN databases (Demo and DemoASN) that Corefile.example
// and the end-to-end tests use.
func WriteDemo(city, asn string) error {
	if err := WriteCity(city, Demo()); err != nil {
		return err
	}
	return WriteASN(asn, DemoASN())
}

// WriteCity writes a GeoIP2-City-layout database: continent.code, country.iso_code,
// subdivisions[].iso_code, location.latitude/longitude.
func WriteCity(path string, nets []CityNet) error {
	return writeNets(path, "GeoIP2-City", nets, func(n CityNet) mmdbtype.Map {
		rec := mmdbtype.Map{
			"continent": mmdbtype.Map{"code": mmdbtype.String(n.Continent)},
			"country":   mmdbtype.Map{"iso_code": mmdbtype.String(n.Country)},
			"location": mmdbtype.Map{
				"latitude":  mmdbtype.Float64(n.Lat),
				"longitude": mmdbtype.Float64(n.Lon),
			},
		}
		if n.Region != "" {
			rec["subdivisions"] = mmdbtype.Slice{mmdbtype.Map{"iso_code": mmdbtype.String(n.Region)}}
		}
		return rec
	})
}

// WriteCountry writes a GeoIP2-Country-layout database (continent and country only; Region,
// Lat and Lon of nets are ignored).
func WriteCountry(path string, nets []CityNet) error {
	return writeNets(path, "GeoIP2-Country", nets, func(n CityNet) mmdbtype.Map {
		return mmdbtype.Map{
			"continent": mmdbtype.Map{"code": mmdbtype.String(n.Continent)},
			"country":   mmdbtype.Map{"iso_code": mmdbtype.String(n.Country)},
		}
	})
}

// WriteFlatCity writes a database in the flat layout of ip-location-db's city mmdb files:
// country_code, state1 (a subdivision name, not a code), city, latitude, longitude as
// float32, no continent, database type "city ipvAll". Continent is not written, as those
// files do not carry it; Region goes into state1.
func WriteFlatCity(path string, nets []CityNet) error {
	return writeNets(path, "city ipvAll", nets, func(n CityNet) mmdbtype.Map {
		return mmdbtype.Map{
			"country_code": mmdbtype.String(n.Country),
			"state1":       mmdbtype.String(n.Region),
			"city":         mmdbtype.String(""),
			"latitude":     mmdbtype.Float32(n.Lat),
			"longitude":    mmdbtype.Float32(n.Lon),
		}
	})
}

// WriteASN writes a GeoLite2-ASN-layout database: autonomous_system_number,
// autonomous_system_organization.
func WriteASN(path string, nets []ASNNet) error {
	t, err := NewTree("GeoLite2-ASN")
	if err != nil {
		return err
	}
	for _, n := range nets {
		if err := insert(t, n.CIDR, ASNRecord(n.ASN, n.Org)); err != nil {
			return err
		}
	}
	return Write(path, t)
}

// ASNRecord is the GeoLite2-ASN record of one network.
func ASNRecord(asn uint32, org string) mmdbtype.Map {
	return mmdbtype.Map{
		"autonomous_system_number":       mmdbtype.Uint32(asn),
		"autonomous_system_organization": mmdbtype.String(org),
	}
}

func writeNets(path, dbType string, nets []CityNet, record func(CityNet) mmdbtype.Map) error {
	t, err := NewTree(dbType)
	if err != nil {
		return err
	}
	for _, n := range nets {
		if err := insert(t, n.CIDR, record(n)); err != nil {
			return err
		}
	}
	return Write(path, t)
}

func insert(t *mmdbwriter.Tree, cidr string, rec mmdbtype.Map) error {
	_, ipnet, err := net.ParseCIDR(cidr)
	if err != nil {
		return fmt.Errorf("geotest: %v", err)
	}
	if err := t.Insert(ipnet, rec); err != nil {
		return fmt.Errorf("geotest: insert %s: %v", cidr, err)
	}
	return nil
}

// Write writes t to path atomically (temporary file and rename), so a server reloading
// meanwhile never maps half a file.
func Write(path string, t *mmdbwriter.Tree) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".mmdb-*")
	if err != nil {
		return fmt.Errorf("geotest: %v", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := t.WriteTo(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("geotest: write %s: %v", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("geotest: write %s: %v", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("geotest: %v", err)
	}
	return os.Rename(tmp.Name(), path)
}

// Demo is the demo City data of Corefile.example and the README's dig examples:
//
//   - a few real-world networks per continent, so `dig +subnet=...` with familiar addresses
//     (1.0.16.0/24 JP, 81.2.69.0/24 GB, 8.8.8.0/24 US, 1.1.1.0/24 AU, ...) routes somewhere
//     sensible; the data is made up for the demo, not a claim about where they are;
//   - the documentation ranges 192.0.2.0/24 (US-NY), 198.51.100.0/24 (DE-HE),
//     203.0.113.0/24 (SG) and 2001:db8:1::/48, :2::/48, :3::/48 (FR, IN, US);
//   - loopback networks 127.1.0.0/16 (JP), 127.2.0.0/16 (DE), 127.3.0.0/16 (US-VA),
//     127.4.0.0/16 (AU), 127.5.0.0/16 (BR), 127.6.0.0/16 (ZA): all of 127.0.0.0/8 is loopback
//     on Linux, so tests and `dig -b 127.2.0.1` can be a client somewhere without ECS.
//
// 127.0.0.0/16 (so 127.0.0.1) and ::1 are deliberately absent: a plain local dig is a client
// of unknown location and takes the default route.
func Demo() []CityNet {
	return []CityNet{
		{CIDR: "127.1.0.0/16", Continent: "AS", Country: "JP", Region: "13", Lat: 35.69, Lon: 139.69},
		{CIDR: "127.2.0.0/16", Continent: "EU", Country: "DE", Region: "HE", Lat: 50.11, Lon: 8.68},
		{CIDR: "127.3.0.0/16", Continent: "NA", Country: "US", Region: "VA", Lat: 39.04, Lon: -77.49},
		{CIDR: "127.4.0.0/16", Continent: "OC", Country: "AU", Region: "NSW", Lat: -33.87, Lon: 151.21},
		{CIDR: "127.5.0.0/16", Continent: "SA", Country: "BR", Region: "SP", Lat: -23.55, Lon: -46.63},
		{CIDR: "127.6.0.0/16", Continent: "AF", Country: "ZA", Region: "GP", Lat: -26.20, Lon: 28.05},
		{CIDR: "1.0.16.0/20", Continent: "AS", Country: "JP", Region: "13", Lat: 35.69, Lon: 139.69},
		{CIDR: "1.2.4.0/24", Continent: "AS", Country: "CN", Region: "BJ", Lat: 39.90, Lon: 116.40},
		{CIDR: "101.226.0.0/16", Continent: "AS", Country: "CN", Region: "SH", Lat: 31.23, Lon: 121.47},
		{CIDR: "8.8.8.0/24", Continent: "NA", Country: "US", Region: "CA", Lat: 37.39, Lon: -122.08},
		{CIDR: "4.2.2.0/24", Continent: "NA", Country: "US", Region: "CO", Lat: 39.74, Lon: -104.99},
		{CIDR: "24.48.0.0/16", Continent: "NA", Country: "CA", Region: "QC", Lat: 45.50, Lon: -73.57},
		{CIDR: "81.2.69.0/24", Continent: "EU", Country: "GB", Region: "ENG", Lat: 51.51, Lon: -0.13},
		{CIDR: "85.214.0.0/15", Continent: "EU", Country: "DE", Region: "BE", Lat: 52.52, Lon: 13.40},
		{CIDR: "1.1.1.0/24", Continent: "OC", Country: "AU", Region: "NSW", Lat: -33.87, Lon: 151.21},
		{CIDR: "200.160.0.0/20", Continent: "SA", Country: "BR", Region: "SP", Lat: -23.55, Lon: -46.63},
		{CIDR: "41.0.0.0/11", Continent: "AF", Country: "ZA", Region: "GP", Lat: -26.20, Lon: 28.05},
		{CIDR: "192.0.2.0/24", Continent: "NA", Country: "US", Region: "NY", Lat: 40.71, Lon: -74.01},
		{CIDR: "198.51.100.0/24", Continent: "EU", Country: "DE", Region: "HE", Lat: 50.11, Lon: 8.68},
		{CIDR: "203.0.113.0/24", Continent: "AS", Country: "SG", Lat: 1.35, Lon: 103.82},
		{CIDR: "2001:db8:1::/48", Continent: "EU", Country: "FR", Region: "IDF", Lat: 48.86, Lon: 2.35},
		{CIDR: "2001:db8:2::/48", Continent: "AS", Country: "IN", Region: "MH", Lat: 19.08, Lon: 72.88},
		{CIDR: "2001:db8:3::/48", Continent: "NA", Country: "US", Region: "VA", Lat: 39.04, Lon: -77.49},
		{CIDR: "2001:4860::/32", Continent: "NA", Country: "US", Region: "CA", Lat: 37.39, Lon: -122.08},
	}
}

// DemoASN is the demo ASN data of Corefile.example (made up like Demo's, after the real
// holders), with loopback 127.1.0.0/16 as AS 4134 and 127.2.0.0/16 as AS 3320 for tests that
// send from a loopback source.
func DemoASN() []ASNNet {
	return []ASNNet{
		{CIDR: "127.1.0.0/16", ASN: 4134, Org: "CHINANET-BACKBONE"},
		{CIDR: "127.2.0.0/16", ASN: 3320, Org: "DTAG"},
		{CIDR: "8.8.8.0/24", ASN: 15169, Org: "GOOGLE"},
		{CIDR: "2001:4860::/32", ASN: 15169, Org: "GOOGLE"},
		{CIDR: "1.1.1.0/24", ASN: 13335, Org: "CLOUDFLARENET"},
		{CIDR: "1.2.4.0/24", ASN: 4134, Org: "CHINANET-BACKBONE"},
		{CIDR: "101.226.0.0/16", ASN: 4812, Org: "CHINANET-SH-AP"},
		{CIDR: "81.2.69.0/24", ASN: 20712, Org: "ANDREWS-ARNOLD"},
		{CIDR: "85.214.0.0/15", ASN: 6724, Org: "STRATO"},
	}
}
