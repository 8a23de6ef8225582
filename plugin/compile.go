package gtm

import (
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gtm-dns/coredns-gtm/config"
	"github.com/gtm-dns/coredns-gtm/healthcheck"
	"github.com/gtm-dns/coredns-gtm/policy"
	"github.com/gtm-dns/coredns-gtm/state"
	"github.com/gtm-dns/coredns-gtm/state/etcd"
)

// compiled is a policy snapshot plus what the DNS side precomputes for it: zone records,
// metric children, and the health targets it holds.
type compiled struct {
	*policy.Snapshot
	soas    map[string]*dns.SOA
	nss     map[string]*dns.NS
	answers map[answerKey]*lazyCounter
	// when each route last logged a fail-open (unix nanoseconds), to log once per episode
	// rather than once per query; the nil route stands for pinned domains.
	failOpenAt map[*policy.Route]*atomic.Int64
	targets    []*healthcheck.Target
	voted      []*votedHealth // in a fleet: the quorum cells of targets
	voter      *voter
	res        *config.Config // what it was compiled from (Corefile and API resources)
	revision   atomic.Int64   // the state revision in force (modes and pins included)
	stamp      stamp          // which API resources it was compiled from
	series     map[string]bool
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

// compile turns a validated configuration into a snapshot, taking health targets from the
// registry (shared with earlier snapshots, so unchanged probes keep their state) and
// override cells from the store (so overrides outlive the snapshot).
func compile(b *block, res *config.Config, reg *healthcheck.Registry, store *state.Store) *compiled {
	var v *voter
	if be, ok := store.Backend().(*etcd.Backend); ok && b.cluster != nil {
		v = voterFor(be, b.cluster.quorum)
	}
	serial := uint32(time.Now().Unix())
	cs := &compiled{
		Snapshot:   &policy.Snapshot{Zones: b.zones, TTL: b.ttl},
		soas:       map[string]*dns.SOA{},
		nss:        map[string]*dns.NS{},
		answers:    map[answerKey]*lazyCounter{},
		failOpenAt: map[*policy.Route]*atomic.Int64{nil: new(atomic.Int64)},
		res:        res,
		series:     map[string]bool{},
		voter:      v,
	}
	for _, z := range b.zones {
		cs.soas[z] = &dns.SOA{
			Hdr:     hdr(z, dns.TypeSOA, b.ttl),
			Ns:      dnsName("ns1", z),
			Mbox:    dnsName("hostmaster", z),
			Serial:  serial,
			Refresh: 3600, Retry: 600, Expire: 604800,
			Minttl: b.ttl,
		}
		cs.nss[z] = &dns.NS{Hdr: hdr(z, dns.TypeNS, b.ttl), Ns: dnsName("ns1", z)}
	}
	templates := make(map[string]*healthcheck.Template, len(res.HealthChecks))
	for _, h := range res.HealthChecks {
		templates[h.Name] = template(h)
	}
	pools := make(map[string]*policy.Pool, len(res.Pools))
	for _, pc := range res.Pools {
		lb, _ := policy.ParseLB(pc.LB)
		p := &policy.Pool{
			Name: pc.Name, LB: lb, Answers: pc.Answers, MinAvailable: pc.MinAvailable,
			Weight: pc.Weight, CNAME: pc.IsCNAME(), HealthCheck: pc.HealthCheck,
		}
		if l := pc.Location; l != nil {
			p.HasLocation, p.Lat, p.Lon = true, l.Lat, l.Lon
		}
		tmpl := templates[pc.HealthCheck]
		p.Addrs = make([]*policy.Address, 0, len(pc.Addresses))
		for _, ac := range pc.Addresses {
			ip, target, _ := config.ParseAddress(ac.Address)
			text := config.AddressKey(ac.Address)
			a := &policy.Address{
				Text: text, IP: ip, Raw: ip.AsSlice(), Target: target, Weight: ac.Weight,
				Priority: ac.Priority, Disabled: ac.Disabled, Mode: store.ModeCell(pc.Name, text),
			}
			// Disabled addresses are never answered, so they are not probed either.
			if tmpl != nil && !ac.Disabled {
				t := reg.Acquire(text, tmpl)
				cs.targets = append(cs.targets, t)
				a.Health = t
				if v != nil {
					c := v.cell(t)
					cs.voted = append(cs.voted, c)
					a.Health = c
				}
			}
			p.Addrs = append(p.Addrs, a)
		}
		pools[pc.Name] = p
		cs.Pools = append(cs.Pools, p)
	}
	for _, dc := range res.Domains {
		d := &policy.Domain{Name: dc.Name, TTL: dc.TTL, Pin: store.PinCell(dc.Name)}
		domain := strings.TrimSuffix(dc.Name, ".")
		for _, rc := range dc.Routes {
			sel, _ := policy.ParseSelector(rc.Selector)
			mode, _ := policy.ParseSelect(rc.Select)
			r := &policy.Route{Selector: sel, Select: mode}
			for _, pn := range rc.Pools {
				r.Pools = append(r.Pools, pools[pn])
				cs.answers[answerKey{r, pools[pn]}] = &lazyCounter{domain: domain, pool: pn, route: sel.Text}
				cs.series[seriesKey(domain, pn, sel.Text)] = true
			}
			d.Routes = append(d.Routes, r)
			cs.failOpenAt[r] = new(atomic.Int64)
			// Zero-valued series from the start, so rate() and alerts see them before the
			// first failover.
			failoversTotal.WithLabelValues(domain, sel.Text)
			failOpenTotal.WithLabelValues(domain, sel.Text)
			cs.series[seriesKey(domain, "", sel.Text)] = true
		}
		cs.Domains = append(cs.Domains, d)
	}
	cs.Index()
	return cs
}

func seriesKey(domain, pool, route string) string { return domain + "\x00" + pool + "\x00" + route }

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

// forgetSeries deletes the counter series of cs that next no longer has (removed domains,
// routes and pools), so label sets stay bounded across reloads and API writes. next nil:
// every series of cs goes.
func (cs *compiled) forgetSeries(next *compiled) {
	for k := range cs.series {
		if next != nil && next.series[k] {
			continue
		}
		parts := strings.SplitN(k, "\x00", 3)
		domain, pool, route := parts[0], parts[1], parts[2]
		if pool == "" {
			failoversTotal.DeleteLabelValues(domain, route)
			failOpenTotal.DeleteLabelValues(domain, route)
			answersTotal.DeletePartialMatch(prometheus.Labels{"domain": domain, "route": route})
			continue
		}
		answersTotal.DeleteLabelValues(domain, pool, route)
	}
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
	if res.FailOpen {
		failOpenTotal.WithLabelValues(domain, route).Inc()
		now := time.Now().UnixNano()
		if at := cs.failOpenAt[r]; at != nil {
			if last := at.Load(); now-last > int64(failOpenLogEvery) && at.CompareAndSwap(last, now) {
				noteFailOpen(d, r, res.Pool)
			}
		}
	}
	if res.Switched && !res.FailOpen {
		failoversTotal.WithLabelValues(domain, route).Inc()
		noteFailover(d, r, res.Pool)
	}
}
