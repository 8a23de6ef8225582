package state

import (
	"context"
	"sync"
)

var shared struct {
	sync.Mutex
	m map[string]*Store
}

// Shared returns the process's one Store for key, opening its backend on first use: a
// reload must reuse the state and cells in force, not read them again.
func Shared(key string, open func() (Backend, error)) (*Store, error) {
	shared.Lock()
	defer shared.Unlock()
	if s, ok := shared.m[key]; ok {
		return s, nil
	}
	be, err := open()
	if err != nil {
		return nil, err
	}
	s, err := Open(context.Background(), be)
	if err != nil {
		be.Close()
		return nil, err
	}
	if shared.m == nil {
		shared.m = map[string]*Store{}
	}
	shared.m[key] = s
	return s, nil
}

// CloseShared closes and forgets the Store of key (the process is exiting): its backend is
// closed (a cluster node's lease revoked).
func CloseShared(key string) {
	shared.Lock()
	s, ok := shared.m[key]
	delete(shared.m, key)
	shared.Unlock()
	if ok {
		s.be.Close()
	}
}
