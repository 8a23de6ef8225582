package api

import "github.com/gtm-dns/coredns-gtm/policy"

// poolMembers fills in a pool's discovery state: stale and why.
func poolMembers(pd *PoolDoc, p *policy.Pool) {
	if p.Discovery == nil {
		return
	}
	stale := p.Discovery.Stale
	pd.MembersStale, pd.MembersError = &stale, p.Discovery.Error
}

// addressMembers fills in where an address came from and, in a flatten pool, what its name
// resolves to now.
func addressMembers(ad *AddressDoc, p *policy.Pool, a *policy.Address) {
	ad.Source = SourceOf(a)
	if p.Flatten {
		ad.Resolved = make([]string, 0, len(a.Flat))
		for _, ip := range a.Flat {
			ad.Resolved = append(ad.Resolved, ip.String())
		}
	}
}

// SourceOf is where an address came from: "static" unless discovery found it.
func SourceOf(a *policy.Address) string {
	if a.Source == "" {
		return "static"
	}
	return a.Source
}
