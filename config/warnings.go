package config

import (
	"fmt"
	"slices"

	"github.com/gtm-dns/coredns-gtm/policy"
)

// Warning is a resource that is valid but almost certainly not what its author meant. The
// same warnings are given for a Corefile's resources (logged at startup with file:line) and
// for an API write (logged, and returned with the write), so both sources are judged alike.
type Warning struct {
	Kind    Kind
	Name    string
	Line    int // the line in the Corefile, 0 for an API resource
	Message string
}

// Warnings lists the warnings of the resources of c, pools then domains, in order.
func Warnings(c *Config) []Warning {
	var out []Warning
	for _, p := range c.Pools {
		out = append(out, PoolWarnings(p)...)
	}
	for _, d := range c.Domains {
		out = append(out, DomainWarnings(d)...)
	}
	return out
}

// PoolWarnings are the warnings of one pool.
func PoolWarnings(p *Pool) []Warning {
	enabled := 0
	for _, a := range p.Addresses {
		if !a.Disabled {
			enabled++
		}
	}
	if p.MinAvailable > enabled {
		return []Warning{{Kind: KindPool, Name: p.Name, Line: p.Line, Message: fmt.Sprintf("pool %s has min_available %d but %d enabled addresses: it is never available, and routes fail over past it", p.Name, p.MinAvailable, enabled)}}
	}
	return nil
}

// DomainWarnings are the warnings of one domain: no default route, and routes that can
// never answer.
func DomainWarnings(d *Domain) []Warning {
	var out []Warning
	if !hasDefault(d) {
		out = append(out, Warning{Kind: KindDomain, Name: d.Name, Line: d.Line, Message: fmt.Sprintf("domain %s has no default route: clients that match no route get an empty answer", d.Name)})
	}
	for _, r := range ShadowedRoutes(d) {
		out = append(out, Warning{Kind: KindDomain, Name: d.Name, Line: d.Routes[r].Line, Message: fmt.Sprintf("route in domain %s never answers: every term of its selector (%s) is used by an earlier route, which wins ties", d.Name, d.Routes[r].Selector)})
	}
	return out
}

// ShadowedRoutes lists the indexes of routes whose every selector term already appears in
// an earlier route of the domain: a client matching such a route matches the earlier one at
// least as specifically, and the first listed wins ties, so the route can never answer.
func ShadowedRoutes(d *Domain) []int {
	seen := map[string]bool{}
	var out []int
	for i, r := range d.Routes {
		s, err := policy.ParseSelector(r.Selector)
		if err != nil {
			continue
		}
		terms := s.Terms()
		if len(terms) > 0 && !slices.ContainsFunc(terms, func(t string) bool { return !seen[t] }) {
			out = append(out, i)
		}
		for _, t := range terms {
			seen[t] = true
		}
	}
	return out
}

func hasDefault(d *Domain) bool {
	for _, r := range d.Routes {
		if s, err := policy.ParseSelector(r.Selector); err == nil && s.Default {
			return true
		}
	}
	return false
}
