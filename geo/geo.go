// Package geo looks up where a client is: continent, country, ISO 3166-2 region, location and
// ASN from MaxMind-format databases (MaxMind GeoIP2/GeoLite2, DB-IP, ip-location-db), and
// parses the EDNS Client Subnet option that says which client a resolver asks for.
package geo

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"

	"github.com/oschwald/maxminddb-golang/v2"
)

// Kind is what a database holds.
type Kind int

// Database kinds.
const (
	KindUnknown Kind = iota
	KindCity         // continent, country, subdivisions, location
	KindCountry      // continent and country
	KindASN          // autonomous system number
)

// String names the kind for error messages.
func (k Kind) String() string {
	switch k {
	case KindCity:
		return "city"
	case KindCountry:
		return "country"
	case KindASN:
		return "ASN"
	}
	return "unknown"
}

// Location is what a City or Country database says about an address.
type Location struct {
	Found       bool
	Continent   string // AF, AN, AS, EU, NA, OC, SA
	Country     string // ISO 3166-1 alpha-2
	Region      string // ISO 3166-2, e.g. US-CA; "" when the database has no subdivision code
	HasLocation bool
	Lat, Lon    float64
	Prefix      int // length of the database network the address fell in (also when not found)
}

// DB is an open database. Lookups are safe for concurrent use.
type DB struct {
	path string
	r    *maxminddb.Reader
	kind Kind
	sum  uint64 // of the file's bytes: which content the facts cache holds (facts.go)

	// Decoded records by data offset: many networks share one record, and decoding is the
	// expensive part of a lookup. Direct-mapped, lock-free; a collision just decodes again.
	cache [cacheSize]atomic.Pointer[cached]
}

const cacheSize = 4096

type cached struct {
	offset uintptr
	loc    Location
	asn    uint32
}

// Open opens a MaxMind-format database and works out what it holds. Errors name the path and
// say what is wrong with it: missing, a directory, empty, not an mmdb, or corrupt.
func Open(path string) (*DB, error) {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("database %s does not exist", path)
	case err != nil:
		return nil, fmt.Errorf("database %s: %v", path, err)
	case st.IsDir():
		return nil, fmt.Errorf("database %s is a directory, not an mmdb file", path)
	case st.Size() == 0:
		return nil, fmt.Errorf("database %s is empty, not an mmdb file", path)
	}
	// Read into memory rather than mmap: a reload swaps handlers while queries may still be
	// in flight on the old one, and an unmapped database would crash them. Memory is freed
	// by the garbage collector once the last handler lets go.
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("database %s: %v", path, err)
	}
	r, err := maxminddb.OpenBytes(b)
	if err != nil {
		return nil, fmt.Errorf("database %s is not a readable MaxMind-format (mmdb) file: %v", path, err)
	}
	if v := r.Metadata.BinaryFormatMajorVersion; v != 2 {
		r.Close()
		return nil, fmt.Errorf("database %s has mmdb format version %d; only version 2 is supported", path, v)
	}
	d := &DB{path: path, r: r, sum: contentSum(b)}
	if d.kind, err = detect(r); err != nil {
		r.Close()
		return nil, fmt.Errorf("database %s: %v", path, err)
	}
	return d, nil
}

// Close releases the database.
// Close is a no-op kept for symmetry: the database lives in memory and is released with the
// last reference, so a lookup racing a reload can never touch freed memory.
func (d *DB) Close() error { return nil }

// Kind says what the database holds.
func (d *DB) Kind() Kind { return d.kind }

// Path is the file the database was opened from.
func (d *DB) Path() string { return d.path }

// record decodes both the MaxMind layout and the flat ip-location-db/DB-IP lite layouts.
type record struct {
	Continent struct {
		Code string `maxminddb:"code"`
	} `maxminddb:"continent"`
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	RegisteredCountry struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"registered_country"`
	Subdivisions []struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"subdivisions"`
	Location struct {
		Latitude  *float64 `maxminddb:"latitude"`
		Longitude *float64 `maxminddb:"longitude"`
	} `maxminddb:"location"`

	CountryCode string   `maxminddb:"country_code"`
	Latitude    *float64 `maxminddb:"latitude"`
	Longitude   *float64 `maxminddb:"longitude"`

	ASN    uint32 `maxminddb:"autonomous_system_number"`
	ASNOrg string `maxminddb:"autonomous_system_organization"`
}

func (rec *record) location() Location {
	var l Location
	l.Country = strings.ToUpper(rec.Country.ISOCode)
	if l.Country == "" {
		l.Country = strings.ToUpper(rec.CountryCode)
	}
	if l.Country == "" {
		l.Country = strings.ToUpper(rec.RegisteredCountry.ISOCode)
	}
	l.Continent = strings.ToUpper(rec.Continent.Code)
	if l.Continent == "" {
		l.Continent = ContinentOf(l.Country)
	}
	if len(rec.Subdivisions) > 0 && rec.Subdivisions[0].ISOCode != "" && l.Country != "" {
		l.Region = l.Country + "-" + strings.ToUpper(rec.Subdivisions[0].ISOCode)
	}
	switch {
	case rec.Location.Latitude != nil && rec.Location.Longitude != nil:
		l.HasLocation, l.Lat, l.Lon = true, *rec.Location.Latitude, *rec.Location.Longitude
	case rec.Latitude != nil && rec.Longitude != nil:
		l.HasLocation, l.Lat, l.Lon = true, *rec.Latitude, *rec.Longitude
	}
	l.Found = l.Country != "" || l.Continent != "" || l.HasLocation
	return l
}

// sampleSize is how many records Open decodes: enough to tell the kind of a database whose
// metadata does not say and to catch a corrupt file at startup rather than on the query path,
// without walking a whole 100 MB database on every reload.
const sampleSize = 64

// detect works out the kind from the metadata's database type (GeoIP2-City, GeoLite2-ASN,
// DBIP-City-Lite, ip-location-db's "city ipv4", "country ipvAll", ...) and, when that says
// nothing useful (GeoIP2-ISP, GeoIP2-Enterprise, home-made files), from the records.
func detect(r *maxminddb.Reader) (Kind, error) {
	var sampled Kind
	n := 0
	for res := range r.Networks() {
		if n++; n > sampleSize {
			break
		}
		var rec record
		if err := res.Decode(&rec); err != nil {
			return KindUnknown, fmt.Errorf("is corrupt: cannot decode the record of %s: %v", res.Prefix(), err)
		}
		if sampled != KindUnknown {
			continue
		}
		switch l := rec.location(); {
		case rec.ASN != 0:
			sampled = KindASN
		case l.HasLocation:
			sampled = KindCity
		case l.Country != "":
			sampled = KindCountry
		}
	}
	t := strings.ToLower(r.Metadata.DatabaseType)
	switch {
	case strings.Contains(t, "asn"):
		return KindASN, nil
	case strings.Contains(t, "city"):
		return KindCity, nil
	case strings.Contains(t, "country"):
		return KindCountry, nil
	case sampled != KindUnknown:
		return sampled, nil
	case n == 0:
		return KindUnknown, fmt.Errorf("database type %q holds no networks", r.Metadata.DatabaseType)
	}
	return KindUnknown, fmt.Errorf("database type %q holds neither locations (country_code, country.iso_code, location) nor ASNs (autonomous_system_number)", r.Metadata.DatabaseType)
}

// lookup returns the decoded record of ip (nil when the database has none) and the prefix
// length of the network ip fell in, in ip's own family.
func (d *DB) lookup(ip netip.Addr) (*cached, int, error) {
	if !ip.IsValid() {
		return nil, 0, fmt.Errorf("database %s: lookup of an invalid address", d.path)
	}
	// IPv4-mapped IPv6 is the IPv4 client: look it up (and measure its prefix) as IPv4.
	ip = ip.Unmap()
	if ip.Is6() && d.r.Metadata.IPVersion == 4 {
		// An IPv4-only database knows nothing of IPv6: every IPv6 client is alike to it.
		return nil, 0, nil
	}
	res := d.r.Lookup(ip)
	if err := res.Err(); err != nil {
		return nil, 0, fmt.Errorf("database %s: lookup of %s: %v", d.path, ip, err)
	}
	bits := prefixBits(ip, res.Prefix())
	if !res.Found() {
		return nil, bits, nil
	}
	off := res.Offset()
	slot := &d.cache[off%cacheSize]
	if c := slot.Load(); c != nil && c.offset == off {
		return c, bits, nil
	}
	var rec record
	if err := res.Decode(&rec); err != nil {
		return nil, bits, fmt.Errorf("database %s: record of %s: %v", d.path, ip, err)
	}
	c := &cached{offset: off, loc: rec.location(), asn: rec.ASN}
	slot.Store(c)
	return c, bits, nil
}

// prefixBits is the length of network p in ip's family. maxminddb already converts IPv6-tree
// depths to IPv4 lengths, except where the lookup stopped above ::/96 (a tree without IPv4
// data, or one record covering it): there the IPv4 address matched with a /0.
func prefixBits(ip netip.Addr, p netip.Prefix) int {
	if ip.Is4() && !p.Addr().Is4() {
		return 0
	}
	return p.Bits()
}

// City looks up an address in a City or Country database. A miss is not an error: Found is
// false and Prefix still says how far the miss extends, which bounds the ECS scope.
func (d *DB) City(ip netip.Addr) (Location, error) {
	c, bits, err := d.lookup(ip)
	if err != nil || c == nil {
		return Location{Prefix: bits}, err
	}
	l := c.loc
	l.Prefix = bits
	return l, nil
}

// ASN looks up an address in an ASN database; prefix is that of the matched network, as for
// City.
func (d *DB) ASN(ip netip.Addr) (asn uint32, prefix int, found bool, err error) {
	c, bits, err := d.lookup(ip)
	if err != nil || c == nil || c.asn == 0 {
		return 0, bits, false, err
	}
	return c.asn, bits, true, nil
}
