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
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
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

	mu         sync.Mutex
	entries    map[string]state.Entry // the state, changed in place under mu
	rev        int64                  // the revision of entries
	snap       *state.Data            // entries published; nil once entries changed
	delivered  int64                  // highest revision handed out (Load, Commit, Watch)
	commits    int64                  // Commit calls started, to spot a list racing a commit
	subs       map[int]func(*state.Data)
	subNext    int
	nodes      map[string]Node
	votes      map[string]map[string]Vote // vote key -> node -> vote
	cacheRev   int64                      // revision in the cache file
	cacheEpoch string
	gen        int64   // ModRevision of PATH/generation in entries' state
	epoch      string  // its value: the history the state belongs to
	hist       history // what a list must not go below (guard.go)
	fault      error   // an ErrRegressed while the store went back in time
	faultSubs  map[int]func(error)

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
		if d, h, err := readCache(cfg.CacheFile, cfg.Path); err != nil {
			log.Printf("[WARNING] plugin/gtm: cluster cache %s not used: %v", cfg.CacheFile, err)
		} else if d != nil {
			b.entries, b.rev, b.cacheRev = d.Entries, d.Revision, d.Revision
			b.gen, b.epoch, b.hist = d.Generation, d.Epoch, h
		}
	}
	// The first list, bounded: with etcd there, Load returns the fleet's state.
	lctx, lcancel := context.WithTimeout(ctx, cfg.DialTimeout)
	r, err := b.list(lctx)
	lcancel()
	switch {
	case errors.Is(err, state.ErrRegressed):
		log.Printf("[ERROR] plugin/gtm: %v", err)
		b.setConnected(true)
	case err != nil:
		log.Printf("[WARNING] plugin/gtm: cluster store unreachable at start (%v); serving the %s, connecting in the background", err, cacheWord(cfg.CacheFile, b.rev))
	default:
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
		b.snap = &state.Data{Revision: b.rev, Entries: maps.Clone(b.entries), Generation: b.gen, Epoch: b.epoch}
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
// Put or Delete, PATH/generation is written too (so a list knows the revision of the last
// commit, deletes included), and the transaction then reads the state back, so the Data
// returned is etcd's state at the transaction's revision exactly. A failed comparison is
// state.ErrConflict; a cluster known to be unreachable is state.ErrUnavailable at once; a
// request that went out and got no answer is state.ErrUnknown (it may still be applied:
// the watch then brings it).
//
// The watch sees the write too; its event carries a revision the backend already has, so
// it is not delivered again (and were it delivered, the Store takes it idempotently).
func (b *Backend) Commit(ctx context.Context, ops []state.Op) (*state.Data, error) {
	return b.commit(ctx, nil, ops)
}

// CommitGuarded implements state.Guarded: Commit, and only if PATH/generation is still at
// base.Generation and no key under PATH/config/ was written after base.Revision (a write
// around the API); otherwise a *state.StaleError with etcd's state now, read in the same
// transaction.
func (b *Backend) CommitGuarded(ctx context.Context, base *state.Data, ops []state.Op) (*state.Data, error) {
	return b.commit(ctx, base, ops)
}

func (b *Backend) commit(ctx context.Context, base *state.Data, ops []state.Op) (*state.Data, error) {
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
	reads := b.stateReads()
	if len(writes)+1+len(reads) > maxTxnOps {
		return nil, fmt.Errorf("cluster: %d writes in one commit; at most %d (etcd's --max-txn-ops)", len(writes), maxTxnOps-1-len(reads))
	}
	if base != nil {
		cmps = append(cmps,
			clientv3.Compare(clientv3.ModRevision(b.genKey()), "=", base.Generation),
			clientv3.Compare(clientv3.ModRevision(b.prefix+state.ConfigPrefix), "<", base.Revision+1).WithPrefix())
	}
	b.mu.Lock()
	b.commits++
	epoch := b.epoch
	b.mu.Unlock()
	writes = append(writes, clientv3.OpPut(b.genKey(), epoch))
	then := append(writes, reads...)
	var otherwise []clientv3.Op
	if base != nil {
		otherwise = reads
	}
	cctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	sent := b.sendable(cctx)
	resp, err := b.cli.Txn(cctx).If(cmps...).Then(then...).Else(otherwise...).Commit()
	if err != nil {
		return nil, b.writeError(err, sent())
	}
	b.noteHeader(resp.Header)
	if !resp.Succeeded {
		if base == nil {
			return nil, state.ErrConflict
		}
		return nil, &state.StaleError{Data: b.takeReads(resp.Responses, false)}
	}
	return b.takeReads(resp.Responses[len(writes):], true), nil
}

// writeError classifies a failed write. Only a request that never went out (no connection
// was ready while it waited) or that etcd refused before handling it is "not applied"
// (ErrUnavailable); a timeout or a broken connection after it went out leaves the outcome
// unknown, whatever gRPC calls it.
func (b *Backend) writeError(err error, sent bool) error {
	switch {
	case errors.Is(err, clientv3.ErrNoAvailableEndpoints), errors.Is(err, rpctypes.ErrNoLeader),
		!sent && unavailable(err):
		b.setConnected(false)
		return fmt.Errorf("%w (%v)", state.ErrUnavailable, err)
	case unavailable(err):
		b.setConnected(false)
		return fmt.Errorf("%w (%v)", state.ErrUnknown, err)
	}
	return fmt.Errorf("cluster: %v", err)
}

// sendable follows the client's connection while a request is under way (until ctx ends):
// the returned function reports whether it was ready at any time, that is, whether the
// request can have been sent (gRPC sends only on a ready connection and, waiting for ready,
// holds it until then).
func (b *Backend) sendable(ctx context.Context) func() bool {
	conn := b.cli.ActiveConnection()
	s := conn.GetState()
	if s == connectivity.Ready {
		return func() bool { return true }
	}
	var ready atomic.Bool
	go func() {
		for conn.WaitForStateChange(ctx, s) {
			if s = conn.GetState(); s == connectivity.Ready {
				ready.Store(true)
				return
			}
		}
	}()
	return func() bool { return ready.Load() || conn.GetState() == connectivity.Ready }
}

// stateReads read the whole state in a transaction: each state prefix and the generation.
func (b *Backend) stateReads() []clientv3.Op {
	ops := make([]clientv3.Op, 0, len(statePrefixes)+1)
	for _, p := range statePrefixes {
		ops = append(ops, clientv3.OpGet(b.prefix+p, clientv3.WithPrefix()))
	}
	return append(ops, clientv3.OpGet(b.genKey()))
}

// takeReads puts the state read by stateReads in force if it is newer than the one in force,
// and returns the state in force (when the watch is already past it, its state includes
// this one: nothing older than what was delivered is handed out). handed: the caller puts
// it in force in the Store (a Commit's); else the watchers get it (a state read fresh,
// whose watch events the backend then skips as known).
func (b *Backend) takeReads(rs []*etcdserverpb.ResponseOp, handed bool) *state.Data {
	entries := map[string]state.Entry{}
	var gen int64
	epoch := ""
	for _, r := range rs {
		for _, kv := range r.GetResponseRange().Kvs {
			k := strings.TrimPrefix(string(kv.Key), b.prefix)
			if k == generationKey {
				gen, epoch = kv.ModRevision, string(kv.Value)
				continue
			}
			entries[k] = state.Entry{Value: kv.Value, Revision: kv.ModRevision}
		}
	}
	rev := stateRevision(entries, gen)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fault == nil && (rev > b.rev || epoch != b.epoch) {
		b.entries, b.rev, b.gen, b.epoch = entries, rev, gen, epoch
		b.snap = nil
		b.hist.note(rev, gen)
	}
	d := b.snapshotLocked()
	if handed {
		b.delivered = max(b.delivered, d.Revision)
	}
	b.kick(b.changed)
	return d
}

// stateRevision is the revision of a state read whole: the newest of its keys and of the
// generation (which every commit writes, so a delete through the API counts too). Nodes
// holding the same state report the same revision, however they came by it.
func stateRevision(entries map[string]state.Entry, gen int64) int64 {
	rev := gen
	for _, e := range entries {
		rev = max(rev, e.Revision)
	}
	return rev
}

// statePrefixes are the state's key spaces; PATH/nodes/ and PATH/votes/ are the fleet's.
var statePrefixes = []string{state.ConfigPrefix, state.ModesPrefix, state.PinsPrefix, state.PoolModesPrefix, state.HoldsPrefix, state.MembersPrefix}

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

// list reads everything under PATH/ at one revision and puts it in force; it returns the
// revision to watch from. A list that shows the store went back in time (guard.go) is not
// put in force: the backend keeps its state, raises the fault and lists again later.
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
	var gen int64
	epoch := ""
	for _, kv := range resp.Kvs {
		k := strings.TrimPrefix(string(kv.Key), b.prefix)
		switch {
		case stateKey(k):
			entries[k] = state.Entry{Value: kv.Value, Revision: kv.ModRevision}
		case k == generationKey:
			gen, epoch = kv.ModRevision, string(kv.Value)
		default:
			putFleet(nodes, votes, k, kv.Value)
		}
	}
	r := stateRevision(entries, gen)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.checkHistoryLocked(resp.Header, gen, epoch); err != nil {
		return 0, err
	}
	b.nodes, b.votes = nodes, votes
	b.fleetChanged()
	switch {
	case epoch != b.epoch:
		// A restored store (guard.go): its revisions start again, and its state is the one.
		b.entries, b.rev, b.gen, b.epoch, b.snap = entries, r, gen, epoch, nil
		b.delivered = 0
	case r >= b.rev:
		b.entries, b.rev, b.gen, b.snap = entries, r, gen, nil
	case b.commits == commits && !sameEntries(entries, b.entries):
		// Older than the state in force with no Commit meanwhile (whose state would be
		// newer): a delete written around the API while this node was away, which a list
		// cannot date. The header revision is after it.
		b.entries, b.rev, b.gen, b.snap = entries, resp.Header.Revision, gen, nil
	default:
		return resp.Header.Revision, nil
	}
	b.hist.note(b.rev, b.gen)
	b.kick(b.changed)
	return resp.Header.Revision, nil
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
		if k == generationKey {
			if ev.Type == mvccpb.PUT && ev.Kv.ModRevision > b.gen && string(ev.Kv.Value) == b.epoch {
				b.gen, b.snap, changed = ev.Kv.ModRevision, nil, true
				b.rev = max(b.rev, ev.Kv.ModRevision)
			} else if string(ev.Kv.Value) != b.epoch || ev.Type == mvccpb.DELETE {
				b.kick(b.resync) // a restore (or a hand at the generation): list again
			}
			continue
		}
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
		b.hist.note(b.rev, b.gen)
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
		writeCache := b.cfg.CacheFile != "" && (d.Revision != b.cacheRev || d.Epoch != b.cacheEpoch)
		h := b.hist
		b.mu.Unlock()
		if writeCache {
			if err := writeCacheFile(b.cfg.CacheFile, b.cfg.Path, d, h); err != nil {
				log.Printf("[WARNING] plugin/gtm: cluster cache %s: %v", b.cfg.CacheFile, err)
			} else {
				b.mu.Lock()
				b.cacheRev, b.cacheEpoch = d.Revision, d.Epoch
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
	for {
		every := probeEvery
		if !b.Connected() {
			every = probeEveryDown
		}
		if !b.sleep(every) {
			return
		}
		// The generation, not a count: a watch resumed by the client on an etcd that lost
		// its data sees nothing wrong, the generation going back (or away) does.
		ctx, cancel := context.WithTimeout(b.ctx, min(requestTimeout, time.Second))
		resp, err := b.cli.Get(ctx, b.genKey())
		cancel()
		if b.ctx.Err() != nil {
			return
		}
		if err == nil && (b.noteHeader(resp.Header) || b.genMoved(resp.Kvs)) {
			b.kick(b.resync) // the list that follows says whether it is a regression
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
