package config

import (
	"strings"
	"testing"
)

// The indexed lookups of Validate find what the linear ones did: duplicate addresses by
// their canonical form, unknown references with the list of names, and the first of a
// duplicated name.
func TestValidateLookups(t *testing.T) {
	env := Env{Zones: []string{"gtm.example.net."}}
	pool := func(name string, addrs ...string) *Pool {
		p := NewPool(name)
		for _, a := range addrs {
			p.Addresses = append(p.Addresses, NewAddress(a))
		}
		return p
	}
	domain := func(pools ...string) *Domain {
		d := NewDomain("www.gtm.example.net.", 30)
		d.Routes = []Route{NewRoute("default", pools...)}
		return d
	}
	cases := []struct {
		name string
		cfg  *Config
		want []string
	}{
		{"duplicate IP, mapped form", &Config{Pools: []*Pool{pool("a", "192.0.2.1", "::ffff:192.0.2.1")}}, []string{`pool a: duplicate address "::ffff:192.0.2.1"`}},
		{"duplicate name, case and dot", &Config{Pools: []*Pool{pool("a", "Edge.example.org", "edge.example.org.")}}, []string{`pool a: duplicate address "edge.example.org."`}},
		{"distinct", &Config{Pools: []*Pool{pool("a", "192.0.2.1", "192.0.2.2")}}, nil},
		{"unknown pool", &Config{Pools: []*Pool{pool("b", "192.0.2.1"), pool("a", "192.0.2.2")}, Domains: []*Domain{domain("a", "nope")}}, []string{`domain www.gtm.example.net.: route: unknown pool "nope" (pools: a, b)`}},
		{"unknown healthcheck", &Config{Pools: []*Pool{func() *Pool { p := pool("a", "192.0.2.1"); p.HealthCheck = Checks{"web"}; return p }()}}, []string{`pool a: unknown healthcheck "web" (healthchecks: none defined)`}},
		{"known healthcheck", &Config{HealthChecks: []*HealthCheck{func() *HealthCheck { h := NewHealthCheck("web"); h.Protocol = "icmp"; h.Normalize(); return h }()}, Pools: []*Pool{func() *Pool { p := pool("a", "192.0.2.1"); p.HealthCheck = Checks{"web"}; return p }()}}, nil},
		{"the first of a duplicated pool", &Config{Pools: []*Pool{pool("a", "edge.example.org"), pool("a", "192.0.2.1"), pool("b", "192.0.2.2")}, Domains: []*Domain{func() *Domain { d := domain("a", "b"); d.Routes[0].Select = "all"; return d }()}},
			[]string{`pool: duplicate name "a"`, `select all cannot mix pools of addresses (b) with pools of domain names (a)`}},
	}
	for _, c := range cases {
		errs := Validate(c.cfg, env)
		if len(errs) != len(c.want) {
			t.Errorf("%s: %v, want %d errors %q", c.name, errs, len(c.want), c.want)
			continue
		}
		for i, e := range errs {
			if !strings.Contains(e.Message, c.want[i]) {
				t.Errorf("%s: error %d = %q, want it to say %q", c.name, i, e.Message, c.want[i])
			}
		}
	}
}
