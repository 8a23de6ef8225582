package policy

import "strings"

// Snapshot is one compiled configuration. It never changes after Compile; a reload builds a
// new one and the plugin swaps an atomic pointer.
type Snapshot struct {
	Zones   []string // lower-case FQDNs
	Domains []*Domain
	Pools   []*Pool
	TTL     uint32 // default answer TTL

	domains map[string]*Domain
	pools   map[string]*Pool
	ents    map[string]bool // names strictly above a managed domain
}

// Index builds the lookup tables; call once after filling Domains and Pools.
func (s *Snapshot) Index() {
	s.domains = make(map[string]*Domain, len(s.Domains))
	s.ents = make(map[string]bool)
	for _, d := range s.Domains {
		d.Finish()
		s.domains[d.Name] = d
		for name := d.Name; ; {
			_, parent, ok := strings.Cut(name, ".")
			if !ok || parent == "" {
				break
			}
			s.ents[parent] = true
			name = parent
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
		if z == "." || (strings.HasSuffix(qname, z) && (len(qname) == len(z) || qname[len(qname)-len(z)-1] == '.')) {
			best = z
		}
	}
	return best
}

// Domain returns the managed domain for a lower-case FQDN, or nil.
func (s *Snapshot) Domain(fqdn string) *Domain { return s.domains[fqdn] }

// Pool returns the pool called name, or nil.
func (s *Snapshot) Pool(name string) *Pool { return s.pools[name] }

// HasBelow reports whether some managed domain lies strictly below fqdn (which then is an
// empty non-terminal: NODATA, not NXDOMAIN, per RFC 8020).
func (s *Snapshot) HasBelow(fqdn string) bool { return s.ents[fqdn] }
