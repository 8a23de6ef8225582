package gtm

import (
	"cmp"
	"net"
	"slices"

	"github.com/miekg/dns"

	"github.com/gtm-dns/coredns-gtm/config"
	"github.com/gtm-dns/coredns-gtm/policy"
)

// HTTPS answers (RFC 9460 ServiceMode at the managed name): the addresses of its hints are
// the ones the same client's A and AAAA queries get, from the same decision code, so a
// browser that connects on the hints reaches the server the GSLB chose for it.

// compileServices is the query path's form of a domain's https and srv settings; nil when
// it has neither.
func compileServices(dc *config.Domain) *policy.Services {
	if dc.HTTPS == nil && len(dc.SRV) == 0 {
		return nil
	}
	s := &policy.Services{}
	if h := dc.HTTPS; h != nil {
		s.HTTPS = &policy.HTTPS{Priority: h.SvcPriority(), Hints: h.HintsOn()}
		if len(h.ALPN) > 0 {
			s.HTTPS.Params = append(s.HTTPS.Params, &dns.SVCBAlpn{Alpn: slices.Clone(h.ALPN)})
		}
		if h.Port > 0 {
			s.HTTPS.Params = append(s.HTTPS.Params, &dns.SVCBPort{Port: uint16(h.Port)})
		}
	}
	for _, v := range dc.SRV {
		name, _ := config.ServiceName(v.Service)
		s.SRV = append(s.SRV, policy.SRV{Service: name, Port: uint16(v.Port), Priority: uint16(v.Priority)})
	}
	// One RRset per service: SRVFor reads a service's lines as one run.
	slices.SortStableFunc(s.SRV, func(a, b policy.SRV) int { return cmp.Compare(a.Service, b.Service) })
	return s
}

// familyAnswer is one family's decision for a record built from both (HTTPS, SRV).
type familyAnswer struct {
	res    policy.Result
	ttl    uint32
	scope  int
	pinned bool
}

// decideBoth makes the A and the AAAA decision for client cl (located) at d, as answer
// makes each for its query type, and counts them as one answer (the IPv4 one; the IPv6
// decision records a failover it observed, as explain does). v4buf and v6buf hold the
// addresses. servfail reports a `fallback servfail` of either family.
func decideBoth(cs *compiled, d *policy.Domain, cl *policy.Client, v4buf, v6buf []*policy.Address) (v4, v6 familyAnswer, servfail bool) {
	var route *policy.Route
	v4.res, route, v4.pinned = decide(cs, d, cl, policy.IPv4, v4buf)
	if v4.res.Pool != nil {
		cs.account(d, route, &v4.res)
	}
	if v4.res.FailOpen || v4.res.InFallback || v4.res.Episode != 0 {
		cs.accountFallback(d, route, &v4.res)
	}
	if v4.res.Pool != nil && v4.res.Pool.CNAME {
		return v4, v6, false // a pool of names answers every type with its CNAME
	}
	v6.res, route, v6.pinned = decide(cs, d, cl, policy.IPv6, v6buf)
	cs.accountSwitch(d, route, &v6.res)
	if v6.res.Episode != 0 {
		cs.accountFallback(d, route, &v6.res)
	}
	for _, f := range [...]*familyAnswer{&v4, &v6} {
		servfail = servfail || f.res.InFallback && f.res.Fallback == policy.FallbackServFail
		f.ttl = d.TTLOf(&f.res)
		if len(f.res.Addrs) > 0 {
			if !f.pinned {
				f.scope = cs.scope(d, cl)
			}
			f.scope = max(f.scope, f.res.HashBits)
		}
	}
	return v4, v6, servfail
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
func (g *GTM) answerHTTPS(cs *compiled, m *dns.Msg, d *policy.Domain, name string, cl *policy.Client, buf []*policy.Address) (n, scope int, target string) {
	var buf6 [8]*policy.Address
	v4, v6, servfail := decideBoth(cs, d, cl, buf, buf6[:0])
	if servfail {
		m.Rcode = dns.RcodeServerFailure
		return 0, 0, ""
	}
	if p := v4.res.Pool; p != nil && p.CNAME {
		if len(v4.res.Addrs) == 0 {
			return 0, 0, ""
		}
		ttl := d.TTLOf(&v4.res)
		target = v4.res.Addrs[0].Target
		m.Answer = append(m.Answer, &dns.CNAME{Hdr: hdr(name, dns.TypeCNAME, ttl), Target: target})
		if !v4.pinned {
			scope = cs.scope(d, cl)
		}
		return 1, max(scope, v4.res.HashBits), target
	}
	if len(v4.res.Addrs)+len(v6.res.Addrs) == 0 {
		return 0, 0, ""
	}
	m.Answer = append(m.Answer, httpsRecord(d.Services.HTTPS, name, bothTTL(&v4, &v6), v4.res.Addrs, v6.res.Addrs))
	return 1, max(v4.scope, v6.scope), ""
}

// httpsRecord is the HTTPS record of one answer. Its SvcParams slice is its own (the fixed
// params are shared values, never written); the hints hold the decision's addresses.
func httpsRecord(h *policy.HTTPS, name string, ttl uint32, v4, v6 []*policy.Address) *dns.HTTPS {
	rr := &dns.HTTPS{SVCB: dns.SVCB{Hdr: hdr(name, dns.TypeHTTPS, ttl), Priority: h.Priority, Target: "."}}
	if !h.Hints {
		rr.Value = slices.Clip(h.Params)
		return rr
	}
	rr.Value = make([]dns.SVCBKeyValue, 0, len(h.Params)+2)
	rr.Value = append(rr.Value, h.Params...) // alpn (1), port (3): before the hints (4, 6)
	if len(v4) > 0 {
		rr.Value = append(rr.Value, &dns.SVCBIPv4Hint{Hint: rawIPs(v4)})
	}
	if len(v6) > 0 {
		rr.Value = append(rr.Value, &dns.SVCBIPv6Hint{Hint: rawIPs(v6)})
	}
	return rr
}

func rawIPs(as []*policy.Address) []net.IP {
	ips := make([]net.IP, len(as))
	for i, a := range as {
		ips[i] = a.Raw
	}
	return ips
}
