// Command mkgeodb writes the demo City and ASN databases that Corefile.example uses:
//
//	go run ./internal/mkgeodb -city demo/geo-city.mmdb -asn demo/geo-asn.mmdb
//
// With -asn-csv it instead converts ip-location-db's ASN CSV files (start,end,asn,org per
// line) into a GeoLite2-ASN-layout database, because no public ASN mmdb is published on the
// registries the project can reach; scripts/fetch-realdb.sh uses it for the real-data test:
//
//	go run ./internal/mkgeodb -asn-csv asn-ipv4.csv,asn-ipv6.csv -asn .cache/realdb/asn.mmdb
package main

import (
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/maxmind/mmdbwriter"

	"github.com/gtm-dns/coredns-gtm/geo/geotest"
)

func main() {
	city := flag.String("city", "demo/geo-city.mmdb", "demo City database to write")
	asn := flag.String("asn", "demo/geo-asn.mmdb", "ASN database to write")
	asnCSV := flag.String("asn-csv", "", "comma-separated ip-location-db ASN CSV files to convert into -asn (skips the demo data)")
	flag.Parse()

	if *asnCSV != "" {
		n, err := convertASN(*asn, strings.Split(*asnCSV, ","))
		if err != nil {
			fail(err)
		}
		fmt.Printf("wrote %s (%d ranges)\n", *asn, n)
		return
	}
	for _, p := range []string{*city, *asn} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			fail(err)
		}
	}
	if err := geotest.WriteDemo(*city, *asn); err != nil {
		fail(err)
	}
	fmt.Printf("wrote %s and %s\n", *city, *asn)
}

// convertASN writes out from CSV lines "first,last,asn,organisation", IPv4 and IPv6.
func convertASN(out string, files []string) (int, error) {
	t, err := geotest.NewTree("GeoLite2-ASN")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return n, err
		}
		r := csv.NewReader(f)
		r.FieldsPerRecord = 4
		r.ReuseRecord = true
		for {
			rec, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				f.Close()
				return n, fmt.Errorf("%s: %v", name, err)
			}
			line, _ := r.FieldPos(0)
			first, last := net.ParseIP(rec[0]), net.ParseIP(rec[1])
			num, err := strconv.ParseUint(rec[2], 10, 32)
			if first == nil || last == nil || err != nil {
				f.Close()
				return n, fmt.Errorf("%s:%d: want first-address,last-address,asn,organisation; have %q", name, line, rec)
			}
			if num == 0 {
				continue // "not routed": leave the range without data
			}
			err = t.InsertRange(first, last, geotest.ASNRecord(uint32(num), rec[3]))
			if _, ok := errors.AsType[*mmdbwriter.AliasedNetworkError](err); ok {
				// Teredo 2001::/32 and 6to4 2002::/16 are aliases of IPv4 space, as in
				// MaxMind's own databases: their IPv4 owners answer for them.
				continue
			}
			if err != nil {
				f.Close()
				return n, fmt.Errorf("%s:%d: %v", name, line, err)
			}
			n++
		}
		f.Close()
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return n, err
	}
	return n, geotest.Write(out, t)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "mkgeodb:", err)
	os.Exit(1)
}
