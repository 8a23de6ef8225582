package gtm

import (
	"github.com/miekg/dns"

	"github.com/gtm-dns/coredns-gtm/policy"
)

// appendFlat answers a flatten pool's chosen name with its current addresses of qtype's
// family (A or AAAA; nothing for other types: the name then exists without such records).
func appendFlat(rrs []dns.RR, name string, qtype uint16, ttl uint32, a *policy.Address) []dns.RR {
	for _, ip := range a.Flat {
		switch {
		case qtype == dns.TypeA && ip.To4() != nil:
			rrs = append(rrs, &dns.A{Hdr: hdr(name, dns.TypeA, ttl), A: ip})
		case qtype == dns.TypeAAAA && ip.To4() == nil:
			rrs = append(rrs, &dns.AAAA{Hdr: hdr(name, dns.TypeAAAA, ttl), AAAA: ip})
		}
	}
	return rrs
}
