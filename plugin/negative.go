package gtm

import (
	"context"

	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"

	"github.com/gtm-dns/coredns-gtm/control"
	"github.com/gtm-dns/coredns-gtm/geo"
	"github.com/gtm-dns/coredns-gtm/policy"
)

// Empty answers: the zone's own names (apex SOA and NS, NXDOMAIN, NODATA at empty
// non-terminals), the negative answers of managed names, and the next plugin's denials of
// names that exist because gtm manages them.

// zoneAnswer answers a name of the zone that is not a managed domain, or the SOA or NS
// query at the apex: the same for every client (ECS scope 0).
func (g *GTM) zoneAnswer(state *request.Request, cs *control.Snapshot, zone string, apex bool, subnet *geo.ClientSubnet) (int, error) {
	m := new(dns.Msg)
	m.SetReply(state.Req)
	m.Authoritative = true
	qname, qtype := state.Name(), state.QType()
	switch {
	case apex && qtype == dns.TypeSOA:
		m.Answer = []dns.RR{cs.SOA(zone)}
	case apex:
		m.Answer = cs.NS(zone)
		m.Extra = glue(cs, zone)
	case qname == zone || cs.HasBelow(qname):
		m.Ns = []dns.RR{cs.NegSOA(zone)} // NODATA; an empty non-terminal per RFC 8020
	default:
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{cs.NegSOA(zone)}
	}
	g.reply(state, m, subnet, 0)
	return dns.RcodeSuccess, nil
}

// glue is the addresses of the zone's in-zone name servers (`ns NAME ADDRESS...`), for the
// additional section of the apex NS answer, as the file plugin adds them: a resolver then
// need not ask for them before it can use the delegation.
func glue(cs *control.Snapshot, zone string) []dns.RR {
	var out []dns.RR
	for _, rr := range cs.NS(zone) {
		ns, ok := rr.(*dns.NS)
		if !ok {
			continue
		}
		addrs, _ := cs.NSHost(ns.Ns)
		for _, a := range addrs {
			if a.Is4() {
				out = append(out, &dns.A{Hdr: hdr(ns.Ns, dns.TypeA, cs.TTL), A: a.AsSlice()})
			} else {
				out = append(out, &dns.AAAA{Hdr: hdr(ns.Ns, dns.TypeAAAA, cs.TTL), AAAA: a.AsSlice()})
			}
		}
	}
	return out
}

// deny makes m, an answer without records for its last name, negative: the zone's SOA in
// authority, with its RFC 2308 TTL lowered to ttl when ttl is not 0 (`fallback nodata` with
// a DEGRADED TTL: the emptiness lasts only as long as the episode may).
func (g *GTM) deny(ctx context.Context, w dns.ResponseWriter, cs *control.Snapshot, m *dns.Msg, zone string, ttl uint32) {
	soa := g.negativeSOA(ctx, w, cs, zone)
	if ttl > 0 {
		soa = cappedSOA(soa, ttl)
	}
	m.Ns = []dns.RR{soa}
}

// emptyScope is the ECS scope of an empty answer of managed domain d for client cl (qtype
// asked, rcode so far). An answer is empty for one client because of the decision made for
// it (its route's pool has no address of the family, no route matches: geo-fencing, the
// route fell back to nodata), and another client's decision may give it records: a resolver
// with an ECS cache must keep the emptiness to this client's network, so it carries the
// scope the decision has (the scope a positive answer for this client would carry). It is 0
// only when every client gets the same emptiness: a pinned domain, SERVFAIL, or a domain
// none of whose pools could answer qtype at all.
func emptyScope(cs *control.Snapshot, d *policy.Domain, cl *policy.Client, qtype uint16, pinned bool, rcode int) int {
	if pinned || rcode == dns.RcodeServerFailure || !d.DependsOnClient() || noPoolAnswers(d, qtype) {
		return 0
	}
	return cs.Scope(d, cl)
}

// noPoolAnswers reports whether no pool of d (its routes' and its fallback pool) could put
// a record of qtype into an answer: no pool of names (a CNAME answers every type), and no
// address of qtype's family.
func noPoolAnswers(d *policy.Domain, qtype uint16) bool {
	var fam policy.Family
	switch qtype {
	case dns.TypeA:
		fam = policy.IPv4
	case dns.TypeAAAA:
		fam = policy.IPv6
	}
	could := func(p *policy.Pool) bool {
		if p == nil {
			return false
		}
		if p.CNAME {
			return true
		}
		if fam == 0 {
			return false
		}
		for _, a := range p.Addrs {
			if a.Family() == fam {
				return true
			}
		}
		return false
	}
	for _, r := range d.Routes {
		for _, p := range r.Pools {
			if could(p) {
				return false
			}
		}
	}
	return !could(d.FallbackPool)
}

// emptyTTL is the TTL that caps an empty answer's negative TTL: the decision's (DEGRADED
// when the domain has one) for `fallback nodata`, else 0 (the SOA's RFC 2308 TTL alone).
func emptyTTL(d *policy.Domain, res *policy.Result, ttl uint32) uint32 {
	if res.InFallback && res.Fallback == policy.FallbackNoData {
		return ttl
	}
	return 0
}

// existsWriter turns the next plugin's NXDOMAIN for a name that exists (a managed domain, or
// an empty non-terminal above one) into NODATA: the same authority section (the zone's SOA),
// or gtm's negative SOA when the next plugin sent none.
type existsWriter struct {
	dns.ResponseWriter
	soa dns.RR
}

func existsWriterFor(w dns.ResponseWriter, soa dns.RR) dns.ResponseWriter {
	return &existsWriter{ResponseWriter: w, soa: soa}
}

// WriteMsg implements dns.ResponseWriter.
func (e *existsWriter) WriteMsg(m *dns.Msg) error {
	if m.Rcode == dns.RcodeNameError && len(m.Answer) == 0 {
		m.Rcode = dns.RcodeSuccess
		hasSOA := false
		for _, rr := range m.Ns {
			hasSOA = hasSOA || rr.Header().Rrtype == dns.TypeSOA
		}
		if !hasSOA && e.soa != nil {
			m.Ns = append(m.Ns, e.soa)
		}
	}
	return e.ResponseWriter.WriteMsg(m)
}
