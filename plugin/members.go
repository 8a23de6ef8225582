package gtm

import (
	"net"
	"sync"

	"github.com/miekg/dns"

	"github.com/gtm-dns/coredns-gtm/api"
	"github.com/gtm-dns/coredns-gtm/config"
	"github.com/gtm-dns/coredns-gtm/discovery"
	"github.com/gtm-dns/coredns-gtm/healthcheck"
	"github.com/gtm-dns/coredns-gtm/policy"
)

// blockMembers is a block's member discovery: the sources its configuration wants, and a
// goroutine that recompiles the snapshot when what they report changes. Without `cluster`
// the block's own Manager discovers; with it, the fleet's elected node does (fleet.go) and
// every node compiles from the members in the shared state.
type blockMembers struct {
	g    *GTM
	mgr  *discovery.Manager
	kick chan struct{}
	done chan struct{}
	wg   sync.WaitGroup

	mu   sync.Mutex
	base *config.Config // the configuration in force before members are joined
}

// startMembers starts the block's discovery (nothing runs until a configuration wants it).
func (g *GTM) startMembers() {
	m := &blockMembers{g: g, kick: make(chan struct{}, 1), done: make(chan struct{})}
	m.mgr = discovery.New(discovery.Options{
		OnChange: func() {
			select {
			case m.kick <- struct{}{}:
			default:
			}
		},
		OnEvent: func(pool, source, msg string, warning bool) {
			if warning {
				log.Warningf("%s", msg)
			} else {
				log.Infof("%s", msg)
			}
			record(api.Event{Kind: "members", Pool: pool, Message: msg})
		},
	})
	g.members = m
	m.wg.Add(1)
	go m.loop()
}

// stopMembers stops the sources and the recompiling goroutine, and waits for them.
func (g *GTM) stopMembers() {
	m := g.members
	if m == nil {
		return
	}
	g.members = nil
	close(m.done)
	m.wg.Wait()
	m.mgr.Stop()
}

// withMembers is res with the discovered members joined, after making the running sources
// those res wants. Called under g.mu before each compile.
func (g *GTM) withMembers(res *config.Config) *config.Config {
	m := g.members
	if m == nil {
		return res
	}
	m.mu.Lock()
	m.base = res
	m.mu.Unlock()
	if err := m.mgr.Sync(discovery.Wants(res)); err != nil {
		log.Errorf("members: %v", err)
	}
	return discovery.Apply(res, m.mgr.View())
}

// loop recompiles the snapshot after the sources' reports changed (coalesced: one compile
// for a burst of reports).
func (m *blockMembers) loop() {
	defer m.wg.Done()
	for {
		select {
		case <-m.done:
			return
		case <-m.kick:
		}
		m.recompile()
	}
}

func (m *blockMembers) recompile() {
	g := m.g
	g.mu.Lock()
	defer g.mu.Unlock()
	old := g.snap.Load()
	m.mu.Lock()
	base := m.base
	m.mu.Unlock()
	if old == nil || base == nil {
		return
	}
	res := discovery.Apply(base, m.mgr.View())
	cs := compile(g.block, res, registry, g.st, old)
	cs.revision.Store(old.revision.Load())
	cs.stamp = old.stamp
	g.buildScopes(cs)
	g.snap.Store(cs)
	old.forgetSeries(cs)
	old.handOver(registry, cs)
}

// poolDiscovery is what compile puts in a pool with members or flatten: stale and why.
func poolDiscovery(p *policy.Pool, pc *config.Pool) {
	if len(pc.Members) == 0 && pc.Flatten == nil {
		return
	}
	p.Flatten = pc.Flatten != nil
	p.Discovery = &policy.DiscoveryStatus{Stale: pc.MembersStale, Error: pc.MembersError}
}

// addressDiscovery is what compile puts in an address that discovery found or resolved.
func addressDiscovery(a *policy.Address, ac *config.Address) {
	a.Source = ac.Source
	if len(ac.Resolved) > 0 {
		a.Flat = make([]net.IP, len(ac.Resolved))
		for i, ip := range ac.Resolved {
			a.Flat[i] = ip.AsSlice()
		}
	}
}

// portTemplates are tmpls probing port instead of their own (an SRV member's checks).
// ICMP has no port: its templates stay.
func portTemplates(tmpls []*healthcheck.Template, port int) []*healthcheck.Template {
	if port == 0 {
		return tmpls
	}
	out := make([]*healthcheck.Template, len(tmpls))
	for i, t := range tmpls {
		if t.Protocol == healthcheck.ICMP {
			out[i] = t
			continue
		}
		c := *t
		c.Port = port
		out[i] = &c
	}
	return out
}

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
