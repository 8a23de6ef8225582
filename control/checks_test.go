package control

import (
	"slices"
	"testing"
	"time"

	"github.com/gtm-dns/coredns-gtm/config"
	"github.com/gtm-dns/coredns-gtm/healthcheck"
)

// checksConfig has several checks per address (the Corefile's form is in
// plugin/checks_config_test.go).
const checksConfig = `{
	"healthchecks": {
		"resolver": {"protocol": "dns", "port": 5353, "query": "www.example.com AAAA", "expect": "NOERROR,NXDOMAIN", "answer": "^2001:db8::1$", "interval": "5s"},
		"web": {"protocol": "http", "method": "post", "header": [{"name": "X-Token", "value": "s3 cret"}, {"name": "Host", "value": "www.example.com"}]},
		"ping": {"protocol": "icmp", "count": 5, "loss": 20}
	},
	"pools": {
		"a": {"addresses": [{"address": "127.0.0.1"}, {"address": "127.0.0.2", "disabled": true}], "healthcheck": ["resolver", "web", "ping"], "require": "2"},
		"b": {"addresses": [{"address": "127.0.0.3"}], "healthcheck": "web"}
	}
}`

// Several checks: each is its own prober, shared with every pool that uses it; the address is
// healthy as require says; adding a check to a pool keeps the first check's prober.
func TestCompileChecks(t *testing.T) {
	b := testConfig(t, "gtm.example.net.", checksConfig)
	base := probers.Len()
	cs := compile(b, b.Resources, newMemStore(t), nil, nil)
	cs.acquire()
	pa, pb := cs.Pool("a"), cs.Pool("b")
	set, ok := pa.Addrs[0].Health.(*checkSet)
	if !ok || len(set.parts) != 3 || set.require != 2 || !slices.Equal(set.names, []string{"resolver", "web", "ping"}) {
		t.Fatalf("pool a address: %T %+v", pa.Addrs[0].Health, pa.Addrs[0].Health)
	}
	if pa.Addrs[1].Health != nil {
		t.Fatal("a disabled address is probed")
	}
	if pa.HealthCheck != "resolver" || !slices.Equal(pa.HealthChecks, []string{"resolver", "web", "ping"}) || pa.Require != "2" || pb.Require != "all" {
		t.Fatalf("pool fields: %q %v %q / %q", pa.HealthCheck, pa.HealthChecks, pa.Require, pb.Require)
	}
	if _, ok := pb.Addrs[0].Health.(*healthcheck.Target); !ok {
		t.Fatalf("one check is the target itself: %T", pb.Addrs[0].Health)
	}
	if len(cs.targets) != 4 || (probers.Len()-base) != 4 {
		t.Fatalf("%d targets, %d probers; want 4 and 4", len(cs.targets), (probers.Len() - base))
	}

	// Pool b gains a second check (an API write or a reload): a new resource, compiled anew.
	res := b.Resources.Clone()
	nb := *b.Resources.Pool("b")
	nb.HealthCheck = config.Checks{"web", "ping"}
	res.Put(&nb)
	next := compile(b, res, newMemStore(t), nil, cs)
	next.acquire()
	cs.handOver(next)
	nset, ok := next.Pool("b").Addrs[0].Health.(*checkSet)
	if !ok || !nset.parts[0].(*healthcheck.Target).Shares(pb.Addrs[0].Health.(*healthcheck.Target)) {
		t.Fatal("the first check of pool b is not the prober it had")
	}
	if next.Pool("a") != pa {
		t.Fatal("the unchanged pool a was compiled again")
	}
	if (probers.Len() - base) != 5 {
		t.Fatalf("%d probers; want 5", (probers.Len() - base))
	}
	next.release()
	waitLen(t, base)
}

func waitLen(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for probers.Len() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d probers; want %d", probers.Len(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCheckSetRequire(t *testing.T) {
	for _, c := range []struct {
		healthy []bool
		require healthcheck.Require
		want    bool
	}{
		{[]bool{true, true}, healthcheck.RequireAll, true},
		{[]bool{true, false}, healthcheck.RequireAll, false},
		{[]bool{false, true}, healthcheck.RequireAny, true},
		{[]bool{false, false}, healthcheck.RequireAny, false},
		{[]bool{true, false, true}, 2, true},
		{[]bool{true, false, false}, 2, false},
	} {
		s := &checkSet{require: c.require}
		for i, h := range c.healthy {
			s.parts = append(s.parts, fixedHealth{h, time.Duration(i) * time.Millisecond})
			s.names = append(s.names, string(rune('a'+i)))
		}
		if s.Healthy() != c.want {
			t.Errorf("%v require %d: %v", c.healthy, c.require, !c.want)
		}
		if st := s.Status(); st.Healthy != c.want {
			t.Errorf("%v require %d: status %+v", c.healthy, c.require, st)
		}
		if s.RTT() != time.Millisecond {
			t.Errorf("RTT %s; want the first check's that has one", s.RTT())
		}
		if docs := s.Checks(); len(docs) != len(c.healthy) || docs[1].Healthy != c.healthy[1] || docs[1].Name != "b" {
			t.Errorf("checks %+v", docs)
		}
	}
}

type fixedHealth struct {
	healthy bool
	rtt     time.Duration
}

func (f fixedHealth) Healthy() bool      { return f.healthy }
func (f fixedHealth) RTT() time.Duration { return f.rtt }
