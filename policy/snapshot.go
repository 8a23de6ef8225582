package policy

import (
	"strings"

	"github.com/miekg/dns"
)

// Snapshot is one compiled configuration. It never changes after Compile; a reload builds a
// new one and the plugin swaps an atomic pointer.
type Snapshot struct {
	Zones   []string // lower-case FQDNs
	Domains []*Domain
	Pools   []*Pool
	TTL     uint32 // default answer TTL

	domains map[string]*Domain
	pools   map[string]*Pool
	ents    map[string]bool    // names strictly above a managed domain
	wilds   map[string]*Domain // "gtm.test." for the wildcard domain "*.gtm.test."
	srv     bool               // some domain has srv (service.go)
}

// Index builds the lookup tables; call once after filling Domains and Pools.
func (s *Snapshot) Index() {
	s.domains = make(map[string]*Domain, len(s.Domains))
	s.ents = make(map[string]bool)
	s.wilds, s.srv = nil, false
	for _, d := range s.Domains {
		d.Finish()
		s.srv = s.srv || d.Services != nil && len(d.Services.SRV) > 0
		s.domains[d.Name] = d
		if parent, ok := strings.CutPrefix(d.Name, "*."); ok {
			if s.wilds == nil {
				s.wilds = make(map[string]*Domain)
			}
			s.wilds[parent] = d
		}
		// Label by label: an escaped dot (`a\.b`) is inside a label, not between two.
		for off, end := dns.NextLabel(d.Name, 0); !end; off, end = dns.NextLabel(d.Name, off) {
			s.ents[d.Name[off:]] = true
		}
	}
	s.pools = make(map[string]*Pool, len(s.Pools))
	for _, p := range s.Pools {
		s.pools[p.Name] = p
	}
}

// Zone returns the longest of the snapshot's zones that holds qname (a lower-case FQDN), or
// "". Unlike plugin.Zones.Matches it allocates nothing: this runs for every query.
func (s *Snapshot) Zone(qname string) string {
	best := ""
	for _, z := range s.Zones {
		if len(z) <= len(best) || len(z) > len(qname) {
			continue
		}
		if InZone(qname, z) {
			best = z
		}
	}
	return best
}

// InZone reports whether the lower-case FQDN name is zone or lies below it, comparing whole
// labels: `foo\.gtm.test.` is one label "foo.gtm" under test., not a name in gtm.test.
func InZone(name, zone string) bool {
	switch {
	case zone == ".":
		return true
	case len(name) < len(zone) || name[len(name)-len(zone):] != zone:
		return false
	case len(name) == len(zone):
		return true
	}
	// The zone starts right after a dot of name; that dot separates labels unless an odd
	// number of backslashes escapes it.
	i := len(name) - len(zone) - 1
	if name[i] != '.' {
		return false
	}
	j := i - 1
	for j >= 0 && name[j] == '\\' {
		j--
	}
	return (i-j)%2 == 1
}

// Domain returns the managed domain for a lower-case FQDN, or nil.
func (s *Snapshot) Domain(fqdn string) *Domain { return s.domains[fqdn] }

// Lookup returns the managed domain that answers qname (a lower-case FQDN in zone): the
// domain of that name, else a wildcard domain by RFC 4592. The wildcard at the closest
// encloser (the longest existing ancestor of qname: a managed domain, an empty non-terminal
// above one, or the zone apex) answers qname, however many labels lie between them; a name
// that exists (an empty non-terminal included), or whose closest encloser has no wildcard,
// is not synthesized.
func (s *Snapshot) Lookup(qname, zone string) *Domain {
	if d := s.domains[qname]; d != nil || s.wilds == nil || s.ents[qname] {
		return d
	}
	for off, end := dns.NextLabel(qname, 0); !end; off, end = dns.NextLabel(qname, off) {
		anc := qname[off:]
		if anc == zone || s.domains[anc] != nil || s.ents[anc] {
			return s.wilds[anc]
		}
		if len(anc) <= len(zone) {
			break
		}
	}
	return nil
}

// Pool returns the pool called name, or nil.
func (s *Snapshot) Pool(name string) *Pool { return s.pools[name] }

// HasBelow reports whether some managed domain lies strictly below fqdn (which then is an
// empty non-terminal: NODATA, not NXDOMAIN, per RFC 8020).
func (s *Snapshot) HasBelow(fqdn string) bool { return s.ents[fqdn] }
