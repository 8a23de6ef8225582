package gtm

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"
	"github.com/coredns/coredns/plugin"
	clog "github.com/coredns/coredns/plugin/pkg/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gtm-dns/coredns-gtm/api"
	"github.com/gtm-dns/coredns-gtm/audit"
	"github.com/gtm-dns/coredns-gtm/config"
	"github.com/gtm-dns/coredns-gtm/geo"
	"github.com/gtm-dns/coredns-gtm/healthcheck"
	"github.com/gtm-dns/coredns-gtm/policy"
	"github.com/gtm-dns/coredns-gtm/state"
	"github.com/gtm-dns/coredns-gtm/state/etcd"
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

// generation is the gtm side of one caddy instance (one load of the Corefile): its blocks,
// so that a reload whose new instance fails to start can put the running one back.
type generation struct {
	blocks []*GTM
	states map[string]int    // state keys in use, to refuse two blocks sharing one (line)
	pools  map[string]string // pool names in use -> "file:line", unique across blocks
}

// lastGen is the generation that ran setup most recently: after a failed restart, the one
// that was discarded.
var lastGen struct {
	sync.Mutex
	g *generation
}

type genKey struct{}

func generationOf(c *caddy.Controller) (*generation, bool) {
	if v, ok := c.Get(genKey{}).(*generation); ok {
		return v, false
	}
	gen := &generation{states: map[string]int{}, pools: map[string]string{}}
	c.Set(genKey{}, gen)
	lastGen.Lock()
	lastGen.g = gen
	lastGen.Unlock()
	return gen, true
}

func setup(c *caddy.Controller) error {
	b, err := parse(c)
	if err != nil {
		return plugin.Error("gtm", err)
	}
	gen, first := generationOf(c)
	g := &GTM{Fall: b.fall, ecs: b.ecs}
	g.block = b
	if b.geoip != "" {
		if g.geo, err = openDB(c, b, b.geoip, "geoip", geo.KindCity, geo.KindCountry); err != nil {
			return plugin.Error("gtm", err)
		}
	}
	if b.asn != "" {
		if g.asn, err = openDB(c, b, b.asn, "asn", geo.KindASN); err != nil {
			g.closeDBs()
			return plugin.Error("gtm", err)
		}
	}
	// Pool names label the pool gauges, which carry no block: two blocks with one pool name
	// would report one series flipping between their values.
	for _, p := range b.res.Pools {
		if at, dup := gen.pools[p.Name]; dup {
			g.closeDBs()
			return plugin.Error("gtm", errAt(c, p.Line, "pool: %q is also defined in another gtm block (%s); pool names label the metrics and must be unique across the server's gtm blocks", p.Name, at))
		}
	}
	for _, p := range b.res.Pools {
		gen.pools[p.Name] = fmt.Sprintf("%s:%d", b.file, p.Line)
	}
	key := storeKey(b)
	if line, dup := gen.states[key]; dup && b.api != nil && b.api.state != "" {
		g.closeDBs()
		return plugin.Error("gtm", errAt(c, b.api.stateLine, "api: state %s is already used by the gtm block of line %d: give each block its own state file", b.api.state, line))
	}
	if b.api != nil {
		gen.states[key] = b.api.stateLine
	}
	if g.st, err = openStore(b, key); err != nil {
		g.closeDBs()
		if b.cluster != nil {
			return plugin.Error("gtm", errAt(c, b.cluster.line, "%v", err))
		}
		line := 0
		if b.api != nil {
			line = b.api.stateLine
		}
		return plugin.Error("gtm", errAt(c, line, "api: state: %v", err))
	}
	res, errs := g.merge(g.st.Data())
	if len(errs) > 0 && b.cluster != nil {
		// A fleet node serves its Corefile part rather than not at all, and says why.
		msg := fmt.Sprintf("shared state revision %d not applied, serving the Corefile's resources only: %v", g.st.Data().Revision, errs)
		log.Errorf("%s", msg)
		g.configErr.Store(&msg)
		configErrorsTotal.Inc()
		res, errs = b.res, nil
	}
	if len(errs) > 0 {
		g.closeDBs()
		return plugin.Error("gtm", fmt.Errorf("%s: API-managed configuration in the state does not fit this Corefile: %v", b.file, errs))
	}
	g.pending = res
	warn(b, res)
	for _, r := range config.Shadowed(b.res, g.st.Data()) {
		log.Warningf("%s: %s is defined both in the Corefile and through the API: the Corefile's is in force; delete the API one from the state to silence this", b.file, r)
	}
	gen.blocks = append(gen.blocks, g)
	if first {
		c.OnRestartFailed(func() error { restoreAfterFailedRestart(gen); return nil })
	}

	c.OnStartup(func() error {
		registerCollector.Do(func() { prometheus.MustRegister(stateCollector{}) })
		return g.start()
	})
	c.OnShutdown(func() error {
		g.stop()
		g.closeDBs()
		return nil
	})
	if b.cluster != nil {
		// The fleet's lease belongs to the process, not to a config instance: reloads keep
		// the backend, only the final shutdown revokes it.
		c.OnFinalShutdown(func() error { state.CloseShared(key); return nil })
	}

	dnsserver.GetConfig(c).AddPlugin(func(next plugin.Handler) plugin.Handler {
		g.Next = next
		return g
	})
	return nil
}

// start puts the block in service: the API listener first (if its port is taken, nothing
// else has been acquired yet), then the snapshot and its probers.
func (g *GTM) start() error {
	b := g.block
	if b.api != nil {
		l, err := api.Acquire(b.api.addr)
		if err != nil {
			return plugin.Error("gtm", fmt.Errorf("api: %v", err))
		}
		g.listener = l
		if err := g.openAudit(); err != nil {
			l.Release()
			g.listener = nil
			return plugin.Error("gtm", fmt.Errorf("%s:%d: api: audit: %v", b.file, b.api.access.auditLine, err))
		}
	}
	g.started = time.Now()
	g.mu.Lock()
	cs := compile(b, g.pending, registry, g.st, nil)
	d := g.st.Data()
	cs.setRevision(d.Revision)
	cs.stamp = configStamp(d)
	if g.configErr.Load() != nil {
		cs.stamp = stamp{n: -1} // compiled without the state's resources: no state matches it
	}
	g.pending = nil
	g.buildScopes(cs)
	g.snap.Store(cs)
	g.mu.Unlock()
	g.unsubscribe = g.st.Subscribe(func(d *state.Data) { g.rebuild(d) })
	g.startHolder()
	g.st.OnChange(noteOverrideChange)
	g.serve()
	if left := api.Dangling(cs.Snapshot, d); len(left) > 0 {
		msg := fmt.Sprintf("%s: overrides in the state name pools, addresses or domains this configuration does not have, and are not in force: %s (clear them with mode auto or pin \"\")", b.file, strings.Join(left, ", "))
		log.Warningf("%s", msg)
		record(api.Event{Kind: "config", Message: msg})
	}
	record(api.Event{Kind: "reload", Message: fmt.Sprintf("configuration loaded: %d domains, %d pools, %d health targets", len(cs.Domains), len(cs.Pools), len(cs.targets))})
	return nil
}

// serve makes this block the one the process answers with: live for metrics, and in charge
// of its API listener.
func (g *GTM) serve() {
	setInstance(g, true)
	g.serveWebhooks()
	startHistory()
	if g.listener == nil {
		return
	}
	b := g.block
	g.listener.SetTLS(b.api.access.tls)
	g.listener.SetHandler(api.NewHandler(api.Config{
		Tokens:     b.api.access.tokens,
		Audit:      g.audit,
		PublicRead: b.api.publicRead,
		Control:    g,
		Events:     api.DefaultEvents,
		Snapshot:   g.policySnapshot,
		Log:        log.Infof,
	}))
	log.Infof("admin API listening on %s", g.listener.Addr())
}

// stop releases what start acquired. It is safe on a block that never started.
func (g *GTM) stop() {
	setInstance(g, false)
	g.scopeGen.Add(1) // a scope partition build in flight gives up
	g.stopHolder()
	g.stopWebhooks()
	if g.unsubscribe != nil {
		g.unsubscribe()
		g.unsubscribe = nil
	}
	g.mu.Lock()
	if cs := g.snap.Load(); cs != nil {
		cs.forgetSeries(liveSnapshots()...)
		cs.release(registry)
	}
	g.mu.Unlock()
	if g.listener != nil {
		g.listener.Release()
		g.listener = nil
	}
	g.closeAudit()
}

// liveSnapshots are the snapshots of the live blocks, whose counter series a block leaving
// keeps: it deletes only its own.
func liveSnapshots() []*compiled {
	var out []*compiled
	for _, o := range liveInstances() {
		if cs := o.snap.Load(); cs != nil {
			out = append(out, cs)
		}
	}
	return out
}

// restoreAfterFailedRestart runs when caddy discarded a new instance after gtm's setup (and
// maybe its startup) ran: the discarded blocks release their probers and listeners, and the
// running generation's blocks are again the ones in charge of metrics and the API.
func restoreAfterFailedRestart(running *generation) {
	lastGen.Lock()
	failed := lastGen.g
	lastGen.g = running
	lastGen.Unlock()
	if failed != nil && failed != running {
		for _, g := range failed.blocks {
			g.stop()
			g.closeDBs()
		}
	}
	for _, g := range running.blocks {
		if g.snap.Load() != nil {
			g.serve()
		}
	}
	log.Infof("reload failed: the running configuration stays in force")
}

// merge is the configuration in force for state d: the Corefile's resources and the API's,
// validated together. A Corefile resource hides an API one of the same kind and name.
func (g *GTM) merge(d *state.Data) (*config.Config, config.Errors) {
	return g.cachedMerge(d) // config.Merge, once per API resources (mergecache.go)
}

// rebuild compiles the configuration of state d and swaps it in. State that does not
// validate (written around the API) is not applied: the last good configuration stays.
func (g *GTM) rebuild(d *state.Data) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	old := g.snap.Load()
	if old == nil {
		return nil // not started, or stopped
	}
	if old.revision.Load() == d.Revision {
		return nil
	}
	if configStamp(d) == old.stamp {
		// The same API resources as the snapshot in force, which validated: a state that
		// did not (a bad key since deleted) is fixed.
		old.setRevision(d.Revision)
		if g.configErr.Swap(nil) != nil {
			log.Infof("state revision %d applied: the configuration error is cleared", d.Revision)
		}
		return nil
	}
	res, errs := g.merge(d)
	if len(errs) > 0 {
		msg := fmt.Sprintf("state revision %d not applied, the configuration of revision %d stays in force: %v", d.Revision, old.revision.Load(), errs)
		log.Errorf("%s", msg)
		g.configErr.Store(&msg)
		configErrorsTotal.Inc()
		record(api.Event{Kind: "config", Message: msg})
		return errs
	}
	g.configErr.Store(nil)
	cs := compile(g.block, res, registry, g.st, old)
	cs.setRevision(d.Revision)
	cs.stamp = configStamp(d)
	g.buildScopes(cs)
	g.snap.Store(cs)
	old.forgetSeries(cs)
	old.handOver(registry, cs)
	return nil
}

// stamp identifies the API resources of a state: their count and newest revision. Any
// write of a resource raises the newest revision, a delete alone lowers the count; a mode
// or pin write changes neither, and needs no compile (cells carry it).
type stamp struct {
	n   int
	max int64
}

func configStamp(d *state.Data) stamp {
	var s stamp
	for k, e := range d.Entries {
		if strings.HasPrefix(k, state.ConfigPrefix) {
			s.n++
			s.max = max(s.max, e.Revision)
		}
	}
	return s
}

func openDB(c *caddy.Controller, b *block, path, what string, kinds ...geo.Kind) (*geo.DB, error) {
	line := b.dbLine[what]
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

// storeKey names the state a block uses, stable across reloads: its state file, or, with
// an API but no file, memory kept per API address (overrides outlive reloads, not
// restarts), or, without an API, memory of its own.
func storeKey(b *block) string {
	switch {
	case b.cluster != nil:
		return "etcd:" + b.cluster.node + "@" + strings.Join(b.cluster.endpoints, ",") + b.cluster.path
	case b.api != nil && b.api.state != "":
		if abs, err := filepath.Abs(b.api.state); err == nil {
			return "file:" + abs
		}
		return "file:" + b.api.state
	case b.api != nil:
		return "memory:" + b.api.addr
	}
	return "memory:" + strings.Join(b.zones, ",") + "@" + b.file
}

func openStore(b *block, key string) (*state.Store, error) {
	return state.Shared(key, func() (state.Backend, error) {
		if cl := b.cluster; cl != nil {
			be, err := etcd.Open(context.Background(), etcd.Config{
				Endpoints: cl.endpoints, Path: cl.path, Node: cl.node, Region: cl.region,
				Version:  "coredns-gtm (CoreDNS " + coremain.CoreVersion + ")",
				Username: cl.username, Password: cl.password, TLS: cl.tls, CacheFile: cl.cache,
			})
			if err != nil {
				return nil, err
			}
			be.OnConnection(func(up bool) { noteConnection(cl, up) })
			be.OnFault(func(err error) { go noteStoreFault(cl, err) })
			return be, nil
		}
		if b.api != nil && b.api.state != "" {
			return state.OpenFile(b.api.state)
		}
		return state.NewMemory(), nil
	})
}

// warn logs, with file and line, configurations that are valid but almost certainly not what
// the operator meant.
func warn(b *block, res *config.Config) {
	if a := b.api; a != nil && a.access.tokens.Len() == 0 {
		what := "every request is refused (401)"
		if a.publicRead {
			what = "reads are open (public_read), every write is refused (401)"
		}
		log.Warningf("%s:%d: api %s has no token (token_file or token NAME FILE ROLE): %s", b.file, a.line, a.addr, what)
	}
	if len(b.ns) == 0 && !b.fall.Through(b.zones[0]) {
		log.Warningf("%s: gtm %s has no ns: the apex NS is ns1.%s, which this server answers without an address; set ns NAME [ADDRESS...] to match the delegation", b.file, strings.Join(b.zones, " "), b.zones[0])
	}
	for _, p := range res.Pools {
		enabled := 0
		for _, a := range p.Addresses {
			if !a.Disabled {
				enabled++
			}
		}
		if p.MinAvailable > enabled {
			log.Warningf("%s:%d: pool %s has min_available %d but %d enabled addresses: it is never available, and routes fail over past it", b.file, p.Line, p.Name, p.MinAvailable, enabled)
		}
	}
	for _, d := range res.Domains {
		if !hasDefault(d) {
			log.Warningf("%s:%d: domain %s has no default route: clients that match no route get an empty answer", b.file, d.Line, d.Name)
		}
		for _, line := range shadowedRoutes(d) {
			log.Warningf("%s:%d: route in domain %s never answers: every term of its selector is used by an earlier route, which wins ties", b.file, line, d.Name)
		}
	}
}

// shadowedRoutes lists the lines of routes whose every selector term already appears in an
// earlier route of the domain: a client matching such a route matches the earlier one at least
// as specifically, and the first listed wins ties, so the route can never answer.
func shadowedRoutes(d *config.Domain) []int {
	seen := map[string]bool{}
	var lines []int
	for _, r := range d.Routes {
		s, err := policy.ParseSelector(r.Selector)
		if err != nil {
			continue
		}
		terms := s.Terms()
		if len(terms) > 0 && !slices.ContainsFunc(terms, func(t string) bool { return !seen[t] }) {
			lines = append(lines, r.Line)
		}
		for _, t := range terms {
			seen[t] = true
		}
	}
	return lines
}

func hasDefault(d *config.Domain) bool {
	for _, r := range d.Routes {
		if s, err := policy.ParseSelector(r.Selector); err == nil && s.Default {
			return true
		}
	}
	return false
}

func mustRegexp(s string) *regexp.Regexp { return regexp.MustCompile(s) }

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
	voters.Lock()
	for _, v := range voters.m {
		v.local(ch)
	}
	voters.Unlock()
	state := "down"
	if ch.Healthy {
		state = "up"
	}
	t := ch.Target
	healthChangesTotal.WithLabelValues(t.Template().Name, state).Inc()
	pokeHolders()
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

func noteConnection(cl *clusterConfig, up bool) {
	msg := fmt.Sprintf("cluster: node %s connected to etcd %s", cl.node, strings.Join(cl.endpoints, ","))
	if up {
		log.Infof("%s", msg)
	} else {
		clusterDisconnectsTotal.Inc()
		msg = fmt.Sprintf("cluster: node %s lost etcd %s: answering with its last configuration, overrides and its own health verdicts; API writes answer 503", cl.node, strings.Join(cl.endpoints, ","))
		log.Warningf("%s", msg)
	}
	record(api.Event{Kind: "cluster", Message: msg})
}

// noteStoreFault reports the cluster store going back in time (err) or that ending (nil).
func noteStoreFault(cl *clusterConfig, err error) {
	var msg string
	if err != nil {
		storeRegressionsTotal.Inc()
		msg = fmt.Sprintf("cluster: node %s: %v", cl.node, err)
		log.Errorf("%s", msg)
	} else {
		msg = fmt.Sprintf("cluster: node %s: the cluster store holds the fleet's state again (restored); writes are accepted", cl.node)
		log.Infof("%s", msg)
	}
	record(api.Event{Kind: "config", Message: msg})
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

// control is the run-time side of a GTM block: where its configuration and state come from
// and what it holds while it runs.
type control struct {
	block       *block
	st          *state.Store
	mu          sync.Mutex // serialises compiles and swaps of snap
	pending     *config.Config
	listener    *api.Listener
	audit       audit.Log // where the API records write attempts (audit.go)
	unsubscribe func()
	configErr   atomic.Pointer[string]
	lastMerge   atomic.Pointer[mergeCache]
	nextSOA     sync.Map // zone -> *cachedSOA: the next plugin's SOA, for negative answers

	holder atomic.Pointer[holder] // failback holds and slow-start ramps (failback.go)
	// hooks are the api block's running webhooks (webhook.go).
	hooks []liveHook
}
