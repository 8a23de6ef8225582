package gtm

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
	m map[string]*policy.RampCell
}

func rampCell(pool, addr string) *policy.RampCell {
	ramps.Lock()
	defer ramps.Unlock()
	if ramps.m == nil {
		ramps.m = map[string]*policy.RampCell{}
	}
	k := pool + "/" + addr
	c := ramps.m[k]
	if c == nil {
		c = policy.NewRampCell(time.Now())
		ramps.m[k] = c
	}
	return c
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
