package control

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gtm-dns/coredns-gtm/policy"
)

// The query path's accounting: every answer is counted (answers_total, the pool's history,
// fallback_total, failovers_total, failopen_total) with atomics and counter children the
// snapshot holds; what is news (a failover, a fail-open, a fallback beginning or ending) is
// noticed as a bit on the route's episode and told by the block's reporter goroutine
// (episodes.go), so no answer takes a lock, allocates or logs.

// Account counts an answer of the query path and notes its episodes (failover, fail-open,
// fallback): res is the decision for d on route r (nil: pinned).
func (cs *compiled) Account(d *policy.Domain, r *policy.Route, res *policy.Result) {
	if res.Pool != nil {
		cs.account(d, r, res)
	}
	if res.FailOpen || res.InFallback || res.Episode != 0 {
		cs.accountFallback(d, r, res)
	}
}

// domainRef is a snapshot's handle on what one of its domains counts outside its routes:
// the fallback_total children by kind, and the answers of a pinned domain. Children are made
// at the first count (a lock in the prometheus vector, once) and held here, so later counts
// are an atomic load and an add. A domain compiled again over the same resource shares its
// handle; a removed domain's series are deleted with the snapshot that had it (forgetSeries),
// and a domain added again gets a new handle, so no count goes to a deleted child.
type domainRef struct {
	name     string // without the final dot, as the labels have it
	fallback [policy.FallbackPoolKind + 1]atomic.Pointer[prometheus.Counter]
	pinned   atomic.Pointer[pinnedRef] // the pool pinned last and its children
}

// pinnedRef is the answers_total child and the route counters of a domain's pinned pool.
type pinnedRef struct {
	pool *policy.Pool
	c    prometheus.Counter
	ref  *routeRef
}

func newDomainRef(d *policy.Domain) *domainRef {
	return &domainRef{name: strings.TrimSuffix(d.Name, ".")}
}

// fallbackCounter is the fallback_total child of the domain and kind.
func (dr *domainRef) fallbackCounter(kind policy.FallbackKind) prometheus.Counter {
	p := &dr.fallback[kind]
	if c := p.Load(); c != nil {
		return *c
	}
	c := metrics.Fallback.WithLabelValues(dr.name, kind.String())
	p.Store(&c)
	return c
}

// pinnedOf is the pinned answers' handle for pool p: made when the domain is first answered
// pinned to p (an operator's pin is rare and long), the same one for every answer after.
func (dr *domainRef) pinnedOf(d *policy.Domain, p *policy.Pool) *pinnedRef {
	if pr := dr.pinned.Load(); pr != nil && pr.pool == p {
		return pr
	}
	pr := &pinnedRef{pool: p, c: metrics.Answers.WithLabelValues(dr.name, p.Name, "pinned"),
		ref: &routeRef{c: routeCountersOf(dr.name, "pinned"), ep: episode{d: d}}}
	dr.pinned.Store(pr)
	return pr
}

// forgetFallbackSeries deletes the fallback and hold series of a removed domain.
func forgetFallbackSeries(domain string) {
	metrics.Fallback.DeletePartialMatch(prometheus.Labels{"domain": domain})
	metrics.Holds.DeletePartialMatch(prometheus.Labels{"domain": domain})
}

// accountFallback counts an answer that failed open or fell back, and notes the beginning
// and the end of each fallback episode (a fail-open is noted by account).
func (cs *compiled) accountFallback(d *policy.Domain, r *policy.Route, res *policy.Result) {
	dr := cs.domains[d]
	if dr == nil {
		return // a domain of no compile (hand-built in a test)
	}
	kind := d.Fallback
	if res.FailOpen || res.InFallback {
		dr.fallbackCounter(res.Fallback).Inc()
		kind = res.Fallback
	}
	if res.Episode == 0 || r == nil {
		return
	}
	ref := cs.routes[r]
	if ref == nil {
		return
	}
	if res.Episode > 0 {
		if res.FailOpen {
			return // account notes the fail-open
		}
		ref.ep.kind.Store(uint32(kind))
		ref.ep.fallback.Store(res.Pool)
		cs.queue.note(&ref.ep, bitFallbackBegin)
		return
	}
	ref.ep.fallback.Store(res.Pool)
	cs.queue.note(&ref.ep, bitFallbackEnd)
}

// hasDomain reports whether one of the snapshots manages fqdn.
func hasDomain(snaps []*compiled, fqdn string) bool {
	for _, cs := range snaps {
		if cs.Domain(fqdn) != nil {
			return true
		}
	}
	return false
}

// account counts an answer, and notes fail-open and failover; the common case is one map
// read and one atomic add.
func (cs *compiled) account(d *policy.Domain, r *policy.Route, res *policy.Result) {
	cs.poolAnswers[res.Pool].Add()
	var ref *routeRef
	if r == nil { // pinned
		dr := cs.domains[d]
		if dr == nil {
			return
		}
		pr := dr.pinnedOf(d, res.Pool)
		pr.c.Inc()
		ref = pr.ref
	} else {
		c := cs.answers[answerKey{r, res.Pool}]
		if c != nil {
			c.inc()
		}
		if !res.FailOpen && !res.Switched {
			return
		}
		if ref = cs.routes[r]; ref == nil {
			return
		}
	}
	if res.FailOpen {
		ref.c.failOpens.Add(1)
		ref.ep.failopen.Store(res.Pool)
		cs.queue.note(&ref.ep, bitFailOpen)
	}
	if res.Switched && !res.FailOpen {
		ref.c.failovers.Add(1)
		ref.ep.failover.Store(res.Pool)
		cs.queue.note(&ref.ep, bitFailover)
	}
}

// routeCounters are the failovers_total and failopen_total counters of one (domain, route).
// They live in a table rather than as CounterVec children: at 10,000 domains of two routes
// the 40,000 children took a third of the server's heap (a child holds its label pairs,
// value, created timestamp and hash entry), an entry here takes about a tenth of that. The
// collector reports them at scrape time (RouteCounters). Like children, they outlive the
// snapshots that use them, and forgetSeries deletes those of removed routes.
type routeCounters struct {
	failovers, failOpens atomic.Uint64
	created              time.Time
}

type routeKey struct{ domain, route string }

// routeTable holds the route counters of the process: process-wide as the series they are
// (one per domain and route, whichever block or snapshot counts); compile and the pinned
// answers' first count add to it, forgetSeries deletes from it.
var routeTable = struct {
	sync.Mutex
	m map[routeKey]*routeCounters
}{m: map[routeKey]*routeCounters{}}

// routeCountersOf returns the counters of (domain, route), made zero-valued if new.
func routeCountersOf(domain, route string) *routeCounters {
	k := routeKey{domain, route}
	routeTable.Lock()
	defer routeTable.Unlock()
	c := routeTable.m[k]
	if c == nil {
		c = &routeCounters{created: time.Now()}
		routeTable.m[k] = c
	}
	return c
}

func forgetRouteCounters(domain, route string) {
	routeTable.Lock()
	delete(routeTable.m, routeKey{domain, route})
	routeTable.Unlock()
}

// Observe notes what a decision that is not an answer of its own noticed (the second family
// of an HTTPS or SRV answer, whose first family's decision is the one counted): a failover
// it made is counted and told, and a fallback episode it began or ended is counted and told;
// no answer is counted.
func (cs *compiled) Observe(d *policy.Domain, r *policy.Route, res *policy.Result) {
	if r == nil {
		return
	}
	if ref := cs.routes[r]; ref != nil && res.Switched && !res.FailOpen {
		ref.c.failovers.Add(1)
		ref.ep.failover.Store(res.Pool)
		cs.queue.note(&ref.ep, bitFailover)
	}
	if res.Episode != 0 {
		cs.accountFallback(d, r, res)
	}
}
