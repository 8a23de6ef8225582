package etcd

import "sync"

// fleetSubs are told when the node list or the votes changed.
type fleetSubs struct {
	mu   sync.Mutex
	fns  map[int]func()
	next int
}

// OnFleet calls fn after every change of the node list or the votes (a node joining or
// leaving, a vote's verdict written or gone with its lease); not for a node's heartbeat nor
// for a vote written again unchanged. fn is called with the backend's lock
// held: it must not block or call the backend (poke a channel and read Votes later).
func (b *Backend) OnFleet(fn func()) (cancel func()) {
	s := &b.fleetSubs
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fns == nil {
		s.fns = map[int]func(){}
	}
	id := s.next
	s.next++
	s.fns[id] = fn
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.fns, id)
	}
}

func (b *Backend) fleetChanged() {
	s := &b.fleetSubs
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, fn := range s.fns {
		fn()
	}
}
