package control

import (
	"cmp"
	"slices"

	"github.com/miekg/dns"

	"github.com/gtm-dns/coredns-gtm/config"
	"github.com/gtm-dns/coredns-gtm/policy"
)

// compileServices is the query path's form of a domain's https and srv settings; nil when
// it has neither.
func compileServices(dc *config.Domain) *policy.Services {
	if dc.HTTPS == nil && len(dc.SRV) == 0 {
		return nil
	}
	s := &policy.Services{}
	if h := dc.HTTPS; h != nil {
		var params []dns.SVCBKeyValue
		if len(h.ALPN) > 0 {
			params = append(params, &dns.SVCBAlpn{Alpn: slices.Clone(h.ALPN)})
		}
		if h.Port > 0 {
			params = append(params, &dns.SVCBPort{Port: uint16(h.Port)})
		}
		s.HTTPS = policy.NewHTTPS(h.SvcPriority(), params, h.HintsOn())
	}
	for _, v := range dc.SRV {
		name, _ := config.ServiceName(v.Service)
		s.SRV = append(s.SRV, policy.SRV{Service: name, Port: uint16(v.Port), Priority: uint16(v.Priority)})
	}
	// One RRset per service: SRVFor reads a service's lines as one run.
	slices.SortStableFunc(s.SRV, func(a, b policy.SRV) int { return cmp.Compare(a.Service, b.Service) })
	return s
}
