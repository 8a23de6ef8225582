package control

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gtm-dns/coredns-gtm/api"
	"github.com/gtm-dns/coredns-gtm/policy"
)

type fallbackKey struct {
	domain string
	kind   policy.FallbackKind
}

// fallbackChildren caches the fallback_total children: an outage answers every query of a
// domain through its fallback, and a cached child costs one sync.Map load.
var fallbackChildren sync.Map // fallbackKey -> prometheus.Counter

func fallbackCounter(domain string, kind policy.FallbackKind) prometheus.Counter {
	k := fallbackKey{domain, kind}
	if c, ok := fallbackChildren.Load(k); ok {
		return c.(prometheus.Counter)
	}
	c := metrics.Fallback.WithLabelValues(domain, kind.String())
	fallbackChildren.Store(k, c)
	return c
}

// forgetFallbackSeries deletes the fallback and hold series of a removed domain.
func forgetFallbackSeries(domain string) {
	fallbackChildren.Range(func(k, _ any) bool {
		if k.(fallbackKey).domain == domain {
			fallbackChildren.Delete(k)
		}
		return true
	})
	metrics.Fallback.DeletePartialMatch(prometheus.Labels{"domain": domain})
	metrics.Holds.DeletePartialMatch(prometheus.Labels{"domain": domain})
}

// Account counts an answer of the query path and notes its episodes (failover, fail-open,
// fallback): res is the decision for d on route r (nil: pinned). Atomics and counters only.
func (cs *compiled) Account(d *policy.Domain, r *policy.Route, res *policy.Result) {
	if res.Pool != nil {
		cs.account(d, r, res)
	}
	if res.FailOpen || res.InFallback || res.Episode != 0 {
		cs.accountFallback(d, r, res)
	}
}

// accountFallback counts an answer that failed open or fell back, and logs the beginning
// and the end of each episode once. Fail-open keeps its own log line and event (account).
func (cs *compiled) accountFallback(d *policy.Domain, r *policy.Route, res *policy.Result) {
	domain := strings.TrimSuffix(d.Name, ".")
	kind := d.Fallback
	if res.FailOpen || res.InFallback {
		fallbackCounter(domain, res.Fallback).Inc()
		kind = res.Fallback
	}
	if res.Episode == 0 || r == nil {
		return
	}
	route := r.Selector.Text
	if res.Episode > 0 {
		if res.FailOpen {
			return // noteFailOpen logs it
		}
		what := "fallback " + kind.String()
		if res.Pool != nil {
			what += " (pool " + res.Pool.Name + ", its health ignored)"
		}
		msg := fmt.Sprintf("domain %s route %s: no pool available, answering with %s", d.Name, route, what)
		log.Warningf("%s", msg)
		pool := ""
		if res.Pool != nil {
			pool = res.Pool.Name
		}
		record(api.Event{Kind: "fallback", Domain: d.Name, Pool: pool, Message: msg})
		return
	}
	pool := ""
	if res.Pool != nil {
		pool = res.Pool.Name
	}
	msg := fmt.Sprintf("domain %s route %s: a pool is available again (pool %s), fallback %s ended", d.Name, route, pool, d.Fallback)
	log.Infof("%s", msg)
	record(api.Event{Kind: "fallback", Domain: d.Name, Pool: pool, Message: msg})
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
		metrics.Answers.WithLabelValues(domain, res.Pool.Name, route).Inc()
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
