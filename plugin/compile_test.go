package gtm

import (
	"context"
	"testing"

	"github.com/coredns/caddy"

	"github.com/gtm-dns/coredns-gtm/healthcheck"
	"github.com/gtm-dns/coredns-gtm/policy"
	"github.com/gtm-dns/coredns-gtm/state"
)

// A compile over the snapshot it replaces shares the pools and routes made from the same
// resources, makes again those whose resources (or their pools, or their templates) changed,
// and hands the health targets of shared pools over rather than release them.
func TestCompileReuse(t *testing.T) {
	blk, err := parse(caddy.NewTestController("dns", `gtm gtm.example.net {
    healthcheck web {
        protocol tcp
        port 1
        interval 1h
    }
    pool a {
        address 127.0.0.1
        healthcheck web
    }
    pool b {
        address 192.0.2.2
    }
    domain x.gtm.example.net {
        route net:192.0.2.0/24 a b
        route default b
    }
    domain y.gtm.example.net {
        route default a
    }
}`))
	if err != nil {
		t.Fatal(err)
	}
	reg := healthcheck.NewRegistry(healthcheck.Options{})
	t.Cleanup(reg.Close)
	st := newMemStore(t)
	g := &GTM{}
	g.block, g.st = blk, st
	commit := func(ops ...state.Op) *compiled {
		t.Helper()
		d, err := st.Commit(context.Background(), ops)
		if err != nil {
			t.Fatal(err)
		}
		res, errs := g.merge(d)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		old := g.snap.Load()
		cs := compile(blk, res, reg, st, old)
		g.snap.Store(cs)
		if old != nil {
			old.forgetSeries(cs)
			old.handOver(reg, cs)
		}
		return cs
	}
	pool := func(cs *compiled, name string) *policy.Pool { return cs.Pool(name) }
	dom := func(cs *compiled, name string) *policy.Domain { return cs.Domain(name + ".gtm.example.net.") }

	c1 := commit(state.Op{Key: state.ConfigKey("pools", "c"), Value: []byte(`{"addresses":[{"address":"198.51.100.1"}]}`)},
		state.Op{Key: state.ConfigKey("domains", "z.gtm.example.net."), Value: []byte(`{"routes":[{"selector":"default","pools":["c"]}]}`)})
	if reg.Len() != 1 {
		t.Fatalf("%d targets, want 1", reg.Len())
	}
	// An API write of pool c: a, b, x and y are shared; c and z are new.
	c2 := commit(state.Op{Key: state.ConfigKey("pools", "c"), Value: []byte(`{"addresses":[{"address":"198.51.100.2"}]}`)})
	for _, n := range []string{"a", "b"} {
		if pool(c2, n) != pool(c1, n) {
			t.Errorf("pool %s compiled again", n)
		}
	}
	if pool(c2, "c") == pool(c1, "c") || pool(c2, "c").Addrs[0].Text != "198.51.100.2" {
		t.Errorf("pool c: %+v", pool(c2, "c").Addrs[0])
	}
	for _, n := range []string{"x", "y"} {
		d1, d2 := dom(c1, n), dom(c2, n)
		if d1 == d2 || d2.Routes[0] != d1.Routes[0] || d2.Pin != d1.Pin {
			t.Errorf("domain %s: its routes are not shared, or it is the old Domain", n)
		}
		for _, r := range d2.Routes {
			for _, p := range r.Pools {
				if c2.answers[answerKey{r, p}] == nil || c2.answers[answerKey{r, p}] != c1.answers[answerKey{r, p}] {
					t.Errorf("domain %s: answers counter of pool %s not carried over", n, p.Name)
				}
			}
			if c2.routes[r] == nil || c2.routes[r].c != c1.routes[r].c {
				t.Errorf("domain %s: route counters not carried over", n)
			}
		}
	}
	if z1, z2 := dom(c1, "z"), dom(c2, "z"); z2.Routes[0] == z1.Routes[0] || z2.Routes[0].Pools[0] != pool(c2, "c") {
		t.Errorf("domain z still answers from the old pool c")
	}
	if reg.Len() != 1 || len(c2.targets) != 1 || c2.targets[0] != pool(c1, "a").Addrs[0].Health {
		t.Fatalf("the target of pool a was not handed over: %d targets, %v", reg.Len(), c2.targets)
	}
	// A changed template makes its pools, and the routes that use them, again.
	c3 := commit(state.Op{Key: state.ConfigKey("healthchecks", "web2"), Value: []byte(`{"protocol":"tcp","port":2,"interval":"1h"}`)},
		state.Op{Key: state.ConfigKey("pools", "d"), Value: []byte(`{"addresses":[{"address":"127.0.0.2"}],"healthcheck":"web2"}`)})
	c4 := commit(state.Op{Key: state.ConfigKey("healthchecks", "web2"), Value: []byte(`{"protocol":"tcp","port":3,"interval":"1h"}`)})
	if pool(c4, "d") == pool(c3, "d") || pool(c4, "a") != pool(c3, "a") {
		t.Errorf("a template change: pool d shared, or pool a made again")
	}
	if reg.Len() != 2 {
		t.Errorf("%d targets after the template change, want 2 (a's and d's new one)", reg.Len())
	}
	c4.release(reg)
	if reg.Len() != 0 {
		t.Errorf("%d targets after release", reg.Len())
	}
}
