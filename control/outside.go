package control

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/gtm-dns/coredns-gtm/api"
	"github.com/gtm-dns/coredns-gtm/healthcheck"
	"github.com/gtm-dns/coredns-gtm/policy"
	"github.com/gtm-dns/coredns-gtm/state"
	"github.com/gtm-dns/coredns-gtm/state/etcd"
)

// Health from outside, the block's side: pushed verdicts go to the registry (one node) or
// through etcd to every node's registry (a fleet).

// PushHealth implements api.HealthPusher.
func (b *Block) PushHealth(ctx context.Context, pool, address, check string, v healthcheck.Pushed) error {
	if be, ok := b.st.Backend().(*etcd.Backend); ok && b.cfg.Cluster != nil {
		return be.PushVerdict(ctx, address, check, etcd.PushedVerdict{Healthy: v.Healthy, Reason: v.Reason, At: v.At, Expires: v.Expires, By: be.Node()})
	}
	return probers.Push(address, check, v)
}

var pushWatches struct {
	sync.Mutex
	m map[*etcd.Backend]bool
}

// watchPushed hands the fleet's pushed verdicts to the registry, once per backend for as
// long as it lives.
func watchPushed(be *etcd.Backend) {
	pushWatches.Lock()
	defer pushWatches.Unlock()
	if pushWatches.m[be] {
		return
	}
	if pushWatches.m == nil {
		pushWatches.m = map[*etcd.Backend]bool{}
	}
	pushWatches.m[be] = true
	go func() {
		be.WatchPushed(context.Background(), func(address, check string, v etcd.PushedVerdict) {
			probers.Push(address, check, healthcheck.Pushed{Healthy: v.Healthy, Reason: v.Reason, At: v.At, Expires: v.Expires, By: v.By})
		})
		pushWatches.Lock()
		delete(pushWatches.m, be)
		pushWatches.Unlock()
	}()
}

// brakeRun is a block's running brake. It is kept by the block's key across reloads (a
// reload in a wave keeps the brake engaged), counted by the instances that use it, and
// stepped by one goroutine while one does.
type brakeRun struct {
	b     *policy.Brake
	fleet bool
	be    *etcd.Backend // the fleet's brake: releases go through etcd
	refs  int           // guarded by brakes
	stop  context.CancelFunc
	done  chan struct{}
}

var brakes struct {
	sync.Mutex
	m map[string]*brakeRun
}

// brakeStep is how often the brake looks at every checked address.
const brakeStep = 100 * time.Millisecond

// BrakeConfig is `brake PERCENT DURATION`, in the gtm block (this node's) or its cluster
// block (the fleet's: Fleet).
type BrakeConfig struct {
	Percent int
	Window  time.Duration
	Fleet   bool
}

// acquireBrake returns the running brake of the block of key (nil without `brake`),
// starting it.
func acquireBrake(key string, cfg *BrakeConfig, st *state.Store) *brakeRun {
	if cfg == nil {
		return nil
	}
	brakes.Lock()
	defer brakes.Unlock()
	r := brakes.m[key]
	if r == nil || r.b.Percent != cfg.Percent || r.b.Window != cfg.Window || r.fleet != cfg.Fleet {
		r = &brakeRun{b: policy.NewBrake(cfg.Percent, cfg.Window), fleet: cfg.Fleet}
		if old := brakes.m[key]; old != nil {
			// A reload changed the brake: the old one stops now (its instance is going),
			// and the instances still holding it release the new one by key.
			r.refs = old.refs
			old.stop()
			<-old.done
		}
		if brakes.m == nil {
			brakes.m = map[string]*brakeRun{}
		}
		brakes.m[key] = r
	}
	if be, ok := st.Backend().(*etcd.Backend); ok && r.fleet {
		r.be = be
	}
	r.refs++
	if r.refs == 1 || r.stop == nil {
		ctx, cancel := context.WithCancel(context.Background())
		r.stop, r.done = cancel, make(chan struct{})
		go r.loop(ctx, r.done)
	}
	return r
}

// releaseBrake drops a use of the brake of the block of key; the last one stops its
// goroutine.
func releaseBrake(key string) {
	brakes.Lock()
	r := brakes.m[key]
	if r == nil {
		brakes.Unlock()
		return
	}
	r.refs--
	var stop context.CancelFunc
	var done chan struct{}
	if r.refs <= 0 {
		delete(brakes.m, key)
		stop, done = r.stop, r.done
	}
	brakes.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

func (r *brakeRun) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	if r.be != nil {
		go r.be.WatchBrakeReleases(ctx, func(t time.Time) {
			if r.b.Release(t) {
				noteBrake(r, false, "released by an operator (fleet)")
			}
		})
	}
	tick := time.NewTicker(brakeStep)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			switch r.b.Step(now) {
			case policy.BrakeEngaged:
				noteBrake(r, true, "")
			case policy.BrakeReleased:
				noteBrake(r, false, "the share of addresses down fell back")
			}
		}
	}
}

// compiledBrake gives the addresses of a new snapshot their brake cells: every address
// with a health check is a checked address.
func compiledBrake(r *brakeRun, pools []*policy.Pool) {
	if r == nil {
		return
	}
	r.b.Begin()
	for _, p := range pools {
		for _, a := range p.Addrs {
			if a.Health != nil {
				a.Brake = r.b.Cell(p.Name+"/"+a.Text, a.Health)
			}
		}
	}
	r.b.End()
}

// BrakeEngaged reports whether some block's brake holds the verdicts now (the
// coredns_gtm_brake_engaged gauge, which plugin/ declares).
func BrakeEngaged() bool {
	brakes.Lock()
	defer brakes.Unlock()
	for _, r := range brakes.m {
		if r.b.Engaged() {
			return true
		}
	}
	return false
}

func noteBrake(r *brakeRun, engaged bool, why string) {
	st := r.b.State()
	scope := "this node's"
	if r.fleet {
		scope = "the fleet's"
	}
	var msg string
	if engaged {
		msg = fmt.Sprintf("brake engaged: %d of %d checked addresses turned down within %s (more than %d%%): %s brake holds the verdicts from before the wave (release: POST /api/v1/brake/release)", st.Down, st.Of, r.b.Window, r.b.Percent, scope)
		log.Warningf("%s", msg)
	} else {
		msg = fmt.Sprintf("brake released: %s; %d of %d checked addresses down: the real verdicts apply", why, st.Down, st.Of)
		log.Infof("%s", msg)
	}
	action := "brake"
	if !engaged {
		action = "release"
	}
	pokeHolders()
	record(api.Event{Kind: "health", Action: action, Message: msg})
}

// BrakeStatus implements api.Brake.
func (b *Block) BrakeStatus() (api.BrakeDoc, bool) {
	r := b.brake
	if r == nil {
		return api.BrakeDoc{}, false
	}
	st := r.b.State()
	doc := api.BrakeDoc{Percent: r.b.Percent, Window: r.b.Window.String(), Engaged: st.Engaged, Down: st.Down, Of: st.Of, Held: st.Held, Fleet: r.fleet}
	if st.Engaged {
		doc.Since = timePtr(st.Since)
	}
	if !st.Released.IsZero() {
		doc.Released = timePtr(st.Released)
	}
	return doc, true
}

// ReleaseBrake implements api.Brake: by hand; in a fleet with the cluster's brake, on every node.
func (b *Block) ReleaseBrake(ctx context.Context, by string) (bool, error) {
	r := b.brake
	if r == nil {
		return false, nil
	}
	now := time.Now()
	// Engaged before the release is what the caller asked about: with the fleet's brake,
	// this node's own watch of the release key may apply the release (same time) before
	// the Release below does.
	was := r.b.Engaged()
	if r.be != nil {
		if err := r.be.ReleaseBrake(ctx, now); err != nil {
			return false, err
		}
	}
	if r.b.Release(now) {
		noteBrake(r, false, "released by an operator from "+by)
	}
	return was, nil
}

func timePtr(t time.Time) *time.Time {
	u := t.UTC()
	return &u
}

// Ready reports whether every check of the address has a verdict (for the brake: a first
// verdict is no change of health).
func (s *checkSet) Ready() bool {
	for _, p := range s.parts {
		if r, ok := p.(interface{ Ready() bool }); ok && !r.Ready() {
			return false
		}
	}
	return true
}

// Ready reports whether the cell has a verdict: the quorum's, or its local prober's.
func (c *votedHealth) Ready() bool {
	if c.decided.Load() {
		return true
	}
	t := c.t.Load()
	return t != nil && t.Ready()
}

// Vantage (`vantage REGION...` in a template): only the nodes whose cluster region is listed
// probe and vote on the check; the quorum is counted among them (they alone publish votes on
// its key); a node outside follows their verdict, and keeps its last one while no voter is
// alive.

// vantageOf marks a template this node follows rather than probes.
func vantageOf(b Config, t *healthcheck.Template) {
	if len(t.Vantage) > 0 && b.Cluster != nil && !slices.Contains(t.Vantage, b.Cluster.Region) {
		t.Follow = true
	}
}

// follow decides a follower's cell from the voters' votes: down when the live voters that
// report it down are at least percent of the live voters that report on it.
func (v *voter) follow(c *votedHealth, t *healthcheck.Target, all map[string][]etcd.Vote, connected bool, percent int) {
	var votes []etcd.Vote
	if connected {
		live := v.be.LiveNodes()
		for _, vt := range all[c.key] {
			if live[vt.Node] {
				votes = append(votes, vt)
			}
		}
	}
	if len(votes) == 0 {
		// No voter alive (or partitioned): keep the last verdict, flagged in the status.
		c.noVoter.Store(true)
		c.mu.Lock()
		c.votes, c.downN, c.of, c.differ = nil, 0, 0, false
		c.mu.Unlock()
		return
	}
	c.noVoter.Store(false)
	live := make(map[string]bool, len(votes))
	for _, vt := range votes {
		live[vt.Node] = true
	}
	down, n, of := etcd.Decide(true, votes, live, percent)
	sort.Slice(votes, func(i, j int) bool { return votes[i].Node < votes[j].Node })
	c.mu.Lock()
	c.votes, c.downN, c.of, c.differ = votes, n, of, false
	c.mu.Unlock()
	was, had := c.down.Load(), c.decided.Load()
	c.down.Store(down)
	c.decided.Store(true)
	if had && was != down || !had && down {
		noteQuorum(t, down, votes, n, of)
	}
}

// Vantage implements the API's vantage reporter.
func (c *votedHealth) Vantage() (regions []string, follower, noVoter bool) {
	t := c.t.Load()
	if t == nil {
		return nil, false, false
	}
	tmpl := t.Template()
	return tmpl.Vantage, tmpl.Follow, tmpl.Follow && c.noVoter.Load()
}

// Vantage implements the API's vantage reporter: the cell that speaks for the address's
// verdict.
func (s *votedCheckSet) Vantage() (regions []string, follower, noVoter bool) {
	if vh := votedOf(s); vh != nil {
		return vh.Vantage()
	}
	return nil, false, false
}
