// Package geotest writes small MaxMind-format databases with mmdbwriter, for tests and for
// the demo that Corefile.example runs on.
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

func newTree(dbType string) (*mmdbwriter.Tree, error) {
	return mmdbwriter.New(mmdbwriter.Options{
		DatabaseType: dbType,
		RecordSize:   28,
		// Tests route loopback and documentation ranges, which MaxMind's own databases leave out.
		IncludeReservedNetworks: true,
	})
}

// WriteCity writes a GeoIP2-City-layout database.
func WriteCity(path string, nets []CityNet) error {
	t, err := newTree("GeoIP2-City")
	if err != nil {
		return err
	}
	for _, n := range nets {
		_, ipnet, err := net.ParseCIDR(n.CIDR)
		if err != nil {
			return fmt.Errorf("geotest: %v", err)
		}
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
		if err := t.Insert(ipnet, rec); err != nil {
			return fmt.Errorf("geotest: insert %s: %v", n.CIDR, err)
		}
	}
	return write(path, t)
}

// WriteASN writes a GeoLite2-ASN-layout database.
func WriteASN(path string, nets []ASNNet) error {
	t, err := newTree("GeoLite2-ASN")
	if err != nil {
		return err
	}
	for _, n := range nets {
		_, ipnet, err := net.ParseCIDR(n.CIDR)
		if err != nil {
			return fmt.Errorf("geotest: %v", err)
		}
		rec := mmdbtype.Map{
			"autonomous_system_number":       mmdbtype.Uint32(n.ASN),
			"autonomous_system_organization": mmdbtype.String(n.Org),
		}
		if err := t.Insert(ipnet, rec); err != nil {
			return fmt.Errorf("geotest: insert %s: %v", n.CIDR, err)
		}
	}
	return write(path, t)
}

func write(path string, t *mmdbwriter.Tree) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".mmdb-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := t.WriteTo(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Demo is the demo City data of Corefile.example: a few real-world networks per continent
// (so `dig +subnet=...` with familiar addresses routes somewhere sensible) and the
// documentation ranges. Loopback is deliberately absent: a local dig without +subnet is a
// client of unknown location and takes the default route.
func Demo() []CityNet {
	return []CityNet{
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
		{CIDR: "2001:4860::/32", Continent: "NA", Country: "US", Region: "CA", Lat: 37.39, Lon: -122.08},
	}
}

// DemoASN is the demo ASN data of Corefile.example.
func DemoASN() []ASNNet {
	return []ASNNet{
		{CIDR: "8.8.8.0/24", ASN: 15169, Org: "GOOGLE"},
		{CIDR: "2001:4860::/32", ASN: 15169, Org: "GOOGLE"},
		{CIDR: "1.1.1.0/24", ASN: 13335, Org: "CLOUDFLARENET"},
		{CIDR: "1.2.4.0/24", ASN: 4134, Org: "CHINANET-BACKBONE"},
		{CIDR: "101.226.0.0/16", ASN: 4812, Org: "CHINANET-SH-AP"},
		{CIDR: "81.2.69.0/24", ASN: 20712, Org: "ANDREWS-ARNOLD"},
		{CIDR: "85.214.0.0/15", ASN: 6724, Org: "STRATO"},
	}
}
