package state

// Close ends the store: the timer of timed overrides is stopped (and set no more), the
// backend is closed (a cluster node's lease revoked, which also ends its watch), and no
// subscriber is called again. The store's owner calls it once nothing uses the store: in
// coredns-gtm, control's reference count of shared stores (a reload keeps it open).
func (s *Store) Close() error {
	s.mu.Lock()
	s.closed = true
	if s.sched.timer != nil {
		s.sched.timer.Stop()
		s.sched.timer = nil
	}
	clear(s.subs)
	s.mu.Unlock()
	s.cancel()
	return s.be.Close()
}

// Closed reports whether Close was called.
func (s *Store) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}
