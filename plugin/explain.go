package gtm

import (
	"fmt"
	"net"

	"github.com/miekg/dns"

	"github.com/gtm-dns/coredns-gtm/api"
	"github.com/gtm-dns/coredns-gtm/control"
	"github.com/gtm-dns/coredns-gtm/geo"
	"github.com/gtm-dns/coredns-gtm/policy"
)

// Explain implements api.Explainer: what a query for q.Domain from that client gets and
// why. It decides with the query path's own code (clientOf, locate, decide, scope) and
// follows CNAMEs to managed names as ServeDNS does; it counts no answers.
func (g *GTM) Explain(q api.ExplainQuery) (api.ExplainDoc, error) {
	cs := g.ctl.Snapshot()
	if cs == nil {
		return api.ExplainDoc{}, fmt.Errorf("no configuration in force yet")
	}
	zone := cs.Zone(q.Domain)
	d := (*policy.Domain)(nil)
	if zone != "" {
		d = cs.Lookup(q.Domain, zone)
	}
	if d == nil && q.Type != dns.TypeSRV { // SRV names lie under managed domains (srv.go)
		return api.ExplainDoc{}, fmt.Errorf("%s: %w", q.Domain, api.ErrNotManaged)
	}
	if q.Type != dns.TypeSRV && !control.AnswersType(d, q.Type) {
		return api.ExplainDoc{}, fmt.Errorf("gtm does not answer %s at %s: the zone's data does", dns.TypeToString[q.Type], q.Domain)
	}
	var subnet *geo.ClientSubnet
	if q.Subnet != nil {
		if !g.ecs {
			return api.ExplainDoc{}, fmt.Errorf("ecs is off in this block: queries are routed on their source address; ask with client=IP")
		}
		subnet = &geo.ClientSubnet{Addr: q.Subnet.Addr(), SourceBits: q.Subnet.Bits()}
	}
	var cl policy.Client
	mapped := control.ClientOf(&cl, subnet, q.Client)
	doc := api.ExplainDoc{Domain: q.Domain, Type: dns.TypeToString[q.Type], ECS: subnet != nil,
		Steps: []api.HopDoc{}, Answer: []string{}, Rcode: "NOERROR"}
	if d != nil {
		doc.TTL = d.TTL
	}
	if q.Subnet != nil {
		doc.Client = q.Subnet.String()
	} else {
		doc.Client = q.Client.String()
	}
	doc.Geo = g.facts(&cl)
	if q.Type == dns.TypeSRV {
		if err := g.explainSRV(cs, q, zone, &cl, &doc); err != nil {
			return api.ExplainDoc{}, err
		}
		if doc.ECS && doc.Steps[0].Scope > 0 {
			doc.Scope = doc.Steps[0].Scope + mapped
		}
		return doc, nil
	}

	name, scope := q.Domain, 0
	for hop := 0; ; hop++ {
		step, answer, target := g.explainHop(cs, d, name, q.Type, &cl)
		doc.Steps = append(doc.Steps, step)
		doc.Answer = append(doc.Answer, answer...)
		if step.Fallback == "servfail" {
			doc.Rcode = "SERVFAIL"
		}
		scope = max(scope, step.Scope)
		if target == "" || q.Type == dns.TypeCNAME || hop+1 > control.MaxChase {
			break
		}
		tz := cs.Zone(target)
		if tz == "" || seen(doc.Steps, target) {
			break
		}
		td := cs.Lookup(target, tz)
		if td == nil {
			if g.Next != nil && g.Fall.Through(target) {
				break
			}
			if !cs.HasBelow(target) {
				doc.Rcode = "NXDOMAIN"
			}
			break
		}
		d, name = td, target
	}
	if scope > 0 {
		scope += mapped
	}
	if doc.ECS {
		doc.Scope = scope
	}
	return doc, nil
}

func seen(steps []api.HopDoc, name string) bool {
	for _, s := range steps {
		if s.Name == name {
			return true
		}
	}
	return false
}

// explainHop decides for one managed name as answer does, and describes the decision.
func (g *GTM) explainHop(cs *control.Snapshot, d *policy.Domain, name string, qtype uint16, cl *policy.Client) (step api.HopDoc, answer []string, target string) {
	if cl.Known && cl.Addr.IsValid() {
		g.locate(d, cl)
	}
	if qtype == dns.TypeHTTPS && d.Services != nil && d.Services.HTTPS != nil {
		return g.explainHTTPSHop(cs, d, name, cl) // https_explain.go
	}
	fam := policy.IPv4
	if qtype == dns.TypeAAAA {
		fam = policy.IPv6
	}
	var buf [8]*policy.Address
	res, route, pinned := cs.ExplainDecide(d, cl, fam, buf[:0]) // a pure read: nothing counted or moved

	step = api.HopDoc{Name: name, Domain: d.Name, TTL: d.TTLOf(&res), Routes: []api.ExplainRouteDoc{}, Pools: []api.ExplainPoolDoc{},
		Candidates: []string{}, Chosen: []string{}, Overrides: []string{}, FailOpen: res.FailOpen}
	explainFailover(&step, &res, cl)
	if pin := d.Pin.Get(); pin != "" {
		if pinned {
			step.Pinned = pin
		} else {
			step.DanglingPin = pin
		}
	}
	for _, r := range d.Routes {
		rd := api.ExplainRouteDoc{Selector: r.Selector.Text, Select: r.Select.String(), Pools: []string{}, MatchedBy: r.Selector.MatchedBy(cl), Chosen: r == route}
		for _, p := range r.Pools {
			rd.Pools = append(rd.Pools, p.Name)
		}
		step.Routes = append(step.Routes, rd)
	}
	var considered []*policy.Pool
	switch {
	case pinned:
		considered = []*policy.Pool{res.Pool}
	case route != nil:
		s := route.Selector.Text
		step.Route = &s
		considered = route.Pools
	default:
		step.GeoFenced = true
	}
	for _, p := range considered {
		step.Pools = append(step.Pools, api.ExplainPoolDoc{Name: p.Name, LB: p.LB.String(), Available: p.AvailableFor(fam), Up: p.UpCount(), MinAvailable: max(p.MinAvailable, 1)})
		for _, a := range p.Addrs {
			if m := a.Mode.Get(); m != policy.ModeAuto {
				step.Overrides = append(step.Overrides, fmt.Sprintf("pool %s address %s: mode %s", p.Name, a.Text, m))
			}
			if a.Disabled {
				step.Overrides = append(step.Overrides, fmt.Sprintf("pool %s address %s: disabled", p.Name, a.Text))
			}
			if note := brakeNote(p, a); note != "" {
				step.Overrides, step.Brake = append(step.Overrides, note), true
			}
		}
	}
	if res.Pool != nil {
		step.Pool = res.Pool.Name
		// The set the answer was drawn from: the answered pool's, or with select all every
		// available pool's.
		from := []*policy.Pool{res.Pool}
		if !pinned && route != nil && route.Select == policy.SelectAll && !res.FailOpen {
			from = from[:0]
			for _, p := range route.Pools {
				if p.AvailableFor(fam) && (len(from) == 0 || !from[0].CNAME && !p.CNAME) {
					from = append(from, p)
				}
			}
		}
		for _, p := range from {
			for _, a := range p.Candidates(fam, res.FailOpen) {
				step.Candidates = append(step.Candidates, addrText(a))
			}
		}
	}
	for _, a := range res.Addrs {
		step.Chosen = append(step.Chosen, addrText(a))
	}
	switch {
	case len(res.Addrs) == 0:
	case res.Pool.CNAME:
		target = res.Addrs[0].Target
		answer = []string{target}
	case qtype == dns.TypeA || qtype == dns.TypeAAAA:
		for _, a := range res.Addrs {
			answer = append(answer, net.IP(a.Raw).String())
		}
	}
	if len(answer) > 0 && !pinned {
		step.Scope = cs.Scope(d, cl)
	}
	if len(answer) > 0 {
		step.Scope = max(step.Scope, res.HashBits)
	} else { // an empty answer carries the scope of its decision, as the query's does
		rcode := dns.RcodeSuccess
		if res.InFallback && res.Fallback == policy.FallbackServFail {
			rcode = dns.RcodeServerFailure
		}
		step.Scope = emptyScope(cs, d, cl, qtype, pinned, rcode)
	}
	return step, answer, target
}

func addrText(a *policy.Address) string {
	if a.Target != "" {
		return a.Target
	}
	return a.IP.String()
}

// facts looks the client up in every database the block has (the decision looks up only
// what the routes use; explain reports everything found).
func (g *GTM) facts(cl *policy.Client) api.GeoFacts {
	f := api.GeoFacts{Known: cl.Known}
	if !cl.Known || !cl.Addr.IsValid() {
		return f
	}
	if g.geo != nil {
		if loc, err := g.geo.City(cl.Addr); err == nil {
			if p, err := cl.Addr.Prefix(loc.Prefix); err == nil && loc.Prefix > 0 {
				f.Network = p.String()
			}
			if loc.Found {
				f.Found, f.Continent, f.Country, f.Region = true, loc.Continent, loc.Country, loc.Region
				if loc.HasLocation {
					f.Location = &[2]float64{loc.Lat, loc.Lon}
				}
			}
		}
	}
	if g.asn != nil {
		if n, bits, found, err := g.asn.ASN(cl.Addr); err == nil {
			f.ASNFound, f.ASN = found, n
			if p, err := cl.Addr.Prefix(bits); err == nil && bits > 0 {
				f.ASNNetwork = p.String()
			}
		}
	}
	return f
}

var _ api.Explainer = (*GTM)(nil)

// explainFailover reports what the failover settings did to a decision.
func explainFailover(step *api.HopDoc, res *policy.Result, cl *policy.Client) {
	step.Degraded = res.Degraded
	if res.InFallback {
		step.Fallback = res.Fallback.String()
	}
	if res.Held && res.Pool != nil {
		step.Held = res.Pool.Name
	}
	if res.HashBits > 0 {
		if pfx, ok := policy.HashPrefix(cl); ok {
			step.HashedPrefix = pfx.String()
		}
	}
}
