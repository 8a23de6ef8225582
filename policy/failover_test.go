package policy

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

func TestNeedOf(t *testing.T) {
	for _, c := range []struct{ pct, enabled, want int }{
		{50, 3, 2}, {50, 4, 2}, {50, 1, 1}, {30, 10, 3}, {70, 10, 7}, {100, 3, 3}, {1, 3, 1}, {50, 0, 1}, {34, 3, 2}, {33, 3, 1},
	} {
		if got := NeedOf(c.pct, c.enabled); got != c.want {
			t.Errorf("NeedOf(%d%%, %d) = %d, want %d", c.pct, c.enabled, got, c.want)
		}
	}
}

// min_available P% is a share of the enabled addresses: a drained (mode down) or disabled
// address lowers the need, a merely unhealthy one does not.
func TestMinAvailablePercent(t *testing.T) {
	for _, c := range []struct {
		name    string
		pct     int
		up      []bool
		drained int // index of an address in mode down, -1 none
		disable int // index of a disabled address, -1 none
		want    bool
	}{
		{"50% of 3, 2 up", 50, []bool{true, true, false}, -1, -1, true},
		{"50% of 3, 1 up", 50, []bool{true, false, false}, -1, -1, false},
		{"50% of 3, one drained: 1 of 2 enabled", 50, []bool{true, false, true}, 2, -1, true},
		{"50% of 3, one disabled: 1 of 2 enabled", 50, []bool{true, false, true}, -1, 2, true},
		{"100% of 3, 2 up", 100, []bool{true, true, false}, -1, -1, false},
		{"100% of 3, 3 up", 100, []bool{true, true, true}, -1, -1, true},
		{"70% of 4, 3 up", 70, []bool{true, true, true, false}, -1, -1, true},
		{"75% of 4, 3 up", 75, []bool{true, true, true, false}, -1, -1, true},
		{"76% of 4, 3 up", 76, []bool{true, true, true, false}, -1, -1, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var as []*Address
			for i, up := range c.up {
				a := addr(fmt.Sprintf("192.0.2.%d", i+1), 1)
				a.Health = health(up, 0)
				as = append(as, a)
			}
			if c.drained >= 0 {
				as[c.drained].Mode.Set(ModeDown)
			}
			if c.disable >= 0 {
				as[c.disable].Disabled = true
			}
			p := pool("p", LBWeighted, as...)
			p.MinPercent = c.pct
			if got := p.AvailableFor(IPv4); got != c.want {
				t.Errorf("AvailableFor = %v, want %v", got, c.want)
			}
			if got := p.Available(); got != c.want {
				t.Errorf("Available = %v, want %v", got, c.want)
			}
		})
	}
}

func TestFallback(t *testing.T) {
	down := func(name, ip string) *Pool {
		a := addr(ip, 1)
		a.Health = health(false, 0)
		return pool(name, LBWeighted, a)
	}
	last := pool("last", LBWeighted, func() *Address { a := addr("198.51.100.9", 1); a.Health = health(false, 0); return a }())
	for _, c := range []struct {
		name       string
		kind       FallbackKind
		fbPool     *Pool
		wantAddrs  []string
		wantPool   string
		wantOpen   bool
		wantFallen bool
	}{
		{"open", FallbackOpen, nil, []string{"192.0.2.1"}, "a", true, false},
		{"nodata", FallbackNoData, nil, nil, "", false, true},
		{"servfail", FallbackServFail, nil, nil, "", false, true},
		{"pool, health ignored", FallbackPoolKind, last, []string{"198.51.100.9"}, "last", false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &Route{Selector: sel(t, "default"), Pools: []*Pool{down("a", "192.0.2.1"), down("b", "192.0.2.2")}}
			d := domain(r)
			d.Fallback, d.FallbackPool = c.kind, c.fbPool
			d.TTLDegraded, d.HasTTLDegraded = 5, true
			res := d.Decide(r, &Client{}, IPv4, nil)
			var got []string
			for _, a := range res.Addrs {
				got = append(got, a.Text)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.wantAddrs) || res.FailOpen != c.wantOpen || res.InFallback != c.wantFallen {
				t.Fatalf("got %v open=%v fallen=%v, want %v open=%v fallen=%v", got, res.FailOpen, res.InFallback, c.wantAddrs, c.wantOpen, c.wantFallen)
			}
			if name := ""; res.Pool != nil && res.Pool.Name != c.wantPool || res.Pool == nil && c.wantPool != name {
				t.Fatalf("pool %v, want %q", res.Pool, c.wantPool)
			}
			if c.wantFallen && res.Fallback != c.kind {
				t.Fatalf("fallback %v, want %v", res.Fallback, c.kind)
			}
			if !res.Degraded || d.TTLOf(&res) != 5 {
				t.Fatalf("degraded %v ttl %d, want degraded and 5", res.Degraded, d.TTLOf(&res))
			}
			if res.Episode != 1 {
				t.Fatalf("episode %d, want 1 (began)", res.Episode)
			}
			if res := d.Decide(r, &Client{}, IPv4, nil); res.Episode != 0 {
				t.Fatalf("second answer of the episode: episode %d, want 0", res.Episode)
			}
			r.Pools[1].Addrs[0].Health.(*fakeHealth).up.Store(true)
			if res := d.Decide(r, &Client{}, IPv4, nil); res.Episode != -1 || res.InFallback || res.FailOpen {
				t.Fatalf("pool b back: %+v, want episode -1 and a normal answer", res)
			}
		})
	}
}

func TestDegradedTTL(t *testing.T) {
	mk := func(up ...bool) (*Domain, *Route) {
		var pools []*Pool
		for i, u := range up {
			a := addr(fmt.Sprintf("192.0.2.%d", i+1), 1)
			a.Health = health(u, 0)
			pools = append(pools, pool(fmt.Sprintf("p%d", i), LBWeighted, a))
		}
		r := &Route{Selector: Selector{Default: true}, Pools: pools}
		d := domain(r)
		d.TTLDegraded, d.HasTTLDegraded = 5, true
		return d, r
	}
	for _, c := range []struct {
		name string
		up   []bool
		hold string
		want uint32
	}{
		{"first choice", []bool{true, true}, "", 30},
		{"standby", []bool{false, true}, "", 5},
		{"fail-open", []bool{false, false}, "", 5},
		{"held on standby", []bool{true, true}, "p1", 5},
	} {
		d, r := mk(c.up...)
		if c.hold != "" {
			r.Hold = new(HoldCell)
			r.Hold.Set(&Hold{Pool: c.hold})
		}
		res := d.Decide(r, &Client{}, IPv4, nil)
		if got := d.TTLOf(&res); got != c.want {
			t.Errorf("%s: TTL %d, want %d", c.name, got, c.want)
		}
	}
	d, r := mk(false, true)
	d.HasTTLDegraded = false
	if res := d.Decide(r, &Client{}, IPv4, nil); d.TTLOf(&res) != 30 {
		t.Errorf("without DEGRADED the TTL is the domain's")
	}
}

// A hold keeps a failover route on a later pool while that pool can answer; a hold on a
// pool that failed, or one before the natural choice, does not.
func TestHeldRoute(t *testing.T) {
	for _, c := range []struct {
		name     string
		up       []bool
		hold     string
		wantPool string
		wantHeld bool
	}{
		{"no hold", []bool{true, true, true}, "", "p0", false},
		{"held on p1 while p0 is back", []bool{true, true, true}, "p1", "p1", true},
		{"held on p2 while p0 is back", []bool{true, true, true}, "p2", "p2", true},
		{"held pool down", []bool{true, false, true}, "p1", "p0", false},
		{"hold before the natural choice", []bool{false, true, true}, "p0", "p1", false},
		{"hold on an unknown pool", []bool{true, true, true}, "zz", "p0", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var pools []*Pool
			for i, u := range c.up {
				a := addr(fmt.Sprintf("192.0.2.%d", i+1), 1)
				a.Health = health(u, 0)
				pools = append(pools, pool(fmt.Sprintf("p%d", i), LBWeighted, a))
			}
			r := &Route{Selector: Selector{Default: true}, Pools: pools, Hold: new(HoldCell)}
			if c.hold != "" {
				r.Hold.Set(&Hold{Pool: c.hold})
			}
			res := r.Pick(&Client{}, IPv4, nil)
			if res.Pool.Name != c.wantPool || res.Held != c.wantHeld {
				t.Fatalf("pool %s held %v, want %s held %v", res.Pool.Name, res.Held, c.wantPool, c.wantHeld)
			}
		})
	}
}

func TestNextHold(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name string
		in   HoldInput
		want HoldVerdict
	}{
		{"primary up, not held", HoldInput{HeldIdx: -1, Natural: "a", NatIdx: 0, Manual: true}, HoldVerdict{}},
		{"failed over: hold", HoldInput{HeldIdx: -1, Natural: "b", NatIdx: 1, Manual: true}, HoldVerdict{Change: true, Pool: "b"}},
		{"nothing available, not held", HoldInput{HeldIdx: -1, NatIdx: -1, Manual: true}, HoldVerdict{}},
		{"manual: primary back, stays", HoldInput{Held: "b", HeldIdx: 1, HeldUp: true, Natural: "a", NatIdx: 0, Manual: true, BetterSince: t0, Now: t0.Add(time.Hour)}, HoldVerdict{}},
		{"manual: standby fails, primary up: release", HoldInput{Held: "b", HeldIdx: 1, Natural: "a", NatIdx: 0, Manual: true}, HoldVerdict{Change: true}},
		{"manual: standby fails, third up: moves", HoldInput{Held: "b", HeldIdx: 1, Natural: "c", NatIdx: 2, Manual: true}, HoldVerdict{Change: true, Pool: "c"}},
		{"standby fails, nothing up: release", HoldInput{Held: "b", HeldIdx: 1, NatIdx: -1, Manual: true}, HoldVerdict{Change: true}},
		{"held pool no longer listed", HoldInput{Held: "x", HeldIdx: -1, Natural: "a", NatIdx: 0, Manual: true}, HoldVerdict{Change: true}},
		{"duration: not yet", HoldInput{Held: "b", HeldIdx: 1, HeldUp: true, Natural: "a", NatIdx: 0, After: time.Minute, BetterSince: t0, Now: t0.Add(59 * time.Second)}, HoldVerdict{}},
		{"duration: elapsed", HoldInput{Held: "b", HeldIdx: 1, HeldUp: true, Natural: "a", NatIdx: 0, After: time.Minute, BetterSince: t0, Now: t0.Add(time.Minute)}, HoldVerdict{Change: true}},
		{"duration: elapsed, better is a standby too", HoldInput{Held: "c", HeldIdx: 2, HeldUp: true, Natural: "b", NatIdx: 1, After: time.Minute, BetterSince: t0, Now: t0.Add(2 * time.Minute)}, HoldVerdict{Change: true, Pool: "b"}},
		{"duration: no better pool", HoldInput{Held: "b", HeldIdx: 1, HeldUp: true, Natural: "b", NatIdx: 1, After: time.Minute, Now: t0}, HoldVerdict{}},
	} {
		if got := NextHold(c.in); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestHashPrefix(t *testing.T) {
	for _, c := range []struct {
		addr string
		bits int
		want string
	}{
		{"203.0.113.77", 32, "203.0.113.0/24"},
		{"203.0.113.0", 20, "203.0.112.0/20"},
		{"2001:db8:1:2ff:3::1", 128, "2001:db8:1:200::/56"},
		{"2001:db8::", 48, "2001:db8::/48"},
	} {
		p, ok := HashPrefix(&Client{Addr: netip.MustParseAddr(c.addr), Bits: c.bits, Known: true})
		if !ok || p.String() != c.want {
			t.Errorf("HashPrefix(%s/%d) = %v, %v; want %s", c.addr, c.bits, p, ok, c.want)
		}
	}
	if _, ok := HashPrefix(&Client{}); ok {
		t.Error("an unknown client has no hash prefix")
	}
}

func hashedPool(n int) *Pool {
	var as []*Address
	for i := range n {
		a := addr(fmt.Sprintf("192.0.2.%d", i+1), 1)
		a.Health = health(true, 0)
		as = append(as, a)
	}
	return pool("h", LBHashed, as...)
}

// clientNet is the i-th of many client /24s.
func clientNet(i int) *Client {
	ip := netip.AddrFrom4([4]byte{byte(10 + i>>16), byte(i >> 8), byte(i), 1})
	return &Client{Addr: ip, Bits: 32, Known: true}
}

// Taking one of N addresses down moves only its clients (about 1/N of them), and every
// other client keeps its address; the answer is stable per client network.
func TestHashedStickiness(t *testing.T) {
	const clients = 10000
	for _, n := range []int{2, 3, 5, 10} {
		p := hashedPool(n)
		before := make([]string, clients)
		counts := map[string]int{}
		for i := range clients {
			got := p.pickFor(clientNet(i), IPv4, nil, false)
			before[i] = got[0].Text
			counts[got[0].Text]++
		}
		for _, a := range p.Addrs {
			if share := float64(counts[a.Text]) / clients; share < 0.6/float64(n) || share > 1.4/float64(n) {
				t.Errorf("N=%d: %s gets %.3f of clients, want about %.3f", n, a.Text, share, 1/float64(n))
			}
		}
		down := p.Addrs[0]
		down.Health.(*fakeHealth).up.Store(false)
		moved, wrong := 0, 0
		for i := range clients {
			got := p.pickFor(clientNet(i), IPv4, nil, false)[0].Text
			if got != before[i] {
				moved++
				if before[i] != down.Text {
					wrong++
				}
			}
		}
		frac := float64(moved) / clients
		t.Logf("N=%d: one address down moved %d of %d client networks (%.3f, ideal %.3f)", n, moved, clients, frac, 1/float64(n))
		if wrong > 0 || frac < 0.6/float64(n) || frac > 1.4/float64(n) {
			t.Errorf("N=%d: moved %.3f (%d not from the failed address), want about %.3f and none", n, frac, wrong, 1/float64(n))
		}
		// Same network, another host: same address.
		c := clientNet(7)
		c2 := *c
		c2.Addr = netip.AddrFrom4([4]byte{c.Addr.As4()[0], c.Addr.As4()[1], c.Addr.As4()[2], 200})
		if a, b := p.pickFor(c, IPv4, nil, false)[0], p.pickFor(&c2, IPv4, nil, false)[0]; a != b {
			t.Errorf("N=%d: two hosts of one /24 got %s and %s", n, a.Text, b.Text)
		}
	}
}

// Weighted rendezvous: shares follow the weights.
func TestHashedWeighted(t *testing.T) {
	p := hashedPool(2)
	p.Addrs[1].Weight = 3
	counts := map[string]int{}
	for i := range 10000 {
		counts[p.pickFor(clientNet(i), IPv4, nil, false)[0].Text]++
	}
	if share := float64(counts[p.Addrs[1].Text]) / 10000; share < 0.70 || share > 0.80 {
		t.Errorf("weight 3 of 4 gets %.3f of clients, want about 0.75", share)
	}
}

func TestHashBitsScope(t *testing.T) {
	p := hashedPool(3)
	r := &Route{Selector: Selector{Default: true}, Pools: []*Pool{p}}
	d := domain(r)
	for _, c := range []struct {
		cl   *Client
		want int
	}{
		{&Client{Addr: netip.MustParseAddr("203.0.113.9"), Bits: 32, Known: true}, 24},
		{&Client{Addr: netip.MustParseAddr("203.0.112.0"), Bits: 20, Known: true}, 20},
		{&Client{Addr: netip.MustParseAddr("2001:db8::1"), Bits: 128, Known: true}, 56},
		{&Client{}, 0},
	} {
		if res := d.Decide(r, c.cl, IPv4, nil); res.HashBits != c.want {
			t.Errorf("%v/%d: HashBits %d, want %d", c.cl.Addr, c.cl.Bits, res.HashBits, c.want)
		}
	}
}

func TestRamp(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	p := pool("s", LBWeighted, addr("192.0.2.1", 1), addr("192.0.2.2", 1))
	p.SlowStart = 10 * time.Second
	for _, a := range p.Addrs {
		a.Ramp = NewRampCell(t0.Add(-time.Hour))
	}
	a := p.Addrs[1]
	if a.Ramp.Observe(true, t0) {
		t.Fatal("an address that stays up does not restart its ramp")
	}
	if a.Ramp.Observe(false, t0) || !a.Ramp.Observe(true, t0) {
		t.Fatal("down then up restarts the ramp")
	}
	for _, c := range []struct {
		at   time.Duration
		want float64
	}{{0, rampMin}, {500 * time.Millisecond, rampMin}, {5 * time.Second, 0.5}, {10 * time.Second, 1}, {time.Minute, 1}} {
		if got := p.RampFactor(a, t0.Add(c.at).UnixNano()); got < c.want-1e-9 || got > c.want+1e-9 {
			t.Errorf("ramp at %s = %.3f, want %.3f", c.at, got, c.want)
		}
	}
	if got := p.RampFactor(p.Addrs[0], t0.UnixNano()); got != 1 {
		t.Errorf("an address up for an hour: factor %.3f, want 1", got)
	}
}

// While an address ramps, it gets a share of the draws in line with its factor.
func TestRampDistribution(t *testing.T) {
	p := pool("s", LBWeighted, addr("192.0.2.1", 1), addr("192.0.2.2", 1))
	p.SlowStart = time.Hour
	now := time.Now()
	p.Addrs[0].Ramp = NewRampCell(now.Add(-2 * time.Hour))
	p.Addrs[1].Ramp = NewRampCell(now.Add(-30 * time.Minute)) // factor 0.5: share 1/3
	n := 0
	for range 30000 {
		if p.pickFor(nil, IPv4, nil, false)[0] == p.Addrs[1] {
			n++
		}
	}
	if share := float64(n) / 30000; share < 0.30 || share > 0.37 {
		t.Errorf("ramping address at half weight got %.3f of answers, want about 0.333", share)
	}
}

func BenchmarkHashed(b *testing.B) {
	p := hashedPool(8)
	cl := clientNet(12345)
	var buf [8]*Address
	b.ReportAllocs()
	for b.Loop() {
		p.pickFor(cl, IPv4, buf[:0], false)
	}
}

func BenchmarkWeighted(b *testing.B) {
	p := hashedPool(8)
	p.LB = LBWeighted
	cl := clientNet(12345)
	var buf [8]*Address
	b.ReportAllocs()
	for b.Loop() {
		p.pickFor(cl, IPv4, buf[:0], false)
	}
}
