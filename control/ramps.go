package control

import (
	"slices"
	"sync"
	"time"

	"github.com/gtm-dns/coredns-gtm/config"
	"github.com/gtm-dns/coredns-gtm/policy"
)

// poolFailover compiles a pool's min_available share and slow_start.
func poolFailover(p *policy.Pool, pc *config.Pool) {
	if pct := pc.MinAvailablePercent; pct != nil {
		p.MinPercent = *pct
	}
	p.SlowStart = time.Duration(pc.SlowStart)
}

// domainFailover compiles a domain's fallback, failback and degraded TTL; the fallback pool
// is the new snapshot's (a domain reused from the last snapshot may name a pool compiled anew).
func domainFailover(d *policy.Domain, dc *config.Domain, pools map[string]*policy.Pool) {
	if dc.TTLDegraded != nil {
		d.TTLDegraded, d.HasTTLDegraded = *dc.TTLDegraded, true
	}
	d.Fallback = policy.ParseFallback(dc.Fallback)
	if d.Fallback == policy.FallbackPoolKind {
		d.FallbackPool = pools[dc.Fallback]
	}
	d.FailbackManual, d.FailbackAfter, _ = config.ParseFailback(dc.Failback)
}

// ramps are the slow-start cells of addresses by pool and address: like mode cells they
// outlive snapshots, so a reload or an API write does not restart the ramp of an unchanged
// address; a cell leaves with its address (pruneRamps), so an address removed and added
// again ramps up again. Process-wide because pool names are unique across the process's
// gtm blocks and a reload's new block takes over the old one's cells; its users are
// compiled.acquireRamps (at compile) and pruneRamps (at swap and Stop).
var ramps struct {
	sync.Mutex
	m     map[string]*policy.RampCell
	pools map[string]bool // pools that had cells: a new address of one of them ramps up
}

// rampNeed is a slow-start address compiled anew, and its pool.
type rampNeed struct {
	pool string
	a    *policy.Address
}

// acquireRamps gives the slow-start addresses compiled anew their cells. An address added
// to a running pool ramps up from now; the addresses of a new pool (every pool at startup)
// start at full weight, since ramping them all together changes nothing but the pool's
// first answers.
func (cs *compiled) acquireRamps() {
	if len(cs.ramped) == 0 {
		return
	}
	ramps.Lock()
	defer ramps.Unlock()
	if ramps.m == nil {
		ramps.m, ramps.pools = map[string]*policy.RampCell{}, map[string]bool{}
	}
	for _, n := range cs.ramped {
		k := n.pool + "/" + n.a.Text
		c := ramps.m[k]
		if c == nil {
			since := time.Unix(0, 0)
			if ramps.pools[n.pool] {
				since = time.Now()
			}
			c = policy.NewRampCell(since)
			ramps.m[k] = c
		}
		n.a.Ramp = c
	}
	for _, n := range cs.ramped {
		ramps.pools[n.pool] = true // after all its cells are made
	}
	cs.ramped = nil
}

// pruneRamps forgets the cells of old's slow-start addresses that none of keep has (the
// snapshots in force), and the pools none of keep has.
func pruneRamps(old *compiled, keep []*compiled) {
	ramps.Lock()
	defer ramps.Unlock()
	for _, p := range old.Pools {
		if p.SlowStart <= 0 {
			continue
		}
		var kept []*policy.Pool
		for _, cs := range keep {
			if q := cs.Pool(p.Name); q != nil && q.SlowStart > 0 {
				kept = append(kept, q)
			}
		}
		if len(kept) == 0 {
			delete(ramps.pools, p.Name)
		}
		for _, a := range p.Addrs {
			if !slices.ContainsFunc(kept, func(q *policy.Pool) bool { return hasAddr(q, a.Text) }) {
				delete(ramps.m, p.Name+"/"+a.Text)
			}
		}
	}
}

func hasAddr(p *policy.Pool, text string) bool {
	for _, a := range p.Addrs {
		if a.Text == text {
			return true
		}
	}
	return false
}
