package etcd

// SetApplied tells the backend which state revision its user put in force (compiled and
// swapped in, or found to change nothing), so that the node record publishes that revision
// rather than the last one the backend delivered: a state the node refused, or has not
// compiled yet, is not reported as applied. Until the first call the delivered revision is
// published.
func (b *Backend) SetApplied(rev int64) {
	if b.applied.Swap(rev) != rev {
		b.kick(b.fleet)
	}
}

// published is the revision the node record carries.
func (b *Backend) published() int64 {
	if rev := b.applied.Load(); rev > 0 {
		return rev
	}
	return b.Revision()
}

// Region is this node's region (the cluster block's region), carried by its votes.
func (b *Backend) Region() string { return b.cfg.Region }

// Endpoints are the etcd endpoints the backend was opened with.
func (b *Backend) Endpoints() []string { return b.cfg.Endpoints }
