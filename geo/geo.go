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

// Open opens a MaxMind-format database and works out what it holds.
func Open(path string) (*DB, error) {
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("database %s does not exist", path)
		}
		return nil, fmt.Errorf("database %s: %v", path, err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("database %s is a directory, not an mmdb file", path)
	}
	r, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("database %s is not a readable MaxMind-format (mmdb) file: %v", path, err)
	}
	d := &DB{path: path, r: r}
	if d.kind, err = detect(r); err != nil {
		r.Close()
		return nil, fmt.Errorf("database %s: %v", path, err)
	}
	return d, nil
}

// Close releases the database.
func (d *DB) Close() error { return d.r.Close() }

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

// detect works out the kind from the metadata, else from the first records.
func detect(r *maxminddb.Reader) (Kind, error) {
	t := strings.ToLower(r.Metadata.DatabaseType)
	switch {
	case strings.Contains(t, "asn"):
		return KindASN, nil
	case strings.Contains(t, "city"):
		return KindCity, nil
	case strings.Contains(t, "country"):
		return KindCountry, nil
	}
	n := 0
	for res := range r.Networks() {
		if n++; n > 64 {
			break
		}
		var rec record
		if err := res.Decode(&rec); err != nil {
			return KindUnknown, fmt.Errorf("cannot decode records: %v", err)
		}
		switch l := rec.location(); {
		case rec.ASN != 0:
			return KindASN, nil
		case l.HasLocation:
			return KindCity, nil
		case l.Country != "":
			return KindCountry, nil
		}
	}
	return KindUnknown, fmt.Errorf("database type %q holds neither locations nor ASNs", r.Metadata.DatabaseType)
}

func (d *DB) lookup(ip netip.Addr) (*cached, int, error) {
	res := d.r.Lookup(ip.Unmap())
	if err := res.Err(); err != nil {
		return nil, 0, err
	}
	bits := res.Prefix().Bits()
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
		return nil, bits, err
	}
	c := &cached{offset: off, loc: rec.location(), asn: rec.ASN}
	slot.Store(c)
	return c, bits, nil
}

// City looks up an address in a City or Country database.
func (d *DB) City(ip netip.Addr) (Location, error) {
	c, bits, err := d.lookup(ip)
	if err != nil || c == nil {
		return Location{Prefix: bits}, err
	}
	l := c.loc
	l.Prefix = bits
	return l, nil
}

// ASN looks up an address in an ASN database.
func (d *DB) ASN(ip netip.Addr) (asn uint32, prefix int, found bool, err error) {
	c, bits, err := d.lookup(ip)
	if err != nil || c == nil || c.asn == 0 {
		return 0, bits, false, err
	}
	return c.asn, bits, true, nil
}
