// Package etcd is the state backend of a fleet (`cluster`): the shared state lives in etcd
// under a path, every node watches it, and nodes register themselves and publish their
// health votes under one lease per process.
//
// Keys are PATH + "/" + the state key (/gtm/config/pools/eu, /gtm/modes/eu/192.0.2.1), so an
// operator can read and write them with etcdctl. Beside the state the fleet keeps:
//
//	PATH/nodes/NAME          {"name","region","revision","version","last_seen"} (node lease)
//	PATH/votes/KEY/NODE      {"node","region","healthy","error","at"}          (node lease)
//
// The backend follows etcd's list-then-watch idiom: one Get of PATH/ gives a consistent
// snapshot at revision R, a Watch from R+1 keeps it current, and a compacted or cancelled
// watch (or a reconnection) lists again. State changes are handed to Watch's callback
// debounced, as whole immutable snapshots. The query path never waits on etcd: when etcd is
// away the last state (or, at start, the cache file) stays in force and Commit answers
// state.ErrUnavailable within a bounded time.
package etcd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gtm-dns/coredns-gtm/state"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Defaults and bounds.
const (
	DefaultPath        = "/gtm"
	DefaultDialTimeout = 2 * time.Second
	DefaultLeaseTTL    = 5 * time.Second

	// requestTimeout bounds every request of the backend, so that an unreachable cluster is
	// an answer (ErrUnavailable) within seconds, not after gRPC's retries.
	requestTimeout = 2 * time.Second
	// debounce: a change is delivered once the watch has been quiet this long, and at the
	// latest maxDebounce after the first change of a burst.
	debounce    = 50 * time.Millisecond
	maxDebounce = 500 * time.Millisecond
	// probeEvery is how often the connection is checked (a linearizable read, so a member
	// without quorum counts as unreachable); probeEveryDown while disconnected.
	probeEvery     = time.Second
	probeEveryDown = 250 * time.Millisecond
	// maxTxnOps is etcd's default --max-txn-ops; Commit keeps three for its reads.
	maxTxnOps = 128
)

// Config configures a Backend.
type Config struct {
	Endpoints   []string
	Path        string // key prefix shared by the fleet (default /gtm)
	Node        string // this node's unique name (required; no "/")
	Region      string
	Version     string // the software version, shown in the node list
	Username    string
	Password    string
	TLS         *tls.Config
	CacheFile   string        // local copy of the shared state, to start while etcd is away
	DialTimeout time.Duration // how long Open waits for etcd before serving the cache (default 2s)
	LeaseTTL    time.Duration // the node lease (default 5s; whole seconds, etcd's minimum applies)
}

// Backend is the etcd state backend. It implements state.Backend and state.Watcher.
type Backend struct {
	cfg    Config
	prefix string // cfg.Path + "/"
	cli    *clientv3.Client
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	closeOnce sync.Once

	connected atomic.Bool
	connMu    sync.Mutex // serialises transitions and their callbacks
	connSubs  map[int]func(bool)
	connNext  int

	resync  chan struct{} // cap 1: list again (after a reconnection)
	changed chan struct{} // cap 1: the state changed; deliver (debounced) and write the cache
	fleet   chan struct{} // cap 1: the registry has something to write

	mu        sync.Mutex
	entries   map[string]state.Entry // the state, changed in place under mu
	rev       int64                  // the revision of entries
	snap      *state.Data            // entries published; nil once entries changed
	delivered int64                  // highest revision handed out (Load, Commit, Watch)
	commits   int64                  // Commit calls started, to spot a list racing a commit
	subs      map[int]func(*state.Data)
	subNext   int
	nodes     map[string]Node
	votes     map[string]map[string]Vote // vote key -> node -> vote
	cacheRev  int64                      // revision in the cache file

	reg       registry
	fleetSubs fleetSubs
	applied   atomic.Int64 // the revision the user put in force (SetApplied), 0 before
}

// Open connects to etcd and returns the backend. It does not fail when etcd is unreachable:
// the state is then the cache file's copy (or empty), and the backend keeps connecting in
// the background. It fails only on a configuration it cannot use.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("cluster: no etcd endpoint")
	}
	if cfg.Node == "" || strings.Contains(cfg.Node, "/") {
		return nil, fmt.Errorf("cluster: node name %q: must be non-empty and contain no /", cfg.Node)
	}
	if cfg.Path == "" {
		cfg.Path = DefaultPath
	}
	cfg.Path = "/" + strings.Trim(cfg.Path, "/")
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            cfg.Endpoints,
		Username:             cfg.Username,
		Password:             cfg.Password,
		TLS:                  cfg.TLS,
		DialTimeout:          cfg.DialTimeout,
		DialKeepAliveTime:    2 * time.Second,
		DialKeepAliveTimeout: 2 * time.Second,
		Logger:               zap.NewNop(),
		// gRPC's reconnection backoff grows to two minutes by default; a node must catch
		// up within seconds of etcd's return.
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: time.Second,
		})},
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: %v", err)
	}
	bctx, cancel := context.WithCancel(context.Background())
	b := &Backend{
		cfg: cfg, prefix: cfg.Path + "/", cli: cli, ctx: bctx, cancel: cancel,
		connSubs: map[int]func(bool){},
		resync:   make(chan struct{}, 1), changed: make(chan struct{}, 1), fleet: make(chan struct{}, 1),
		entries: map[string]state.Entry{}, subs: map[int]func(*state.Data){},
		nodes: map[string]Node{}, votes: map[string]map[string]Vote{},
	}
	b.reg.init()
	if cfg.CacheFile != "" {
		if d, err := readCache(cfg.CacheFile, cfg.Path); err != nil {
			log.Printf("[WARNING] plugin/gtm: cluster cache %s not used: %v", cfg.CacheFile, err)
		} else if d != nil {
			b.entries, b.rev, b.cacheRev = d.Entries, d.Revision, d.Revision
		}
	}
	// The first list, bounded: with etcd there, Load returns the fleet's state.
	lctx, lcancel := context.WithTimeout(ctx, cfg.DialTimeout)
	r, err := b.list(lctx)
	lcancel()
	if err != nil {
		log.Printf("[WARNING] plugin/gtm: cluster store unreachable at start (%v); serving the %s, connecting in the background", err, cacheWord(cfg.CacheFile, b.rev))
	} else {
		b.setConnected(true)
	}
	b.wg.Add(4)
	go b.watchLoop(r, err == nil)
	go b.probeLoop()
	go b.deliverLoop()
	go b.registryLoop()
	return b, nil
}

func cacheWord(file string, rev int64) string {
	if file == "" || rev == 0 {
		return "Corefile part only"
	}
	return fmt.Sprintf("cache file %s (revision %d)", file, rev)
}

// Load implements state.Backend: the state in force (never waits on etcd).
func (b *Backend) Load(context.Context) (*state.Data, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := b.snapshotLocked()
	b.delivered = max(b.delivered, d.Revision)
	return d, nil
}

// Durable implements state.Backend.
func (b *Backend) Durable() bool { return true }

// Revision is the revision of the state applied: the highest handed out by Load, Commit
// or Watch (the etcd revision of the last list, or of the last change of a state key since;
// heartbeats of nodes and votes do not move it). It is what the node record publishes.
func (b *Backend) Revision() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.delivered
}

// Node is this node's name.
func (b *Backend) Node() string { return b.cfg.Node }

// Path is the key prefix of the fleet.
func (b *Backend) Path() string { return b.cfg.Path }

// Client is the etcd client (for tests and tools; the backend owns it).
func (b *Backend) Client() *clientv3.Client { return b.cli }

func (b *Backend) snapshotLocked() *state.Data {
	if b.snap == nil {
		b.snap = &state.Data{Revision: b.rev, Entries: maps.Clone(b.entries)}
	}
	return b.snap
}

// Close implements state.Backend: it revokes the node lease (the node leaves the list and
// its votes go at once) and closes the client.
func (b *Backend) Close() error {
	b.closeOnce.Do(func() {
		b.cancel()
		b.wg.Wait()
		b.reg.revoke(b.cli)
		b.connected.Store(false) // no callback: the node is leaving, not partitioned
		b.cli.Close()
	})
	return nil
}

// crash stops the backend the way a killed process does: the lease is not revoked.
func (b *Backend) crash() {
	b.closeOnce.Do(func() {
		b.cancel()
		b.wg.Wait()
		b.cli.Close()
	})
}

// Commit implements state.Backend with one transaction: every Check becomes a comparison
// of the key's ModRevision (CreateRevision 0 for a key that must not exist), every write a
// Put or Delete, and the transaction then reads the state back, so the Data returned is
// etcd's state at the transaction's revision exactly. A failed comparison is
// state.ErrConflict; an unreachable cluster is state.ErrUnavailable within ~2 s.
//
// The watch sees the write too; its event carries a revision the backend already has, so
// it is not delivered again (and were it delivered, the Store takes it idempotently). A
// timeout is ambiguous, as with any etcd client: the write may have landed, and then the
// watch brings it.
func (b *Backend) Commit(ctx context.Context, ops []state.Op) (*state.Data, error) {
	var cmps []clientv3.Cmp
	var writes []clientv3.Op
	last := map[string]int{} // key -> index in writes: etcd refuses a key twice in a txn
	for _, op := range ops {
		if state.RecordKey(op.Key) && op.Value != nil {
			writes = append(writes, clientv3.OpPut(b.prefix+op.Key, string(op.Value))) // an audit record rides along
			continue
		}
		if !stateKey(op.Key) {
			return nil, fmt.Errorf("cluster: key %q is not a state key", op.Key)
		}
		k := b.prefix + op.Key
		if op.Check {
			if op.Revision == 0 {
				cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(k), "=", 0))
			} else {
				cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", op.Revision))
			}
		}
		w := clientv3.OpDelete(k)
		if op.Value != nil {
			w = clientv3.OpPut(k, string(op.Value))
		}
		if i, ok := last[k]; ok {
			writes[i] = w
		} else {
			last[k] = len(writes)
			writes = append(writes, w)
		}
	}
	if len(writes)+len(statePrefixes) > maxTxnOps {
		return nil, fmt.Errorf("cluster: %d writes in one commit; at most %d", len(writes), maxTxnOps-len(statePrefixes))
	}
	then := writes
	for _, p := range statePrefixes {
		then = append(then, clientv3.OpGet(b.prefix+p, clientv3.WithPrefix()))
	}
	b.mu.Lock()
	b.commits++
	b.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	resp, err := b.cli.Txn(cctx).If(cmps...).Then(then...).Commit()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if unavailable(err) {
			b.setConnected(false)
			return nil, fmt.Errorf("%w (%v)", state.ErrUnavailable, err)
		}
		return nil, fmt.Errorf("cluster: %v", err)
	}
	if !resp.Succeeded {
		return nil, state.ErrConflict
	}
	entries := map[string]state.Entry{}
	for _, r := range resp.Responses[len(writes):] {
		for _, kv := range r.GetResponseRange().Kvs {
			entries[strings.TrimPrefix(string(kv.Key), b.prefix)] = state.Entry{Value: kv.Value, Revision: kv.ModRevision}
		}
	}
	rev := resp.Header.Revision
	b.mu.Lock()
	defer b.mu.Unlock()
	if rev > b.rev {
		b.entries, b.rev = entries, rev
		b.snap = &state.Data{Revision: rev, Entries: maps.Clone(entries)}
	}
	// When the watch is already past rev its state includes this write: return that, so
	// nothing older than what was delivered is handed out.
	d := b.snapshotLocked()
	b.delivered = max(b.delivered, d.Revision)
	b.kick(b.changed)
	return d, nil
}

// statePrefixes are the state's key spaces; PATH/nodes/ and PATH/votes/ are the fleet's.
var statePrefixes = []string{state.ConfigPrefix, state.ModesPrefix, state.PinsPrefix, state.PoolModesPrefix, state.HoldsPrefix}

func stateKey(k string) bool {
	for _, p := range statePrefixes {
		if strings.HasPrefix(k, p) && len(k) > len(p) {
			return true
		}
	}
	return false
}

// unavailable tells a cluster that cannot answer from a request it refused.
func unavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, rpctypes.ErrNoLeader) || errors.Is(err, rpctypes.ErrTimeout) ||
		errors.Is(err, rpctypes.ErrTimeoutDueToLeaderFail) || errors.Is(err, rpctypes.ErrTimeoutDueToConnectionLost) ||
		errors.Is(err, rpctypes.ErrLeaderChanged) || errors.Is(err, rpctypes.ErrNotCapable) ||
		errors.Is(err, rpctypes.ErrStopped) || errors.Is(err, clientv3.ErrNoAvailableEndpoints) {
		return true
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.Aborted:
		return true
	}
	return false
}

// Watch implements state.Watcher: fn gets the whole state after every change (debounced),
// from one goroutine, until ctx ends or the backend closes. It blocks.
func (b *Backend) Watch(ctx context.Context, fn func(*state.Data)) {
	b.mu.Lock()
	id := b.subNext
	b.subNext++
	b.subs[id] = fn
	b.mu.Unlock()
	b.kick(b.changed) // a change between Load and here is delivered
	select {
	case <-ctx.Done():
	case <-b.ctx.Done():
	}
	b.mu.Lock()
	delete(b.subs, id)
	b.mu.Unlock()
}

func (b *Backend) kick(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// list reads everything under PATH/ at one revision and puts it in force.
func (b *Backend) list(ctx context.Context) (int64, error) {
	b.mu.Lock()
	commits := b.commits
	b.mu.Unlock()
	resp, err := b.cli.Get(ctx, b.prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, err
	}
	entries := map[string]state.Entry{}
	nodes := map[string]Node{}
	votes := map[string]map[string]Vote{}
	for _, kv := range resp.Kvs {
		k := strings.TrimPrefix(string(kv.Key), b.prefix)
		switch {
		case stateKey(k):
			entries[k] = state.Entry{Value: kv.Value, Revision: kv.ModRevision}
		default:
			putFleet(nodes, votes, k, kv.Value)
		}
	}
	r := resp.Header.Revision
	b.mu.Lock()
	defer b.mu.Unlock()
	b.nodes, b.votes = nodes, votes
	b.fleetChanged()
	// A list older than the state in force only happens when a Commit ran meanwhile (its
	// state is newer and the watch from r+1 brings the rest) or when etcd was restored to
	// an older revision without --bump-revision (then the list is the truth).
	if r >= b.rev || b.commits == commits {
		if r < b.rev {
			b.delivered = 0 // back in time: deliver the list all the same
		}
		b.entries, b.rev, b.snap = entries, r, nil
		b.kick(b.changed)
	}
	return r, nil
}

// watchLoop keeps the state current: watch from the listed revision + 1; on a compacted,
// cancelled or failed watch, or after a reconnection, list again and watch from there.
func (b *Backend) watchLoop(rev int64, listed bool) {
	defer b.wg.Done()
	wait := 100 * time.Millisecond
	for b.ctx.Err() == nil {
		if !listed {
			lctx, cancel := context.WithTimeout(b.ctx, requestTimeout)
			r, err := b.list(lctx)
			cancel()
			if err != nil {
				if b.ctx.Err() == nil && unavailable(err) {
					b.setConnected(false)
				}
				if !b.sleep(wait, b.resync) {
					return
				}
				wait = min(2*wait, 2*time.Second)
				continue
			}
			rev, listed = r, true
			b.setConnected(true)
		}
		wait = 100 * time.Millisecond
		err := b.watch(rev)
		listed = false
		if err != nil && b.ctx.Err() == nil {
			log.Printf("[INFO] plugin/gtm: cluster watch ended (%v); listing again", err)
		}
	}
}

// sleep waits d, or less when wake (if any) is kicked; false when the backend closes.
func (b *Backend) sleep(d time.Duration, wake ...chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	var w chan struct{}
	if len(wake) > 0 {
		w = wake[0]
	}
	select {
	case <-b.ctx.Done():
		return false
	case <-t.C:
		return true
	case <-w:
		return true
	}
}

// watch follows PATH/ from rev+1 until the watch ends; it returns why.
func (b *Backend) watch(rev int64) error {
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(b.ctx))
	defer cancel()
	// Drop a resync asked for before this watch began: it starts from a fresh list.
	select {
	case <-b.resync:
	default:
	}
	wc := b.cli.Watch(ctx, b.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	for {
		select {
		case <-b.ctx.Done():
			return nil
		case <-b.resync:
			return errors.New("reconnected")
		case wr, ok := <-wc:
			if !ok {
				return errors.New("watch channel closed")
			}
			if wr.CompactRevision != 0 {
				return fmt.Errorf("%w (compacted at %d)", rpctypes.ErrCompacted, wr.CompactRevision)
			}
			if err := wr.Err(); err != nil {
				return err
			}
			if wr.Canceled {
				return errors.New("watch cancelled")
			}
			b.apply(wr.Events)
		}
	}
}

// apply puts a watch response's events in force.
func (b *Backend) apply(evs []*clientv3.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	changed, fleet := false, false
	base := b.rev // the events of one transaction share a revision
	for _, ev := range evs {
		k := strings.TrimPrefix(string(ev.Kv.Key), b.prefix)
		if !stateKey(k) {
			if ev.Type == mvccpb.DELETE {
				delFleet(b.nodes, b.votes, k)
				fleet = true
			} else if putFleet(b.nodes, b.votes, k, ev.Kv.Value) {
				fleet = true
			}
			continue
		}
		if ev.Kv.ModRevision <= base {
			continue // in force already (a Commit's own state, or a list)
		}
		if ev.Type == mvccpb.DELETE {
			delete(b.entries, k)
		} else {
			b.entries[k] = state.Entry{Value: ev.Kv.Value, Revision: ev.Kv.ModRevision}
		}
		b.rev = max(b.rev, ev.Kv.ModRevision)
		b.snap, changed = nil, true
	}
	if fleet {
		b.fleetChanged()
	}
	if changed {
		b.kick(b.changed)
	}
}

// deliverLoop hands the state to the watchers once a burst of changes is over, and writes
// the cache file.
func (b *Backend) deliverLoop() {
	defer b.wg.Done()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-b.changed:
		}
		first := time.Now()
		t := time.NewTimer(debounce)
	quiet:
		for {
			select {
			case <-b.ctx.Done():
				t.Stop()
				return
			case <-b.changed:
				if time.Since(first) < maxDebounce {
					t.Reset(debounce)
				}
			case <-t.C:
				break quiet
			}
		}
		b.mu.Lock()
		d := b.snapshotLocked()
		var subs []func(*state.Data)
		if d.Revision > b.delivered {
			b.delivered = d.Revision
			for _, fn := range b.subs {
				subs = append(subs, fn)
			}
		}
		writeCache := b.cfg.CacheFile != "" && d.Revision != b.cacheRev
		b.mu.Unlock()
		if writeCache {
			if err := writeCacheFile(b.cfg.CacheFile, b.cfg.Path, d); err != nil {
				log.Printf("[WARNING] plugin/gtm: cluster cache %s: %v", b.cfg.CacheFile, err)
			} else {
				b.mu.Lock()
				b.cacheRev = d.Revision
				b.mu.Unlock()
			}
		}
		for _, fn := range subs {
			fn(d)
		}
		b.kick(b.fleet) // the node record carries the revision in force
	}
}

// Connected reports whether the cluster answers (the last probe, list or request worked).
func (b *Backend) Connected() bool { return b.connected.Load() }

// OnConnection calls fn(connected) on every change of Connected, in order, from the
// goroutine that saw it; fn must not block. It returns the function that stops it.
func (b *Backend) OnConnection(fn func(connected bool)) (cancel func()) {
	b.connMu.Lock()
	defer b.connMu.Unlock()
	id := b.connNext
	b.connNext++
	b.connSubs[id] = fn
	return func() {
		b.connMu.Lock()
		defer b.connMu.Unlock()
		delete(b.connSubs, id)
	}
}

func (b *Backend) setConnected(up bool) {
	b.connMu.Lock()
	defer b.connMu.Unlock()
	if b.connected.Load() == up {
		return
	}
	b.connected.Store(up)
	if up {
		log.Printf("[INFO] plugin/gtm: cluster store connected")
	} else if b.ctx.Err() == nil {
		log.Printf("[WARNING] plugin/gtm: cluster store unreachable")
	}
	for _, fn := range b.connSubs {
		fn(up)
	}
}

// probeLoop checks the cluster with a linearizable read of this node's key: it is what
// notices a partition (a watch just stays silent). A reconnection lists again, so the node
// catches up at once whatever happened meanwhile (compaction, a restored cluster).
func (b *Backend) probeLoop() {
	defer b.wg.Done()
	key := b.prefix + "nodes/" + b.cfg.Node
	for {
		every := probeEvery
		if !b.Connected() {
			every = probeEveryDown
		}
		if !b.sleep(every) {
			return
		}
		ctx, cancel := context.WithTimeout(b.ctx, min(requestTimeout, time.Second))
		_, err := b.cli.Get(ctx, key, clientv3.WithCountOnly())
		cancel()
		if b.ctx.Err() != nil {
			return
		}
		switch {
		case err == nil && !b.Connected():
			b.setConnected(true)
			b.kick(b.resync)
			b.kick(b.fleet)
		case err != nil && unavailable(err):
			b.setConnected(false)
		}
	}
}
