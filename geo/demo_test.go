package geo_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/gtm-dns/coredns-gtm/geo/geotest"
)

// The demo databases are committed so that `./coredns-gtm -conf Corefile.example` works on a
// fresh clone without running the generator first; they must match what it writes.
func TestDemoDatabasesMatchGenerator(t *testing.T) {
	dir := t.TempDir()
	city, asn := filepath.Join(dir, "city.mmdb"), filepath.Join(dir, "asn.mmdb")
	if err := geotest.WriteDemo(city, asn); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ generated, committed string }{
		{city, "../demo/geo-city.mmdb"},
		{asn, "../demo/geo-asn.mmdb"},
	} {
		want, err := os.ReadFile(c.generated)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(c.committed)
		if err != nil {
			t.Fatalf("%v (run `make demo-db`)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the generator's output; run `make demo-db` and commit it", c.committed)
		}
	}
}
