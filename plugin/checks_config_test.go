package gtm

import (
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/miekg/dns"

	"github.com/gtm-dns/coredns-gtm/config"
	"github.com/gtm-dns/coredns-gtm/healthcheck"
)

const checksConfig = `gtm gtm.example.net {
    healthcheck resolver {
        protocol dns
        port 5353
        query www.example.com AAAA
        expect NOERROR NXDOMAIN
        answer ^2001:db8::1$
        interval 5s
    }
    healthcheck web {
        protocol http
        method post
        header X-Token "s3 cret"
        header Host www.example.com
    }
    healthcheck ping {
        protocol icmp
        count 5
        loss 20
    }
    pool a {
        address 127.0.0.1
        address 127.0.0.2 disabled
        healthcheck resolver web ping require 2
    }
    pool b {
        address 127.0.0.3
        healthcheck web
    }
}`

func TestParseChecks(t *testing.T) {
	b, err := parse(caddy.NewTestController("dns", checksConfig))
	if err != nil {
		t.Fatal(err)
	}
	r := template(b.res.HealthCheck("resolver"))
	if r.Protocol != healthcheck.DNS || r.Port != 5353 || r.Query != "www.example.com." || r.QType != dns.TypeAAAA ||
		!slices.Equal(r.Rcodes, []int{dns.RcodeSuccess, dns.RcodeNameError}) || r.Answer == nil || r.Answer.String() != "^2001:db8::1$" || r.Expect != nil {
		t.Fatalf("resolver: %+v", r)
	}
	w := template(b.res.HealthCheck("web"))
	if w.Method != "POST" || !slices.Equal(w.Headers, []healthcheck.Header{{Name: "X-Token", Value: "s3 cret"}, {Name: "Host", Value: "www.example.com"}}) {
		t.Fatalf("web: %+v", w)
	}
	if p := template(b.res.HealthCheck("ping")); p.Count != 5 || p.Loss != 20 {
		t.Fatalf("ping: %+v", p)
	}
	a := b.res.Pool("a")
	if !slices.Equal(a.HealthCheck, config.Checks{"resolver", "web", "ping"}) || a.Require != "2" || a.RequireOf() != 2 {
		t.Fatalf("pool a: %v require %q", a.HealthCheck, a.Require)
	}

	// The JSON form says the same and decodes back to it; one check is written as a string.
	for _, res := range []config.Resource{b.res.HealthCheck("resolver"), b.res.HealthCheck("web"), b.res.HealthCheck("ping"), a, b.res.Pool("b")} {
		body, err := config.Encode(res)
		if err != nil {
			t.Fatal(err)
		}
		back, err := config.Decode(res.Kind(), config.MetaOf(res).Name, body, 30)
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		again, _ := config.Encode(back)
		if string(again) != string(body) {
			t.Fatalf("round trip: %s became %s", body, again)
		}
		t.Logf("%s", body)
	}
	if body, _ := config.Encode(b.res.Pool("b")); !regexp.MustCompile(`"healthcheck":"web"`).Match(body) {
		t.Fatalf("one check is not written as a string: %s", body)
	}
	if body, _ := config.Encode(a); !regexp.MustCompile(`"healthcheck":\["resolver","web","ping"\],"require":2`).Match(body) {
		t.Fatalf("several checks: %s", body)
	}
	for in, want := range map[string]config.Checks{
		`{"addresses":[{"address":"192.0.2.1"}],"healthcheck":"web"}`:         {"web"},
		`{"addresses":[{"address":"192.0.2.1"}],"healthcheck":["web","dns"]}`: {"web", "dns"},
		`{"addresses":[{"address":"192.0.2.1"}],"healthcheck":""}`:            nil,
		`{"addresses":[{"address":"192.0.2.1"}]}`:                             nil,
	} {
		r, err := config.Decode(config.KindPool, "x", []byte(in), 30)
		if err != nil || !slices.Equal(r.(*config.Pool).HealthCheck, want) {
			t.Errorf("%s: %v, %v", in, r, err)
		}
	}
	if _, err := config.Decode(config.KindPool, "x", []byte(`{"addresses":[],"healthcheck":3}`), 30); err == nil {
		t.Error("a number as healthcheck decoded")
	}
}

// Several checks: each is its own prober, shared with every pool that uses it; the address is
// healthy as require says; adding a check to a pool keeps the first check's prober.
func TestCompileChecks(t *testing.T) {
	b, err := parse(caddy.NewTestController("dns", checksConfig))
	if err != nil {
		t.Fatal(err)
	}
	reg := healthcheck.NewRegistry(healthcheck.Options{})
	t.Cleanup(reg.Close)
	cs := compile(b, b.res, reg, newMemStore(t), nil)
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
	if len(cs.targets) != 4 || reg.Len() != 4 {
		t.Fatalf("%d targets, %d probers; want 4 and 4", len(cs.targets), reg.Len())
	}

	// Pool b gains a second check (an API write or a reload): a new resource, compiled anew.
	res := b.res.Clone()
	nb := *b.res.Pool("b")
	nb.HealthCheck = config.Checks{"web", "ping"}
	res.Put(&nb)
	next := compile(b, res, reg, newMemStore(t), cs)
	cs.handOver(reg, next)
	nset, ok := next.Pool("b").Addrs[0].Health.(*checkSet)
	if !ok || !nset.parts[0].(*healthcheck.Target).Shares(pb.Addrs[0].Health.(*healthcheck.Target)) {
		t.Fatal("the first check of pool b is not the prober it had")
	}
	if next.Pool("a") != pa {
		t.Fatal("the unchanged pool a was compiled again")
	}
	if reg.Len() != 5 {
		t.Fatalf("%d probers; want 5", reg.Len())
	}
	next.release(reg)
	waitLen(t, reg, 0)
}

func waitLen(t *testing.T, reg *healthcheck.Registry, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for reg.Len() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d probers; want %d", reg.Len(), n)
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
