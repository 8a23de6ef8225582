package gtm

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/miekg/dns"

	"github.com/gtm-dns/coredns-gtm/api"
	"github.com/gtm-dns/coredns-gtm/control"
	"github.com/gtm-dns/coredns-gtm/policy"
)

// Explain of HTTPS and SRV: both answers come from the A and the AAAA decision, so their
// step is the two decisions' steps in one (pools, candidates and chosen addresses of both
// families), and the answer is the records' data as a query gets them.

// explainBoth decides for one managed name as answerHTTPS and answerSRV do: the A decision,
// and unless it is a pool of names' CNAME, the AAAA decision merged into its step.
func (g *GTM) explainBoth(cs *control.Snapshot, d *policy.Domain, name string, cl *policy.Client) (step api.HopDoc, v4, v6 []net.IP, target string) {
	step, a4, target := g.explainHop(cs, d, name, dns.TypeA, cl)
	if target != "" {
		return step, nil, nil, target
	}
	s6, a6, _ := g.explainHop(cs, d, name, dns.TypeAAAA, cl)
	for _, p := range s6.Pools {
		if !hasPool(step.Pools, p.Name) {
			step.Pools = append(step.Pools, p)
		}
	}
	step.Candidates = append(step.Candidates, s6.Candidates...)
	step.Chosen = append(step.Chosen, s6.Chosen...)
	step.Scope = max(step.Scope, s6.Scope)
	step.FailOpen = step.FailOpen || s6.FailOpen
	step.Degraded = step.Degraded || s6.Degraded
	if step.Fallback == "" || s6.Fallback == "servfail" {
		step.Fallback = s6.Fallback
	}
	if step.Pool == "" {
		step.Pool = s6.Pool
	}
	switch {
	case len(a4) == 0:
		step.TTL = s6.TTL
	case len(a6) > 0:
		step.TTL = min(step.TTL, s6.TTL)
	}
	return step, ips(a4), ips(a6), ""
}

func hasPool(pools []api.ExplainPoolDoc, name string) bool {
	for _, p := range pools {
		if p.Name == name {
			return true
		}
	}
	return false
}

func ips(texts []string) []net.IP {
	var out []net.IP
	for _, t := range texts {
		if a, err := netip.ParseAddr(t); err == nil {
			out = append(out, a.AsSlice())
		}
	}
	return out
}

// explainHTTPSHop is explainHop for an HTTPS query at a domain with `https`.
func (g *GTM) explainHTTPSHop(cs *control.Snapshot, d *policy.Domain, name string, cl *policy.Client) (step api.HopDoc, answer []string, target string) {
	step, v4, v6, target := g.explainBoth(cs, d, name, cl)
	if target != "" {
		return step, []string{target}, target
	}
	if step.Fallback == "servfail" || len(v4)+len(v6) == 0 {
		step.Scope = 0
		if step.Fallback != "servfail" && step.Pinned == "" && d.DependsOnClient() {
			step.Scope = cs.Scope(d, cl) // an empty answer's scope, as answerHTTPS's
		}
		return step, nil, ""
	}
	return step, []string{rdata(httpsRecord(d.Services.HTTPS, name, step.TTL, v4, v6))}, ""
}

// explainSRV explains an SRV query: at _SERVICE._PROTO.NAME of a domain with that `srv`.
func (g *GTM) explainSRV(cs *control.Snapshot, q api.ExplainQuery, zone string, cl *policy.Client, doc *api.ExplainDoc) error {
	off1, end := dns.NextLabel(q.Domain, 0)
	off2, end2 := dns.NextLabel(q.Domain, off1)
	var d *policy.Domain
	var svcs []policy.SRV
	if !end && !end2 && zone != "" && policy.InZone(q.Domain[off2:], zone) {
		if d = cs.Lookup(q.Domain[off2:], zone); d != nil {
			svcs = d.Services.SRVFor(q.Domain[:off2-1])
		}
	}
	if len(svcs) == 0 {
		return fmt.Errorf("%s: no srv of a managed domain answers SRV here (SRV names are _SERVICE._PROTO.DOMAIN): %w", q.Domain, api.ErrNotManaged)
	}
	parent := q.Domain[off2:]
	step, v4, v6, target := g.explainBoth(cs, d, q.Domain, cl)
	doc.TTL = step.TTL
	doc.Steps = append(doc.Steps, step)
	if step.Fallback == "servfail" {
		doc.Rcode = "SERVFAIL"
		return nil
	}
	var rrs []dns.RR
	if target != "" {
		rrs = srvRecords(nil, q.Domain, parent, svcs, step.TTL, []*policy.Address{namedAddress(d, target)}, nil)
	} else {
		rrs = srvRecords(nil, q.Domain, parent, svcs, step.TTL, weighted(d, cs, v4), weighted(d, cs, v6))
	}
	for _, rr := range rrs {
		doc.Answer = append(doc.Answer, rdata(rr))
	}
	return nil
}

// weighted turns explain's chosen addresses back into the domain's addresses (for their
// weights).
func weighted(d *policy.Domain, cs *control.Snapshot, ips []net.IP) []*policy.Address {
	var out []*policy.Address
	for _, ip := range ips {
		a, _ := netip.AddrFromSlice(ip)
		if pa := servedAddress(cs, d, a.Unmap()); pa != nil {
			out = append(out, pa)
		}
	}
	return out
}

// rdata is a record's data in presentation form, without its owner, TTL, class and type.
func rdata(rr dns.RR) string {
	return strings.TrimPrefix(rr.String(), rr.Header().String())
}

// namedAddress is the address of a pool of names of d whose name is target (for its weight).
func namedAddress(d *policy.Domain, target string) *policy.Address {
	for _, r := range d.Routes {
		for _, p := range r.Pools {
			for _, a := range p.Addrs {
				if a.Target == target {
					return a
				}
			}
		}
	}
	return &policy.Address{Target: target, Weight: 1} // a pinned or fallback pool's
}
