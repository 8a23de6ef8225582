// Package control runs gtm blocks: for each, one Block owns what the block runs between its
// start and its stop — the subscription to its state store, the compiled snapshot the query
// path answers from, the health probers and fleet vote cells that snapshot uses, and every
// goroutine (failback holder, ECS scope builder, history sampler, episode reporter,
// webhooks). It imports no CoreDNS package: plugin/ is the CoreDNS adapter that parses the
// Corefile into a Config, calls New at setup, Start at startup and Stop at shutdown, and
// answers queries from Snapshot.
//
// The order is the contract (PRODUCT.md Part 3, "Reloads and the fleet"): Start subscribes
// to the store, then reads the state, then compiles and swaps, so a change written while a
// reload is in progress is either in the state read or delivered after it, never lost; Stop
// clears the snapshot, unsubscribes, stops and waits for every goroutine and gives back
// everything acquired, so a reload that drops a block leaves nothing of it running.
package control

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gtm-dns/coredns-gtm/access"
	"github.com/gtm-dns/coredns-gtm/api"
	"github.com/gtm-dns/coredns-gtm/audit"
	"github.com/gtm-dns/coredns-gtm/config"
	"github.com/gtm-dns/coredns-gtm/geo"
	"github.com/gtm-dns/coredns-gtm/policy"
	"github.com/gtm-dns/coredns-gtm/state"
	"github.com/gtm-dns/coredns-gtm/state/etcd"
)

// Config is a gtm block as the Corefile wrote it, in the terms control needs.
type Config struct {
	File      string         // the Corefile, for messages
	Zones     []string       // the block's zones (FQDNs)
	TTL       uint32         // the block's TTL, a domain's default
	NS        []NSHost       // `ns`: the apex NS set (none: ns1.ZONE)
	SOA       *SOA           // `soa`: the apex SOA's names and negative TTL (nil: defaults)
	Resources *config.Config // the Corefile's healthchecks, pools and domains
	Env       config.Env     // what validating a resource of this block needs to know
	ECS       bool           // queries are routed on their ECS subnet (explain refuses one when off)
	Geo, ASN  *geo.DB        // the block's databases (nil: none); the caller owns them
	Cluster   *Cluster       // `cluster` (nil: a single node)
	API       *API           // `api` (nil: none)
	// Falls reports whether a name this block does not manage goes to a next plugin
	// (fallthrough), for explain's CNAME chase; nil: never.
	Falls func(name string) bool
	// Version is the software version a fleet node publishes in its node record.
	Version string
	// Explain answers GET /api/v1/explain: the query path's code (plugin/) run as a pure
	// read of Snapshot; nil: explain answers that it is not available.
	Explain func(api.ExplainQuery) (api.ExplainDoc, error)
	// Store is a state store the caller owns (tests, tools); nil: the process's shared
	// store of the block's StoreKey, opened on first use and closed with its last block.
	Store *state.Store
	// Brake is `brake PERCENT DURATION` (outside.go); nil: none.
	Brake *BrakeConfig
}

// NSHost is one `ns NAME [ADDRESS...]` line.
type NSHost struct {
	Name  string
	Addrs []netip.Addr
}

// SOA is the `soa MNAME RNAME [MINIMUM]` line.
type SOA struct {
	MName, RName string
	Minimum      uint32
	HasMinimum   bool
}

// Cluster is the `cluster` block: the fleet's etcd.
type Cluster struct {
	Endpoints          []string
	Path, Node, Region string
	Username, Password string
	TLS                *tls.Config
	Quorum             int
	Cache              string
	AuditRetention     time.Duration // how long the fleet keeps audit records (0: the default)
}

// API is the `api` block.
type API struct {
	Addr       string
	Line       int
	Tokens     *access.Set // token_file's and the named tokens (nil: every request is refused)
	TLS        *tls.Config // serve HTTPS (nil: HTTP)
	Audit      string      // the audit FILE of a single node ("": memory)
	AuditLine  int
	PublicRead bool
	State      string // the state file ("" : memory kept per API address)
	Webhooks   []Webhook
}

// Webhook is one `webhook URL { ... }` of an api block.
type Webhook struct {
	Line   int
	URL    string
	Name   string // labels the metrics and the status
	Secret []byte
	Kinds  []string
}

// Block is the run-time of one gtm block. New acquires its store; Start puts it in
// service; Stop takes it out and gives back everything (it is safe on a block that never
// started, and more than once).
type Block struct {
	cfg    Config
	key    string
	shared *sharedStore // nil with Config.Store
	st     *state.Store

	mu          sync.Mutex // serialises Start, every compile and swap, and Stop
	running     bool       // between Start and Stop: deliveries compile; guarded by mu
	stopped     bool       // guarded by mu
	snap        atomic.Pointer[Snapshot]
	successor   atomic.Pointer[Block] // the live block of the same zones when this one stopped
	strayOnce   sync.Once             // logs the first query a stopped block answers
	unsubscribe func()
	configErr   atomic.Pointer[string]
	lastMerge   atomic.Pointer[mergeCache]
	listener    *api.Listener
	audit       audit.Log // where the API records write attempts (audit.go)
	started     time.Time

	holder   atomic.Pointer[holder] // failback holds and slow-start ramps (holder.go)
	episodes episodeQueue           // what the query path noticed, for the reporter (episodes.go)
	hooks    []liveHook             // the api block's running webhooks (webhooks.go); guarded by hookSets
	members  *blockMembers          // member discovery while the block runs (members.go)
	quit     chan struct{}
	wg       sync.WaitGroup // every goroutine of the block but the holder
	static   bool           // NewStatic: a fixed snapshot, nothing runs
	brake    *brakeRun      // the mass-failure brake (outside.go), nil without one
	scoper
}

// New makes the block of cfg and acquires its state store. The state is checked against
// the Corefile now, so a reload whose Corefile does not fit the API-managed resources fails
// before anything starts; a fleet node instead serves its Corefile part and says why.
func New(cfg Config) (*Block, error) {
	if cfg.Resources == nil {
		cfg.Resources = &config.Config{}
	}
	b := &Block{cfg: cfg, key: StoreKey(cfg), quit: make(chan struct{})}
	b.episodes.wake = make(chan struct{}, 1)
	if cfg.Store != nil {
		b.st = cfg.Store
	} else {
		sh, err := acquireStore(b.key, func() (state.Backend, error) { return openBackend(cfg) })
		if err != nil {
			return nil, &OpenError{Err: err}
		}
		b.shared, b.st = sh, sh.st
	}
	d := b.st.Data()
	res, errs := b.merge(d)
	if len(errs) > 0 && cfg.Cluster != nil {
		// A fleet node serves its Corefile part rather than not at all, and says why.
		b.refuse(fmt.Sprintf("shared state revision %d not applied, serving the Corefile's resources only: %s", d.Revision, summarise(errs)), false)
		res, errs = cfg.Resources, nil
	}
	if len(errs) > 0 {
		b.releaseStore()
		return nil, fmt.Errorf("%s: API-managed configuration in the state does not fit this Corefile: %s", cfg.File, summarise(errs))
	}
	warn(cfg, res)
	for _, r := range config.Shadowed(cfg.Resources, d) {
		log.Warningf("%s: %s is defined both in the Corefile and through the API: the Corefile's is in force; delete the API one from the state to silence this", cfg.File, r)
	}
	return b, nil
}

// NewStatic returns a block that answers from res, compiled for cfg over the cells of st
// (nil: an empty memory store), and runs nothing: no prober (addresses with checks answer
// as healthy), no goroutine, no subscription, no ECS partition; Start and Stop do nothing
// but Stop clears the snapshot. For benchmarks, fuzzing and tests of the query path, which
// may hand it configurations the validator refuses.
func NewStatic(cfg Config, res *config.Config, st *state.Store) *Block {
	if st == nil {
		st, _ = state.Open(context.Background(), state.NewMemory())
	}
	cfg.Store = st
	b := &Block{cfg: cfg, st: st, static: true, quit: make(chan struct{})}
	cs := compile(cfg, res, st, nil, nil)
	cs.needs = nil
	b.snap.Store(newSnapshot(cs, st.Data().Revision))
	return b
}

// OpenError is New's error when the block's state store cannot be opened (the cluster's
// settings, the state file), as opposed to a state that does not fit the Corefile.
type OpenError struct{ Err error }

func (e *OpenError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *OpenError) Unwrap() error { return e.Err }

// Key is the block's StoreKey.
func (b *Block) Key() string { return b.key }

// Start puts the block in service: the API listener first (if its port is taken, nothing
// else has been acquired yet), then the subscription, the state, the snapshot and its
// probers, then the block's goroutines.
func (b *Block) Start() error {
	if b.static {
		return nil
	}
	if a := b.cfg.API; a != nil {
		l, err := api.Acquire(a.Addr)
		if err != nil {
			return fmt.Errorf("api: %v", err)
		}
		b.listener = l
		if err := b.openAudit(); err != nil {
			l.Release()
			b.listener = nil
			return fmt.Errorf("%s:%d: api: audit: %v", b.cfg.File, a.AuditLine, err)
		}
	}
	b.started = time.Now()
	b.brake = acquireBrake(b.key, b.cfg.Brake, b.st)
	if be, ok := b.st.Backend().(*etcd.Backend); ok && b.cfg.Cluster != nil {
		watchPushed(be) // pushed verdicts of the fleet (outside.go)
	}
	b.mu.Lock()
	if b.stopped {
		b.mu.Unlock()
		return fmt.Errorf("%s: block stopped before it started", b.cfg.File)
	}
	// Subscribe first: a change committed from here on is delivered (and waits for mu),
	// one committed before is in the state read next.
	b.unsubscribe = b.st.Subscribe(b.deliver)
	d := b.st.Data()
	res, errs := b.merge(d)
	st := configStamp(d)
	if len(errs) > 0 {
		if b.cfg.Cluster == nil {
			b.mu.Unlock()
			return fmt.Errorf("%s: API-managed configuration in the state does not fit this Corefile: %s", b.cfg.File, summarise(errs))
		}
		b.refuse(fmt.Sprintf("shared state revision %d not applied, serving the Corefile's resources only: %s", d.Revision, summarise(errs)), false)
		res = b.cfg.Resources
		st = stamp{n: -1} // compiled without the state's resources: no state matches it
	} else {
		b.noteOverrides(d) // New refused an older state and this one fits, or overrides do not decode
	}
	if v := b.voter(); v != nil {
		v.setPercent(b.cfg.Cluster.Quorum)
	}
	b.startMembers()
	cs := compile(b.cfg, b.withMembers(res), b.st, b.voter(), nil)
	cs.stamp, cs.queue = st, &b.episodes
	cs.acquire()
	compiledBrake(b.brake, cs.Pools)
	b.buildScopes(cs)
	b.snap.Store(newSnapshot(cs, d.Revision))
	b.setApplied(d.Revision)
	b.running = true
	// Counted before the unlock: the members loop may recompile and hand cs over at once.
	loaded := fmt.Sprintf("configuration loaded: %d domains, %d pools, %d health targets", len(cs.Domains), len(cs.Pools), len(cs.targets))
	b.mu.Unlock()

	b.startHolder()
	b.wg.Add(2)
	go b.sampleHistory()
	go b.reportEpisodes()
	b.Resume()
	if left := api.Dangling(cs.Snapshot, d); len(left) > 0 {
		msg := fmt.Sprintf("%s: overrides in the state name pools, addresses or domains this configuration does not have, and are not in force: %s (clear them with mode auto or pin \"\")", b.cfg.File, strings.Join(left, ", "))
		log.Warningf("%s", msg)
		record(api.Event{Kind: "config", Message: msg})
	}
	record(api.Event{Kind: "reload", Message: loaded})
	return nil
}

// Resume makes this block the one the process answers with: live for metrics, history and
// holds, and in charge of its webhooks and API listener. Start calls it; after a failed
// reload the running blocks call it again to take back what the discarded ones took.
func (b *Block) Resume() {
	if b.snap.Load() == nil {
		return
	}
	setLive(b, true)
	b.serveWebhooks()
	if b.listener == nil {
		return
	}
	a := b.cfg.API
	b.listener.SetTLS(a.TLS)
	b.listener.SetHandler(api.NewHandler(api.Config{
		Tokens:     a.Tokens,
		Audit:      b.audit,
		PublicRead: a.PublicRead,
		Control:    b,
		Events:     api.DefaultEvents,
		Snapshot:   b.policySnapshot,
		Log:        log.Infof,
	}))
	log.Infof("admin API listening on %s", b.listener.Addr())
}

// Stop takes the block out of service and gives back what New and Start acquired: the
// snapshot is cleared first (a delivery in flight finds nothing to replace), the
// subscription ended, every goroutine stopped and waited for, the probers and vote cells
// released, the listener and the store given back (the last block of a fleet store closes
// it: its lease is revoked and the node leaves the node list at once).
func (b *Block) Stop() {
	b.mu.Lock()
	if b.stopped {
		b.mu.Unlock()
		return
	}
	b.stopped, b.running = true, false
	cs := b.snap.Swap(nil)
	if b.static {
		b.mu.Unlock()
		return
	}
	unsubscribe := b.unsubscribe
	b.unsubscribe = nil
	b.mu.Unlock()
	if unsubscribe != nil {
		unsubscribe()
	}
	setLive(b, false)
	b.successor.Store(successorOf(b))
	b.scopeGen.Add(1) // a scope partition build in flight gives up
	close(b.quit)
	b.stopHolder()
	b.stopWebhooks()
	b.stopMembers()
	b.wg.Wait()
	if cs != nil {
		live := liveSnapshots()
		cs.forgetSeries(live...)
		pruneRamps(cs.compiled, live)
		gone := targetTemplates(cs.targets)
		cs.release()
		forgetTemplateSeries(gone)
	}
	if b.brake != nil {
		releaseBrake(b.key)
		b.brake = nil
	}
	if b.listener != nil {
		b.listener.Release()
		b.listener = nil
	}
	b.closeAudit()
	b.releaseStore()
}

func (b *Block) releaseStore() {
	if b.shared != nil {
		b.shared.release()
		b.shared = nil
	}
}

// Snapshot is the configuration the query path answers from; nil before Start and after
// Stop. One atomic load.
//
// A stopped block answers from its successor's snapshot: the block of the same zones that
// was in service when it stopped (a reload starts the new instance before it stops the
// old one). A server of the old instance that CoreDNS did not stop keeps calling its old
// handler: when a reload stops a server before its goroutine has reached ServePacket or
// ActivateAndServe (dnsserver.Server.Stop skips what is not set yet, miekg's Shutdown
// refuses a server not started), that server starts afterwards and reads the shared socket
// beside the new one for good. Without a successor it would answer REFUSED for every
// managed name; with one it answers exactly what the block in service answers.
func (b *Block) Snapshot() *Snapshot {
	if s := b.snap.Load(); s != nil {
		return s
	}
	return b.successorSnapshot()
}

// successorSnapshot follows the successors of a stopped block (a bounded chain: one per
// reload the stray server outlived) to the first with a snapshot.
func (b *Block) successorSnapshot() *Snapshot {
	o := b.successor.Load()
	for hop := 0; o != nil && hop < maxSuccessors; hop++ {
		if s := o.snap.Load(); s != nil {
			b.strayOnce.Do(func() {
				log.Warningf("%s: a query reached the handler of a block stopped by a reload (a server CoreDNS did not stop); answering from the block in service", b.cfg.File)
			})
			return s
		}
		o = o.successor.Load()
	}
	return nil
}

// maxSuccessors bounds the successor chain a stray server follows.
const maxSuccessors = 64

// successorOf is the live block other than b serving b's zones, or nil.
func successorOf(b *Block) *Block {
	for _, o := range Live() {
		if o != b && slices.Equal(o.cfg.Zones, b.cfg.Zones) {
			return o
		}
	}
	return nil
}

// Config is the block's configuration.
func (b *Block) Config() *Config { return &b.cfg }

// ConfigError is why the state in the store is not in force ("" when it is).
func (b *Block) ConfigError() string {
	if e := b.configErr.Load(); e != nil {
		return *e
	}
	return ""
}

// StoreFault is why the block's cluster store refuses writes (it went back in time), nil
// when it does not or without a cluster.
func (b *Block) StoreFault() error { return b.st.Fault() }

// NodeConflict is why the block's fleet node is fenced (another process holds its name),
// "" when it is not or without a cluster.
func (b *Block) NodeConflict() string {
	if be, ok := b.st.Backend().(*etcd.Backend); ok {
		return be.NodeConflict()
	}
	return ""
}

// Cluster reports whether the block is a fleet node, and whether it reaches etcd.
func (b *Block) ClusterConnected() (cluster, connected bool) {
	if be, ok := b.st.Backend().(*etcd.Backend); ok {
		return true, be.Connected()
	}
	return false, false
}

// Ready reports whether every health target of the snapshot has a first verdict, or
// readyWait passed since Start (a probe that hangs must not keep the server out of
// rotation).
func (b *Block) Ready() bool {
	cs := b.snap.Load()
	if cs == nil {
		return false
	}
	if time.Since(b.started) > readyWait {
		return true
	}
	for _, t := range cs.targets {
		if !t.Ready() {
			return false
		}
	}
	return true
}

// readyWait bounds how long the ready plugin waits for first verdicts.
const readyWait = 15 * time.Second

// merge is the configuration in force for state d: the Corefile's resources and the API's,
// validated together. A Corefile resource hides an API one of the same kind and name.
func (b *Block) merge(d *state.Data) (*config.Config, config.Errors) {
	return b.cachedMerge(d) // config.Merge, once per API resources (mergecache.go)
}

// deliver is the block's store subscription.
func (b *Block) deliver(d *state.Data) { b.rebuild(d) }

// rebuild compiles the configuration of state d and swaps it in. State that does not
// validate (written around the API) is not applied: the last good configuration stays.
// A stopped block (a delivery in flight when Stop ran) does nothing.
func (b *Block) rebuild(d *state.Data) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.snap.Load()
	if !b.running || old == nil {
		return nil
	}
	if d.Revision <= old.revision {
		return nil // in force already, or older than what is (a delivery overtaken)
	}
	if configStamp(d) == old.stamp {
		// The same API resources as the snapshot in force, which validated: only modes,
		// pins or holds changed (their cells carry them), or a state that did not validate
		// (a bad key since deleted) is fixed.
		b.snap.Store(newSnapshot(old.compiled, d.Revision))
		b.setApplied(d.Revision)
		b.noteOverrides(d) // clears a config_error, or names invalid override values
		return nil
	}
	res, errs := b.merge(d)
	if len(errs) > 0 {
		b.refuse(fmt.Sprintf("state revision %d not applied, the configuration of revision %d stays in force: %s", d.Revision, old.revision, summarise(errs)), true)
		return errs
	}
	cs := compile(b.cfg, b.withMembers(res), b.st, b.voter(), old.compiled)
	cs.stamp, cs.queue = configStamp(d), &b.episodes
	cs.acquire()
	compiledBrake(b.brake, cs.Pools)
	b.buildScopes(cs)
	b.snap.Store(newSnapshot(cs, d.Revision))
	b.setApplied(d.Revision)
	b.noteOverrides(d)
	gone := targetTemplates(old.targets)
	old.forgetSeries(cs)
	old.handOver(cs)
	forgetTemplateSeries(gone)
	warnWritten(b.cfg, cs, old.compiled)
	pruneRamps(old.compiled, append(liveSnapshots(), cs))
	return nil
}

// refuse records that a state is not in force.
func (b *Block) refuse(msg string, event bool) {
	log.Errorf("%s", msg)
	b.configErr.Store(&msg)
	metrics.ConfigErrors.Inc()
	if event {
		record(api.Event{Kind: "config", Message: msg})
	}
}

// setApplied tells a fleet backend the revision in force, for the node record.
func (b *Block) setApplied(rev int64) {
	if be, ok := b.st.Backend().(*etcd.Backend); ok {
		be.SetApplied(rev)
	}
}

// voter is the quorum of the block's fleet store, nil outside a fleet.
func (b *Block) voter() *voter {
	if b.shared == nil || b.cfg.Cluster == nil {
		return nil
	}
	return b.shared.voter
}

// policySnapshot is the query path's view of the configuration in force, for the api.
//
// Like Snapshot it follows a stopped block's successor: the api listener is handed from
// instance to instance, and a request that took the old instance's handler just before the
// swap may run after the old block stopped; it sees (and validates against) the
// configuration in service, as its write goes to the store both blocks share.
func (b *Block) policySnapshot() *policy.Snapshot {
	if cs := b.Snapshot(); cs != nil {
		return cs.Snapshot
	}
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
		if strings.HasPrefix(k, state.ConfigPrefix) || strings.HasPrefix(k, state.MembersPrefix) {
			s.n++
			s.max = max(s.max, e.Revision)
		}
	}
	return s
}

// StoreKey names the state a block uses, stable across reloads: its fleet (endpoints, path
// and node), or its state file, or, with an API but no file, memory kept per API address
// (overrides outlive reloads, not restarts), or, without an API, memory of its own.
func StoreKey(cfg Config) string {
	switch {
	case cfg.Cluster != nil:
		cl := cfg.Cluster
		return "etcd:" + cl.Node + "@" + strings.Join(cl.Endpoints, ",") + cl.Path
	case cfg.API != nil && cfg.API.State != "":
		return "file:" + realPath(cfg.API.State)
	case cfg.API != nil:
		return "memory:" + cfg.API.Addr
	}
	return "memory:" + strings.Join(cfg.Zones, ",") + "@" + cfg.File
}

// realPath is file absolute with its symlinks resolved (of the directory when the file
// does not exist yet), so that two names of one state file are one store: two stores
// writing one file would each overwrite the other's overrides.
func realPath(file string) string {
	abs, err := filepath.Abs(file)
	if err != nil {
		return file
	}
	for range 8 { // a dangling link names the file its store will create
		if p, err := filepath.EvalSymlinks(abs); err == nil {
			return p
		}
		lt, err := os.Readlink(abs)
		if err != nil {
			break
		}
		if !filepath.IsAbs(lt) {
			lt = filepath.Join(filepath.Dir(abs), lt)
		}
		abs = lt
	}
	if dir, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		return filepath.Join(dir, filepath.Base(abs))
	}
	return abs
}

// openBackend opens the backend of cfg's state.
func openBackend(cfg Config) (state.Backend, error) {
	if cl := cfg.Cluster; cl != nil {
		be, err := etcd.Open(context.Background(), etcd.Config{
			Endpoints: cl.Endpoints, Path: cl.Path, Node: cl.Node, Region: cl.Region,
			Version: cfg.Version, Username: cl.Username, Password: cl.Password, TLS: cl.TLS, CacheFile: cl.Cache,
		})
		if err != nil {
			return nil, err
		}
		return be, nil
	}
	if cfg.API != nil && cfg.API.State != "" {
		return state.OpenFile(cfg.API.State)
	}
	return state.NewMemory(), nil
}

// live are the blocks in service (between Start, or Resume after a failed reload, and
// Stop), for what looks at every block of the process: the metrics collector, the holders'
// wake-up on a health change, the series a leaving block keeps. Process-wide because those
// are (one prometheus registry, one prober registry); its one writer is Block
// (Resume/Stop), through setLive.
var live struct {
	sync.Mutex
	m map[*Block]bool
}

// Live returns the blocks in service.
func Live() []*Block {
	live.Lock()
	defer live.Unlock()
	out := make([]*Block, 0, len(live.m))
	for b := range live.m {
		out = append(out, b)
	}
	return out
}

func setLive(b *Block, on bool) {
	live.Lock()
	defer live.Unlock()
	if live.m == nil {
		live.m = map[*Block]bool{}
	}
	if on {
		live.m[b] = true
	} else {
		delete(live.m, b)
	}
}

// liveSnapshots are the snapshots of the live blocks, whose counter series a block leaving
// keeps: it deletes only its own.
func liveSnapshots() []*compiled {
	var out []*compiled
	for _, o := range Live() {
		if cs := o.snap.Load(); cs != nil {
			out = append(out, cs.compiled)
		}
	}
	return out
}
