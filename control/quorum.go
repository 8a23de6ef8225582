package control

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gtm-dns/coredns-gtm/api"
	"github.com/gtm-dns/coredns-gtm/healthcheck"
	"github.com/gtm-dns/coredns-gtm/state/etcd"
)

// A fleet judges health together (PRODUCT.md, "Health quorum"): every node probes every
// target itself and publishes its verdict as a vote under its lease; the effective health
// of an address is etcd.Decide over the votes of the live nodes. The voter recomputes the
// verdicts when votes, the node list or the connection change and stores each in the one
// atomic the query path reads (votedHealth.down); nothing per query.

// voter is the quorum of one cluster backend: one per open fleet store (stores.go), which
// starts it and stops it with the store.
type voter struct {
	be   *etcd.Backend
	kick chan struct{}

	mu      sync.Mutex
	percent int                     // the quorum share of the block in charge (setPercent)
	cells   map[string]*votedHealth // vote key -> cell; cells outlive snapshots, like targets
}

// votedHealth is an address's health in a fleet: the quorum verdict once there is one, the
// local prober's before. It implements policy.Health and the API's reporters.
type votedHealth struct {
	key  string
	t    atomic.Pointer[healthcheck.Target] // the local prober (the newest handle)
	refs int                                // snapshots using the cell; guarded by voter.mu

	decided atomic.Bool
	down    atomic.Bool
	noVoter atomic.Bool // vantage: this node follows and no voter is alive (outside.go)

	mu     sync.Mutex
	votes  []etcd.Vote
	downN  int
	of     int
	differ bool // the quorum verdict differs from the local one
}

func newVoter(be *etcd.Backend) *voter {
	return &voter{be: be, kick: make(chan struct{}, 1), cells: map[string]*votedHealth{}}
}

// start runs the voter's loop until the returned function is called, which waits for it.
func (v *voter) start() (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	cancelConn := v.be.OnConnection(func(bool) { v.poke() })
	cancelFleet := v.be.OnFleet(v.poke)
	go func() {
		defer close(done)
		v.loop(quit)
	}()
	return func() {
		cancelConn()
		cancelFleet()
		close(quit)
		<-done
	}
}

// setPercent sets the quorum share (the cluster block's quorum): a reload may change it
// while the loop decides.
func (v *voter) setPercent(p int) {
	v.mu.Lock()
	v.percent = p
	v.mu.Unlock()
	v.poke()
}

// voteKey names a check of an address the same way on every node: the address and a hash
// of what the probe does (the template's fingerprint, not its name). The source address is
// left out: the same check from different vantage points is what the fleet votes on.
func voteKey(t *healthcheck.Target) string {
	tmpl := *t.Template()
	tmpl.Source, tmpl.Follow = netip.Addr{}, false
	id := tmpl.Fingerprint()
	if ca := t.CheckAddr(); ca != "" {
		id += "|check_address=" + ca // a different target: a vote of its own
	}
	sum := sha256.Sum256([]byte(id))
	return t.Addr() + "/" + hex.EncodeToString(sum[:8])
}

// cell returns the voted health of target t for a new snapshot.
func (v *voter) cell(t *healthcheck.Target) *votedHealth {
	key := voteKey(t)
	v.mu.Lock()
	c, ok := v.cells[key]
	if !ok {
		c = &votedHealth{key: key}
		v.cells[key] = c
	}
	c.refs++
	c.t.Store(t)
	v.mu.Unlock()
	if t.Ready() && !t.Template().Follow { // a follower does not vote (outside.go)
		v.publish(c, t.Healthy(), t.Status().LastError)
	}
	v.poke()
	return c
}

// release drops a snapshot's use of a cell; the last one withdraws this node's vote.
func (v *voter) release(c *votedHealth) {
	v.mu.Lock()
	c.refs--
	last := c.refs == 0
	if last {
		delete(v.cells, c.key)
	}
	v.mu.Unlock()
	if last {
		v.be.WithdrawVote(c.key)
	}
}

// local takes a local verdict change of a probed target.
func (v *voter) local(ch healthcheck.Change) {
	key := voteKey(ch.Target)
	v.mu.Lock()
	c := v.cells[key]
	v.mu.Unlock()
	if t := c.target(); t == nil || !t.Shares(ch.Target) {
		return // not this voter's prober (another block's or an old template's)
	}
	v.publish(c, ch.Healthy, ch.Err)
	v.poke()
}

func (v *voter) publish(c *votedHealth, healthy bool, errText string) {
	if healthy {
		errText = ""
	}
	v.be.PublishVote(c.key, etcd.Vote{Healthy: healthy, Error: errText, At: time.Now()})
}

func (v *voter) poke() {
	select {
	case v.kick <- struct{}{}:
	default:
	}
}

// loop recomputes the verdicts after every change (votes, nodes, connection: an expired
// lease arrives as deletes), and every 10 s as a backstop. At 10,000 cells a pass costs
// ~50 ms (docs/BENCHMARKS.md), so the backstop is not more often.
func (v *voter) loop(quit chan struct{}) {
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-quit:
			return
		case <-v.kick:
		case <-tick.C:
		}
		v.decideAll()
	}
}

func (v *voter) decideAll() {
	v.mu.Lock()
	cells := make([]*votedHealth, 0, len(v.cells))
	for _, c := range v.cells {
		cells = append(cells, c)
	}
	percent := v.percent
	v.mu.Unlock()
	connected := v.be.Connected()
	var all map[string][]etcd.Vote
	if connected {
		all = v.be.Votes()
	}
	node, region := v.be.Node(), v.be.Region()
	for _, c := range cells {
		t := c.t.Load()
		if t != nil && t.Template().Follow {
			v.follow(c, t, all, connected, percent) // outside the vantage regions (outside.go)
			continue
		}
		if t == nil || !t.Ready() {
			continue
		}
		local := t.Healthy()
		// The verdict is the backend's rule (this node's own vote is its verdict now, its
		// write may lag; partitioned, it decides alone); the votes are kept for the status.
		down, n, of := v.be.Quorum(c.key, local, percent)
		var votes []etcd.Vote
		if connected {
			votes = make([]etcd.Vote, 0, len(all[c.key])+1)
			for _, vt := range all[c.key] {
				if vt.Node != node {
					votes = append(votes, vt)
				}
			}
			me := etcd.Vote{Node: node, Region: region, Healthy: local, At: time.Now()}
			if !local {
				me.Error = t.Status().LastError
			}
			votes = append(votes, me)
		}
		sort.Slice(votes, func(i, j int) bool { return votes[i].Node < votes[j].Node })
		c.mu.Lock()
		c.votes, c.downN, c.of, c.differ = votes, n, of, down == local
		c.mu.Unlock()
		was, had := c.down.Load(), c.decided.Load()
		c.down.Store(down)
		c.decided.Store(true)
		if had && was != down || !had && down != !local {
			noteQuorum(t, down, votes, n, of)
		}
	}
}

func (c *votedHealth) target() *healthcheck.Target {
	if c == nil {
		return nil
	}
	return c.t.Load()
}

// Healthy implements policy.Health.
func (c *votedHealth) Healthy() bool {
	if c.decided.Load() {
		return !c.down.Load()
	}
	if t := c.t.Load(); t != nil {
		return t.Healthy()
	}
	return true
}

// RTT implements policy.Health: the local probe's.
func (c *votedHealth) RTT() time.Duration {
	if t := c.t.Load(); t != nil {
		return t.RTT()
	}
	return 0
}

// Status is the local prober's state with the quorum verdict as Healthy.
func (c *votedHealth) Status() healthcheck.Status {
	var s healthcheck.Status
	if t := c.t.Load(); t != nil {
		s = t.Status()
	}
	s.Healthy = c.Healthy()
	return s
}

// Votes implements the API's vote reporter.
func (c *votedHealth) Votes() (votes []api.VoteDoc, down, of int, local bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, v := range c.votes {
		votes = append(votes, api.VoteDoc{Node: v.Node, Region: v.Region, Healthy: v.Healthy, Error: v.Error, At: v.At.UTC()})
	}
	local = true
	if t := c.t.Load(); t != nil {
		local = t.Healthy()
	}
	return votes, c.downN, c.of, local
}

// differs reports whether the quorum verdict is not the local one (for the metric).
func (c *votedHealth) differs() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.decided.Load() && c.differ
}

func noteQuorum(t *healthcheck.Target, down bool, votes []etcd.Vote, n, of int) {
	word := "up"
	if down {
		word = "down"
	}
	parts := make([]string, 0, len(votes))
	for _, v := range votes {
		s := v.Node + ": up"
		if !v.Healthy {
			s = v.Node + ": down"
			if v.Error != "" {
				s += " (" + v.Error + ")"
			}
		}
		parts = append(parts, s)
	}
	msg := fmt.Sprintf("%s is %s by quorum (%d of %d report it down; healthcheck %s): %s", targetText(t), word, n, of, t.Template().Name, strings.Join(parts, ", "))
	if down {
		log.Warningf("%s", msg)
	} else {
		log.Infof("%s", msg)
	}
	healthy := !down
	metrics.QuorumChanges.Inc()
	pokeHolders()
	record(api.Event{Kind: "health", Address: t.Addr(), CheckAddress: t.CheckAddr(), Healthy: &healthy, Message: msg})
}
