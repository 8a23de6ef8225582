package control

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/gtm-dns/coredns-gtm/api"
	"github.com/gtm-dns/coredns-gtm/config"
	"github.com/gtm-dns/coredns-gtm/discovery"
	"github.com/gtm-dns/coredns-gtm/healthcheck"
	"github.com/gtm-dns/coredns-gtm/policy"
	"github.com/gtm-dns/coredns-gtm/state"
	"github.com/gtm-dns/coredns-gtm/state/etcd"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// blockMembers is a block's member discovery: the sources its configuration wants, and a
// goroutine that recompiles the snapshot when what they report changes. Without `cluster`
// the block's own Manager discovers; with it, the fleet's elected node does (fleet.go) and
// every node compiles from the members in the shared state.
type blockMembers struct {
	b    *Block
	mgr  *discovery.Manager
	kick chan struct{}
	done chan struct{}
	wg   sync.WaitGroup

	mu   sync.Mutex
	base *config.Config // the configuration in force before members are joined

	// In a fleet (cluster): the etcd backend, and while this node leads discovery, the
	// comparison that guards its writes; the members answered are the shared ones.
	fleet   *etcd.Backend
	cancel  context.CancelFunc
	leading bool
	guard   clientv3.Cmp
	wanted  bool          // the configuration has a pool that discovers: campaign
	wantCh  chan struct{} // wanted changed
	// syncMu makes "am I leading? then run these sources" one step, against lead's own
	// start and end (otherwise a source could start on a node that just stopped leading).
	syncMu sync.Mutex
}

// startMembers starts the block's discovery (nothing runs until a configuration wants it).
// In a fleet the block campaigns for the discovery election only while its configuration
// (the Corefile's and the API's, as compiled) has a pool with members or flatten: the
// election's session is a lease of its own, and a fleet without discovery keeps one lease
// per node. A pool given members through the API starts the campaign; when the last such
// pool goes, the node resigns (the leader first deletes the shared members).
func (b *Block) startMembers() {
	m := &blockMembers{b: b, kick: make(chan struct{}, 1), done: make(chan struct{}), wantCh: make(chan struct{}, 1)}
	m.mgr = discovery.New(discovery.Options{
		OnChange: func() {
			select {
			case m.kick <- struct{}{}:
			default:
			}
		},
		OnEvent: func(pool, source, msg string, warning bool) {
			if warning {
				log.Warningf("%s", msg)
			} else {
				log.Infof("%s", msg)
			}
			record(api.Event{Kind: "members", Pool: pool, Message: msg})
		},
	})
	b.members = m
	if be, ok := b.st.Backend().(*etcd.Backend); ok && b.cfg.Cluster != nil {
		m.fleet = be
		ctx, cancel := context.WithCancel(context.Background())
		m.cancel = cancel
		m.wg.Add(1)
		go m.elector(ctx)
	}
	m.wg.Add(1)
	go m.loop()
}

// setWanted says whether the configuration in force has a pool that discovers (fleet only).
func (m *blockMembers) setWanted(want bool) {
	m.mu.Lock()
	changed := m.wanted != want
	m.wanted = want
	m.mu.Unlock()
	if changed {
		select {
		case m.wantCh <- struct{}{}:
		default:
		}
	}
}

func (m *blockMembers) isWanted() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.wanted
}

// elector campaigns for the discovery election while the configuration wants discovery, and
// resigns when it stops wanting it. One goroutine: a campaign ends (resigned, session
// closed) before the next begins, so a node never holds two.
func (m *blockMembers) elector(ctx context.Context) {
	defer m.wg.Done()
	be := m.fleet
	for {
		for !m.isWanted() {
			select {
			case <-ctx.Done():
				return
			case <-m.wantCh:
			}
		}
		ectx, cancel := context.WithCancel(ctx)
		ended := make(chan struct{})
		go func() {
			defer close(ended)
			discovery.Elect(ectx, be.Client(), be.Path()+"/discovery", be.Node(), electionTTL, m.lead)
		}()
		for m.isWanted() && ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-m.wantCh:
			}
		}
		cancel()
		<-ended
		if ctx.Err() != nil {
			return
		}
		log.Infof("members: no pool discovers any more: node %s left the discovery election", be.Node())
	}
}

// electionTTL is the lease of the discovery election in seconds: the longest a dead leader
// keeps it (the cluster's node lease is as long).
const electionTTL = 5

// lead runs discovery for the fleet while this node is elected: the sources run here, and
// what they report is written into the shared state.
func (m *blockMembers) lead(ctx context.Context, guard clientv3.Cmp) {
	m.syncMu.Lock()
	m.mu.Lock()
	m.leading, m.guard = true, guard
	base := m.base
	m.mu.Unlock()
	if base != nil {
		_ = m.mgr.Sync(discovery.Wants(base))
	}
	m.syncMu.Unlock()
	log.Infof("members: node %s now runs member discovery for the fleet", m.fleet.Node())
	record(api.Event{Kind: "members", Message: fmt.Sprintf("node %s now runs member discovery for the fleet", m.fleet.Node())})
	m.poke()
	<-ctx.Done()
	m.syncMu.Lock()
	m.mu.Lock()
	m.leading = false
	m.mu.Unlock()
	_ = m.mgr.Sync(nil)
	m.syncMu.Unlock()
	if !m.isWanted() && m.b.st != nil {
		// No pool discovers any more: the leader, still elected until it resigns, deletes
		// the shared members so a pool given members later starts from its own sources.
		_, have := sharedOf(m.b.st.Data())
		wctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := discovery.Publish(wctx, m.fleet.Client(), m.fleet.Path()+"/", guard, discovery.View{}, have); err != nil {
			log.Warningf("members: deleting the fleet's members: %v", err)
		}
		cancel()
	}
}

func (m *blockMembers) poke() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// publish writes the leader's view into the shared state (sources that have not answered
// yet keep what the state holds).
func (m *blockMembers) publish() {
	m.mu.Lock()
	leading, guard := m.leading, m.guard
	m.mu.Unlock()
	if !leading {
		return
	}
	d := m.b.st.Data()
	shared, have := sharedOf(d)
	view := discovery.Carry(m.mgr.View(), shared)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := discovery.Publish(ctx, m.fleet.Client(), m.fleet.Path()+"/", guard, view, have); err != nil {
		log.Warningf("members: writing the fleet's members: %v", err)
	}
}

// sharedOf is the members in a fleet's state, and the pools it holds members of.
func sharedOf(d *state.Data) (discovery.View, []string) {
	entries := map[string][]byte{}
	var pools []string
	for k, e := range d.Entries {
		if pool, ok := strings.CutPrefix(k, state.MembersPrefix); ok {
			entries[k] = e.Value
			pools = append(pools, pool)
		}
	}
	return discovery.SharedView(entries), pools
}

// stopMembers stops the sources and the recompiling goroutine, and waits for them.
func (b *Block) stopMembers() {
	m := b.members
	if m == nil {
		return
	}
	b.members = nil
	close(m.done)
	if m.cancel != nil {
		m.cancel()
	}
	m.wg.Wait()
	m.mgr.Stop()
}

// withMembers is res with the discovered members joined, after making the running sources
// those res wants. Called under b.mu before each compile.
func (b *Block) withMembers(res *config.Config) *config.Config {
	m := b.members
	if m == nil {
		return res
	}
	m.mu.Lock()
	m.base = res
	m.mu.Unlock()
	wants := discovery.Wants(res)
	if m.fleet != nil {
		// Every node answers from the shared members; only the leader's sources run.
		m.setWanted(len(wants) > 0)
		m.syncMu.Lock()
		m.mu.Lock()
		leading := m.leading
		m.mu.Unlock()
		if leading {
			if err := m.mgr.Sync(wants); err != nil {
				log.Errorf("members: %v", err)
			}
		}
		m.syncMu.Unlock()
		if leading {
			m.poke()
		}
		view, _ := sharedOf(b.st.Data())
		return discovery.Apply(res, view)
	}
	if err := m.mgr.Sync(wants); err != nil {
		log.Errorf("members: %v", err)
	}
	return discovery.Apply(res, m.mgr.View())
}

// loop recompiles the snapshot after the sources' reports changed (coalesced: one compile
// for a burst of reports).
func (m *blockMembers) loop() {
	defer m.wg.Done()
	for {
		select {
		case <-m.done:
			return
		case <-m.kick:
		}
		if m.fleet != nil {
			m.publish() // every node recompiles when the state it watches changes
			continue
		}
		m.recompile()
	}
}

func (m *blockMembers) recompile() {
	b := m.b
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.snap.Load()
	m.mu.Lock()
	base := m.base
	m.mu.Unlock()
	if !b.running || old == nil || base == nil {
		return
	}
	res := discovery.Apply(base, m.mgr.View())
	cs := compile(b.cfg, res, b.st, b.voter(), old.compiled)
	cs.stamp, cs.queue = old.stamp, &b.episodes
	cs.acquire()
	b.buildScopes(cs)
	b.snap.Store(newSnapshot(cs, old.revision))
	gone := targetTemplates(old.targets)
	old.forgetSeries(cs)
	old.handOver(cs)
	forgetTemplateSeries(gone)
	pruneRamps(old.compiled, append(liveSnapshots(), cs))
}

// poolDiscovery is what compile puts in a pool with members or flatten: stale and why.
func poolDiscovery(p *policy.Pool, pc *config.Pool) {
	if len(pc.Members) == 0 && pc.Flatten == nil {
		return
	}
	p.Flatten = pc.Flatten != nil
	p.Discovery = &policy.DiscoveryStatus{Stale: pc.MembersStale, Error: pc.MembersError}
}

// addressDiscovery is what compile puts in an address that discovery found or resolved.
func addressDiscovery(a *policy.Address, ac *config.Address) {
	a.Source = ac.Source
	if len(ac.Resolved) > 0 {
		a.Flat = make([]net.IP, len(ac.Resolved))
		for i, ip := range ac.Resolved {
			a.Flat[i] = ip.AsSlice()
		}
	}
}

// portTemplates are tmpls probing port instead of their own (an SRV member's checks).
// ICMP has no port: its templates stay.
func portTemplates(tmpls []*healthcheck.Template, port int) []*healthcheck.Template {
	if port == 0 {
		return tmpls
	}
	out := make([]*healthcheck.Template, len(tmpls))
	for i, t := range tmpls {
		if t.Protocol == healthcheck.ICMP {
			out[i] = t
			continue
		}
		c := *t
		c.Port = port
		out[i] = &c
	}
	return out
}
