package gtm

import "github.com/miekg/dns"

// cappedSOA is soa (a negative answer's) with its TTL lowered to ttl: a copy, since the
// snapshot's records are shared by every reply.
func cappedSOA(soa dns.RR, ttl uint32) dns.RR {
	if soa == nil || soa.Header().Ttl <= ttl {
		return soa
	}
	c := dns.Copy(soa)
	c.Header().Ttl = ttl
	return c
}

// negativeTTL is what RFC 2308 makes of a SOA for a negative answer: a copy with the TTL
// min(TTL, MINIMUM) when that is lower, else soa itself.
func negativeTTL(soa dns.RR) dns.RR {
	if s, ok := soa.(*dns.SOA); ok {
		return cappedSOA(soa, s.Minttl)
	}
	return soa
}
