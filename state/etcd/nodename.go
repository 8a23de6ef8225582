package etcd

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Two processes configured with one node name would share one node record and one vote per
// address, each overwriting the other's (and the quorum counting them as one node). A name
// is held by the lease its record is written under: a node writes its record only where
// the record is absent or already under one of its own leases. Finding it under another
// process's lease, the node is fenced: it keeps answering DNS and serving the API from the
// shared state, but registers nothing and publishes no vote, and says why (NodeConflict),
// until that lease ends. A node restarted after a crash thus waits at most one lease TTL
// (its old lease) for its own name; a true duplicate stays fenced, loudly.

// maxOwnLeases bounds the leases this process remembers as its own (one per session).
const maxOwnLeases = 8

// claimNode writes the node record val under lease if the name is free or this process's.
// It returns the holder's record when another process holds the name.
func (b *Backend) claimNode(lease clientv3.LeaseID, val string) (holder *clientv3.GetResponse, err error) {
	key := b.prefix + "nodes/" + b.cfg.Node
	ctx, cancel := context.WithTimeout(b.ctx, requestTimeout)
	defer cancel()
	resp, err := b.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.LeaseValue(key), "=", lease)).
		Then(clientv3.OpPut(key, val, clientv3.WithLease(lease))).
		Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return nil, err
	}
	if resp.Succeeded {
		return nil, nil
	}
	got := (*clientv3.GetResponse)(resp.Responses[0].GetResponseRange())
	var mod int64
	if len(got.Kvs) > 0 {
		if !b.ownLease(clientv3.LeaseID(got.Kvs[0].Lease)) {
			return got, nil
		}
		mod = got.Kvs[0].ModRevision // this process's record of an earlier session
	}
	resp, err = b.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", mod)).
		Then(clientv3.OpPut(key, val, clientv3.WithLease(lease))).
		Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return nil, err
	}
	if resp.Succeeded {
		return nil, nil
	}
	got = (*clientv3.GetResponse)(resp.Responses[0].GetResponseRange())
	if len(got.Kvs) == 0 || b.ownLease(clientv3.LeaseID(got.Kvs[0].Lease)) {
		return nil, errRetryClaim // changed between the two reads: next round
	}
	return got, nil
}

var errRetryClaim = fmt.Errorf("cluster: node record changed while claimed")

// rememberLease records a lease this process granted.
func (b *Backend) rememberLease(id clientv3.LeaseID) {
	b.reg.mu.Lock()
	defer b.reg.mu.Unlock()
	b.reg.leases = append(b.reg.leases, id)
	if len(b.reg.leases) > maxOwnLeases {
		b.reg.leases = b.reg.leases[len(b.reg.leases)-maxOwnLeases:]
	}
}

func (b *Backend) ownLease(id clientv3.LeaseID) bool {
	b.reg.mu.Lock()
	defer b.reg.mu.Unlock()
	for _, l := range b.reg.leases {
		if l == id {
			return true
		}
	}
	return false
}

// setConflict records the holder of this node's name (nil: the name is this node's) and
// tells the subscribers when that changes.
func (b *Backend) setConflict(holder *clientv3.GetResponse) {
	msg, by := "", int64(0)
	if holder != nil && len(holder.Kvs) > 0 {
		by = holder.Kvs[0].Lease
		var n Node
		json.Unmarshal(holder.Kvs[0].Value, &n)
		seen := "never"
		if !n.LastSeen.IsZero() {
			seen = n.LastSeen.UTC().Format(time.RFC3339)
		}
		msg = fmt.Sprintf("cluster: node name %q is registered by another process (region %q, version %q, lease %x, last seen %s): this node registers nothing and publishes no health votes until that name is free; give every node of the fleet its own name (cluster { node NAME })",
			b.cfg.Node, n.Region, n.Version, holder.Kvs[0].Lease, seen)
	}
	b.reg.mu.Lock()
	// Told once per holder (its lease), not per heartbeat of its record.
	changed := (b.reg.conflict == "") != (msg == "") || b.reg.conflictBy != by
	b.reg.conflict, b.reg.conflictBy = msg, by
	subs := make([]func(string), 0, len(b.reg.conflictSubs))
	for _, fn := range b.reg.conflictSubs {
		subs = append(subs, fn)
	}
	b.reg.mu.Unlock()
	if changed {
		for _, fn := range subs {
			fn(msg)
		}
	}
}

// NodeConflict is why this node is fenced (its name is another process's), "" when not.
func (b *Backend) NodeConflict() string {
	b.reg.mu.Lock()
	defer b.reg.mu.Unlock()
	return b.reg.conflict
}

// OnNodeConflict calls fn with NodeConflict's message when it changes ("" when the name
// became this node's). fn must not block. It returns the function that stops it.
func (b *Backend) OnNodeConflict(fn func(msg string)) (cancel func()) {
	b.reg.mu.Lock()
	defer b.reg.mu.Unlock()
	if b.reg.conflictSubs == nil {
		b.reg.conflictSubs = map[int]func(string){}
	}
	id := b.reg.conflictNext
	b.reg.conflictNext++
	b.reg.conflictSubs[id] = fn
	return func() {
		b.reg.mu.Lock()
		defer b.reg.mu.Unlock()
		delete(b.reg.conflictSubs, id)
	}
}
