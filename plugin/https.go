package gtm

import (
	"net"
	"slices"

	"github.com/miekg/dns"

	"github.com/gtm-dns/coredns-gtm/control"
	"github.com/gtm-dns/coredns-gtm/policy"
)

// HTTPS answers (RFC 9460 ServiceMode at the managed name): the addresses of its hints are
// the ones the same client's A and AAAA queries get, from the same decision code, so a
// browser that connects on the hints reaches the server the GSLB chose for it.

// familyAnswer is one family's decision for a record built from both (HTTPS, SRV).
type familyAnswer struct {
	res    policy.Result
	ttl    uint32
	scope  int
	pinned bool
}

// both is the outcome of decideBoth.
type both struct {
	v4, v6   familyAnswer
	servfail bool   // `fallback servfail` answered either family
	negTTL   uint32 // `fallback nodata`: the TTL capping the negative answer's (0: none)
}

// emptyScope is the ECS scope of an answer built from both decisions that has no records
// (PRODUCT.md Part 3, "Scope of empty answers"): the decision's scope, as a positive answer
// for the client would carry it; 0 when every client gets the same emptiness (a pinned
// domain, SERVFAIL, routes that do not look at the client).
func (b *both) emptyScope(cs *control.Snapshot, d *policy.Domain, cl *policy.Client) int {
	if b.v4.pinned || b.servfail || !d.DependsOnClient() {
		return 0
	}
	return cs.Scope(d, cl)
}

// decideBoth makes the A and the AAAA decision for client cl (located) at d, as answer
// makes each for its query type, and counts them as one answer (the IPv4 one; the IPv6
// decision records a failover it observed, as explain does). v4buf and v6buf hold the
// addresses.
func decideBoth(cs *control.Snapshot, d *policy.Domain, cl *policy.Client, v4buf, v6buf []*policy.Address) (b both) {
	v4, v6 := &b.v4, &b.v6
	var route *policy.Route
	v4.res, route, v4.pinned = cs.Decide(d, cl, policy.IPv4, v4buf)
	cs.Account(d, route, &v4.res)
	n := 1
	if v4.res.Pool == nil || !v4.res.Pool.CNAME { // a pool of names answers every type with its CNAME
		v6.res, route, v6.pinned = cs.Decide(d, cl, policy.IPv6, v6buf)
		cs.Observe(d, route, &v6.res)
		n = 2
	}
	fams := [2]*familyAnswer{v4, v6}
	for _, f := range fams[:n] {
		b.servfail = b.servfail || f.res.InFallback && f.res.Fallback == policy.FallbackServFail
		f.ttl = d.TTLOf(&f.res)
		if f.res.InFallback && f.res.Fallback == policy.FallbackNoData {
			b.negTTL = max(b.negTTL, f.ttl)
		}
		if len(f.res.Addrs) > 0 {
			if !f.pinned {
				f.scope = cs.Scope(d, cl)
			}
			f.scope = max(f.scope, f.res.HashBits)
		}
	}
	return b
}

// splitBuf shares the query path's address buffer between the two decisions (up to half
// its room each before append allocates): a second buffer of its own would be an allocation
// per answer, since the decision's addresses leave the stack.
func splitBuf(buf []*policy.Address) (v4, v6 []*policy.Address) {
	half := cap(buf) / 2
	return buf[:0:half], buf[half:half:cap(buf)]
}

// bothTTL is the TTL of a record built from both decisions: the shorter of the families
// that answered addresses.
func bothTTL(v4, v6 *familyAnswer) uint32 {
	switch {
	case len(v4.res.Addrs) == 0:
		return v6.ttl
	case len(v6.res.Addrs) == 0:
		return v4.ttl
	}
	return min(v4.ttl, v6.ttl)
}

// answerHTTPS appends d's HTTPS answer for name to m, with answer's results: the record
// (hints from both families' decisions), or the CNAME of a pool of names, or nothing when
// the client gets no address of either family (NODATA, as its A and AAAA queries).
//
//go:noinline
func (g *GTM) answerHTTPS(cs *control.Snapshot, m *dns.Msg, d *policy.Domain, name string, cl *policy.Client, buf []*policy.Address) (n, scope int, target string, negTTL uint32) {
	v4buf, v6buf := splitBuf(buf)
	b := decideBoth(cs, d, cl, v4buf, v6buf)
	v4, v6 := &b.v4, &b.v6
	switch {
	case b.servfail:
		// As answer: failing closed is no authoritative statement about the name.
		m.Rcode, m.Authoritative = dns.RcodeServerFailure, false
	case len(v4.res.Addrs) > 0 && v4.res.Pool.CNAME:
		target = v4.res.Addrs[0].Target
		m.Answer = append(m.Answer, &dns.CNAME{Hdr: hdr(name, dns.TypeCNAME, v4.ttl), Target: target})
		return 1, v4.scope, target, 0
	case len(v4.res.Addrs)+len(v6.res.Addrs) > 0:
		m.Answer = appendHTTPS(m.Answer, d.Services.HTTPS, name, bothTTL(v4, v6), v4.res.Addrs, v6.res.Addrs)
		return 1, max(v4.scope, v6.scope), "", 0
	}
	return 0, b.emptyScope(cs, d, cl), "", b.negTTL
}

// httpsRecord is the HTTPS record with hints v4 and v6 as miekg/dns types: explain's, and
// the answer's when https_wire.go does not pack it itself. appendHTTPS's record packs the same.
func httpsRecord(h *policy.HTTPS, name string, ttl uint32, v4, v6 []net.IP) *dns.HTTPS {
	rr := &dns.HTTPS{SVCB: dns.SVCB{Hdr: hdr(name, dns.TypeHTTPS, ttl), Priority: h.Priority, Target: "."}}
	if !h.Hints {
		rr.Value = slices.Clip(h.Params)
		return rr
	}
	rr.Value = make([]dns.SVCBKeyValue, 0, len(h.Params)+2)
	rr.Value = append(rr.Value, h.Params...) // alpn (1), port (3): before the hints (4, 6)
	if len(v4) > 0 {
		rr.Value = append(rr.Value, &dns.SVCBIPv4Hint{Hint: v4})
	}
	if len(v6) > 0 {
		rr.Value = append(rr.Value, &dns.SVCBIPv6Hint{Hint: v6})
	}
	return rr
}

// raws is the addresses' IPs in the form records take.
func raws(addrs []*policy.Address) []net.IP {
	ips := make([]net.IP, len(addrs))
	for i, a := range addrs {
		ips[i] = a.Raw
	}
	return ips
}
