package gtm

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"
	"github.com/coredns/coredns/plugin"
	clog "github.com/coredns/coredns/plugin/pkg/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gtm-dns/coredns-gtm/control"
	"github.com/gtm-dns/coredns-gtm/geo"
)

var log = clog.NewWithPlugin("gtm")

func init() {
	plugin.Register("gtm", setup)
	control.SetLog(log)
}

// generation is the gtm side of one caddy instance (one load of the Corefile): its blocks,
// so that a reload whose new instance fails to start can put the running one back.
type generation struct {
	blocks []*GTM
	states map[string]int    // state keys in use, to refuse two blocks sharing one (line)
	pools  map[string]string // pool names in use -> "file:line", unique across blocks
	// stateFiles are the state files in use, compared with os.SameFile (hard links).
	stateFiles []stateFile
}

// stateFile is a block's `state FILE` and its line.
type stateFile struct {
	path string
	line int
}

// sameStateFile returns the line of an earlier block whose state file is file under
// another name (os.SameFile: a hard link or a symlink); files not created yet compare by
// their resolved name only (StoreKey).
func (gen *generation) sameStateFile(file string) (int, bool) {
	fi, err := os.Stat(file)
	if err != nil {
		return 0, false
	}
	for _, s := range gen.stateFiles {
		if o, err := os.Stat(s.path); err == nil && os.SameFile(fi, o) {
			return s.line, true
		}
	}
	return 0, false
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
	cfg := g.controlConfig()
	key := control.StoreKey(cfg)
	line, dup := gen.states[key]
	if !dup && b.api != nil && b.api.state != "" {
		line, dup = gen.sameStateFile(b.api.state) // a hard link, or a name StoreKey cannot resolve
	}
	if dup && b.api != nil && b.api.state != "" {
		g.closeDBs()
		return plugin.Error("gtm", errAt(c, b.api.stateLine, "api: state %s is already used by the gtm block of line %d: give each block its own state file", b.api.state, line))
	}
	if b.api != nil {
		gen.states[key] = b.api.stateLine
		if b.api.state != "" {
			gen.stateFiles = append(gen.stateFiles, stateFile{b.api.state, b.api.stateLine})
		}
	}
	if g.ctl, err = control.New(cfg); err != nil {
		g.closeDBs()
		var open *control.OpenError
		switch {
		case !errors.As(err, &open):
			return plugin.Error("gtm", err)
		case b.cluster != nil:
			return plugin.Error("gtm", errAt(c, b.cluster.line, "%v", err))
		}
		line := 0
		if b.api != nil {
			line = b.api.stateLine
		}
		return plugin.Error("gtm", errAt(c, line, "api: state: %v", err))
	}
	warn(b)
	gen.blocks = append(gen.blocks, g)
	if first {
		c.OnRestartFailed(func() error { restoreAfterFailedRestart(gen); return nil })
	}

	c.OnStartup(func() error {
		registerCollector.Do(func() { prometheus.MustRegister(stateCollector{}) })
		if err := g.ctl.Start(); err != nil {
			return plugin.Error("gtm", err)
		}
		return nil
	})
	c.OnShutdown(func() error {
		g.ctl.Stop()
		g.closeDBs()
		return nil
	})

	dnsserver.GetConfig(c).AddPlugin(func(next plugin.Handler) plugin.Handler {
		g.Next = next
		return g
	})
	return nil
}

// controlConfig is the block in control's terms.
func (g *GTM) controlConfig() control.Config {
	b := g.block
	cfg := control.Config{
		File: b.file, Zones: b.zones, TTL: b.ttl, Resources: b.res, Env: b.env(), ECS: b.ecs,
		Geo: g.geo, ASN: g.asn,
		Falls:   func(name string) bool { return g.Next != nil && g.Fall.Through(name) },
		Explain: g.Explain,
		Version: "coredns-gtm (CoreDNS " + coremain.CoreVersion + ")",
	}
	for _, h := range b.ns {
		cfg.NS = append(cfg.NS, control.NSHost{Name: h.name, Addrs: h.addrs})
	}
	if br := b.brake; br != nil {
		cfg.Brake = &control.BrakeConfig{Percent: br.percent, Window: br.window, Fleet: br.fleet}
	}
	if s := b.soa; s != nil {
		cfg.SOA = &control.SOA{MName: s.mname, RName: s.rname, Minimum: s.minimum, HasMinimum: s.hasMinimum}
	}
	if cl := b.cluster; cl != nil {
		cfg.Cluster = &control.Cluster{
			Endpoints: cl.endpoints, Path: cl.path, Node: cl.node, Region: cl.region,
			Username: cl.username, Password: cl.password, TLS: cl.tls, Quorum: cl.quorum, Cache: cl.cache,
			AuditRetention: cl.auditRetention,
		}
	}
	if a := b.api; a != nil {
		cfg.API = &control.API{Addr: a.addr, Line: a.line, Tokens: a.access.tokens, TLS: a.access.tls,
			Audit: a.access.audit, AuditLine: a.access.auditLine, PublicRead: a.publicRead, State: a.state}
		for _, w := range a.webhooks {
			cfg.API.Webhooks = append(cfg.API.Webhooks, control.Webhook{Line: w.line, URL: w.url, Name: w.name, Secret: w.secret, Kinds: w.kinds})
		}
	}
	return cfg
}

// restoreAfterFailedRestart runs when caddy discarded a new instance after gtm's setup (and
// maybe its startup) ran: the discarded blocks release their store, probers and listeners,
// and the running generation's blocks are again the ones in charge of metrics and the API.
func restoreAfterFailedRestart(running *generation) {
	lastGen.Lock()
	failed := lastGen.g
	lastGen.g = running
	lastGen.Unlock()
	if failed != nil && failed != running {
		for _, g := range failed.blocks {
			g.ctl.Stop()
			g.closeDBs()
		}
	}
	for _, g := range running.blocks {
		g.ctl.Resume()
	}
	log.Infof("reload failed: the running configuration stays in force")
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

// warn logs, with file and line, block settings that are valid but almost certainly not
// what the operator meant (control warns about the resources).
func warn(b *block) {
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
}

// Ready implements ready.Readiness: ready once every health target has a first verdict.
func (g *GTM) Ready() bool { return g.ctl.Ready() }
