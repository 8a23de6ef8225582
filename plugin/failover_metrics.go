package gtm

import (
	"fmt"
	"strings"
	"sync"

	"github.com/coredns/coredns/plugin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/gtm-dns/coredns-gtm/api"
	"github.com/gtm-dns/coredns-gtm/policy"
)

var (
	fallbackTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace, Subsystem: "gtm", Name: "fallback_total",
		Help: "Answers given while no pool of the route was available, by domain and the fallback that answered (open, nodata, servfail, pool).",
	}, []string{"domain", "kind"})

	holdsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace, Subsystem: "gtm", Name: "failback_holds_total",
		Help: "Failback holds by domain and event: held (a route stays on the pool it failed over to), released (it went back).",
	}, []string{"domain", "event"})
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
	c := fallbackTotal.WithLabelValues(domain, kind.String())
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
	fallbackTotal.DeletePartialMatch(prometheus.Labels{"domain": domain})
	holdsTotal.DeletePartialMatch(prometheus.Labels{"domain": domain})
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
