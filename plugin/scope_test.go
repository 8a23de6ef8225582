package gtm

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/gtm-dns/coredns-gtm/control"
	"github.com/gtm-dns/coredns-gtm/geo"
	"github.com/gtm-dns/coredns-gtm/geo/geotest"
	"github.com/gtm-dns/coredns-gtm/policy"
)

// scopeBlock is a gtm block whose domains route by every kind of term the partition covers.
func scopeBlock(city, asn string) string {
	return `gtm gtm.example.net {
    geoip ` + city + `
    asn ` + asn + `
    pool eu {
        address 192.0.2.1
        location 50.11 8.68
    }
    pool as {
        address 192.0.2.2
        location 1.35 103.82
    }
    pool us {
        address 192.0.2.3
        location 39.04 -77.49
    }
    pool google {
        address 192.0.2.4
    }
    pool office {
        address 192.0.2.5
    }
    domain continents.gtm.example.net {
        route continent:EU eu
        route continent:AF eu
        route continent:AS as
        route continent:OC as
        route continent:NA us
        route continent:SA us
        route default eu
    }
    domain www.gtm.example.net {
        route continent:AS as
        route continent:EU eu
        route country:US us
        route region:US-CA google
        route asn:15169 google
        route net:81.2.69.128/25,net:2001:db8:1:8000::/49 office
        route net:10.0.0.0/8 as
        route net:10.1.0.0/16 office
        route default eu
    }
    domain fenced.gtm.example.net {
        route country:DE,country:GB,country:FR eu
        route asn:4134 as
    }
    domain near.gtm.example.net {
        route continent:NA us
        route default eu as us select nearest
    }
    domain nets.gtm.example.net {
        route net:2001:db8::/32 as
        route default eu
    }
    domain flat.gtm.example.net {
        route default eu
    }
}`
}

// waitScopes waits until the snapshot in force has its partitions.
func waitScopes(tb testing.TB, g *GTM) *control.Snapshot {
	tb.Helper()
	cs := g.ctl.Snapshot()
	for deadline := time.Now().Add(5 * time.Minute); !cs.ScopesReady(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatal("the scope partitions were not built")
		}
	}
	return cs
}

// decision is what the answer for a client depends on: the route (its place in the domain),
// and for select nearest the pool chosen.
func decision(g *GTM, d *policy.Domain, addr netip.Addr, bits int) (what string, cl policy.Client) {
	sub := &geo.ClientSubnet{Addr: netip.PrefixFrom(addr, bits).Masked().Addr(), SourceBits: bits}
	control.ClientOf(&cl, sub, netip.Addr{})
	if cl.Known {
		g.locate(d, &cl)
	}
	r := d.Match(&cl)
	if r == nil {
		return "no route", cl
	}
	what = fmt.Sprintf("route %d (%s)", slices.Index(d.Routes, r), r.Selector.Text)
	if r.Select == policy.SelectNearest {
		what += " -> " + r.Pick(&cl, policy.IPv4, nil).Pool.Name
	}
	return what, cl
}

// randomClient is an address and ECS source prefix: half anywhere (IPv4 routable space or
// IPv6 2000::/3), half near a network of nets (inside it or just outside its ends).
func randomClient(rng *rand.Rand, is6 bool, nets []netip.Prefix) (netip.Addr, int) {
	var a netip.Addr
	if len(nets) > 0 && rng.IntN(2) == 0 {
		var fam []netip.Prefix
		for _, n := range nets {
			if n.Addr().Is6() == is6 {
				fam = append(fam, n)
			}
		}
		n := fam[rng.IntN(len(fam))]
		a = n.Addr()
		switch rng.IntN(3) {
		case 0:
			a = a.Prev()
		case 1:
			a = lastOf(n).Next()
		default:
			b := a.AsSlice()
			for i := n.Bits()/8 + 1; i < len(b); i++ {
				b[i] = byte(rng.IntN(256))
			}
			a, _ = netip.AddrFromSlice(b)
			if !n.Contains(a) {
				a = n.Addr()
			}
		}
		if !a.IsValid() {
			a = n.Addr()
		}
	} else if is6 {
		var b [16]byte
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		b[0] = 0x20 | b[0]&0x1f
		a = netip.AddrFrom16(b)
	} else {
		a = randomRoutable4(rng)
	}
	full := a.BitLen()
	switch rng.IntN(4) {
	case 0:
		return a, full
	case 1:
		if is6 {
			return a, 56
		}
		return a, 24
	}
	return a, 1 + rng.IntN(full)
}

// lastOf is the last address of p.
func lastOf(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// randomRoutable4 is a random unicast IPv4 address outside the private, shared, loopback,
// link-local, documentation, benchmarking and multicast/reserved ranges.
func randomRoutable4(rng *rand.Rand) netip.Addr {
	for {
		a := netip.AddrFrom4([4]byte{byte(rng.IntN(224)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))})
		if a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() || a.As4()[0] == 0 {
			continue
		}
		routable := true
		for _, p := range nonRoutable4 {
			if p.Contains(a) {
				routable = false
			}
		}
		if routable {
			return a
		}
	}
}

var nonRoutable4 = []netip.Prefix{
	netip.MustParsePrefix("100.64.0.0/10"), netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("203.0.113.0/24"),
}

// checkScopes is the property: for n random clients of each family, every address of the
// prefix the answer's scope names (both ends and a sample between) gets the same decision,
// and the scope is never narrower than the database network's (today's) one.
func checkScopes(t *testing.T, g *GTM, cs *control.Snapshot, nets []netip.Prefix, n int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 8))
	for _, d := range cs.Domains {
		for _, is6 := range []bool{false, true} {
			wider := 0
			for range n {
				a, bits := randomClient(rng, is6, nets)
				want, cl := decision(g, d, a, bits)
				s, old := cs.Scope(d, &cl), d.Scope(&cl)
				// Where the database network's scope was /0, the partition may be narrower:
				// an IPv4 /1 (narrowV4), an IPv6 prefix that leaves ::ffff:0:0/96 out; so may it
				// where the old prefix held ::ffff:0:0/96.
				if s > old && old != 0 && !netip.PrefixFrom(cl.Addr, old).Masked().Overlaps(mappedNet) {
					t.Fatalf("%s %s/%d: scope /%d narrower than the database network's /%d", d.Name, a, bits, s, old)
				}
				if s < old {
					wider++
				}
				if !d.DependsOnClient() {
					if s != 0 {
						t.Fatalf("%s: scope %d for an answer that does not depend on the client", d.Name, s)
					}
					continue
				}
				p := netip.PrefixFrom(cl.Addr, s).Masked()
				samples := []netip.Addr{p.Addr(), lastOf(p)}
				for range 16 {
					b := p.Addr().AsSlice()
					for i := range b {
						if i*8+8 > p.Bits() {
							b[i] |= byte(rng.IntN(256)) & (0xff >> max(0, p.Bits()-i*8))
						}
					}
					x, _ := netip.AddrFromSlice(b)
					samples = append(samples, x)
				}
				for _, x := range samples {
					if !p.Contains(x) {
						t.Fatalf("sample %s outside %s", x, p)
					}
					if got, _ := decision(g, d, x, x.BitLen()); got != want {
						t.Fatalf("%s: client %s/%d gets %q with scope /%d, but %s in %s gets %q", d.Name, a, bits, want, s, x, p, got)
					}
				}
			}
			t.Logf("%s IPv%d: %d of %d scopes wider than the database network's", d.Name, map[bool]int{false: 4, true: 6}[is6], wider, n)
		}
	}
}

func TestScopeProperty(t *testing.T) {
	dir := t.TempDir()
	city, asn := filepath.Join(dir, "city.mmdb"), filepath.Join(dir, "asn.mmdb")
	if err := geotest.WriteDemo(city, asn); err != nil {
		t.Fatal(err)
	}
	g := newTestGTM(t, scopeBlock(city, asn))
	cs := waitScopes(t, g)
	var nets []netip.Prefix
	for _, n := range geotest.Demo() {
		nets = append(nets, netip.MustParsePrefix(n.CIDR))
	}
	for _, n := range geotest.DemoASN() {
		nets = append(nets, netip.MustParsePrefix(n.CIDR))
	}
	nets = append(nets, netip.MustParsePrefix("81.2.69.128/25"), netip.MustParsePrefix("2001:db8:1:8000::/49"),
		netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("2002::/16"),
		netip.MustParsePrefix("2001::/32"))
	checkScopes(t, g, cs, nets, 3000)
}

// realPaths are the real DB-IP databases from the environment (GTM_REAL_CITY_MMDB or
// GTM_REAL_COUNTRY_MMDB, and GTM_REAL_ASN_MMDB), or the test skips.
func realPaths(t testing.TB, env string) (city, asn string) {
	city = os.Getenv(env)
	if city == "" {
		t.Skipf("%s not set: the real-database scope test needs it (scripts/fetch-realdb.sh)", env)
	}
	if asn = os.Getenv("GTM_REAL_ASN_MMDB"); asn == "" {
		t.Skip("GTM_REAL_ASN_MMDB not set")
	}
	return city, asn
}

func TestScopePropertyRealDB(t *testing.T) {
	for _, env := range []string{"GTM_REAL_COUNTRY_MMDB", "GTM_REAL_CITY_MMDB"} {
		t.Run(env, func(t *testing.T) {
			city, asn := realPaths(t, env)
			g := newTestGTM(t, scopeBlock(city, asn))
			cs := waitScopes(t, g)
			checkScopes(t, g, cs, nil, 1000)
		})
	}
}

// TestScopeReport measures, for the real DB-IP database and a continent-only domain, the
// scopes 100,000 random routable IPv4 /24 clients get with the merged partition and with
// the database network alone, and what building the partition costs. Regenerate the table
// in docs/BENCHMARKS.md with
//
//	GTM_REAL_COUNTRY_MMDB=... GTM_REAL_CITY_MMDB=... GTM_REAL_ASN_MMDB=... \
//	    go test -run 'TestScopeReport' -v -count=1 ./plugin/
func TestScopeReport(t *testing.T) {
	for _, env := range []string{"GTM_REAL_CITY_MMDB", "GTM_REAL_COUNTRY_MMDB"} {
		t.Run(env, func(t *testing.T) {
			city, asn := realPaths(t, env)
			db, err := geo.Open(city)
			if err != nil {
				t.Fatal(err)
			}
			var m0, m1, m2 runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&m0)
			began := time.Now()
			facts, err := db.Facts() // cold unless another test of this process walked it
			if err != nil {
				t.Fatal(err)
			}
			walked := time.Since(began)
			runtime.GC()
			runtime.ReadMemStats(&m1)
			factsHeap := mb(m1.HeapAlloc, m0.HeapAlloc)

			runtime.GC()
			runtime.ReadMemStats(&m1)
			began = time.Now()
			g := newTestGTM(t, scopeBlock(city, asn))
			cs := waitScopes(t, g) // every domain's partition (control/scope.go)
			built := time.Since(began)
			d := cs.Domain("continents.gtm.example.net.")
			runtime.GC()
			runtime.ReadMemStats(&m2)
			runtime.KeepAlive(db)
			t.Logf("database %s: facts walk %s, %d IPv4 + %d IPv6 ranges, heap +%.1f MB",
				filepath.Base(city), walked.Round(time.Millisecond), facts.V4.Len(), facts.V6.Len(), factsHeap)
			t.Logf("the block's partitions (every domain of scopeBlock): built in %s, heap +%.1f MB",
				built.Round(time.Millisecond), mb(m2.HeapAlloc, m1.HeapAlloc))

			buckets := []struct {
				name   string
				lo, hi int
			}{{"/0-/7", 0, 7}, {"/8-/16", 8, 16}, {"/17-/24", 17, 24}, {"/25-/32", 25, 32}}
			var now, before [4]int
			rng := rand.New(rand.NewPCG(42, 42))
			const n = 100000
			for range n {
				_, cl := decision(g, d, randomRoutable4(rng), 24)
				for i, b := range buckets {
					if s := cs.Scope(d, &cl); s >= b.lo && s <= b.hi {
						now[i]++
					}
					if s := d.Scope(&cl); s >= b.lo && s <= b.hi {
						before[i]++
					}
				}
			}
			t.Logf("%d random routable IPv4 /24 clients, continent-only domain:", n)
			t.Logf("| scope | merged partition | database network (before) |")
			for i, b := range buckets {
				t.Logf("| %s | %d (%.1f%%) | %d (%.1f%%) |", b.name, now[i], pct(now[i], n), before[i], pct(before[i], n))
			}
			runtime.KeepAlive(facts)
		})
	}
}

func mb(a, b uint64) float64 { return (float64(a) - float64(b)) / 1e6 }

func pct(a, n int) float64 { return 100 * float64(a) / float64(n) }

// BenchmarkScopeLookup is the query path's part: the partition lookup for a located client.
func BenchmarkScopeLookup(b *testing.B) {
	run := func(b *testing.B, city, asn string) {
		g := newTestGTM(b, scopeBlock(city, asn))
		cs := waitScopes(b, g)
		d := cs.Domain("www.gtm.example.net.")
		rng := rand.New(rand.NewPCG(1, 1))
		clients := make([]policy.Client, 1024)
		for i := range clients {
			_, clients[i] = decision(g, d, randomRoutable4(rng), 24)
		}
		b.ReportAllocs()
		b.ResetTimer()
		i := 0
		for b.Loop() {
			cs.Scope(d, &clients[i%len(clients)])
			i++
		}
	}
	b.Run("demo", func(b *testing.B) {
		dir := b.TempDir()
		city, asn := filepath.Join(dir, "city.mmdb"), filepath.Join(dir, "asn.mmdb")
		if err := geotest.WriteDemo(city, asn); err != nil {
			b.Fatal(err)
		}
		run(b, city, asn)
	})
	b.Run("real", func(b *testing.B) {
		city, asn := realPaths(b, "GTM_REAL_COUNTRY_MMDB")
		run(b, city, asn)
	})
}

func TestScopeLookupAllocs(t *testing.T) {
	dir := t.TempDir()
	city, asn := filepath.Join(dir, "city.mmdb"), filepath.Join(dir, "asn.mmdb")
	if err := geotest.WriteDemo(city, asn); err != nil {
		t.Fatal(err)
	}
	g := newTestGTM(t, scopeBlock(city, asn))
	cs := waitScopes(t, g)
	d := cs.Domain("www.gtm.example.net.")
	_, cl := decision(g, d, netip.MustParseAddr("81.2.69.7"), 24)
	if n := testing.AllocsPerRun(100, func() { cs.Scope(d, &cl) }); n != 0 {
		t.Errorf("scope lookup allocates %.0f times", n)
	}
}

// mappedNet is the IPv4-mapped IPv6 space.
var mappedNet = netip.MustParsePrefix("::ffff:0:0/96")
