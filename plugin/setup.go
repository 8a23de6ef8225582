package gtm

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	clog "github.com/coredns/coredns/plugin/pkg/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gtm-dns/coredns-gtm/api"
	"github.com/gtm-dns/coredns-gtm/geo"
	"github.com/gtm-dns/coredns-gtm/healthcheck"
	"github.com/gtm-dns/coredns-gtm/policy"
)

var log = clog.NewWithPlugin("gtm")

func init() { plugin.Register("gtm", setup) }

// registry holds every health prober of the process. It outlives plugin instances: a
// reload acquires the new snapshot's targets before the old instance releases its own, so
// unchanged (address, template) pairs keep their prober and state.
var registry = healthcheck.NewRegistry(healthcheck.Options{
	MaxConcurrent: 1024,
	OnChange:      onHealthChange,
	OnProbe: func(t *healthcheck.Target, res healthcheck.Result, d time.Duration) {
		observeProbe(t, res, d.Seconds())
	},
})

// instances are the running plugin instances (one per server block with gtm), for the
// metrics collector.
var instances struct {
	sync.Mutex
	m map[*GTM]bool
}

func liveInstances() []*GTM {
	instances.Lock()
	defer instances.Unlock()
	out := make([]*GTM, 0, len(instances.m))
	for g := range instances.m {
		out = append(out, g)
	}
	return out
}

func setInstance(g *GTM, live bool) {
	instances.Lock()
	defer instances.Unlock()
	if instances.m == nil {
		instances.m = map[*GTM]bool{}
	}
	if live {
		instances.m[g] = true
	} else {
		delete(instances.m, g)
	}
}

func setup(c *caddy.Controller) error {
	cfg, err := parse(c)
	if err != nil {
		return plugin.Error("gtm", err)
	}
	g := &GTM{Fall: cfg.fall, ecs: cfg.ecs}
	if cfg.geoip != "" {
		if g.geo, err = openDB(c, cfg, cfg.geoip, "geoip", geo.KindCity, geo.KindCountry); err != nil {
			return plugin.Error("gtm", err)
		}
	}
	if cfg.asn != "" {
		if g.asn, err = openDB(c, cfg, cfg.asn, "asn", geo.KindASN); err != nil {
			g.closeDBs()
			return plugin.Error("gtm", err)
		}
	}
	store, err := openStore(cfg)
	if err != nil {
		g.closeDBs()
		return plugin.Error("gtm", errAt(c, cfg.api.stateLine, "api: state: %v", err))
	}
	warn(cfg)

	var listener *api.Listener
	c.OnStartup(func() error {
		registerCollector.Do(func() { prometheus.MustRegister(stateCollector{}) })
		// The listener first: if its port is taken, nothing else has been acquired yet.
		if cfg.api != nil {
			l, err := api.Acquire(cfg.api.addr)
			if err != nil {
				return plugin.Error("gtm", fmt.Errorf("api: %v", err))
			}
			listener = l
		}
		g.started = time.Now()
		cs := compile(cfg, registry, store)
		g.snap.Store(cs)
		setInstance(g, true)
		if listener != nil {
			listener.SetHandler(api.NewHandler(api.Config{
				Token:      cfg.api.token,
				PublicRead: cfg.api.publicRead,
				Store:      store,
				Events:     api.DefaultEvents,
				Snapshot:   g.policySnapshot,
				Log:        log.Infof,
			}))
			log.Infof("admin API listening on %s", listener.Addr())
		}
		record(api.Event{Kind: "reload", Message: fmt.Sprintf("configuration loaded: %d domains, %d pools, %d health targets", len(cs.Domains), len(cs.Pools), len(cs.targets))})
		return nil
	})
	c.OnShutdown(func() error {
		setInstance(g, false)
		if cs := g.snap.Load(); cs != nil {
			cs.release(registry)
		}
		if listener != nil {
			listener.Release()
			listener = nil
		}
		g.closeDBs()
		return nil
	})

	dnsserver.GetConfig(c).AddPlugin(func(next plugin.Handler) plugin.Handler {
		g.Next = next
		return g
	})
	return nil
}

func openDB(c *caddy.Controller, cfg *config, path, what string, kinds ...geo.Kind) (*geo.DB, error) {
	line := cfg.dbLine[what]
	db, err := geo.Open(path)
	if err != nil {
		return nil, errAt(c, line, "%s: %v", what, err)
	}
	for _, k := range kinds {
		if db.Kind() == k {
			return db, nil
		}
	}
	db.Close()
	return nil, errAt(c, line, "%s: %s is a %s database; expected %v", what, path, db.Kind(), kinds)
}

func (g *GTM) closeDBs() {
	if g.geo != nil {
		g.geo.Close()
	}
	if g.asn != nil {
		g.asn.Close()
	}
}

func openStore(cfg *config) (*api.Store, error) {
	if cfg.api != nil && cfg.api.state != "" {
		return api.SharedStore(cfg.api.state)
	}
	return api.OpenStore("")
}

// warn logs, with file and line, configurations that are valid but almost certainly not what
// the operator meant.
func warn(cfg *config) {
	if a := cfg.api; a != nil && a.token == "" {
		what := "every request is refused (401)"
		if a.publicRead {
			what = "reads are open (public_read), every write is refused (401)"
		}
		log.Warningf("%s:%d: api %s has no token_file: %s", cfg.file, a.line, a.addr, what)
	}
	for _, p := range cfg.pools {
		enabled := 0
		for _, a := range p.addrs {
			if !a.disabled {
				enabled++
			}
		}
		if p.minAvailable > enabled {
			log.Warningf("%s:%d: pool %s has min_available %d but %d enabled addresses: it is never available, and routes fail over past it", cfg.file, p.line, p.name, p.minAvailable, enabled)
		}
	}
	for _, d := range cfg.domains {
		if !hasDefault(d) {
			log.Warningf("%s:%d: domain %s has no default route: clients that match no route get an empty answer", cfg.file, d.line, d.name)
		}
		for _, line := range shadowedRoutes(d) {
			log.Warningf("%s:%d: route in domain %s never answers: every term of its selector is used by an earlier route, which wins ties", cfg.file, line, d.name)
		}
	}
}

// shadowedRoutes lists the lines of routes whose every selector term already appears in an
// earlier route of the domain: a client matching such a route matches the earlier one at least
// as specifically, and the first listed wins ties, so the route can never answer.
func shadowedRoutes(d *domainConfig) []int {
	seen := map[string]bool{}
	var lines []int
	for _, r := range d.routes {
		terms := r.selector.Terms()
		if len(terms) > 0 && !slices.ContainsFunc(terms, func(t string) bool { return !seen[t] }) {
			lines = append(lines, r.line)
		}
		for _, t := range terms {
			seen[t] = true
		}
	}
	return lines
}

func hasDefault(d *domainConfig) bool {
	for _, r := range d.routes {
		if r.selector.Default {
			return true
		}
	}
	return false
}

func (g *GTM) policySnapshot() *policy.Snapshot {
	if cs := g.snap.Load(); cs != nil {
		return cs.Snapshot
	}
	return nil
}

// readyWait bounds how long the ready plugin waits for first verdicts: past it, a probe
// that hangs must not keep the server out of rotation.
const readyWait = 15 * time.Second

// Ready implements ready.Readiness: ready once every health target has a first verdict.
func (g *GTM) Ready() bool {
	cs := g.snap.Load()
	if cs == nil {
		return false
	}
	if time.Since(g.started) > readyWait {
		return true
	}
	for _, t := range cs.targets {
		if !t.Ready() {
			return false
		}
	}
	return true
}

func record(e api.Event) { api.DefaultEvents.Add(e) }

func onHealthChange(ch healthcheck.Change) {
	state := "down"
	if ch.Healthy {
		state = "up"
	}
	t := ch.Target
	healthChangesTotal.WithLabelValues(t.Template().Name, state).Inc()
	if ch.First && ch.Healthy {
		return // the expected first verdict is not news
	}
	msg := fmt.Sprintf("%s is %s (healthcheck %s: %s)", t.Addr(), state, t.Template().Name, ch.Result)
	if ch.Err != "" {
		msg += ": " + ch.Err
	}
	if ch.Healthy {
		log.Infof("%s", msg)
	} else {
		log.Warningf("%s", msg)
	}
	healthy := ch.Healthy
	record(api.Event{Kind: "health", Address: t.Addr(), Healthy: &healthy, Message: msg})
}

func noteFailOpen(d *policy.Domain, r *policy.Route, p *policy.Pool) {
	route := "pinned"
	if r != nil {
		route = r.Selector.Text
	}
	msg := fmt.Sprintf("domain %s route %s: no pool available, failing open to pool %s", d.Name, route, p.Name)
	log.Warningf("%s", msg)
	record(api.Event{Kind: "failopen", Domain: d.Name, Pool: p.Name, Message: msg})
}

func noteFailover(d *policy.Domain, r *policy.Route, p *policy.Pool) {
	msg := fmt.Sprintf("domain %s route %s now answers from pool %s", d.Name, r.Selector.Text, p.Name)
	log.Infof("%s", msg)
	record(api.Event{Kind: "failover", Domain: d.Name, Pool: p.Name, Message: msg})
}
