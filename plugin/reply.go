package gtm

import (
	"slices"

	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"

	"github.com/gtm-dns/coredns-gtm/policy"
)

// The reply path's records. Every answer gets records of its own, copied by value from
// the decision: sharing prebuilt records between replies is not safe, because plugins that
// see the reply after gtm change records in place (rewrite's ttl and name rules on the way
// out through the writer before gtm; cache's TTL capping, when a plugin after gtm chases a
// CNAME to a managed name through the server and the cache stores that answer). What is
// saved is the allocations: the records of one answer and the slice holding them come in
// one allocation for the common answer of one address, two for more.

// oneA and oneAAAA are an answer of one record and the Answer slice that holds it.
type oneA struct {
	rr  dns.A
	ans [1]dns.RR
}

type oneAAAA struct {
	rr  dns.AAAA
	ans [1]dns.RR
}

// appendAddrs appends an A (qtype A) or AAAA record for name to answer for each address.
func appendAddrs(answer []dns.RR, name string, qtype uint16, ttl uint32, addrs []*policy.Address) []dns.RR {
	h := dns.RR_Header{Name: name, Rrtype: qtype, Class: dns.ClassINET, Ttl: ttl}
	if len(answer) == 0 && len(addrs) == 1 {
		if qtype == dns.TypeA {
			o := &oneA{rr: dns.A{Hdr: h, A: addrs[0].Raw}}
			o.ans[0] = &o.rr
			return o.ans[:]
		}
		o := &oneAAAA{rr: dns.AAAA{Hdr: h, AAAA: addrs[0].Raw}}
		o.ans[0] = &o.rr
		return o.ans[:]
	}
	answer = slices.Grow(answer, len(addrs))
	if qtype == dns.TypeA {
		rrs := make([]dns.A, len(addrs))
		for i, a := range addrs {
			rrs[i] = dns.A{Hdr: h, A: a.Raw}
			answer = append(answer, &rrs[i])
		}
		return answer
	}
	rrs := make([]dns.AAAA, len(addrs))
	for i, a := range addrs {
		rrs[i] = dns.AAAA{Hdr: h, AAAA: a.Raw}
		answer = append(answer, &rrs[i])
	}
	return answer
}

// write sends m. It does not scrub (truncate to the client's buffer, compress): CoreDNS's
// server wraps every query's writer in a request.ScrubWriter before the first plugin runs
// (core/dnsserver: every transport goes through Server.ServeDNS), which does that on
// WriteMsg; scrubbing here as well walked the whole message twice more per reply (two
// Len computations, each packing the ECS option again).
func write(state *request.Request, m *dns.Msg) {
	state.W.WriteMsg(m)
}
