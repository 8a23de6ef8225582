package geo

import (
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/gtm-dns/coredns-gtm/geo/geotest"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func ip(s string) netip.Addr    { return netip.MustParseAddr(s) }

// ranges lists r as "first-last:value" strings.
func ranges(r *Ranges) []string {
	var out []string
	for i := range r.Len() {
		f, l, v := r.Range(i)
		out = append(out, f.String()+"-"+l.String()+":"+itoa(v))
	}
	return out
}

func itoa(v int32) string {
	if v < 0 {
		return "-" + itoa(-v)
	}
	if v < 10 {
		return string(rune('0' + v))
	}
	return itoa(v/10) + string(rune('0'+v%10))
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestNetLayer(t *testing.T) {
	cases := []struct {
		name string
		nets []string
		is6  bool
		want []string
	}{
		{"none", nil, false, []string{"0.0.0.0-255.255.255.255:-1"}},
		{"one", []string{"10.0.0.0/8"}, false, []string{"0.0.0.0-9.255.255.255:-1", "10.0.0.0-10.255.255.255:0", "11.0.0.0-255.255.255.255:-1"}},
		{"nested: innermost wins", []string{"10.0.0.0/8", "10.1.0.0/16"}, false,
			[]string{"0.0.0.0-9.255.255.255:-1", "10.0.0.0-10.0.255.255:0", "10.1.0.0-10.1.255.255:1", "10.2.0.0-10.255.255.255:0", "11.0.0.0-255.255.255.255:-1"}},
		{"at both ends", []string{"0.0.0.0/1", "255.255.255.255/32"}, false,
			[]string{"0.0.0.0-127.255.255.255:0", "128.0.0.0-255.255.255.254:-1", "255.255.255.255-255.255.255.255:1"}},
		{"the whole space", []string{"0.0.0.0/0"}, false, []string{"0.0.0.0-255.255.255.255:0"}},
		{"adjacent, same length", []string{"10.0.0.0/9", "10.128.0.0/9"}, false,
			[]string{"0.0.0.0-9.255.255.255:-1", "10.0.0.0-10.127.255.255:0", "10.128.0.0-10.255.255.255:1", "11.0.0.0-255.255.255.255:-1"}},
		{"other family ignored", []string{"2001:db8::/32"}, false, []string{"0.0.0.0-255.255.255.255:-1"}},
		{"IPv6", []string{"2001:db8::/32", "::/0"}, true,
			[]string{"::-2001:db7:ffff:ffff:ffff:ffff:ffff:ffff:1", "2001:db8::-2001:db8:ffff:ffff:ffff:ffff:ffff:ffff:0", "2001:db9::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:1"}},
		{"IPv6 /64 boundary", []string{"2001:db8::/64"}, true,
			[]string{"::-2001:db7:ffff:ffff:ffff:ffff:ffff:ffff:-1", "2001:db8::-2001:db8::ffff:ffff:ffff:ffff:0", "2001:db8:0:1::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:-1"}},
	}
	for _, tc := range cases {
		var nets []netip.Prefix
		for _, n := range tc.nets {
			nets = append(nets, pfx(n))
		}
		r := NetLayer(nets, tc.is6)
		if got := ranges(&r); !equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// Sweep merges neighbours of equal value, also across the boundaries of its layers.
func TestSweepMerges(t *testing.T) {
	a := NetLayer([]netip.Prefix{pfx("10.0.0.0/8"), pfx("11.0.0.0/8")}, false)
	b := NetLayer([]netip.Prefix{pfx("10.128.0.0/9"), pfx("12.0.0.0/8")}, false)
	cases := []struct {
		name string
		eval func(vals []int32) int32
		want []string
	}{
		{"everything alike", func([]int32) int32 { return 7 }, []string{"0.0.0.0-255.255.255.255:7"}},
		{"in a or b", func(v []int32) int32 {
			if v[0] >= 0 || v[1] >= 0 {
				return 1
			}
			return 0
		}, []string{"0.0.0.0-9.255.255.255:0", "10.0.0.0-12.255.255.255:1", "13.0.0.0-255.255.255.255:0"}},
		{"a's nets apart", func(v []int32) int32 { return v[0] }, []string{"0.0.0.0-9.255.255.255:-1", "10.0.0.0-10.255.255.255:0", "11.0.0.0-11.255.255.255:1", "12.0.0.0-255.255.255.255:-1"}},
		{"both", func(v []int32) int32 { return v[0]*10 + v[1] }, []string{
			"0.0.0.0-9.255.255.255:-11", "10.0.0.0-10.127.255.255:-1", "10.128.0.0-10.255.255.255:0",
			"11.0.0.0-11.255.255.255:9", "12.0.0.0-12.255.255.255:-9", "13.0.0.0-255.255.255.255:-11"}},
	}
	for _, tc := range cases {
		got, ok := Sweep(false, []*Ranges{&a, &b}, nil, func(_ netip.Addr, v []int32) int32 { return tc.eval(v) })
		if !ok {
			t.Fatal("stopped")
		}
		if g := ranges(&got); !equal(g, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, g, tc.want)
		}
	}
	// stop is asked every 4096 pieces: a long sweep gives up.
	var many []netip.Prefix
	for i := range 10000 {
		many = append(many, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24))
	}
	l := NetLayer(many, false)
	if _, ok := Sweep(false, []*Ranges{&l}, func() bool { return true }, func(_ netip.Addr, v []int32) int32 { return v[0] }); ok {
		t.Error("a stopped sweep finished")
	}
}

// Lookup's prefix is the shortest around the address inside its range: never wider.
func TestPartitionLookup(t *testing.T) {
	l4 := NetLayer([]netip.Prefix{pfx("10.0.0.0/8"), pfx("10.1.2.0/24"), pfx("192.0.2.128/25")}, false)
	l6 := NetLayer([]netip.Prefix{pfx("2001:db8::/32"), pfx("2001:db8:0:1::/64")}, true)
	p := &Partition{V4: l4, V6: l6}
	cases := []struct {
		addr string
		val  int32
		bits int
	}{
		{"10.0.0.1", 0, 16},        // 10.0.0.0/16 is inside 10.0.0.0-10.1.1.255
		{"10.1.1.255", 0, 23},      // 10.1.0.0/23, right below the /24
		{"10.1.2.7", 1, 24},        // the /24 itself
		{"10.1.3.0", 0, 24},        // right above it
		{"10.128.0.0", 0, 1 + 8},   // 10.128.0.0/9
		{"9.255.255.255", -1, 7},   // 8.0.0.0/7 ends where 10.0.0.0/8 starts
		{"0.0.0.0", -1, 5},         // 0.0.0.0/5
		{"255.255.255.255", -1, 3}, // 224.0.0.0/3: 192.0.0.0/2 would hold 192.0.2.128/25
		{"192.0.2.200", 2, 25},
		{"192.0.2.127", -1, 25},
		{"2001:db8::1", 0, 64},
		{"2001:db8:0:1::1", 1, 64},
		{"2001:db8:8000::", 0, 33},
		{"8000::", -1, 1},
		{"::", -1, 3},
	}
	for _, tc := range cases {
		v, bits := p.Lookup(ip(tc.addr))
		if v != tc.val || bits != tc.bits {
			t.Errorf("%s: value %d /%d, want %d /%d", tc.addr, v, bits, tc.val, tc.bits)
		}
	}
	// One range for a whole family: /0.
	u := &Partition{V4: Uniform(false, 3), V6: Uniform(true, 3)}
	for _, a := range []string{"0.0.0.0", "203.0.113.9", "255.255.255.255", "::", "2001:db8::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"} {
		if v, bits := u.Lookup(ip(a)); v != 3 || bits != 0 {
			t.Errorf("uniform %s: %d /%d", a, v, bits)
		}
	}
}

// Property: every address of the returned prefix lies in the range Lookup found, and the
// prefix one bit shorter does not.
func TestPartitionLookupRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, is6 := range []bool{false, true} {
		var nets []netip.Prefix
		for range 300 {
			var a netip.Addr
			var bits int
			if is6 {
				var b [16]byte
				for i := range b {
					b[i] = byte(rng.IntN(256))
				}
				b[0] = 0x20 // keep them close together so they nest and touch
				b[1] = byte(rng.IntN(2))
				a, bits = netip.AddrFrom16(b), 8+rng.IntN(120)
			} else {
				a, bits = netip.AddrFrom4([4]byte{byte(rng.IntN(4)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))}), 4+rng.IntN(29)
			}
			nets = append(nets, netip.PrefixFrom(a, bits).Masked())
		}
		r := NetLayer(nets, is6)
		p := &Partition{V4: r, V6: r}
		for range 5000 {
			x := nets[rng.IntN(len(nets))].Addr()
			k := keyOf(x)
			k.lo ^= uint64(rng.IntN(1 << 16))
			a := k.addr(is6)
			v, bits := p.Lookup(a)
			i := r.find(keyOf(a))
			first, last := r.bounds(i)
			pf, pl := prefixRange(netip.PrefixFrom(a, bits))
			if pf.less(first) || last.less(pl) || r.val[i] != v {
				t.Fatalf("%s: /%d leaves its range %s-%s", a, bits, first.addr(is6), last.addr(is6))
			}
			if bits > 0 {
				wf, wl := prefixRange(netip.PrefixFrom(a, bits-1))
				if !wf.less(first) && !last.less(wl) {
					t.Fatalf("%s: /%d would fit too, got /%d", a, bits-1, bits)
				}
			}
		}
	}
}

func city(cont, cc, region string) mmdbtype.Map {
	m := mmdbtype.Map{"continent": mmdbtype.Map{"code": mmdbtype.String(cont)}, "country": mmdbtype.Map{"iso_code": mmdbtype.String(cc)}}
	if region != "" {
		m["subdivisions"] = mmdbtype.Slice{mmdbtype.Map{"iso_code": mmdbtype.String(region)}}
	}
	return m
}

// Facts agree with lookups everywhere: at every boundary, next to it, and at random.
func TestFactsAgreeWithLookups(t *testing.T) {
	nets := map[string]mmdbtype.Map{
		"1.0.16.0/20":      city("AS", "JP", "13"),
		"1.0.32.0/20":      city("AS", "JP", "13"), // adjacent, equal facts: one range
		"1.0.48.0/20":      city("AS", "JP", "13"),
		"81.2.69.0/24":     city("EU", "GB", "ENG"),
		"255.255.255.0/24": city("EU", "DE", ""),
		"2001:db8::/32":    city("EU", "FR", "IDF"),
		"2a00::/12":        city("EU", "DE", "BE"),
	}
	for _, ipv6 := range []bool{true, false} {
		n := nets
		if !ipv6 {
			n = map[string]mmdbtype.Map{}
			for k, v := range nets {
				if pfx(k).Addr().Is4() {
					n[k] = v
				}
			}
		}
		v := 4
		if ipv6 {
			v = 6
		}
		db := open(t, writeTree(t, "GeoIP2-City", v, n))
		f, err := db.Facts()
		if err != nil {
			t.Fatal(err)
		}
		if f2, _ := db.Facts(); f2 != f {
			t.Error("a second Facts walked again")
		}
		checkFacts(t, db, f, 20000)
		if got := ranges(&f.V4); len(got) != 6 {
			t.Errorf("IPv6 tree %v: IPv4 ranges %v, want 6 (1.0.16.0-1.0.63.255 as one)", ipv6, got)
		}
	}
}

// checkFacts compares f with db's lookups at n random addresses and next to every boundary.
func checkFacts(t *testing.T, db *DB, f *Facts, n int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	var probes []netip.Addr
	for _, r := range []*Ranges{&f.V4, &f.V6} {
		for i := range r.Len() {
			first, last, _ := r.Range(i)
			probes = append(probes, first, last, first.Prev(), last.Next())
		}
	}
	for range n {
		probes = append(probes, netip.AddrFrom4([4]byte{byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))}))
		var b [16]byte
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		b[0] = 0x20 | b[0]&0x1f // 2000::/3, where the networks are
		probes = append(probes, netip.AddrFrom16(b))
	}
	for _, a := range probes {
		if !a.IsValid() || a.Is4In6() {
			continue
		}
		r := &f.V4
		if a.Is6() {
			r = &f.V6
			if inAliased(a) {
				continue
			}
		}
		want := Fact{}
		if db.Kind() == KindASN {
			asn, _, found, err := db.ASN(a)
			if err != nil {
				t.Fatal(err)
			}
			want = Fact{Found: found, ASN: asn}
		} else {
			l, err := db.City(a)
			if err != nil {
				t.Fatal(err)
			}
			want = Fact{Found: l.Found, Continent: l.Continent, Country: l.Country, Region: l.Region}
		}
		if got := f.Fact(r.Value(r.find(keyOf(a)))); got != want {
			t.Fatalf("%s: facts say %+v, lookup %+v", a, got, want)
		}
	}
}

func inAliased(a netip.Addr) bool {
	for _, p := range Aliased() {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func TestRealFacts(t *testing.T) {
	for _, c := range []struct{ env, file string }{
		{"GTM_REAL_CITY_MMDB", "city.mmdb"},
		{"GTM_REAL_COUNTRY_MMDB", "country.mmdb"},
		{"GTM_REAL_ASN_MMDB", "asn.mmdb"},
	} {
		t.Run(c.file, func(t *testing.T) {
			db := realDB(t, c.env, c.file)
			f, err := db.Facts()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d IPv4 and %d IPv6 ranges, %d distinct facts", c.file, f.V4.Len(), f.V6.Len(), len(f.List))
			checkFacts(t, db, f, 20000)
		})
	}
}

// A file rewritten in place with the same metadata (a generator's fixed build time) gets
// facts of its own; reopening an unchanged file reuses them.
func TestFactsFollowTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "city.mmdb")
	write := func(cont string) *DB {
		if err := geotest.WriteCity(path, []geotest.CityNet{{CIDR: "1.0.16.0/20", Continent: cont, Country: "JP"}}); err != nil {
			t.Fatal(err)
		}
		return open(t, path)
	}
	f1, err := write("AS").Facts()
	if err != nil {
		t.Fatal(err)
	}
	again, _ := open(t, path).Facts()
	f2, _ := write("EU").Facts()
	if again != f1 {
		t.Error("the unchanged file was walked again")
	}
	if f2 == f1 || f2.Fact(f2.V4.Value(f2.V4.find(keyOf(ip("1.0.16.1"))))).Continent != "EU" {
		t.Error("the rewritten file kept the old facts")
	}
}
