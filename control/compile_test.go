package control

import (
	"context"
	"testing"
	"time"

	"github.com/gtm-dns/coredns-gtm/policy"
	"github.com/gtm-dns/coredns-gtm/state"
)

// A compile over the snapshot it replaces shares the pools and routes made from the same
// resources, makes again those whose resources (or their pools, or their templates) changed,
// and hands the health targets of shared pools over rather than release them.
func TestCompileReuse(t *testing.T) {
	cfg := testConfig(t, "gtm.example.net.", `{
	"healthchecks": {"web": {"protocol": "tcp", "port": 1, "interval": "1h"}},
	"pools": {
		"a": {"addresses": [{"address": "127.0.0.1"}], "healthcheck": "web"},
		"b": {"addresses": [{"address": "192.0.2.2"}]}
	},
	"domains": {
		"x.gtm.example.net": {"routes": [{"selector": "net:192.0.2.0/24", "pools": ["a", "b"]}, {"selector": "default", "pools": ["b"]}]},
		"y.gtm.example.net": {"routes": [{"selector": "default", "pools": ["a"]}]}
	}
}`)
	st := newMemStore(t)
	cfg.Store = st
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	base := probers.Len()
	var cur *compiled
	commit := func(ops ...state.Op) *compiled {
		t.Helper()
		d, err := st.Commit(context.Background(), ops)
		if err != nil {
			t.Fatal(err)
		}
		res, errs := b.merge(d)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		old := cur
		cs := compile(cfg, res, st, nil, old)
		cs.acquire()
		cur = cs
		if old != nil {
			old.forgetSeries(cs)
			old.handOver(cs)
		}
		return cs
	}
	pool := func(cs *compiled, name string) *policy.Pool { return cs.Pool(name) }
	dom := func(cs *compiled, name string) *policy.Domain { return cs.Domain(name + ".gtm.example.net.") }

	c1 := commit(state.Op{Key: state.ConfigKey("pools", "c"), Value: []byte(`{"addresses":[{"address":"198.51.100.1"}]}`)},
		state.Op{Key: state.ConfigKey("domains", "z.gtm.example.net."), Value: []byte(`{"routes":[{"selector":"default","pools":["c"]}]}`)})
	if (probers.Len() - base) != 1 {
		t.Fatalf("%d targets, want 1", (probers.Len() - base))
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
	if (probers.Len()-base) != 1 || len(c2.targets) != 1 || c2.targets[0] != pool(c1, "a").Addrs[0].Health {
		t.Fatalf("the target of pool a was not handed over: %d targets, %v", (probers.Len() - base), c2.targets)
	}
	// A changed template makes its pools, and the routes that use them, again.
	c3 := commit(state.Op{Key: state.ConfigKey("healthchecks", "web2"), Value: []byte(`{"protocol":"tcp","port":2,"interval":"1h"}`)},
		state.Op{Key: state.ConfigKey("pools", "d"), Value: []byte(`{"addresses":[{"address":"127.0.0.2"}],"healthcheck":"web2"}`)})
	c4 := commit(state.Op{Key: state.ConfigKey("healthchecks", "web2"), Value: []byte(`{"protocol":"tcp","port":3,"interval":"1h"}`)})
	if pool(c4, "d") == pool(c3, "d") || pool(c4, "a") != pool(c3, "a") {
		t.Errorf("a template change: pool d shared, or pool a made again")
	}
	if (probers.Len() - base) != 2 {
		t.Errorf("%d targets after the template change, want 2 (a's and d's new one)", (probers.Len() - base))
	}
	c4.release()
	if (probers.Len() - base) != 0 {
		t.Errorf("%d targets after release", (probers.Len() - base))
	}
}

// slow_start: an address removed and added again ramps up again (its cell left with it);
// an unchanged address keeps its cell over compiles.
func TestRampAfterReAdd(t *testing.T) {
	pool := func(addrs ...string) string {
		s := `{"pools":{"ramp-p":{"lb":"weighted","slow_start":"1m","addresses":[`
		for i, a := range addrs {
			if i > 0 {
				s += ","
			}
			s += `{"address":"` + a + `"}`
		}
		return s + `]}}}`
	}
	st := newMemStore(t)
	var cur *compiled
	swap := func(doc string) *compiled {
		cfg := testConfig(t, "gtm.ramp.test.", doc)
		cs := compile(cfg, cfg.Resources, st, nil, nil)
		cs.acquire()
		if cur != nil {
			pruneRamps(cur, []*compiled{cs})
		}
		cur = cs
		return cs
	}
	t.Cleanup(func() { pruneRamps(cur, nil) })
	c1 := swap(pool("192.0.2.1", "192.0.2.2"))
	if s := c1.Pool("ramp-p").Addrs[1].Ramp.Since(); s.After(time.Unix(0, 0)) {
		t.Fatalf("a new pool's address ramps (since %v): want full weight", s)
	}
	c2 := swap(pool("192.0.2.1"))
	c3 := swap(pool("192.0.2.1", "192.0.2.2"))
	if c3.Pool("ramp-p").Addrs[0].Ramp != c2.Pool("ramp-p").Addrs[0].Ramp || c2.Pool("ramp-p").Addrs[0].Ramp != c1.Pool("ramp-p").Addrs[0].Ramp {
		t.Error("the unchanged address lost its ramp cell")
	}
	back := c3.Pool("ramp-p").Addrs[1]
	if back.Ramp == c1.Pool("ramp-p").Addrs[1].Ramp || time.Since(back.Ramp.Since()) > time.Minute {
		t.Fatalf("the re-added address does not ramp up: since %v", back.Ramp.Since())
	}
}
