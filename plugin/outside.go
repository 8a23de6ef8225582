package gtm

import (
	"context"
	"sync"

	"github.com/gtm-dns/coredns-gtm/healthcheck"
	"github.com/gtm-dns/coredns-gtm/state/etcd"
)

// Health from outside, the block's side: pushed verdicts go to the registry (one node) or
// through etcd to every node's registry (a fleet).

// PushHealth implements api.HealthPusher.
func (g *GTM) PushHealth(ctx context.Context, pool, address, check string, v healthcheck.Pushed) error {
	if be, ok := g.st.Backend().(*etcd.Backend); ok && g.block.cluster != nil {
		return be.PushVerdict(ctx, address, check, etcd.PushedVerdict{Healthy: v.Healthy, Reason: v.Reason, At: v.At, Expires: v.Expires, By: be.Node()})
	}
	return registry.Push(address, check, v)
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
			registry.Push(address, check, healthcheck.Pushed{Healthy: v.Healthy, Reason: v.Reason, At: v.At, Expires: v.Expires, By: v.By})
		})
		pushWatches.Lock()
		delete(pushWatches.m, be)
		pushWatches.Unlock()
	}()
}
