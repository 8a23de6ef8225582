package etcd

// Decide is the fleet's verdict on one target (PRODUCT.md, "Health quorum"): it is down
// when the live nodes that report it down are at least quorumPercent of the live nodes
// that report on it. 3 nodes at 50: two must agree; 2 nodes: one is enough; 100: all.
//
// votes are the target's votes (Votes()[key]); only those of live nodes count, one per
// node (the latest). local is this node's own verdict (true: healthy): a node that no live
// node reports on, its own vote not in etcd yet or partitioned away (pass no votes then),
// decides alone on it. downCount and of are what the verdict stands on ("down 2 of 3").
// quorumPercent is taken within 1..100.
func Decide(local bool, votes []Vote, live map[string]bool, quorumPercent int) (down bool, downCount, of int) {
	latest := map[string]Vote{}
	for _, v := range votes {
		if !live[v.Node] {
			continue
		}
		if cur, ok := latest[v.Node]; !ok || v.At.After(cur.At) {
			latest[v.Node] = v
		}
	}
	if len(latest) == 0 {
		if local {
			return false, 0, 1
		}
		return true, 1, 1
	}
	for _, v := range latest {
		if !v.Healthy {
			downCount++
		}
	}
	of = len(latest)
	q := min(max(quorumPercent, 1), 100)
	return downCount > 0 && downCount*100 >= q*of, downCount, of
}

// Quorum is Decide for this node on one vote key: its own vote is localHealthy (whether or
// not it is written yet), the others' are those in etcd of the live nodes, and while the
// cluster is unreachable the node decides alone.
func (b *Backend) Quorum(key string, localHealthy bool, quorumPercent int) (down bool, downCount, of int) {
	if !b.Connected() {
		return Decide(localHealthy, nil, nil, quorumPercent)
	}
	self := b.cfg.Node
	b.mu.Lock()
	votes := make([]Vote, 0, len(b.votes[key])+1)
	live := make(map[string]bool, len(b.nodes)+1)
	for name := range b.nodes {
		live[name] = true
	}
	for node, v := range b.votes[key] {
		if node != self {
			votes = append(votes, v)
		}
	}
	b.mu.Unlock()
	live[self] = true
	votes = append(votes, Vote{Node: self, Healthy: localHealthy})
	return Decide(localHealthy, votes, live, quorumPercent)
}
