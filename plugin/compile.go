package gtm

import (
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gtm-dns/coredns-gtm/config"
	"github.com/gtm-dns/coredns-gtm/healthcheck"
	"github.com/gtm-dns/coredns-gtm/plugin/history"
	"github.com/gtm-dns/coredns-gtm/policy"
	"github.com/gtm-dns/coredns-gtm/state"
	"github.com/gtm-dns/coredns-gtm/state/etcd"
)

// compiled is a policy snapshot plus what the DNS side precomputes for it: zone records,
// metric children, and the health targets it holds.
type compiled struct {
	*policy.Snapshot
	soas    map[string]*dns.SOA // templates: serial and negative TTL come from soaSet (soa.go)
	soaSet  atomic.Pointer[soaSet]
	// serialIsRevision: the SOA serial is the state revision (`cluster`), not a hash.
	serialIsRevision bool
	nss     map[string][]dns.RR
	nsHosts map[string][]netip.Addr // in-zone NS host names and their addresses (`ns`)
	answers map[answerKey]*lazyCounter
	// poolAnswers counts each pool's answers per minute for the status page's history.
	poolAnswers map[*policy.Pool]*history.Answers
	// the failovers and fail-open counters of each route, and when it last logged a fail-open
	// (to log once per episode rather than once per query).
	routes           map[*policy.Route]*routeRef
	pinnedFailOpenAt atomic.Int64 // ... and when a pinned domain last did
	targets          []*healthcheck.Target
	voted            []*votedHealth // in a fleet: the quorum cells of targets
	voter            *voter
	res              *config.Config // what it was compiled from (Corefile and API resources)
	revision         atomic.Int64   // the state revision in force (modes and pins included)
	stamp            stamp          // which API resources it was compiled from

	// the ECS scope partitions, once built (scope.go)
	scopes atomic.Pointer[scopeTable]

	// what each compiled pool and domain was made from, so the next compile reuses what did
	// not change (resources are never changed after decoding: the same pointer is the same
	// resource), and the templates pools were compiled with.
	fromPool   map[*config.Pool]*policy.Pool
	fromDomain map[*config.Domain]*policy.Domain
	checks     map[string]*config.HealthCheck
}

// failOpenLogEvery bounds how often one route logs and records that it fails open.
const failOpenLogEvery = 30 * time.Second

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
	c := answersTotal.WithLabelValues(l.domain, l.pool, l.route)
	l.c.Store(&c)
	c.Inc()
}

// routeRef is a snapshot's handle on the counters of one of its routes.
type routeRef struct {
	c          *routeCounters
	failOpenAt atomic.Int64 // unix nanoseconds
}

// compile turns a validated configuration into a snapshot, taking health targets from the
// registry (shared with earlier snapshots, so unchanged probes keep their state) and
// override cells from the store (so overrides outlive the snapshot). With old, the snapshot
// it replaces, pools and routes made from the same resources are shared rather than made
// again: an API write of one pool compiles that pool and the routes that use it, and the
// new snapshot costs little memory beside the old one. Shared pools and routes are never
// written after compile (only their atomics), so both snapshots may serve at once.
func compile(b *block, res *config.Config, reg *healthcheck.Registry, store *state.Store, old *compiled) *compiled {
	var v *voter
	if be, ok := store.Backend().(*etcd.Backend); ok && b.cluster != nil {
		v = voterFor(be, b.cluster.quorum)
	}
	cs := &compiled{
		Snapshot:   &policy.Snapshot{Zones: b.zones, TTL: b.ttl},
		soas:       map[string]*dns.SOA{},
		nss:        map[string][]dns.RR{},
		nsHosts:    map[string][]netip.Addr{},
		answers:    make(map[answerKey]*lazyCounter, len(res.Domains)*3),
		routes:     make(map[*policy.Route]*routeRef, len(res.Domains)*2),
		res:        res,
		fromPool:   make(map[*config.Pool]*policy.Pool, len(res.Pools)),
		fromDomain: make(map[*config.Domain]*policy.Domain, len(res.Domains)),
		checks:     make(map[string]*config.HealthCheck, len(res.HealthChecks)),
		voter:      v,

		serialIsRevision: b.cluster != nil,
	}
	for _, z := range b.zones {
		soa := &dns.SOA{
			Hdr:     hdr(z, dns.TypeSOA, b.ttl),
			Ns:      dnsName("ns1", z),
			Mbox:    dnsName("hostmaster", z),
			Refresh: 3600, Retry: 600, Expire: 604800,
			Minttl: b.ttl,
		}
		hosts := b.ns
		if len(hosts) == 0 {
			// No `ns`: ns1.ZONE, which gtm answers as a name that exists (NODATA) rather
			// than deny (the startup warning asks for `ns`).
			hosts = []nsHost{{name: dnsName("ns1", z)}}
		}
		for _, h := range hosts {
			cs.nss[z] = append(cs.nss[z], &dns.NS{Hdr: hdr(z, dns.TypeNS, b.ttl), Ns: h.name})
			if config.InZones(b.zones, h.name) != "" {
				cs.nsHosts[h.name] = h.addrs
			}
		}
		soa.Ns = hosts[0].name
		if b.soa != nil {
			soa.Ns, soa.Mbox = b.soa.mname, b.soa.rname
			if b.soa.hasMinimum {
				soa.Minttl = b.soa.minimum
			}
		}
		soa.Hdr.Ttl = soaTTL(b.ttl, soa.Minttl)
		cs.soas[z] = soa
	}
	if !cs.serialIsRevision {
		cs.soaSet.Store(newSOASet(cs.soas, configSerial(b, res)))
	}
	templates := make(map[string]*healthcheck.Template, len(res.HealthChecks))
	for _, h := range res.HealthChecks {
		if _, dup := cs.checks[h.Name]; !dup {
			cs.checks[h.Name] = h
		}
		templates[h.Name] = template(h)
	}
	pools := make(map[string]*policy.Pool, len(res.Pools))
	for _, pc := range res.Pools {
		// In a fleet addresses answer through quorum cells, which each snapshot acquires.
		if p := old.reusablePool(pc, cs.checks); p != nil && v == nil {
			for _, a := range p.Addrs {
				cs.targets = appendTargets(cs.targets, a.Health) // handed over by old (handOver)
			}
			pools[pc.Name] = p
			cs.fromPool[pc] = p
			cs.Pools = append(cs.Pools, p)
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
			}
			// Disabled addresses are never answered, so they are not probed either.
			if len(tmpls) > 0 && !ac.Disabled {
				a.Health = cs.acquireHealth(reg, v, text, tmpls, pc)
			}
			if p.SlowStart > 0 {
				a.Ramp = rampCell(pc.Name, text)
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
				cs.routes[r] = &routeRef{c: routeCountersOf(domain, r.Selector.Text)}
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
			cs.routes[r] = &routeRef{c: routeCountersOf(domain, sel.Text)}
		}
		cs.fromDomain[dc] = d
		cs.Domains = append(cs.Domains, d)
	}
	rampsCompiled(cs.Pools)
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

// template is the prober's form of a validated health-check resource.
func template(h *config.HealthCheck) *healthcheck.Template {
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

// release gives the snapshot's health targets back to the registry.
func (cs *compiled) release(reg *healthcheck.Registry) {
	for _, c := range cs.voted {
		cs.voter.release(c)
	}
	cs.voted = nil
	for _, t := range cs.targets {
		reg.Release(t)
	}
	cs.targets = nil
}

// handOver releases the targets of cs that next does not hold: pools next took over from cs
// keep theirs.
func (cs *compiled) handOver(reg *healthcheck.Registry, next *compiled) {
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
			reg.Release(t)
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
				answersTotal.DeletePartialMatch(prometheus.Labels{"domain": domain, "route": route})
				continue
			}
			for _, p := range r.Pools {
				if !hasSeries(keep, d.Name, p.Name, route) {
					answersTotal.DeleteLabelValues(domain, p.Name, route)
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

func (cs *compiled) ns(zone string) []dns.RR { return cs.nss[zone] }

// account counts an answer, and notes fail-open and failover; it runs on the query path, so
// the common case is one map read and one atomic add.
func (cs *compiled) account(d *policy.Domain, r *policy.Route, res *policy.Result) {
	cs.poolAnswers[res.Pool].Add()
	c := cs.answers[answerKey{r, res.Pool}]
	if c != nil && !res.FailOpen && !res.Switched {
		c.inc()
		return
	}
	route := "pinned"
	if r != nil {
		route = r.Selector.Text
	}
	domain := strings.TrimSuffix(d.Name, ".")
	if c != nil {
		c.inc()
	} else { // pinned answers are rare; their children are made on demand
		answersTotal.WithLabelValues(domain, res.Pool.Name, route).Inc()
	}
	ref := cs.routes[r]
	var counters *routeCounters
	if ref != nil {
		counters = ref.c
	} else { // pinned: made on demand
		counters = routeCountersOf(domain, route)
	}
	if res.FailOpen {
		counters.failOpens.Add(1)
		now := time.Now().UnixNano()
		at := &cs.pinnedFailOpenAt
		if ref != nil {
			at = &ref.failOpenAt
		}
		if last := at.Load(); now-last > int64(failOpenLogEvery) && at.CompareAndSwap(last, now) {
			noteFailOpen(d, r, res.Pool)
		}
	}
	if res.Switched && !res.FailOpen {
		counters.failovers.Add(1)
		noteFailover(d, r, res.Pool)
	}
}

// accountSwitch records the failover a decision made outside the query path observed
// (explain): the route's last pool moved, and no query will see that switch again.
func (cs *compiled) accountSwitch(d *policy.Domain, r *policy.Route, res *policy.Result) {
	if r == nil || !res.Switched || res.FailOpen {
		return
	}
	if ref := cs.routes[r]; ref != nil {
		ref.c.failovers.Add(1)
	} else {
		routeCountersOf(strings.TrimSuffix(d.Name, "."), r.Selector.Text).failovers.Add(1)
	}
	noteFailover(d, r, res.Pool)
}
