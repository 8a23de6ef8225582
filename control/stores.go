package control

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/gtm-dns/coredns-gtm/api"
	"github.com/gtm-dns/coredns-gtm/state"
	"github.com/gtm-dns/coredns-gtm/state/etcd"
)

// stores are the process's open state stores, by StoreKey, each with how many blocks use
// it. Process-wide because a reload's new block must take over the store (its cells, its
// fleet lease and votes) of the block it replaces, which is still running: caddy starts the
// new instance before it stops the old one. The count makes the last release close the
// store, so a reload that changes the key (another node name, path or endpoints) or drops
// the block takes the old one down at once. Its one owner is Block: New acquires, Stop
// releases.
var stores struct {
	sync.Mutex
	m map[string]*sharedStore
}

// sharedStore is one open store and what runs with it.
type sharedStore struct {
	key   string
	st    *state.Store
	refs  int    // guarded by stores
	voter *voter // a fleet store's quorum (one per backend: cells outlive reloads)
	stop  []func()
}

// acquireStore returns the store of key, opening it with open on first use.
func acquireStore(key string, open func() (state.Backend, error)) (*sharedStore, error) {
	stores.Lock()
	defer stores.Unlock()
	if s, ok := stores.m[key]; ok {
		s.refs++
		return s, nil
	}
	be, err := open()
	if err != nil {
		return nil, err
	}
	st, err := state.Open(context.Background(), be)
	if err != nil {
		be.Close()
		return nil, err
	}
	s := &sharedStore{key: key, st: st, refs: 1}
	st.OnChange(noteOverrideChange)
	if e, ok := be.(*etcd.Backend); ok {
		s.stop = append(s.stop, e.OnConnection(func(up bool) { noteConnection(e, up) }))
		s.stop = append(s.stop, e.OnFault(func(err error) { go noteStoreFault(e, err) }))
		s.stop = append(s.stop, e.OnNodeConflict(func(msg string) { noteNodeConflict(e, msg) }))
		s.voter = newVoter(e)
		s.stop = append(s.stop, s.voter.start())
	}
	if stores.m == nil {
		stores.m = map[string]*sharedStore{}
	}
	stores.m[key] = s
	return s, nil
}

// release gives back one use; the last closes the store (a fleet node's lease revoked: it
// leaves the node list, its votes with it) after stopping what ran with it.
func (s *sharedStore) release() {
	stores.Lock()
	s.refs--
	last := s.refs == 0
	if last {
		delete(stores.m, s.key)
	}
	stores.Unlock()
	if !last {
		return
	}
	for _, stop := range s.stop {
		stop()
	}
	if err := s.st.Close(); err != nil {
		log.Warningf("state %s: close: %v", s.key, err)
	}
}

// voters are the quorums of the open fleet stores (a health change goes to each).
func voters() []*voter {
	stores.Lock()
	defer stores.Unlock()
	var out []*voter
	for _, s := range stores.m {
		if s.voter != nil {
			out = append(out, s.voter)
		}
	}
	return out
}

// OpenStores lists the keys of the open shared stores and their users (for tests and the
// leak check: after the last block of a key stopped, its key is gone).
func OpenStores() map[string]int {
	stores.Lock()
	defer stores.Unlock()
	out := make(map[string]int, len(stores.m))
	for k, s := range stores.m {
		out[k] = s.refs
	}
	return out
}

// noteStoreFault reports the cluster store going back in time (err) or that ending (nil).
func noteStoreFault(be *etcd.Backend, err error) {
	var msg string
	if err != nil {
		metrics.StoreRegressions.Inc()
		msg = fmt.Sprintf("cluster: node %s: %v", be.Node(), err)
		log.Errorf("%s", msg)
	} else {
		msg = fmt.Sprintf("cluster: node %s: the cluster store holds the fleet's state again (restored); writes are accepted", be.Node())
		log.Infof("%s", msg)
	}
	record(api.Event{Kind: "config", Message: msg})
}

// noteNodeConflict reports that another process holds this node's name (msg), or that the
// name became this node's ("").
func noteNodeConflict(be *etcd.Backend, msg string) {
	if msg == "" {
		msg = fmt.Sprintf("cluster: node %s: the node name is this process's again: registered, publishing its health votes", be.Node())
		log.Infof("%s", msg)
	} else {
		log.Errorf("%s", msg)
	}
	record(api.Event{Kind: "cluster", Message: msg})
}

func noteConnection(be *etcd.Backend, up bool) {
	eps := strings.Join(be.Endpoints(), ",")
	msg := fmt.Sprintf("cluster: node %s connected to etcd %s", be.Node(), eps)
	if up {
		log.Infof("%s", msg)
	} else {
		metrics.ClusterDisconnects.Inc()
		msg = fmt.Sprintf("cluster: node %s lost etcd %s: answering with its last configuration, overrides and its own health verdicts; API writes answer 503", be.Node(), eps)
		log.Warningf("%s", msg)
	}
	record(api.Event{Kind: "cluster", Message: msg})
}
