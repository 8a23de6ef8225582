package control

import (
	"net/netip"

	"github.com/miekg/dns"

	"github.com/gtm-dns/coredns-gtm/geo"
	"github.com/gtm-dns/coredns-gtm/policy"
)

// The decision helpers the query path (plugin/gtm.go) and explain share, so that explain
// says what a query gets by running the same code.

// MaxChase bounds how many CNAMEs to managed names one answer follows (file's bound too).
const MaxChase = 8

// AnswersType reports whether gtm answers qtype at managed domain d: A and AAAA, and every
// type for a domain with a pool of names (CNAME). Other types belong to the zone's data.
func AnswersType(d *policy.Domain, qtype uint16) bool {
	switch qtype {
	case dns.TypeA, dns.TypeAAAA, dns.TypeCNAME, dns.TypeANY:
		return true
	case dns.TypeHTTPS:
		if d.Services != nil && d.Services.HTTPS != nil {
			return true // plugin/https.go
		}
	}
	for _, r := range d.Routes {
		for _, p := range r.Pools {
			if p.CNAME {
				return true
			}
		}
	}
	return false
}

// Decide is the decision of the query path for client cl (located) at managed domain d: the
// pinned pool when an operator pinned d to one that exists, else the route d.Match finds and
// what it picks. route is nil for a pinned domain and when no route matches (geo-fencing:
// res.Pool is then nil too).
func (cs *compiled) Decide(d *policy.Domain, cl *policy.Client, fam policy.Family, buf []*policy.Address) (res policy.Result, route *policy.Route, pinned bool) {
	if pin := d.Pin.Get(); pin != "" {
		if p := cs.Pool(pin); p != nil {
			return policy.PickPoolFor(p, cl, fam, buf), nil, true
		}
	}
	if route = d.Match(cl); route != nil {
		res = d.Decide(route, cl, fam, buf)
	}
	return res, route, false
}

// ExplainDecide is Decide as a pure read (explain): no detector moves.
func (cs *compiled) ExplainDecide(d *policy.Domain, cl *policy.Client, fam policy.Family, buf []*policy.Address) (res policy.Result, route *policy.Route, pinned bool) {
	if pin := d.Pin.Get(); pin != "" {
		if p := cs.Pool(pin); p != nil {
			return policy.PickPoolFor(p, cl, fam, buf), nil, true
		}
	}
	if route = d.Match(cl); route != nil {
		res = d.Explain(route, cl, fam, buf)
	}
	return res, route, false
}

// ClientOf fills in who asks: the ECS subnet when the query had one, else the source
// address src. It returns 96 for an IPv4-mapped ECS subnet (its scope is 96 + the IPv4
// scope), else 0.
func ClientOf(cl *policy.Client, subnet *geo.ClientSubnet, src netip.Addr) (mapped int) {
	if subnet != nil {
		cl.Addr, cl.Bits = subnet.Addr, subnet.SourceBits
		if cl.Addr.Is4In6() {
			// ::ffff:a.b.c.d/N is the IPv4 client a.b.c.d/(N-96) (a mapped address implies
			// N >= 96): route it as IPv4, as the geo lookups do, and answer the scope in the
			// IPv6 family the option came in.
			cl.Addr, cl.Bits, mapped = cl.Addr.Unmap(), cl.Bits-96, 96
		}
		cl.Known = cl.Bits > 0
		return mapped
	}
	cl.Addr, cl.Known = src, true
	cl.Bits = cl.Addr.BitLen()
	return 0
}

// Locate fills in the client's geo facts from the databases (nil: none), looking up only
// what the domain's routes use.
func Locate(geoDB, asnDB *geo.DB, d *policy.Domain, cl *policy.Client) {
	// The prefix length is known for misses too (the database network holding no data), and
	// it bounds the ECS scope just the same.
	if geoDB != nil && d.NeedsGeo() {
		if loc, err := geoDB.City(cl.Addr); err == nil {
			cl.GeoBits = loc.Prefix
			if loc.Found {
				cl.GeoFound = true
				cl.Continent, cl.Country, cl.Region = loc.Continent, loc.Country, loc.Region
				cl.HasLoc, cl.Lat, cl.Lon = loc.HasLocation, loc.Lat, loc.Lon
			}
		}
	}
	if asnDB != nil && d.NeedsASN() {
		if n, bits, found, err := asnDB.ASN(cl.Addr); err == nil {
			cl.ASNBits = bits
			cl.ASNFound, cl.ASN = found, n
		}
	}
}
