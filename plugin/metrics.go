package gtm

import (
	"sync"

	"github.com/coredns/coredns/plugin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/gtm-dns/coredns-gtm/control"
)

// Metrics exposed through CoreDNS's prometheus plugin. Labels are bounded by the
// configuration (domains, pools, routes, addresses, templates), never by clients.
var (
	answersTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace, Subsystem: "gtm", Name: "answers_total",
		Help: "Answers for managed domains by domain, pool and route (route is the selector, or \"pinned\").",
	}, []string{"domain", "pool", "route"})

	probeDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: plugin.Namespace, Subsystem: "gtm", Name: "probe_duration_seconds",
		Help:    "Health probe duration by health-check template.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"healthcheck"})

	probesTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace, Subsystem: "gtm", Name: "probes_total",
		Help: "Health probes by template and outcome (ok, timeout, refused, status, body, tls, dns, error).",
	}, []string{"healthcheck", "result"})

	configErrorsTotal = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: plugin.Namespace, Subsystem: "gtm", Name: "config_errors_total",
		Help: "State changes not applied because the configuration they would leave is invalid.",
	})

	storeRegressionsTotal = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: plugin.Namespace, Subsystem: "gtm", Name: "cluster_store_regressions_total",
		Help: "Times the cluster store (etcd) was found gone back in time: revision, cluster ID or state generation below what this node had seen.",
	})

	clusterDisconnectsTotal = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: plugin.Namespace, Subsystem: "gtm", Name: "cluster_disconnects_total",
		Help: "Times this node lost its cluster store (etcd).",
	})

	quorumChangesTotal = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: plugin.Namespace, Subsystem: "gtm", Name: "quorum_changes_total",
		Help: "Changes of a fleet's quorum verdict on an address.",
	})

	healthChangesTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace, Subsystem: "gtm", Name: "health_changes_total",
		Help: "Health verdict changes by template and new state.",
	}, []string{"healthcheck", "state"})

	fallbackTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace, Subsystem: "gtm", Name: "fallback_total",
		Help: "Answers given while no pool of the route was available, by domain and the fallback that answered (open, nodata, servfail, pool).",
	}, []string{"domain", "kind"})

	holdsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace, Subsystem: "gtm", Name: "failback_holds_total",
		Help: "Failback holds by domain and event: held (a route stays on the pool it failed over to), released (it went back).",
	}, []string{"domain", "event"})

	// The webhook label is the webhook's name, never its URL (which may carry a token); the
	// result and reason labels are the webhook package's fixed words.
	webhookDeliveries = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace, Subsystem: "gtm", Name: "webhook_deliveries_total",
		Help: "Webhook delivery attempts by webhook and result (ok, status, timeout, error).",
	}, []string{"webhook", "result"})
	webhookDropped = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace, Subsystem: "gtm", Name: "webhook_dropped_total",
		Help: "Events a webhook never delivered, by webhook and reason (queue_full, retries, rejected, shutdown).",
	}, []string{"webhook", "reason"})
)

// The series above are written by control/ (the run-time); this package declares and
// registers them, and hands them over before any block starts.
func init() {
	control.Instrument(control.Metrics{
		Answers: answersTotal, Fallback: fallbackTotal, Holds: holdsTotal, HealthChanges: healthChangesTotal,
		Probes: probesTotal, ProbeDuration: probeDuration, WebhookDeliveries: webhookDeliveries, WebhookDropped: webhookDropped,
		ConfigErrors: configErrorsTotal, ClusterDisconnects: clusterDisconnectsTotal, QuorumChanges: quorumChangesTotal,
		StoreRegressions: storeRegressionsTotal,
	})
	prometheus.MustRegister(routeCollector{})
}

var (
	addressHealthyDesc = prometheus.NewDesc(plugin.Namespace+"_gtm_address_healthy",
		"1 if the address may be answered (enabled, and healthy or forced up), else 0.", []string{"pool", "address"}, nil)
	poolAvailableDesc = prometheus.NewDesc(plugin.Namespace+"_gtm_pool_available",
		"1 if at least min_available addresses of the pool are up, else 0.", []string{"pool"}, nil)
	poolUpDesc = prometheus.NewDesc(plugin.Namespace+"_gtm_pool_up_addresses",
		"Addresses of the pool that may be answered.", []string{"pool"}, nil)
	votesDownDesc = prometheus.NewDesc(plugin.Namespace+"_gtm_votes_down",
		"In a fleet: live nodes whose vote says the address is down, of votes_total.", []string{"pool", "address"}, nil)
	votesTotalDesc = prometheus.NewDesc(plugin.Namespace+"_gtm_votes",
		"In a fleet: live nodes voting on the address.", []string{"pool", "address"}, nil)
	quorumDiffersDesc = prometheus.NewDesc(plugin.Namespace+"_gtm_quorum_differs",
		"In a fleet: 1 if the quorum verdict on the address differs from this node's own.", []string{"pool", "address"}, nil)
	clusterConnectedDesc = prometheus.NewDesc(plugin.Namespace+"_gtm_cluster_connected",
		"1 while this node reaches its cluster store (etcd), else 0.", nil, nil)
	storeRegressedDesc = prometheus.NewDesc(plugin.Namespace+"_gtm_cluster_store_regressed",
		"1 while the cluster store (etcd) has gone back in time (restored empty or from an old backup): the last good state stays in force and writes are refused, else 0.", nil, nil)
	nodeConflictDesc = prometheus.NewDesc(plugin.Namespace+"_gtm_cluster_node_conflict",
		"1 while another process holds this node's name in the fleet (this node registers nothing and publishes no health votes), else 0.", nil, nil)
	configErrorDesc = prometheus.NewDesc(plugin.Namespace+"_gtm_config_error",
		"1 while the shared state in the store does not validate and is not applied, else 0.", nil, nil)
	overridesDesc = prometheus.NewDesc(plugin.Namespace+"_gtm_overrides",
		"Manual overrides in force, by kind (mode, pin).", []string{"kind"}, nil)
	failOpenDesc = prometheus.NewDesc(plugin.Namespace+"_gtm_failopen_total",
		"Answers given while no pool of the route was available (fail-open).", []string{"domain", "route"}, nil)
	failoversDesc = prometheus.NewDesc(plugin.Namespace+"_gtm_failovers_total",
		"Times a failover route switched to another pool.", []string{"domain", "route"}, nil)
)

// routeCollector reports the route counters.
type routeCollector struct{}

func (routeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- failOpenDesc
	ch <- failoversDesc
}

// Collect reports control's route counters (kept in a table, not as children: see
// control.RouteCounters).
func (routeCollector) Collect(ch chan<- prometheus.Metric) {
	for _, r := range control.RouteCounters() {
		ch <- prometheus.MustNewConstMetricWithCreatedTimestamp(failOpenDesc, prometheus.CounterValue, float64(r.FailOpens), r.Created, r.Domain, r.Route)
		ch <- prometheus.MustNewConstMetricWithCreatedTimestamp(failoversDesc, prometheus.CounterValue, float64(r.Failovers), r.Created, r.Domain, r.Route)
	}
}

// stateCollector reports gauges from the live snapshots at scrape time, so they can never
// disagree with what the query path sees.
type stateCollector struct{}

func (stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- addressHealthyDesc
	ch <- poolAvailableDesc
	ch <- poolUpDesc
	ch <- overridesDesc
	ch <- clusterConnectedDesc
	ch <- votesDownDesc
	ch <- votesTotalDesc
	ch <- quorumDiffersDesc
	ch <- configErrorDesc
	ch <- storeRegressedDesc
	ch <- nodeConflictDesc
}

func (stateCollector) Collect(ch chan<- prometheus.Metric) {
	seen := map[string]bool{}
	modes, pins := 0, 0
	cluster, connected, configErr, regressed, conflict := false, true, false, false, false
	for _, b := range control.Live() {
		if cl, up := b.ClusterConnected(); cl {
			cluster = true
			connected = connected && up
			regressed = regressed || b.StoreFault() != nil
			conflict = conflict || b.NodeConflict() != ""
		}
		configErr = configErr || b.ConfigError() != ""
		cs := b.Snapshot()
		if cs == nil {
			continue
		}
		for _, p := range cs.Pools {
			if seen[p.Name] {
				continue
			}
			seen[p.Name] = true
			up := 0
			for _, a := range p.Addrs {
				v := 0.0
				if a.Up() {
					v, up = 1, up+1
				}
				if a.Mode.Get() != 0 {
					modes++
				}
				ch <- prometheus.MustNewConstMetric(addressHealthyDesc, prometheus.GaugeValue, v, p.Name, a.Text)
				if down, of, differs, ok := control.VotesOf(a.Health); ok {
					ch <- prometheus.MustNewConstMetric(votesDownDesc, prometheus.GaugeValue, float64(down), p.Name, a.Text)
					ch <- prometheus.MustNewConstMetric(votesTotalDesc, prometheus.GaugeValue, float64(of), p.Name, a.Text)
					ch <- prometheus.MustNewConstMetric(quorumDiffersDesc, prometheus.GaugeValue, b2f(differs), p.Name, a.Text)
				}
			}
			ch <- prometheus.MustNewConstMetric(poolUpDesc, prometheus.GaugeValue, float64(up), p.Name)
			avail := 0.0
			if p.Available() {
				avail = 1
			}
			ch <- prometheus.MustNewConstMetric(poolAvailableDesc, prometheus.GaugeValue, avail, p.Name)
		}
		for _, d := range cs.Domains {
			if pin := d.Pin.Get(); pin != "" && cs.Pool(pin) != nil { // a pin to a removed pool is not in force
				pins++
			}
		}
	}
	if cluster {
		ch <- prometheus.MustNewConstMetric(clusterConnectedDesc, prometheus.GaugeValue, b2f(connected))
		ch <- prometheus.MustNewConstMetric(storeRegressedDesc, prometheus.GaugeValue, b2f(regressed))
		ch <- prometheus.MustNewConstMetric(nodeConflictDesc, prometheus.GaugeValue, b2f(conflict))
	}
	ch <- prometheus.MustNewConstMetric(configErrorDesc, prometheus.GaugeValue, b2f(configErr || regressed))
	ch <- prometheus.MustNewConstMetric(overridesDesc, prometheus.GaugeValue, float64(modes), "mode")
	ch <- prometheus.MustNewConstMetric(overridesDesc, prometheus.GaugeValue, float64(pins), "pin")
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

var registerCollector sync.Once
