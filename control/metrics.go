package control

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the series control writes. plugin/metrics.go declares them (names, help,
// registration with CoreDNS's prometheus plugin) and hands them over once with Instrument,
// before any block starts.
type Metrics struct {
	Answers            *prometheus.CounterVec   // domain, pool, route
	Fallback           *prometheus.CounterVec   // domain, kind
	Holds              *prometheus.CounterVec   // domain, event
	HealthChanges      *prometheus.CounterVec   // healthcheck, state
	Probes             *prometheus.CounterVec   // healthcheck, result
	ProbeDuration      *prometheus.HistogramVec // healthcheck
	WebhookDeliveries  *prometheus.CounterVec   // webhook, result
	WebhookDropped     *prometheus.CounterVec   // webhook, reason
	ConfigErrors       prometheus.Counter
	ClusterDisconnects prometheus.Counter
	QuorumChanges      prometheus.Counter
	StoreRegressions   prometheus.Counter // the cluster store found gone back in time
}

// metrics are the process's series: process-wide as the prometheus registry that exposes
// them is. Until Instrument runs (control's own tests) they are unregistered vectors of the
// same shape, so nothing is nil.
var metrics = unregistered()

// Instrument makes m the series control writes. Call it once, before the first block starts
// (an init function).
func Instrument(m Metrics) { metrics = m }

func unregistered() Metrics {
	cv := func(labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "unregistered", Help: "-"}, labels)
	}
	c := func() prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "unregistered", Help: "-"})
	}
	return Metrics{
		Answers: cv("domain", "pool", "route"), Fallback: cv("domain", "kind"), Holds: cv("domain", "event"),
		HealthChanges: cv("healthcheck", "state"), Probes: cv("healthcheck", "result"),
		ProbeDuration:     prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "unregistered", Help: "-"}, []string{"healthcheck"}),
		WebhookDeliveries: cv("webhook", "result"), WebhookDropped: cv("webhook", "reason"),
		ConfigErrors: c(), ClusterDisconnects: c(), QuorumChanges: c(), StoreRegressions: c(),
	}
}

// RouteCounter is one (domain, route)'s failovers_total and failopen_total, as the
// collector reports them.
type RouteCounter struct {
	Domain, Route        string
	Failovers, FailOpens uint64
	Created              time.Time
}

// RouteCounters lists every route counter (for the collector, at scrape time).
func RouteCounters() []RouteCounter {
	routeTable.Lock()
	out := make([]RouteCounter, 0, len(routeTable.m))
	for k, c := range routeTable.m {
		out = append(out, RouteCounter{Domain: k.domain, Route: k.route, Failovers: c.failovers.Load(), FailOpens: c.failOpens.Load(), Created: c.created})
	}
	routeTable.Unlock()
	return out
}
