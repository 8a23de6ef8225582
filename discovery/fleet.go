package discovery

import (
	"context"
	"encoding/json"
	"log"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/gtm-dns/coredns-gtm/state"
)

// MembersPrefix keys a pool's shared members in a fleet's state: members/POOL holds the
// JSON of Members, written only by the node elected to discover.
const MembersPrefix = state.MembersPrefix

// Elect campaigns for key (an etcd election, concurrency.Election) as node and, while this
// node is elected, runs lead with a context that ends when the leadership does (the
// session's lease lost, or ctx ended) and a comparison that holds only while it leads (to
// guard its writes). It returns when ctx ends. When the elected node dies, its lease ends
// within ttl and the next campaigner leads.
func Elect(ctx context.Context, cli *clientv3.Client, key, node string, ttl int, lead func(ctx context.Context, guard clientv3.Cmp)) {
	for ctx.Err() == nil {
		s, err := concurrency.NewSession(cli, concurrency.WithTTL(ttl), concurrency.WithContext(ctx))
		if err != nil {
			sleep(ctx, time.Second)
			continue
		}
		e := concurrency.NewElection(s, key)
		if err := e.Campaign(ctx, node); err != nil {
			_ = s.Close()
			sleep(ctx, time.Second)
			continue
		}
		lctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-s.Done():
				cancel()
			case <-lctx.Done():
			}
		}()
		lead(lctx, clientv3.Compare(clientv3.CreateRevision(e.Key()), "=", e.Rev()))
		cancel()
		rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = e.Resign(rctx)
		rcancel()
		_ = s.Close()
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Publish writes view's pools under prefix+MembersPrefix (prefix is the fleet's PATH + "/")
// and deletes the keys of pools no longer there (have lists the pools the state holds now),
// in one transaction that holds only while guard does.
func Publish(ctx context.Context, cli *clientv3.Client, prefix string, guard clientv3.Cmp, view View, have []string) error {
	var ops []clientv3.Op
	for pool, pv := range view {
		b, err := json.Marshal(Share(pv))
		if err != nil {
			return err
		}
		ops = append(ops, clientv3.OpPut(prefix+MembersPrefix+pool, string(b)))
	}
	for _, pool := range have {
		if _, ok := view[pool]; !ok {
			ops = append(ops, clientv3.OpDelete(prefix+MembersPrefix+pool))
		}
	}
	if len(ops) == 0 {
		return nil
	}
	resp, err := cli.Txn(ctx).If(guard).Then(ops...).Commit()
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		log.Printf("[INFO] plugin/gtm: members not written: this node no longer leads discovery")
	}
	return nil
}

// SharedView is the view of the members in a fleet's state entries (key -> JSON value,
// keys relative to PATH/).
func SharedView(entries map[string][]byte) View {
	v := View{}
	for k, val := range entries {
		pool, ok := strings.CutPrefix(k, MembersPrefix)
		if !ok || pool == "" {
			continue
		}
		var m Members
		if json.Unmarshal(val, &m) != nil {
			continue
		}
		v[pool] = Unshare(m)
	}
	return v
}

// Carry is view with each source that has not reported yet (a new leader's, just started)
// replaced by what prev (the shared state) holds for it: a takeover never empties a pool
// before the new leader's sources have answered.
func Carry(view, prev View) View {
	out := make(View, len(view))
	for pool, pv := range view {
		old := prev[pool]
		np := &PoolView{Sources: make([]SourceView, len(pv.Sources)), Flat: pv.Flat}
		for i, sv := range pv.Sources {
			np.Sources[i] = sv
			if sv.Synced || old == nil {
				continue
			}
			for _, o := range old.Sources {
				if o.Label == sv.Label {
					// the shared members, with this node's staleness when it has one
					np.Sources[i].Members, np.Sources[i].Synced = o.Members, o.Synced
					if !sv.Stale {
						np.Sources[i].Stale, np.Sources[i].Error = o.Stale, o.Error
					}
				}
			}
		}
		if old != nil && len(pv.Flat) > 0 {
			np.Flat = make(map[string]SourceView, len(pv.Flat))
			for t, sv := range pv.Flat {
				if o, ok := old.Flat[t]; ok && !sv.Synced {
					sv.Members, sv.Synced = o.Members, o.Synced
				}
				np.Flat[t] = sv
			}
		}
		out[pool] = np
	}
	return out
}
