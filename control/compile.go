package control

import (
	"net/netip"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gtm-dns/coredns-gtm/config"
	"github.com/gtm-dns/coredns-gtm/healthcheck"
	"github.com/gtm-dns/coredns-gtm/history"
	"github.com/gtm-dns/coredns-gtm/policy"
	"github.com/gtm-dns/coredns-gtm/state"
)

// Snapshot is what a block answers from: a compiled configuration and the state revision
// it is in force for. It is never changed once swapped in: a state change that needs no
// compile (a mode, a pin) swaps a new Snapshot over the same compiled configuration.
type Snapshot struct {
	*compiled
	revision int64
	soa      *soaSet // the SOA records at this snapshot's serial (soa.go)
}

// newSnapshot is the snapshot of cs in force at revision rev.
func newSnapshot(cs *compiled, rev int64) *Snapshot {
	s := &Snapshot{compiled: cs, revision: rev, soa: cs.soaSet}
	if cs.serialIsRevision {
		s.soa = newSOASet(cs.soas, uint32(rev))
	}
	return s
}

// Revision is the state revision in force (modes and pins included).
func (s *Snapshot) Revision() int64 { return s.revision }

// compiled is a policy snapshot plus what the DNS side precomputes for it: zone records,
// metric children, and the health targets it holds. compile makes it, acquire gives it its
// probers and vote cells before the swap; after the swap only its atomics change.
type compiled struct {
	*policy.Snapshot
	soas   map[string]*dns.SOA // templates: serial and negative TTL come from soaSet (soa.go)
	soaSet *soaSet             // without cluster: the SOA records at the configuration's serial
	// serialIsRevision: the SOA serial is the state revision (`cluster`), not a hash; each
	// Snapshot then stamps its own (newSnapshot).
	serialIsRevision bool
	resHashes        map[config.Resource]uint64 // without cluster: the serial's hash of each resource
	nss              map[string][]dns.RR
	nsHosts          map[string][]netip.Addr // in-zone NS host names and their addresses (`ns`)
	answers          map[answerKey]*lazyCounter
	// poolAnswers counts each pool's answers per minute for the status page's history.
	poolAnswers map[*policy.Pool]*history.Answers
	// the failovers and fail-open counters of each route and its episode; each domain's
	// fallback and pinned counters (account.go).
	routes  map[*policy.Route]*routeRef
	domains map[*policy.Domain]*domainRef
	queue   *episodeQueue // where the query path queues episodes: the block's
	targets []*healthcheck.Target
	voted   []*votedHealth // in a fleet: the quorum cells of targets
	voter   *voter
	needs   []need         // addresses compiled anew, whose health acquire fills in
	ramped  []rampNeed     // slow-start addresses compiled anew, whose ramp cell acquire fills in
	reused  []*policy.Pool // pools shared with the snapshot replaced, whose probers it hands over
	res     *config.Config // what it was compiled from (Corefile and API resources)
	stamp   stamp          // which API resources it was compiled from

	// the ECS scope partitions, once built (scope.go)
	scopes atomic.Pointer[scopeTable]

	// what each compiled pool and domain was made from, so the next compile reuses what did
	// not change (resources are never changed after decoding: the same pointer is the same
	// resource), and the templates pools were compiled with.
	fromPool   map[*config.Pool]*policy.Pool
	fromDomain map[*config.Domain]*policy.Domain
	checks     map[string]*config.HealthCheck
}

type answerKey struct {
	route *policy.Route // nil for a pinned domain
	pool  *policy.Pool
}

// lazyCounter is an answers_total child made at the first answer: at 10,000 domains most
// (route, pool) pairs never answer between two compiles, and a child costs memory and time.
type lazyCounter struct {
	c                   atomic.Pointer[prometheus.Counter]
	domain, pool, route string
}

func (l *lazyCounter) inc() {
	if c := l.c.Load(); c != nil {
		(*c).Inc()
		return
	}
	c := metrics.Answers.WithLabelValues(l.domain, l.pool, l.route)
	l.c.Store(&c)
	c.Inc()
}

// routeRef is a snapshot's handle on the counters of one of its routes, and the episode
// the query path notes its news on.
type routeRef struct {
	c  *routeCounters
	ep episode
}

// compile turns a validated configuration into a snapshot, taking override cells from the
// store (so overrides outlive the snapshot); it acquires nothing: the addresses it makes
// anew are listed in needs, and acquire gives them their probers (and in a fleet, v's vote
// cells). With old, the snapshot it replaces, pools and routes made from the same resources
// are shared rather than made again: an API write of one pool compiles that pool and the
// routes that use it, and the new snapshot costs little memory beside the old one. Shared
// pools and routes are never written after compile (only their atomics), so both snapshots
// may serve at once.
func compile(b Config, res *config.Config, store *state.Store, v *voter, old *compiled) *compiled {
	cs := &compiled{
		Snapshot:   &policy.Snapshot{Zones: b.Zones, TTL: b.TTL},
		soas:       map[string]*dns.SOA{},
		nss:        map[string][]dns.RR{},
		nsHosts:    map[string][]netip.Addr{},
		answers:    make(map[answerKey]*lazyCounter, len(res.Domains)*3),
		routes:     make(map[*policy.Route]*routeRef, len(res.Domains)*2),
		domains:    make(map[*policy.Domain]*domainRef, len(res.Domains)),
		res:        res,
		fromPool:   make(map[*config.Pool]*policy.Pool, len(res.Pools)),
		fromDomain: make(map[*config.Domain]*policy.Domain, len(res.Domains)),
		checks:     make(map[string]*config.HealthCheck, len(res.HealthChecks)),
		voter:      v,

		serialIsRevision: b.Cluster != nil,
	}
	for _, z := range b.Zones {
		soa := &dns.SOA{
			Hdr:     hdr(z, dns.TypeSOA, b.TTL),
			Ns:      dnsName("ns1", z),
			Mbox:    dnsName("hostmaster", z),
			Refresh: 3600, Retry: 600, Expire: 604800,
			Minttl: b.TTL,
		}
		hosts := b.NS
		if len(hosts) == 0 {
			// No `ns`: ns1.ZONE, which gtm answers as a name that exists (NODATA) rather
			// than deny (the startup warning asks for `ns`).
			hosts = []NSHost{{Name: dnsName("ns1", z)}}
		}
		for _, h := range hosts {
			cs.nss[z] = append(cs.nss[z], &dns.NS{Hdr: hdr(z, dns.TypeNS, b.TTL), Ns: h.Name})
			if config.InZones(b.Zones, h.Name) != "" {
				cs.nsHosts[h.Name] = h.Addrs
			}
		}
		soa.Ns = hosts[0].Name
		if b.SOA != nil {
			soa.Ns, soa.Mbox = b.SOA.MName, b.SOA.RName
			if b.SOA.HasMinimum {
				soa.Minttl = b.SOA.Minimum
			}
		}
		soa.Hdr.Ttl = soaTTL(b.TTL, soa.Minttl)
		cs.soas[z] = soa
	}
	if !cs.serialIsRevision {
		cs.resHashes = make(map[config.Resource]uint64, len(res.HealthChecks)+len(res.Pools)+len(res.Domains))
		cs.soaSet = newSOASet(cs.soas, configSerialFrom(b, res, old.resourceHashes(), cs.resHashes))
	}
	templates := make(map[string]*healthcheck.Template, len(res.HealthChecks))
	for _, h := range res.HealthChecks {
		if _, dup := cs.checks[h.Name]; !dup {
			cs.checks[h.Name] = h
		}
		templates[h.Name] = Template(h)
		vantageOf(b, templates[h.Name])
	}
	pools := make(map[string]*policy.Pool, len(res.Pools))
	for _, pc := range res.Pools {
		// In a fleet addresses answer through quorum cells, which each snapshot acquires.
		if p := old.reusablePool(pc, cs.checks); p != nil && v == nil && b.Brake == nil {
			pools[pc.Name] = p
			cs.fromPool[pc] = p
			cs.Pools = append(cs.Pools, p)
			cs.reused = append(cs.reused, p)
			continue
		}
		lb, _ := policy.ParseLB(pc.LB)
		p := &policy.Pool{
			Name: pc.Name, LB: lb, Answers: pc.Answers, MinAvailable: pc.MinAvailable,
			Weight: pc.Weight, CNAME: pc.IsCNAME(), HealthCheck: firstCheck(pc.HealthCheck),
			HealthChecks: pc.HealthCheck, Require: requireText(pc),
		}
		if l := pc.Location; l != nil {
			p.HasLocation, p.Lat, p.Lon = true, l.Lat, l.Lon
		}
		poolFailover(p, pc)
		tmpls := poolTemplates(templates, pc)
		p.Addrs = make([]*policy.Address, len(pc.Addresses))
		addrs := make([]policy.Address, len(pc.Addresses)) // one allocation for the pool
		for i, ac := range pc.Addresses {
			ip, target, _ := config.ParseAddress(ac.Address)
			text := strings.TrimSuffix(target, ".") // config.AddressKey without a second parse
			if ip.IsValid() {
				text = ip.String()
			}
			a := &addrs[i]
			*a = policy.Address{
				Text: text, IP: ip, Raw: ip.AsSlice(), Target: target, Weight: ac.Weight,
				Priority: ac.Priority, Disabled: ac.Disabled, Mode: store.ModeCell(pc.Name, text),
				Check: ac.CheckAddr(),
			}
			// Disabled addresses are never answered, so they are not probed either.
			if len(tmpls) > 0 && !ac.Disabled {
				cs.needs = append(cs.needs, need{a: a, tmpls: tmpls, pc: pc})
			}
			if p.SlowStart > 0 {
				cs.ramped = append(cs.ramped, rampNeed{pool: pc.Name, a: a})
			}
			p.Addrs[i] = a
		}
		pools[pc.Name] = p
		cs.fromPool[pc] = p
		cs.Pools = append(cs.Pools, p)
	}
	for _, dc := range res.Domains {
		domain := strings.TrimSuffix(dc.Name, ".")
		if od := old.reusableDomain(dc, pools); od != nil && v == nil {
			// A new Domain (Index finishes it) over the same, unchanged routes.
			d := &policy.Domain{Name: od.Name, TTL: od.TTL, Pin: od.Pin, Routes: od.Routes, Services: od.Services}
			domainFailover(d, dc, pools)
			for _, r := range d.Routes {
				for _, p := range r.Pools {
					k := answerKey{r, p}
					cs.answers[k] = old.answers[k]
				}
				cs.routes[r] = &routeRef{c: routeCountersOf(domain, r.Selector.Text), ep: episode{d: d, r: r}}
			}
			if cs.domains[d] = old.domains[od]; cs.domains[d] == nil {
				cs.domains[d] = newDomainRef(d)
			}
			cs.fromDomain[dc] = d
			cs.Domains = append(cs.Domains, d)
			continue
		}
		d := &policy.Domain{Name: dc.Name, TTL: dc.TTL, Pin: store.PinCell(dc.Name), Services: compileServices(dc)}
		domainFailover(d, dc, pools)
		d.Routes = make([]*policy.Route, 0, len(dc.Routes))
		for _, rc := range dc.Routes {
			sel, _ := policy.ParseSelector(rc.Selector)
			mode, _ := policy.ParseSelect(rc.Select)
			r := &policy.Route{Selector: sel, Select: mode, Pools: make([]*policy.Pool, 0, len(rc.Pools))}
			if mode == policy.SelectFailover && (d.FailbackManual || d.FailbackAfter > 0) {
				r.Hold = store.HoldCell(dc.Name, sel.Text)
			}
			for _, pn := range rc.Pools {
				r.Pools = append(r.Pools, pools[pn])
				cs.answers[answerKey{r, pools[pn]}] = &lazyCounter{domain: domain, pool: pn, route: sel.Text}
			}
			d.Routes = append(d.Routes, r)
			// The failovers and fail-open series exist from the start (zero-valued), so
			// rate() and alerts see them before the first failover.
			cs.routes[r] = &routeRef{c: routeCountersOf(domain, sel.Text), ep: episode{d: d, r: r}}
		}
		cs.domains[d] = newDomainRef(d)
		cs.fromDomain[dc] = d
		cs.Domains = append(cs.Domains, d)
	}
	cs.poolAnswers = poolAnswersOf(cs.Pools)
	cs.Index()
	return cs
}

// reusablePool returns old's pool made from pc, if it was compiled with the same template
// (or none); nil if old is nil or pc is new.
func (old *compiled) reusablePool(pc *config.Pool, checks map[string]*config.HealthCheck) *policy.Pool {
	if old == nil {
		return nil
	}
	p := old.fromPool[pc]
	if p == nil || !reusableChecks(old.checks, checks, pc) {
		return nil
	}
	return p
}

// reusableDomain returns old's domain made from dc, if every pool its routes answer from is
// the one the new snapshot has.
func (old *compiled) reusableDomain(dc *config.Domain, pools map[string]*policy.Pool) *policy.Domain {
	if old == nil {
		return nil
	}
	d := old.fromDomain[dc]
	if d == nil {
		return nil
	}
	for _, r := range d.Routes {
		for _, p := range r.Pools {
			if pools[p.Name] != p {
				return nil
			}
		}
	}
	return d
}

// Template is the prober's form of a validated health-check resource.
func Template(h *config.HealthCheck) *healthcheck.Template {
	t := &healthcheck.Template{
		Name: h.Name, Protocol: healthcheck.Protocol(h.Protocol), Port: h.Port, Path: h.Path,
		Host: h.Host, TLSInsecure: h.TLSInsecure, Interval: time.Duration(h.Interval),
		Timeout: time.Duration(h.Timeout), Fall: h.Fall, Rise: h.Rise,
		Source: h.SourceAddr(),
	}
	if h.Expect != "" {
		t.Expect, _ = healthcheck.ParseExpect(h.Expect)
	}
	if h.Body != "" {
		t.Body = mustRegexp(h.Body)
	}
	applyCheckSettings(t, h)
	return t
}

// need is an address compiled anew whose health acquire fills in: the probers of its
// checks (and in a fleet their vote cells).
type need struct {
	a     *policy.Address
	tmpls []*healthcheck.Template
	pc    *config.Pool
}

// acquire is the one place a snapshot takes what it runs on, before it is swapped in: the
// probers (and vote cells) of the addresses compile made anew, from the process's prober
// registry, and the probers of the pools it shares with old, which old hands over at the
// swap (handOver). Probers are shared per (address, check), so an unchanged check keeps
// its prober and its state across compiles and reloads.
func (cs *compiled) acquire() {
	for _, n := range cs.needs {
		n.a.Health = cs.acquireHealth(probers, cs.voter, n.a.Text, n.a.Check, n.tmpls, n.pc)
	}
	cs.needs = nil
	cs.acquireRamps()
	for _, p := range cs.reused {
		for _, a := range p.Addrs {
			cs.targets = appendTargets(cs.targets, a.Health) // handed over by old (handOver)
		}
	}
	cs.reused = nil
}

// release gives the snapshot's probers and vote cells back (Stop).
func (cs *compiled) release() {
	for _, c := range cs.voted {
		cs.voter.release(c)
	}
	cs.voted = nil
	for _, t := range cs.targets {
		probers.Release(t)
	}
	cs.targets = nil
}

// handOver releases the probers of cs that next does not hold (pools next took over from cs
// keep theirs) and cs's vote cells (next acquired its own), at the swap.
func (cs *compiled) handOver(next *compiled) {
	for _, c := range cs.voted { // never shared: next acquired its own
		cs.voter.release(c)
	}
	cs.voted = nil
	kept := make(map[*healthcheck.Target]bool, len(next.targets))
	for _, t := range next.targets {
		kept[t] = true
	}
	for _, t := range cs.targets {
		if !kept[t] {
			probers.Release(t)
		}
	}
	cs.targets = nil
}

// forgetSeries deletes the counter series of cs that none of keep has (removed domains,
// routes and pools), so label sets stay bounded across reloads and API writes. No keep:
// every series of cs goes.
func (cs *compiled) forgetSeries(keep ...*compiled) {
	for _, d := range cs.Domains {
		domain := strings.TrimSuffix(d.Name, ".")
		if !hasDomain(keep, d.Name) {
			forgetFallbackSeries(domain)
		}
		for _, r := range d.Routes {
			route := r.Selector.Text
			if !hasSeries(keep, d.Name, "", route) {
				forgetRouteCounters(domain, route)
				metrics.Answers.DeletePartialMatch(prometheus.Labels{"domain": domain, "route": route})
				continue
			}
			for _, p := range r.Pools {
				if !hasSeries(keep, d.Name, p.Name, route) {
					metrics.Answers.DeleteLabelValues(domain, p.Name, route)
				}
			}
		}
	}
}

// hasSeries reports whether one of the snapshots has the route of domain fqdn with selector
// text route, and (unless pool is "") answers from pool on it.
func hasSeries(snaps []*compiled, fqdn, pool, route string) bool {
	for _, cs := range snaps {
		d := cs.Domain(fqdn)
		if d == nil {
			continue
		}
		for _, r := range d.Routes {
			if r.Selector.Text != route {
				continue
			}
			if pool == "" {
				return true
			}
			for _, p := range r.Pools {
				if p.Name == pool {
					return true
				}
			}
		}
	}
	return false
}

func dnsName(label, zone string) string {
	if zone == "." {
		return label + "."
	}
	return label + "." + zone
}

// NS is zone's apex NS RRset (shared: copy before changing it).
func (cs *compiled) NS(zone string) []dns.RR { return cs.nss[zone] }

// NSHost reports whether name is an in-zone host of `ns`, and its addresses.
func (cs *compiled) NSHost(name string) ([]netip.Addr, bool) {
	addrs, ok := cs.nsHosts[name]
	return addrs, ok
}

func hdr(name string, t uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
}

func mustRegexp(s string) *regexp.Regexp { return regexp.MustCompile(s) }
