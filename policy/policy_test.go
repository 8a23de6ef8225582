package policy

import (
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

type fakeHealth struct {
	up  atomic.Bool
	rtt atomic.Int64
}

func (f *fakeHealth) Healthy() bool      { return f.up.Load() }
func (f *fakeHealth) RTT() time.Duration { return time.Duration(f.rtt.Load()) }

func health(up bool, rtt time.Duration) *fakeHealth {
	h := &fakeHealth{}
	h.up.Store(up)
	h.rtt.Store(int64(rtt))
	return h
}

func addr(s string, weight int) *Address {
	return &Address{Text: s, IP: netip.MustParseAddr(s), Weight: weight, Mode: new(ModeCell)}
}

func pool(name string, lb LB, addrs ...*Address) *Pool {
	return &Pool{Name: name, LB: lb, Addrs: addrs, MinAvailable: 1, Weight: 1}
}

func sel(t *testing.T, s string) Selector {
	t.Helper()
	x, err := ParseSelector(s)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func domain(routes ...*Route) *Domain {
	d := &Domain{Name: "www.gtm.example.net.", Routes: routes, TTL: 30, Pin: new(PinCell)}
	d.Finish()
	return d
}

func TestParseSelector(t *testing.T) {
	good := map[string]func(Selector) bool{
		"default":                              func(s Selector) bool { return s.Default },
		"continent:eu,country:de":              func(s Selector) bool { return s.Continents[0] == "EU" && s.Countries[0] == "DE" },
		"region:US-CA":                         func(s Selector) bool { return s.Regions[0] == "US-CA" },
		"asn:4134,asn:AS13335":                 func(s Selector) bool { return s.ASNs[0] == 4134 && s.ASNs[1] == 13335 },
		"net:203.0.113.7/24,net:2001:db8::/32": func(s Selector) bool { return s.Nets[0].String() == "203.0.113.0/24" && s.Nets[1].Bits() == 32 },
	}
	for in, ok := range good {
		s, err := ParseSelector(in)
		if err != nil || !ok(s) {
			t.Errorf("ParseSelector(%q) = %+v, %v", in, s, err)
		}
	}
	bad := map[string]string{
		"continent:XX":    "continent must be",
		"country:DEU":     "ISO 3166-1",
		"region:CA":       "ISO 3166-2",
		"asn:0":           "positive AS number",
		"asn:99999999999": "positive AS number",
		"net:10.0.0.0/33": "CIDR",
		"planet:mars":     "unknown selector kind",
		"germany":         "expected default",
		"country:":        "expected default",
	}
	for in, want := range bad {
		_, err := ParseSelector(in)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), in) {
			t.Errorf("ParseSelector(%q) error = %v, want it to name the term and say %q", in, err, want)
		}
	}
}

func TestMatchSpecificity(t *testing.T) {
	p := pool("p", LBWeighted, addr("192.0.2.1", 1))
	routes := []*Route{
		{Selector: sel(t, "default"), Pools: []*Pool{p}},
		{Selector: sel(t, "continent:EU"), Pools: []*Pool{p}},
		{Selector: sel(t, "country:DE"), Pools: []*Pool{p}},
		{Selector: sel(t, "region:DE-BE"), Pools: []*Pool{p}},
		{Selector: sel(t, "asn:3320"), Pools: []*Pool{p}},
		{Selector: sel(t, "net:10.0.0.0/8"), Pools: []*Pool{p}},
		{Selector: sel(t, "net:10.1.0.0/16"), Pools: []*Pool{p}},
		{Selector: sel(t, "country:DE"), Pools: []*Pool{p}}, // equal to routes[2]: first listed wins
	}
	d := domain(routes...)
	cases := []struct {
		name string
		c    Client
		want int
	}{
		{"nothing known", Client{Addr: netip.MustParseAddr("192.0.2.9"), Known: true}, 0},
		{"continent", Client{Addr: netip.MustParseAddr("192.0.2.9"), Known: true, GeoFound: true, Continent: "EU", Country: "FR"}, 1},
		{"country beats continent", Client{Addr: netip.MustParseAddr("192.0.2.9"), Known: true, GeoFound: true, Continent: "EU", Country: "DE"}, 2},
		{"region beats country", Client{Addr: netip.MustParseAddr("192.0.2.9"), Known: true, GeoFound: true, Continent: "EU", Country: "DE", Region: "DE-BE"}, 3},
		{"asn beats region", Client{Addr: netip.MustParseAddr("192.0.2.9"), Known: true, GeoFound: true, Continent: "EU", Country: "DE", Region: "DE-BE", ASNFound: true, ASN: 3320}, 4},
		{"net beats asn", Client{Addr: netip.MustParseAddr("10.2.0.1"), Known: true, ASNFound: true, ASN: 3320}, 5},
		{"longest net", Client{Addr: netip.MustParseAddr("10.1.2.3"), Known: true}, 6},
		{"unknown location: default only", Client{Addr: netip.MustParseAddr("10.1.2.3"), Known: false}, 0},
	}
	for _, tc := range cases {
		if got := d.Match(&tc.c); got != routes[tc.want] {
			t.Errorf("%s: matched %q, want route %d %q", tc.name, got.Selector.Text, tc.want, routes[tc.want].Selector.Text)
		}
	}
	// Without a default route, a client matching nothing gets no route (geo-fencing).
	fenced := domain(&Route{Selector: sel(t, "country:DE"), Pools: []*Pool{p}})
	if r := fenced.Match(&Client{Addr: netip.MustParseAddr("192.0.2.9"), Known: true, GeoFound: true, Country: "FR"}); r != nil {
		t.Errorf("geo-fenced domain matched %q", r.Selector.Text)
	}
	if fenced.HasDefault() || !d.HasDefault() {
		t.Error("HasDefault wrong")
	}
}

func TestScope(t *testing.T) {
	p := pool("p", LBWeighted, addr("192.0.2.1", 1))
	onlyDefault := domain(&Route{Selector: sel(t, "default"), Pools: []*Pool{p}})
	geoD := domain(&Route{Selector: sel(t, "country:DE"), Pools: []*Pool{p}}, &Route{Selector: sel(t, "default"), Pools: []*Pool{p}})
	netD := domain(&Route{Selector: sel(t, "net:10.0.0.0/8"), Pools: []*Pool{p}}, &Route{Selector: sel(t, "net:10.1.2.0/28"), Pools: []*Pool{p}}, &Route{Selector: sel(t, "default"), Pools: []*Pool{p}})
	c := func(ip string, bits int) *Client {
		return &Client{Addr: netip.MustParseAddr(ip), Bits: bits, Known: true, GeoFound: true, GeoBits: 16, Country: "DE"}
	}
	cases := []struct {
		name string
		d    *Domain
		c    *Client
		want int
	}{
		{"answer independent of client", onlyDefault, c("10.1.2.0", 24), 0},
		{"geo network decides", geoD, c("10.1.2.0", 24), 16},
		{"unknown location", geoD, &Client{Known: false}, 0},
		{"the /28 inside the client's /8 is left at bit 13", netD, c("10.9.0.0", 24), 13},
		{"the /28 is left at bit 23", netD, c("10.1.0.0", 24), 23},
		{"inside the /28", netD, c("10.1.2.0", 24), 28},
		{"the /8 holds the client, no longer net near", netD, c("10.200.0.0", 24), 9},
		{"outside every net: the first bit decides", netD, c("192.0.2.0", 24), 1},
	}
	for _, tc := range cases {
		if got := tc.d.Scope(tc.c); got != tc.want {
			t.Errorf("%s: scope %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestFailoverAndFailOpen(t *testing.T) {
	h1, h2 := health(true, 0), health(true, 0)
	a1, a2 := addr("192.0.2.1", 1), addr("198.51.100.1", 1)
	a1.Health, a2.Health = h1, h2
	primary, standby := pool("primary", LBWeighted, a1), pool("standby", LBWeighted, a2)
	r := &Route{Selector: sel(t, "default"), Pools: []*Pool{primary, standby}}
	cl := &Client{}
	pick := func() Result { return r.Pick(cl, IPv4, nil) }

	if res := pick(); res.Pool != primary || res.Addrs[0] != a1 || res.Switched || res.FailOpen {
		t.Fatalf("healthy: %+v", res)
	}
	h1.up.Store(false)
	if res := pick(); res.Pool != standby || !res.Switched {
		t.Fatalf("primary down: %+v", res)
	}
	if res := pick(); res.Switched {
		t.Fatal("a second answer from the same pool is not a failover")
	}
	h2.up.Store(false)
	if res := pick(); res.Pool != primary || !res.FailOpen || len(res.Addrs) != 1 || res.Addrs[0] != a1 {
		t.Fatalf("all down must fail open to the first pool: %+v", res)
	}
	// An operator's "down" stays out even in fail-open, unless nothing else is left.
	a1.Mode.Set(ModeDown)
	if res := pick(); !res.FailOpen || len(res.Addrs) != 1 {
		t.Fatalf("fail-open with only a forced-down address: %+v", res)
	}
	a1.Mode.Set(ModeUp)
	if res := pick(); res.Pool != primary || res.FailOpen {
		t.Fatalf("forced up: %+v", res)
	}
}

func TestMinAvailable(t *testing.T) {
	a := []*Address{addr("192.0.2.1", 1), addr("192.0.2.2", 1), addr("192.0.2.3", 1)}
	hs := []*fakeHealth{health(true, 0), health(true, 0), health(true, 0)}
	for i := range a {
		a[i].Health = hs[i]
	}
	p := pool("p", LBAll, a...)
	p.MinAvailable = 2
	hs[0].up.Store(false)
	if !p.Available() {
		t.Fatal("2 of 3 up with min_available 2 must be available")
	}
	hs[1].up.Store(false)
	if p.Available() {
		t.Fatal("1 of 3 up with min_available 2 must not be available")
	}
	a[2].Disabled = true
	if p.UpCount() != 0 {
		t.Fatal("disabled address counted up")
	}
}

func TestFamilyFilterAndAll(t *testing.T) {
	p := pool("p", LBAll, addr("192.0.2.1", 1), addr("2001:db8::1", 1), addr("192.0.2.2", 1), addr("192.0.2.3", 1))
	r := &Route{Selector: Selector{Default: true}, Pools: []*Pool{p}}
	firsts := map[string]int{}
	for range 300 {
		res := r.Pick(&Client{}, IPv4, nil)
		if len(res.Addrs) != 3 {
			t.Fatalf("lb all answered %d IPv4 addresses, want 3", len(res.Addrs))
		}
		for _, a := range res.Addrs {
			if !a.IP.Is4() {
				t.Fatalf("IPv6 address %s in an A answer", a.Text)
			}
		}
		firsts[res.Addrs[0].Text]++
	}
	if len(firsts) != 3 {
		t.Fatalf("lb all must rotate the order; first addresses seen: %v", firsts)
	}
	if res := r.Pick(&Client{}, IPv6, nil); len(res.Addrs) != 1 || res.Addrs[0].Text != "2001:db8::1" {
		t.Fatalf("AAAA: %+v", res.Addrs)
	}
	p.Answers = 2
	if res := r.Pick(&Client{}, IPv4, nil); len(res.Addrs) != 2 {
		t.Fatalf("answers 2 gave %d", len(res.Addrs))
	}
}

// chiSquare returns the statistic for observed counts against expected proportions.
func chiSquare(obs []int, weights []int) float64 {
	n, total := 0, 0
	for i := range obs {
		n += obs[i]
		total += weights[i]
	}
	x := 0.0
	for i := range obs {
		e := float64(n) * float64(weights[i]) / float64(total)
		x += (float64(obs[i]) - e) * (float64(obs[i]) - e) / e
	}
	return x
}

// The critical value of chi-square with 3 degrees of freedom at p = 0.001 is 16.27: a correct
// implementation fails this test once in a thousand runs, a wrong one practically always.
const chi3 = 16.27

func TestWeightedIsProportional(t *testing.T) {
	weights := []int{1, 2, 3, 4}
	var as []*Address
	for i, w := range weights {
		as = append(as, addr(netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}).String(), w))
	}
	p := pool("p", LBWeighted, as...)
	obs := make([]int, len(as))
	for range 40000 {
		res := PickPool(p, IPv4, nil)
		obs[int(res.Addrs[0].IP.As4()[3])-1]++
	}
	if x := chiSquare(obs, weights); x > chi3 {
		t.Fatalf("weighted lb: observed %v for weights %v, chi-square %.2f > %.2f", obs, weights, x, chi3)
	}
	// A skewed implementation must fail the same test.
	if x := chiSquare([]int{4500, 8000, 12000, 15500}, weights); x <= chi3 {
		t.Fatalf("the test cannot detect skew: chi-square %.2f", x)
	}
}

func TestWeightedDistinct(t *testing.T) {
	p := pool("p", LBWeighted, addr("192.0.2.1", 100), addr("192.0.2.2", 1), addr("192.0.2.3", 1))
	p.Answers = 2
	for range 1000 {
		res := PickPool(p, IPv4, nil)
		if len(res.Addrs) != 2 || res.Addrs[0] == res.Addrs[1] {
			t.Fatalf("answers 2 must give 2 distinct addresses: %v", res.Addrs)
		}
	}
}

func TestPoolSelectWeighted(t *testing.T) {
	weights := []int{1, 2, 3, 4}
	var pools []*Pool
	for i, w := range weights {
		p := pool(string(rune('a'+i)), LBWeighted, addr(netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}).String(), 1))
		p.Weight = w
		pools = append(pools, p)
	}
	r := &Route{Selector: Selector{Default: true}, Pools: pools, Select: SelectWeighted}
	obs := make([]int, len(pools))
	for range 40000 {
		res := r.Pick(&Client{}, IPv4, nil)
		obs[res.Pool.Name[0]-'a']++
	}
	if x := chiSquare(obs, weights); x > chi3 {
		t.Fatalf("select weighted: observed %v for weights %v, chi-square %.2f", obs, weights, x)
	}
}

func TestPriorityRandomFastest(t *testing.T) {
	a1, a2, a3 := addr("192.0.2.1", 1), addr("192.0.2.2", 1), addr("192.0.2.3", 1)
	a1.Priority, a2.Priority, a3.Priority = 20, 10, 30
	h := []*fakeHealth{health(true, 30*time.Millisecond), health(true, 10*time.Millisecond), health(true, 0)}
	a1.Health, a2.Health, a3.Health = h[0], h[1], h[2]
	p := pool("p", LBPriority, a1, a2, a3)
	if res := PickPool(p, IPv4, nil); res.Addrs[0] != a2 {
		t.Fatalf("priority: got %s, want the lowest value", res.Addrs[0].Text)
	}
	h[1].up.Store(false)
	if res := PickPool(p, IPv4, nil); res.Addrs[0] != a1 {
		t.Fatalf("priority with the best down: got %s", res.Addrs[0].Text)
	}
	h[1].up.Store(true)

	p.LB, p.Answers = LBFastest, 3
	res := PickPool(p, IPv4, nil)
	if res.Addrs[0] != a2 || res.Addrs[1] != a1 || res.Addrs[2] != a3 {
		t.Fatalf("fastest order: %s %s %s (unknown RTT last)", res.Addrs[0].Text, res.Addrs[1].Text, res.Addrs[2].Text)
	}

	p.LB, p.Answers = LBRandom, 1
	obs := make([]int, 3)
	for range 30000 {
		obs[int(PickPool(p, IPv4, nil).Addrs[0].IP.As4()[3])-1]++
	}
	// 2 degrees of freedom at p = 0.001: 13.82.
	if x := chiSquare(obs, []int{1, 1, 1}); x > 13.82 {
		t.Fatalf("random is not uniform: %v", obs)
	}
}

func TestSelectNearestAndFastest(t *testing.T) {
	fra := pool("fra", LBWeighted, addr("192.0.2.1", 1))
	fra.HasLocation, fra.Lat, fra.Lon = true, 50.11, 8.68
	sin := pool("sin", LBWeighted, addr("192.0.2.2", 1))
	sin.HasLocation, sin.Lat, sin.Lon = true, 1.35, 103.82
	r := &Route{Selector: Selector{Default: true}, Pools: []*Pool{fra, sin}, Select: SelectNearest}
	tokyo := &Client{Known: true, GeoFound: true, HasLoc: true, Lat: 35.68, Lon: 139.69}
	if res := r.Pick(tokyo, IPv4, nil); res.Pool != sin {
		t.Fatalf("nearest to Tokyo: %s", res.Pool.Name)
	}
	if res := r.Pick(&Client{}, IPv4, nil); res.Pool != fra {
		t.Fatalf("unknown location must use the listed order: %s", res.Pool.Name)
	}
	h := health(false, 0)
	sin.Addrs[0].Health = h
	if res := r.Pick(tokyo, IPv4, nil); res.Pool != fra {
		t.Fatalf("nearest must skip unavailable pools: %s", res.Pool.Name)
	}

	h.up.Store(true)
	h.rtt.Store(int64(5 * time.Millisecond))
	fh := health(true, 50*time.Millisecond)
	fra.Addrs[0].Health = fh
	r.Select = SelectFastest
	if res := r.Pick(tokyo, IPv4, nil); res.Pool != sin {
		t.Fatalf("fastest: %s", res.Pool.Name)
	}
	fh.rtt.Store(int64(time.Millisecond))
	if res := r.Pick(tokyo, IPv4, nil); res.Pool != fra {
		t.Fatalf("fastest after RTT change: %s", res.Pool.Name)
	}

	r.Select = SelectAll
	if res := r.Pick(tokyo, IPv4, nil); len(res.Addrs) != 2 {
		t.Fatalf("select all: %d addresses", len(res.Addrs))
	}
}

func TestPinAndCNAME(t *testing.T) {
	p := &Pool{Name: "c", CNAME: true, MinAvailable: 1, Addrs: []*Address{
		{Text: "a.example.org", Target: "a.example.org.", Weight: 1, Mode: new(ModeCell)},
		{Text: "b.example.org", Target: "b.example.org.", Weight: 1, Mode: new(ModeCell)},
	}}
	p.Answers = 0
	res := PickPool(p, IPv6, nil)
	if len(res.Addrs) != 1 || res.Addrs[0].Target == "" {
		t.Fatalf("a CNAME pool answers exactly one target for any family: %+v", res.Addrs)
	}
	// select all never unions a CNAME with addresses or with another CNAME.
	ip := pool("ip", LBWeighted, addr("192.0.2.1", 1))
	for _, pools := range [][]*Pool{{p, ip}, {ip, p}, {p, p}} {
		r := &Route{Selector: Selector{Default: true}, Pools: pools, Select: SelectAll}
		res := r.Pick(&Client{}, IPv4, nil)
		if len(res.Addrs) != 1 || (res.Addrs[0].Target == "") != !res.Pool.CNAME {
			t.Fatalf("select all over %s,%s: %+v", pools[0].Name, pools[1].Name, res.Addrs)
		}
	}
	var pin PinCell
	if pin.Get() != "" {
		t.Fatal("zero PinCell is pinned")
	}
	pin.Set("sg")
	if pin.Get() != "sg" {
		t.Fatal("pin lost")
	}
	pin.Set("")
	if pin.Get() != "" {
		t.Fatal("unpin failed")
	}
}

func TestEmptyNonTerminal(t *testing.T) {
	s := &Snapshot{Domains: []*Domain{{Name: "www.eu.gtm.example.net.", Pin: new(PinCell)}}}
	s.Index()
	if !s.HasBelow("eu.gtm.example.net.") || s.HasBelow("www.eu.gtm.example.net.") || s.HasBelow("us.gtm.example.net.") {
		t.Fatal("HasBelow")
	}
}

// A dual-stack pool whose IPv4 servers are down hands A queries to the next pool and keeps
// AAAA; a pool with no IPv6 at all answers AAAA empty (NODATA) rather than failing over.
// Alternating families do not count as failovers.
func TestAvailabilityPerFamily(t *testing.T) {
	v4 := addr("192.0.2.1", 1)
	v4.Health = health(false, 0)
	dual := pool("dual", LBWeighted, v4, addr("2001:db8::1", 1))
	standby := pool("standby", LBWeighted, addr("198.51.100.1", 1), addr("2001:db8::2", 1))
	r := &Route{Selector: Selector{Default: true}, Pools: []*Pool{dual, standby}}
	c := &Client{}
	switches := 0
	for range 3 {
		res := r.Pick(c, IPv4, nil)
		if res.Pool != standby || len(res.Addrs) != 1 || res.Addrs[0].Text != "198.51.100.1" || res.FailOpen {
			t.Fatalf("A with the IPv4 of dual down: pool %s, %v", res.Pool.Name, res.Addrs)
		}
		if res.Switched {
			switches++
		}
		res = r.Pick(c, IPv6, nil)
		if res.Pool != dual || len(res.Addrs) != 1 || res.Addrs[0].Text != "2001:db8::1" {
			t.Fatalf("AAAA from dual: pool %s, %v", res.Pool.Name, res.Addrs)
		}
		if res.Switched {
			switches++
		}
	}
	if switches != 0 {
		t.Fatalf("%d failovers counted for alternating families", switches)
	}
	if cur, open := r.Current(); cur != standby || open {
		t.Fatalf("status shows %s (fail-open %v) answering; A queries go to standby", cur.Name, open)
	}

	only4 := pool("only4", LBWeighted, addr("192.0.2.9", 1))
	r = &Route{Selector: Selector{Default: true}, Pools: []*Pool{only4, standby}}
	if res := r.Pick(c, IPv6, nil); res.Pool != only4 || len(res.Addrs) != 0 || res.FailOpen {
		t.Fatalf("AAAA from an IPv4-only pool must be NODATA: pool %s, %v", res.Pool.Name, res.Addrs)
	}
	if !dual.Available() || dual.AvailableFor(IPv4) || !dual.AvailableFor(IPv6) || !only4.AvailableFor(IPv6) {
		t.Fatal("AvailableFor")
	}
}

func TestSelectorTermsCanonical(t *testing.T) {
	s := sel(t, "net:203.0.113.7/24,asn:AS4134,region:us-ca,country:de,continent:eu,default")
	got := strings.Join(s.Terms(), " ")
	if want := "default net:203.0.113.0/24 asn:4134 region:US-CA country:DE continent:EU"; got != want {
		t.Fatalf("Terms() = %q, want %q", got, want)
	}
}

func TestZoneAndENTsByLabel(t *testing.T) {
	s := &Snapshot{Zones: []string{"gtm.test.", `x\.gtm.test.`}, Domains: []*Domain{{Name: `a\.b.gtm.test.`}}}
	s.Index()
	for name, want := range map[string]string{
		"gtm.test.":        "gtm.test.",
		"www.gtm.test.":    "gtm.test.",
		`foo\.gtm.test.`:   "",
		`foo\\.gtm.test.`:  "gtm.test.", // the label `foo\` (an escaped backslash)
		`foo\\\.gtm.test.`: "",
		`x\.gtm.test.`:     `x\.gtm.test.`,
		`w.x\.gtm.test.`:   `x\.gtm.test.`,
		`w\.x\.gtm.test.`:  "", // the label "w.x.gtm" under test.
		"agtm.test.":       "",
		`a\.b.gtm.test.`:   "gtm.test.",
	} {
		if got := s.Zone(name); got != want {
			t.Errorf("Zone(%s) = %q, want %q", name, got, want)
		}
	}
	for name, want := range map[string]bool{"gtm.test.": true, "test.": true, "b.gtm.test.": false, `a\.b.gtm.test.`: false} {
		if got := s.HasBelow(name); got != want {
			t.Errorf("HasBelow(%s) = %v, want %v", name, got, want)
		}
	}
}

func TestWildcardLookup(t *testing.T) {
	s := &Snapshot{Zones: []string{"gtm.test."}, Domains: []*Domain{
		{Name: "*.gtm.test."}, {Name: "www.gtm.test."}, {Name: "a.ent.gtm.test."},
		{Name: "*.sub.gtm.test."}, {Name: "x.sub.gtm.test."},
	}}
	s.Index()
	for name, want := range map[string]string{
		"www.gtm.test.":     "www.gtm.test.", // the exact domain wins
		"foo.gtm.test.":     "*.gtm.test.",
		"a.b.c.gtm.test.":   "*.gtm.test.", // closest encloser gtm.test.: any depth
		"*.gtm.test.":       "*.gtm.test.",
		"a.www.gtm.test.":   "", // below an existing domain: its closest encloser has no wildcard
		"ent.gtm.test.":     "", // an empty non-terminal exists: not synthesized
		"b.ent.gtm.test.":   "", // closest encloser ent.gtm.test.
		"y.sub.gtm.test.":   "*.sub.gtm.test.",
		"z.y.sub.gtm.test.": "*.sub.gtm.test.",
		"sub.gtm.test.":     "", // an empty non-terminal
		"q.x.sub.gtm.test.": "", // closest encloser x.sub.gtm.test.
		"gtm.test.":         "", // the apex
		"x.*.gtm.test.":     "", // closest encloser *.gtm.test. has no wildcard below
	} {
		got := ""
		if d := s.Lookup(name, "gtm.test."); d != nil {
			got = d.Name
		}
		if got != want {
			t.Errorf("Lookup(%s) = %q, want %q", name, got, want)
		}
	}
}
