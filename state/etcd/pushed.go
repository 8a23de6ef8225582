package etcd

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/gtm-dns/coredns-gtm/state"
)

// Pushed verdicts of `protocol push` checks are shared by the fleet under
// PATH/pushed/ADDRESS/CHECK, each under a lease of its own: every node sees a verdict pushed
// to any node, and etcd forgets it on its own. The lease outlives the verdict's ttl by
// PushedKeep so that a node that starts after the verdict expired still sees it expired
// (failed) as the others do, rather than no verdict (healthy).

// PushedKeep is how long a pushed verdict stays in etcd after it expired.
const PushedKeep = time.Hour

// PushedVerdict is a pushed verdict as stored.
type PushedVerdict struct {
	Healthy bool      `json:"healthy"`
	Reason  string    `json:"reason,omitempty"`
	At      time.Time `json:"at"`
	Expires time.Time `json:"expires"`
	By      string    `json:"by,omitempty"` // the node that took the push
}

const pushedPrefix = "pushed/"

// PushVerdict stores a verdict for (address, check) under a new lease.
func (b *Backend) PushVerdict(ctx context.Context, address, check string, v PushedVerdict) error {
	if !b.Connected() {
		return state.ErrUnavailable
	}
	val, err := json.Marshal(v)
	if err != nil {
		return err
	}
	ttl := time.Until(v.Expires) + PushedKeep
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	lease, err := b.cli.Grant(ctx, int64(ttl/time.Second)+1)
	if err != nil {
		return storeError(err)
	}
	if _, err := b.cli.Put(ctx, b.prefix+pushedPrefix+address+"/"+check, string(val), clientv3.WithLease(lease.ID)); err != nil {
		return storeError(err)
	}
	return nil
}

// WatchPushed calls fn with every pushed verdict in etcd now and every one pushed later,
// until ctx ends or the backend closes.
func (b *Backend) WatchPushed(ctx context.Context, fn func(address, check string, v PushedVerdict)) {
	b.watchPrefix(ctx, pushedPrefix, func(rest string, val []byte) {
		i := strings.LastIndexByte(rest, '/')
		if i <= 0 || i == len(rest)-1 {
			return
		}
		var v PushedVerdict
		if json.Unmarshal(val, &v) != nil {
			return
		}
		fn(rest[:i], rest[i+1:], v)
	})
}

// brakeReleaseKey holds when an operator last released the fleet's brake.
const brakeReleaseKey = "brake/released"

// ReleaseBrake records a release of the fleet's brake at t: every node releases it.
func (b *Backend) ReleaseBrake(ctx context.Context, t time.Time) error {
	if !b.Connected() {
		return state.ErrUnavailable
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := b.cli.Put(ctx, b.prefix+brakeReleaseKey, t.UTC().Format(time.RFC3339Nano)); err != nil {
		return storeError(err)
	}
	return nil
}

// WatchBrakeReleases calls fn with the fleet's last brake release, now and at every new one,
// until ctx ends or the backend closes.
func (b *Backend) WatchBrakeReleases(ctx context.Context, fn func(t time.Time)) {
	b.watchPrefix(ctx, brakeReleaseKey, func(rest string, val []byte) {
		if rest != "" {
			return
		}
		if t, err := time.Parse(time.RFC3339Nano, string(val)); err == nil {
			fn(t)
		}
	})
}

// watchPrefix calls fn with the keys under PATH/prefix (the rest of the key after it) and
// their values, now and as they are put, until ctx ends or the backend closes: list, then
// watch from the list's revision; a failed watch lists again.
func (b *Backend) watchPrefix(ctx context.Context, prefix string, fn func(rest string, val []byte)) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(b.ctx, cancel)() // the backend's close ends the watch too
	prefix = b.prefix + prefix
	wait := 100 * time.Millisecond
	for ctx.Err() == nil {
		lctx, lcancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := b.cli.Get(lctx, prefix, clientv3.WithPrefix())
		lcancel()
		if err != nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, 2*time.Second)
			continue
		}
		wait = 100 * time.Millisecond
		for _, kv := range resp.Kvs {
			fn(strings.TrimPrefix(string(kv.Key), prefix), kv.Value)
		}
		wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		for wr := range b.cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1)) {
			if wr.Err() != nil || wr.Canceled {
				break
			}
			for _, ev := range wr.Events {
				if ev.Type == clientv3.EventTypePut {
					fn(strings.TrimPrefix(string(ev.Kv.Key), prefix), ev.Kv.Value)
				}
			}
		}
		wcancel()
	}
}

// storeError turns a failed etcd call into the store's unavailable error when etcd could
// not answer.
func storeError(err error) error {
	if unavailable(err) {
		return fmt.Errorf("%w (%v)", state.ErrUnavailable, err)
	}
	return err
}
