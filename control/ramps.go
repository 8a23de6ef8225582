package control

import (
	"sync"
	"time"

	"github.com/gtm-dns/coredns-gtm/api"
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
// outlive snapshots, so a reload does not restart the ramp of an unchanged address. Pool
// names are unique across the process's gtm blocks.
var ramps struct {
	sync.Mutex
	m     map[string]*policy.RampCell
	pools map[string]bool // pools that had cells: a new address of one of them ramps up
}

// rampCell returns the slow-start cell of an address. An address added to a running pool
// ramps up from now; the addresses of a new pool (every pool at startup) start at full
// weight, since ramping them all together changes nothing but the pool's first answers.
func rampCell(pool, addr string) *policy.RampCell {
	ramps.Lock()
	defer ramps.Unlock()
	if ramps.m == nil {
		ramps.m, ramps.pools = map[string]*policy.RampCell{}, map[string]bool{}
	}
	k := pool + "/" + addr
	c := ramps.m[k]
	if c == nil {
		since := time.Unix(0, 0)
		if ramps.pools[pool] {
			since = time.Now()
		}
		c = policy.NewRampCell(since)
		ramps.m[k] = c
	}
	return c
}

// rampsCompiled marks the pools of a compile as seen (after all their cells are made).
func rampsCompiled(pools []*policy.Pool) {
	ramps.Lock()
	defer ramps.Unlock()
	for _, p := range pools {
		if p.SlowStart > 0 && ramps.pools != nil {
			ramps.pools[p.Name] = true
		}
	}
}

// explainFailover reports what the failover settings did to a decision.
func explainFailover(step *api.HopDoc, res *policy.Result, cl *policy.Client) {
	step.Degraded = res.Degraded
	if res.InFallback {
		step.Fallback = res.Fallback.String()
	}
	if res.Held && res.Pool != nil {
		step.Held = res.Pool.Name
	}
	if res.HashBits > 0 {
		if pfx, ok := policy.HashPrefix(cl); ok {
			step.HashedPrefix = pfx.String()
		}
	}
}
