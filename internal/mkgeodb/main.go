// Command mkgeodb writes the demo City and ASN databases that Corefile.example uses.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gtm-dns/coredns-gtm/geo/geotest"
)

func main() {
	city := flag.String("city", "demo/geo-city.mmdb", "City database to write")
	asn := flag.String("asn", "demo/geo-asn.mmdb", "ASN database to write")
	flag.Parse()
	for _, p := range []string{*city, *asn} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			fail(err)
		}
	}
	if err := geotest.WriteCity(*city, geotest.Demo()); err != nil {
		fail(err)
	}
	if err := geotest.WriteASN(*asn, geotest.DemoASN()); err != nil {
		fail(err)
	}
	fmt.Printf("wrote %s and %s\n", *city, *asn)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "mkgeodb:", err)
	os.Exit(1)
}
