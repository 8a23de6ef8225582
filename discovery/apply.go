package discovery

import (
	"net/netip"
	"slices"

	"github.com/gtm-dns/coredns-gtm/config"
)

// Apply returns cfg with the discovered members of view joined to their pools' static
// addresses (Source set, after the static ones, a static address winning over a discovered
// duplicate) and each flatten pool's addresses resolved. Pools without members or flatten
// are cfg's own; the others are copies, so a compile that reuses pools by identity compiles
// exactly the pools whose membership changed. cfg itself is not changed.
func Apply(cfg *config.Config, view View) *config.Config {
	var out *config.Config
	for i, p := range cfg.Pools {
		if len(p.Members) == 0 && p.Flatten == nil {
			continue
		}
		np := applyPool(p, view[p.Name])
		if out == nil {
			out = cfg.Clone()
		}
		out.Pools[i] = np
	}
	if out == nil {
		return cfg
	}
	return out
}

func applyPool(p *config.Pool, pv *PoolView) *config.Pool {
	np := *p
	np.Addresses = slices.Clone(p.Addresses)
	if pv == nil {
		return &np
	}
	np.MembersStale, np.MembersError = pv.Stale()
	if p.Flatten != nil {
		for i := range np.Addresses {
			a := &np.Addresses[i]
			_, target, err := config.ParseAddress(a.Address)
			if err != nil {
				continue
			}
			if sv, ok := pv.Flat[target]; ok {
				a.Resolved = addrsOf(sv.Members)
				a.Source = "flatten:" + sv.Label
			}
		}
	}
	if len(p.Members) == 0 {
		return &np
	}
	seen := make(map[netip.Addr]bool, len(p.Addresses))
	for _, a := range p.Addresses {
		if ip, _, err := config.ParseAddress(a.Address); err == nil && ip.IsValid() {
			seen[ip] = true
		}
	}
	for _, sv := range pv.Sources {
		for _, m := range sv.Members {
			if seen[m.Addr] {
				continue
			}
			seen[m.Addr] = true
			a := config.NewAddress(m.Addr.String())
			a.Weight, a.Priority, a.Port, a.Source = max(m.Weight, 1), m.Priority, m.Port, sv.Label
			np.Addresses = append(np.Addresses, a)
		}
	}
	return &np
}

func addrsOf(ms []Member) []netip.Addr {
	out := make([]netip.Addr, len(ms))
	for i, m := range ms {
		out[i] = m.Addr
	}
	return out
}

// Members is one pool's discovered addresses as a fleet shares them (etcd, members/POOL):
// what the elected node's sources last reported.
type Members struct {
	Sources []SharedSource `json:"sources"`
}

// SharedSource is one source's report in Members.
type SharedSource struct {
	Source  string         `json:"source"`
	Target  string         `json:"target,omitzero"` // flatten
	Members []SharedMember `json:"members"`
	Synced  bool           `json:"synced"`
	Stale   bool           `json:"stale,omitzero"`
	Error   string         `json:"error,omitzero"`
}

// SharedMember is one member in Members.
type SharedMember struct {
	Address  string `json:"address"`
	Port     int    `json:"port,omitzero"`
	Weight   int    `json:"weight,omitzero"`
	Priority int    `json:"priority,omitzero"`
}

// Share is the shared form of one pool's view.
func Share(pv *PoolView) Members {
	var out Members
	add := func(target string, sv SourceView) {
		ss := SharedSource{Source: sv.Label, Target: target, Synced: sv.Synced, Stale: sv.Stale, Error: sv.Error, Members: []SharedMember{}}
		for _, m := range sv.Members {
			ss.Members = append(ss.Members, SharedMember{Address: m.Addr.String(), Port: m.Port, Weight: m.Weight, Priority: m.Priority})
		}
		out.Sources = append(out.Sources, ss)
	}
	for _, sv := range pv.Sources {
		add("", sv)
	}
	for _, t := range sortedKeys(pv.Flat) {
		add(t, pv.Flat[t])
	}
	return out
}

// Unshare is the view of one pool's shared members (addresses that do not parse are left out).
func Unshare(m Members) *PoolView {
	pv := &PoolView{}
	for _, ss := range m.Sources {
		sv := SourceView{Label: ss.Source, Synced: ss.Synced, Stale: ss.Stale, Error: ss.Error}
		for _, sm := range ss.Members {
			if a, err := netip.ParseAddr(sm.Address); err == nil {
				sv.Members = append(sv.Members, Member{Addr: a.Unmap(), Port: sm.Port, Weight: sm.Weight, Priority: sm.Priority})
			}
		}
		if ss.Target != "" {
			if pv.Flat == nil {
				pv.Flat = map[string]SourceView{}
			}
			pv.Flat[ss.Target] = sv
			continue
		}
		pv.Sources = append(pv.Sources, sv)
	}
	return pv
}
