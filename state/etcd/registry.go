package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"log"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

const (
	// heartbeat is how often the node record is rewritten for its last_seen (liveness
	// itself is the lease, kept alive by the session).
	heartbeat = 3 * time.Second
	// A vote is written when its verdict (healthy, error) changes and after a new lease,
	// never periodically: it lives under the lease, and its "at" is when the verdict began.
	// Instead, every reconcileEvery the node compares its written votes with the copy its
	// watch keeps and writes again those etcd lost (an operator's delete, a restored
	// backup), once they were written reconcileAfter ago (the watch has them by then).
	// batch is how many vote writes go in one transaction (etcd's --max-txn-ops is 128),
	// and batchBytes how large one may grow (--max-request-bytes is 1.5 MiB).
	batch      = 100
	batchBytes = 512 << 10
	// relay paces a bulk rewrite (a new lease, the first registration): at most one
	// transaction of batch votes per relay and node, so 10,000 votes take about 2 s and
	// etcd keeps answering everyone else meanwhile.
	relay = 20 * time.Millisecond
)

// reconcileEvery and reconcileAfter (see above) are variables for the tests only.
var (
	reconcileEvery = 30 * time.Second
	reconcileAfter = 10 * time.Second
)

// Node is a live node of the fleet, as it registers itself under PATH/nodes/NAME.
type Node struct {
	Name     string    `json:"name"`
	Region   string    `json:"region"`
	Revision int64     `json:"revision"` // the state revision it has applied
	Version  string    `json:"version"`
	LastSeen time.Time `json:"last_seen"`
}

// Vote is one node's verdict on one target, under PATH/votes/KEY/NODE.
type Vote struct {
	Node    string    `json:"node"`
	Region  string    `json:"region"`
	Healthy bool      `json:"healthy"`
	Error   string    `json:"error,omitempty"`
	At      time.Time `json:"at"`
}

// registry is what this node keeps in etcd under its lease: its node record and its votes.
type registry struct {
	mu      sync.Mutex
	session *concurrency.Session
	want    map[string]Vote    // vote key -> the vote to be in etcd
	wrote   map[string]written // vote key -> what is there, under which lease
	drop    map[string]bool    // vote keys to delete
	node    written            // the node record written (v unused)
	nodeRev int64
	checked time.Time // the last reconciliation with the watched votes
	// The node name's ownership (nodename.go): this process's leases, and why it is
	// fenced ("" when it holds its name).
	leases       []clientv3.LeaseID
	conflict     string
	conflictBy   int64 // the holder's lease
	conflictSubs map[int]func(string)
	conflictNext int
}

type written struct {
	v     Vote
	at    time.Time
	lease clientv3.LeaseID
}

func (r *registry) init() {
	r.want, r.wrote, r.drop = map[string]Vote{}, map[string]written{}, map[string]bool{}
}

// PublishVote makes v this node's vote on key (an address and check, in the caller's
// words; it may contain "/"). It does not wait on etcd: the vote is written in the
// background, under the node lease, only when its verdict (healthy, error) changed, again
// after a new lease, and again should etcd have lost it; never per probe nor periodically.
// Node and Region are this node's. At is when the verdict began: publishing the same
// verdict again keeps the first one's.
func (b *Backend) PublishVote(key string, v Vote) error {
	if key == "" || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") {
		return errors.New("cluster: vote key must be non-empty and not start or end with /")
	}
	v.Node, v.Region = b.cfg.Node, b.cfg.Region
	if v.At.IsZero() {
		v.At = time.Now()
	}
	b.reg.mu.Lock()
	if cur, ok := b.reg.want[key]; ok && cur.Healthy == v.Healthy && cur.Error == v.Error {
		v.At = cur.At
	}
	b.reg.want[key] = v
	delete(b.reg.drop, key)
	b.reg.mu.Unlock()
	b.kick(b.fleet)
	return nil
}

// WithdrawVote deletes this node's vote on key (a target that is no longer probed).
func (b *Backend) WithdrawVote(key string) {
	b.reg.mu.Lock()
	if _, ok := b.reg.want[key]; ok {
		delete(b.reg.want, key)
		b.reg.drop[key] = true
	}
	b.reg.mu.Unlock()
	b.kick(b.fleet)
}

// Nodes lists the live nodes (those whose lease holds), by name. While disconnected it is
// the list last seen; a partitioned node decides alone (see Decide).
func (b *Backend) Nodes() []Node {
	b.mu.Lock()
	defer b.mu.Unlock()
	ns := make([]Node, 0, len(b.nodes))
	for _, n := range b.nodes {
		ns = append(ns, n)
	}
	sort.Slice(ns, func(i, j int) bool { return ns[i].Name < ns[j].Name })
	return ns
}

// LiveNodes is the set of the names of Nodes, for Decide.
func (b *Backend) LiveNodes() map[string]bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	live := make(map[string]bool, len(b.nodes))
	for name := range b.nodes {
		live[name] = true
	}
	return live
}

// Votes returns the votes in etcd, by key, each list by node name (this node's too, once
// written). A dead node's votes vanish with its lease. While disconnected it is what was
// last seen.
func (b *Backend) Votes() map[string][]Vote {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, byNode := range b.votes {
		n += len(byNode)
	}
	all := make([]Vote, 0, n) // one allocation for every list (10,000 keys: one, not 10,000)
	out := make(map[string][]Vote, len(b.votes))
	for key, byNode := range b.votes {
		i := len(all)
		for _, v := range byNode {
			all = append(all, v)
		}
		vs := all[i:len(all):len(all)] // capped: a caller's append copies
		slices.SortFunc(vs, func(a, b Vote) int { return strings.Compare(a.Node, b.Node) })
		out[key] = vs
	}
	return out
}

// putFleet records a node or vote key (relative to PATH/) read from etcd. It reports whether
// that changed the electorate or a vote: a node that joined or moved region, a vote that is
// new or whose verdict, region or time changed. A node record's heartbeat (last_seen,
// revision) and a vote written again as it was are not changes.
func putFleet(nodes map[string]Node, votes map[string]map[string]Vote, k string, value []byte) bool {
	switch {
	case strings.HasPrefix(k, "nodes/"):
		name := k[len("nodes/"):]
		var n Node
		if name == "" || json.Unmarshal(value, &n) != nil {
			return false
		}
		n.Name = name
		old, had := nodes[name]
		nodes[name] = n
		return !had || old.Region != n.Region
	case strings.HasPrefix(k, "votes/"):
		key, node, ok := voteKey(k)
		var v Vote
		if !ok || json.Unmarshal(value, &v) != nil {
			return false
		}
		v.Node = node
		if votes[key] == nil {
			votes[key] = map[string]Vote{}
		}
		old, had := votes[key][node]
		votes[key][node] = v
		return !had || old.Healthy != v.Healthy || old.Error != v.Error || old.Region != v.Region || !old.At.Equal(v.At)
	}
	return false
}

func delFleet(nodes map[string]Node, votes map[string]map[string]Vote, k string) {
	switch {
	case strings.HasPrefix(k, "nodes/"):
		delete(nodes, k[len("nodes/"):])
	case strings.HasPrefix(k, "votes/"):
		if key, node, ok := voteKey(k); ok {
			delete(votes[key], node)
			if len(votes[key]) == 0 {
				delete(votes, key)
			}
		}
	}
}

func voteKey(k string) (key, node string, ok bool) {
	rest := k[len("votes/"):]
	i := strings.LastIndexByte(rest, '/')
	if i <= 0 || i == len(rest)-1 {
		return "", "", false
	}
	return rest[:i], rest[i+1:], true
}

// registryLoop keeps one session (one lease) for the process and, under it, the node
// record and the votes. A session that ends (the lease expired in a partition, or etcd lost
// it) is replaced by a new one, under which everything is written again.
func (b *Backend) registryLoop() {
	defer b.wg.Done()
	wait := 100 * time.Millisecond
	for b.ctx.Err() == nil {
		s, err := b.newSession()
		if err != nil {
			if !b.sleep(wait) {
				return
			}
			wait = min(2*wait, 2*time.Second)
			continue
		}
		wait = 100 * time.Millisecond
		b.reg.mu.Lock()
		b.reg.session = s
		b.reg.mu.Unlock()
		b.serve(s)
		if b.ctx.Err() != nil {
			return // Close revokes the lease
		}
		log.Printf("[INFO] plugin/gtm: cluster lease of node %s ended; registering again", b.cfg.Node)
		b.reg.mu.Lock()
		b.reg.session = nil
		b.reg.mu.Unlock()
	}
}

func (b *Backend) newSession() (*concurrency.Session, error) {
	ttl := int64((b.cfg.LeaseTTL + time.Second - 1) / time.Second)
	ctx, cancel := context.WithTimeout(b.ctx, requestTimeout)
	defer cancel()
	g, err := b.cli.Grant(ctx, ttl)
	if err != nil {
		return nil, err
	}
	b.rememberLease(g.ID)
	return concurrency.NewSession(b.cli, concurrency.WithLease(g.ID), concurrency.WithTTL(int(ttl)), concurrency.WithContext(b.ctx))
}

func (b *Backend) serve(s *concurrency.Session) {
	t := time.NewTicker(heartbeat)
	defer t.Stop()
	for {
		b.flush(s.Lease())
		select {
		case <-b.ctx.Done():
			return
		case <-s.Done():
			return
		case <-t.C:
		case <-b.fleet:
		}
	}
}

// flush writes what changed: the node record (new revision, new lease, or heartbeat due)
// and the votes (new verdict, new lease, lost by etcd, withdrawn). A failed write stays due.
func (b *Backend) flush(lease clientv3.LeaseID) {
	now := time.Now()
	rev := b.published()
	r := &b.reg
	var inEtcd map[string]Vote // this node's votes as the watch has them, when reconciling
	r.mu.Lock()
	reconcile := now.Sub(r.checked) >= reconcileEvery
	r.mu.Unlock()
	if reconcile && b.Connected() {
		inEtcd = b.ownVotes()
	}
	r.mu.Lock()
	if inEtcd != nil {
		r.checked = now
	}
	fenced := r.conflict != ""
	nodeDue := fenced || r.node.lease != lease || r.nodeRev != rev || now.Sub(r.node.at) >= heartbeat-100*time.Millisecond
	type put struct {
		key string
		v   Vote
	}
	var puts []put
	var dels []string
	for k, v := range r.want {
		w, ok := r.wrote[k]
		due := !ok || w.lease != lease || w.v.Healthy != v.Healthy || w.v.Error != v.Error
		if !due && inEtcd != nil && now.Sub(w.at) >= reconcileAfter {
			e, there := inEtcd[k]
			due = !there || e.Healthy != w.v.Healthy || e.Error != w.v.Error
		}
		if due {
			puts = append(puts, put{k, v})
		}
	}
	for k := range r.drop {
		dels = append(dels, k)
	}
	r.mu.Unlock()

	if nodeDue {
		val, _ := json.Marshal(Node{Name: b.cfg.Node, Region: b.cfg.Region, Revision: rev, Version: b.cfg.Version, LastSeen: now.UTC()})
		holder, err := b.claimNode(lease, string(val))
		if err != nil {
			return
		}
		b.setConflict(holder)
		if holder != nil {
			return // fenced: the name's votes are the other process's
		}
		r.mu.Lock()
		r.node, r.nodeRev = written{at: now, lease: lease}, rev
		r.mu.Unlock()
	}
	bulk := len(puts)+len(dels) > batch
	for len(puts) > 0 || len(dels) > 0 {
		var ops []clientv3.Op
		var done []put
		var gone []string
		size := 0
		for len(ops) < batch && len(puts) > 0 {
			p := puts[0]
			val, _ := json.Marshal(p.v)
			k := b.voteKey(p.key)
			if len(ops) > 0 && size+len(k)+len(val) > batchBytes {
				break
			}
			puts = puts[1:]
			size += len(k) + len(val)
			ops = append(ops, clientv3.OpPut(k, string(val), clientv3.WithLease(lease)))
			done = append(done, p)
		}
		for len(ops) < batch && len(dels) > 0 && size < batchBytes {
			k := dels[0]
			dels = dels[1:]
			size += len(b.voteKey(k))
			ops = append(ops, clientv3.OpDelete(b.voteKey(k)))
			gone = append(gone, k)
		}
		ctx, cancel := context.WithTimeout(b.ctx, requestTimeout)
		_, err := b.cli.Txn(ctx).Then(ops...).Commit()
		cancel()
		if err != nil {
			return
		}
		at := time.Now()
		r.mu.Lock()
		for _, p := range done {
			if _, ok := r.want[p.key]; ok { // a verdict changed meanwhile is written next round
				r.wrote[p.key] = written{v: p.v, at: at, lease: lease}
			}
		}
		for _, k := range gone {
			if _, again := r.want[k]; !again {
				delete(r.drop, k)
				delete(r.wrote, k)
			}
		}
		r.mu.Unlock()
		if bulk && (len(puts) > 0 || len(dels) > 0) && !b.sleep(relay) {
			return
		}
	}
}

// ownVotes is this node's votes as its watch has them, by key.
func (b *Backend) ownVotes() map[string]Vote {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]Vote, len(b.votes))
	for key, byNode := range b.votes {
		if v, ok := byNode[b.cfg.Node]; ok {
			out[key] = v
		}
	}
	return out
}

func (b *Backend) voteKey(key string) string { return b.prefix + "votes/" + key + "/" + b.cfg.Node }

// revoke ends the session and revokes its lease: the node and its votes leave at once.
func (r *registry) revoke(cli *clientv3.Client) {
	r.mu.Lock()
	s := r.session
	r.session = nil
	r.mu.Unlock()
	if s == nil {
		return
	}
	s.Orphan()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	cli.Revoke(ctx, s.Lease())
}
