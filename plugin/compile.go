package gtm

import (
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gtm-dns/coredns-gtm/api"
	"github.com/gtm-dns/coredns-gtm/healthcheck"
	"github.com/gtm-dns/coredns-gtm/policy"
)

// compiled is a policy snapshot plus what the DNS side precomputes for it: zone records,
// metric children, and the health targets it holds.
type compiled struct {
	*policy.Snapshot
	soas    map[string]*dns.SOA
	nss     map[string]*dns.NS
	answers map[answerKey]prometheus.Counter
	// when each route last logged a fail-open (unix nanoseconds), to log once per episode
	// rather than once per query; the nil route stands for pinned domains.
	failOpenAt map[*policy.Route]*atomic.Int64
	targets    []*healthcheck.Target
	checks     map[string]*healthcheck.Template
}

// failOpenLogEvery bounds how often one route logs and records that it fails open.
const failOpenLogEvery = 30 * time.Second

type answerKey struct {
	route *policy.Route // nil for a pinned domain
	pool  *policy.Pool
}

// compile turns a validated config into a snapshot, taking health targets from the
// registry (shared with earlier snapshots, so unchanged probes keep their state) and
// override cells from the store (so overrides outlive the snapshot).
func compile(cfg *config, reg *healthcheck.Registry, store *api.Store) *compiled {
	serial := uint32(time.Now().Unix())
	cs := &compiled{
		Snapshot:   &policy.Snapshot{Zones: cfg.zones, TTL: cfg.ttl},
		soas:       map[string]*dns.SOA{},
		nss:        map[string]*dns.NS{},
		answers:    map[answerKey]prometheus.Counter{},
		failOpenAt: map[*policy.Route]*atomic.Int64{nil: new(atomic.Int64)},
		checks:     cfg.checks,
	}
	for _, z := range cfg.zones {
		cs.soas[z] = &dns.SOA{
			Hdr:     hdr(z, dns.TypeSOA, cfg.ttl),
			Ns:      dnsName("ns1", z),
			Mbox:    dnsName("hostmaster", z),
			Serial:  serial,
			Refresh: 3600, Retry: 600, Expire: 604800,
			Minttl: cfg.ttl,
		}
		cs.nss[z] = &dns.NS{Hdr: hdr(z, dns.TypeNS, cfg.ttl), Ns: dnsName("ns1", z)}
	}
	pools := map[string]*policy.Pool{}
	for _, pc := range cfg.pools {
		p := &policy.Pool{
			Name: pc.name, LB: pc.lb, Answers: pc.answers, MinAvailable: pc.minAvailable,
			Weight: pc.weight, HasLocation: pc.hasLoc, Lat: pc.lat, Lon: pc.lon,
			CNAME: pc.cname, HealthCheck: pc.check,
		}
		tmpl := cfg.checks[pc.check]
		for _, ac := range pc.addrs {
			a := &policy.Address{
				Text: ac.text, IP: ac.ip, Raw: ac.ip.AsSlice(), Target: ac.target, Weight: ac.weight,
				Priority: ac.priority, Disabled: ac.disabled, Mode: store.ModeCell(pc.name, ac.text),
			}
			// Disabled addresses are never answered, so they are not probed either.
			if tmpl != nil && !ac.disabled {
				t := reg.Acquire(ac.text, tmpl)
				cs.targets = append(cs.targets, t)
				a.Health = t
			}
			p.Addrs = append(p.Addrs, a)
		}
		pools[pc.name] = p
		cs.Pools = append(cs.Pools, p)
	}
	for _, dc := range cfg.domains {
		d := &policy.Domain{Name: dc.name, TTL: dc.ttl, Pin: store.PinCell(dc.name)}
		for _, rc := range dc.routes {
			r := &policy.Route{Selector: rc.selector, Select: rc.sel}
			for _, pn := range rc.pools {
				r.Pools = append(r.Pools, pools[pn])
				cs.answers[answerKey{r, pools[pn]}] = answersTotal.WithLabelValues(strings.TrimSuffix(dc.name, "."), pn, rc.selector.Text)
			}
			d.Routes = append(d.Routes, r)
			cs.failOpenAt[r] = new(atomic.Int64)
			// Zero-valued series from the start, so rate() and alerts see them before the
			// first failover.
			failoversTotal.WithLabelValues(strings.TrimSuffix(dc.name, "."), rc.selector.Text)
			failOpenTotal.WithLabelValues(strings.TrimSuffix(dc.name, "."), rc.selector.Text)
		}
		cs.Domains = append(cs.Domains, d)
	}
	cs.Index()
	return cs
}

// release gives the snapshot's health targets back to the registry.
func (cs *compiled) release(reg *healthcheck.Registry) {
	for _, t := range cs.targets {
		reg.Release(t)
	}
	cs.targets = nil
}

func dnsName(label, zone string) string {
	if zone == "." {
		return label + "."
	}
	return label + "." + zone
}

func (cs *compiled) soa(zone string) dns.RR { return cs.soas[zone] }
func (cs *compiled) ns(zone string) dns.RR  { return cs.nss[zone] }

// account counts an answer, and notes fail-open and failover; it runs on the query path, so
// the common case is one map read and one atomic add.
func (cs *compiled) account(d *policy.Domain, r *policy.Route, res *policy.Result) {
	c := cs.answers[answerKey{r, res.Pool}]
	if c != nil && !res.FailOpen && !res.Switched {
		c.Inc()
		return
	}
	route := "pinned"
	if r != nil {
		route = r.Selector.Text
	}
	domain := strings.TrimSuffix(d.Name, ".")
	if c == nil { // pinned answers are rare; their children are made on demand
		c = answersTotal.WithLabelValues(domain, res.Pool.Name, route)
	}
	c.Inc()
	if res.FailOpen {
		failOpenTotal.WithLabelValues(domain, route).Inc()
		now := time.Now().UnixNano()
		if at := cs.failOpenAt[r]; at != nil {
			if last := at.Load(); now-last > int64(failOpenLogEvery) && at.CompareAndSwap(last, now) {
				noteFailOpen(d, r, res.Pool)
			}
		}
	}
	if res.Switched {
		failoversTotal.WithLabelValues(domain, route).Inc()
		noteFailover(d, r, res.Pool)
	}
}
