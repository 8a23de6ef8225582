package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gtm-dns/coredns-gtm/internal/etcdtest"
	"github.com/gtm-dns/coredns-gtm/policy"
	"github.com/gtm-dns/coredns-gtm/state"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func open(t *testing.T, endpoints []string, node string, mod ...func(*Config)) *Backend {
	t.Helper()
	cfg := Config{Endpoints: endpoints, Node: node, Region: "r-" + node, Version: "test", DialTimeout: time.Second}
	for _, m := range mod {
		m(&cfg)
	}
	b, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func rawClient(t *testing.T, endpoints []string) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// eventually polls cond every 10 ms until it holds or limit passes; it returns the time it
// took.
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// watched collects the states a Backend's Watch delivers.
type watched struct {
	mu    sync.Mutex
	all   []*state.Data
	count atomic.Int64
}

func watch(t *testing.T, b *Backend) *watched {
	w := &watched{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.Watch(ctx, func(d *state.Data) {
			w.mu.Lock()
			w.all = append(w.all, d)
			w.mu.Unlock()
			w.count.Add(1)
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

func (w *watched) last() *state.Data {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.all) == 0 {
		return &state.Data{}
	}
	return w.all[len(w.all)-1]
}

func put(key, value string) state.Op { return state.Op{Key: key, Value: []byte(value)} }

func TestCommitWatchRoundTrip(t *testing.T) {
	srv := etcdtest.Start(t)
	a := open(t, srv.Endpoints(), "a")
	b := open(t, srv.Endpoints(), "b")
	wb := watch(t, b)

	start := time.Now()
	d, err := a.Commit(context.Background(), []state.Op{put("config/pools/eu", `{"lb":"weighted"}`)})
	if err != nil {
		t.Fatal(err)
	}
	e, ok := d.Entries["config/pools/eu"]
	if !ok || string(e.Value) != `{"lb":"weighted"}` || e.Revision != d.Revision || d.Revision == 0 {
		t.Fatalf("commit returned %+v", d)
	}
	if a.Revision() != d.Revision {
		t.Fatalf("a applied %d, committed %d", a.Revision(), d.Revision)
	}
	took := eventually(t, 2*time.Second, "b sees a's write", func() bool {
		return string(wb.last().Entries["config/pools/eu"].Value) == `{"lb":"weighted"}`
	})
	t.Logf("a's write delivered on b after %v", time.Since(start).Round(time.Millisecond))
	_ = took
	if got := wb.last(); got.Revision != d.Revision || got.Entries["config/pools/eu"].Revision != d.Revision {
		t.Fatalf("b has revision %d (entry %d), a committed %d", got.Revision, got.Entries["config/pools/eu"].Revision, d.Revision)
	}

	// The key layout: PATH/ + state key, readable with etcdctl.
	raw := rawClient(t, srv.Endpoints())
	r, err := raw.Get(context.Background(), "/gtm/config/pools/eu")
	if err != nil || len(r.Kvs) != 1 || r.Kvs[0].ModRevision != d.Revision {
		t.Fatalf("etcd has %v, %v", r, err)
	}
	// A write straight into etcd (around the API) reaches both.
	wr, err := raw.Put(context.Background(), "/gtm/pins/www.example.", `{"pool":"eu"}`)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "b sees the etcdctl write", func() bool { return wb.last().Revision == wr.Header.Revision })
	eventually(t, 2*time.Second, "a applies the etcdctl write", func() bool { return a.Revision() == wr.Header.Revision })
	// Keys outside the state's spaces are not state.
	raw.Put(context.Background(), "/gtm/other/x", "1")
	// A delete.
	d, err = b.Commit(context.Background(), []state.Op{{Key: "config/pools/eu"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Entries["config/pools/eu"]; ok {
		t.Fatal("deleted key still in the returned state")
	}
	eventually(t, 2*time.Second, "a sees b's delete", func() bool {
		ad, _ := a.Load(context.Background())
		_, ok := ad.Entries["config/pools/eu"]
		return !ok && ad.Revision == d.Revision
	})
	ad, _ := a.Load(context.Background())
	if len(ad.Entries) != 1 {
		t.Fatalf("a has %v", ad.Entries)
	}
	// The node record carries the revision applied.
	eventually(t, 5*time.Second, "a's node record at the last revision", func() bool {
		for _, n := range b.Nodes() {
			if n.Name == "a" {
				return n.Revision == d.Revision && n.Region == "r-a" && n.Version == "test"
			}
		}
		return false
	})
	// Commit's own write is not delivered back to its watcher.
	wa := watch(t, a)
	time.Sleep(100 * time.Millisecond)
	base := wa.count.Load()
	if _, err := a.Commit(context.Background(), []state.Op{put("modes/eu/192.0.2.1", `{"mode":"down"}`)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if n := wa.count.Load() - base; n != 0 {
		t.Errorf("own commit delivered %d times to the watcher", n)
	}
}

// Two Stores on two nodes: a mode set through one is in force on the other.
func TestStoresShareModes(t *testing.T) {
	srv := etcdtest.Start(t)
	sa, err := state.Open(context.Background(), open(t, srv.Endpoints(), "a"))
	if err != nil {
		t.Fatal(err)
	}
	sb, err := state.Open(context.Background(), open(t, srv.Endpoints(), "b"))
	if err != nil {
		t.Fatal(err)
	}
	cell := sb.ModeCell("eu", "192.0.2.1")
	if err := sa.SetMode(context.Background(), "eu", "192.0.2.1", policy.ModeDown); err != nil {
		t.Fatal(err)
	}
	if sa.ModeCell("eu", "192.0.2.1").Get() != policy.ModeDown {
		t.Fatal("not in force on the writer")
	}
	eventually(t, 2*time.Second, "mode on the other node", func() bool { return cell.Get() == policy.ModeDown })
	if err := sb.SetMode(context.Background(), "eu", "192.0.2.1", policy.ModeAuto); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "auto on the first node", func() bool { return sa.ModeCell("eu", "192.0.2.1").Get() == policy.ModeAuto })
}

func TestConflict(t *testing.T) {
	srv := etcdtest.Start(t)
	a := open(t, srv.Endpoints(), "a")
	ctx := context.Background()
	create := state.Op{Key: "config/pools/eu", Value: []byte(`{"v":1}`), Check: true, Revision: 0}
	d1, err := a.Commit(ctx, []state.Op{create})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Commit(ctx, []state.Op{create}); !errors.Is(err, state.ErrConflict) {
		t.Fatalf("second create: %v, want ErrConflict", err)
	}
	rev1 := d1.Entries["config/pools/eu"].Revision
	d2, err := a.Commit(ctx, []state.Op{{Key: "config/pools/eu", Value: []byte(`{"v":2}`), Check: true, Revision: rev1}})
	if err != nil {
		t.Fatalf("If-Match current: %v", err)
	}
	// If-Match with the old revision, together with an unconditional write: nothing lands.
	_, err = a.Commit(ctx, []state.Op{
		put("pins/www.example.", `{"pool":"eu"}`),
		{Key: "config/pools/eu", Value: []byte(`{"v":3}`), Check: true, Revision: rev1},
	})
	if !errors.Is(err, state.ErrConflict) {
		t.Fatalf("stale If-Match: %v, want ErrConflict", err)
	}
	// Delete with a stale revision fails, with the current one succeeds.
	if _, err := a.Commit(ctx, []state.Op{{Key: "config/pools/eu", Check: true, Revision: rev1}}); !errors.Is(err, state.ErrConflict) {
		t.Fatalf("stale delete: %v", err)
	}
	d3, err := a.Commit(ctx, []state.Op{{Key: "config/pools/eu", Check: true, Revision: d2.Entries["config/pools/eu"].Revision}})
	if err != nil {
		t.Fatal(err)
	}
	if len(d3.Entries) != 0 {
		t.Fatalf("left %v", d3.Entries)
	}
	// A key written twice in one commit: the last write wins (etcd refuses duplicates).
	d4, err := a.Commit(ctx, []state.Op{put("pins/x.", `{"pool":"a"}`), put("pins/x.", `{"pool":"b"}`)})
	if err != nil || string(d4.Entries["pins/x."].Value) != `{"pool":"b"}` {
		t.Fatalf("%v %v", d4, err)
	}
	if _, err := a.Commit(ctx, []state.Op{put("nodes/a", "{}")}); err == nil {
		t.Fatal("a write outside the state's keys was taken")
	}
}

func TestUnavailableAndCatchUp(t *testing.T) {
	srv := etcdtest.Start(t)
	a := open(t, srv.Endpoints(), "a")
	var mu sync.Mutex
	var seen []bool
	a.OnConnection(func(up bool) { mu.Lock(); seen = append(seen, up); mu.Unlock() })
	wa := watch(t, a)
	if !a.Connected() {
		t.Fatal("not connected at start")
	}
	if _, err := a.Commit(context.Background(), []state.Op{put("pins/a.", `{"pool":"x"}`)}); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	start := time.Now()
	_, err := a.Commit(context.Background(), []state.Op{put("pins/b.", `{"pool":"x"}`)})
	took := time.Since(start)
	if !errors.Is(err, state.ErrUnavailable) {
		t.Fatalf("commit with etcd stopped: %v, want ErrUnavailable", err)
	}
	if took > 3*time.Second {
		t.Fatalf("ErrUnavailable after %v", took)
	}
	t.Logf("ErrUnavailable after %v: %v", took.Round(time.Millisecond), err)
	eventually(t, 3*time.Second, "disconnected", func() bool { return !a.Connected() })
	d, _ := a.Load(context.Background())
	if _, ok := d.Entries["pins/a."]; !ok {
		t.Fatal("the last state is not kept while etcd is away")
	}

	srv.Restart()
	raw := rawClient(t, srv.Endpoints())
	restarted := time.Now()
	wr, err := raw.Put(context.Background(), "/gtm/pins/c.", `{"pool":"y"}`)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "catch-up after restart", func() bool { return wa.last().Revision >= wr.Header.Revision })
	t.Logf("caught up %v after the restart", time.Since(restarted).Round(time.Millisecond))
	eventually(t, 2*time.Second, "connected again", a.Connected)
	if _, err := a.Commit(context.Background(), []state.Op{put("pins/b.", `{"pool":"x"}`)}); err != nil {
		t.Fatalf("commit after restart: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(seen) != "[false true]" {
		t.Fatalf("transitions %v, want [false true]", seen)
	}
}

// A node cut off from etcd while another writes catches up within 2 s of the link's return.
func TestPartitionCatchUp(t *testing.T) {
	srv := etcdtest.Start(t)
	px := etcdtest.NewProxy(t, srv.Endpoint())
	a := open(t, px.Endpoints(), "a")
	b := open(t, srv.Endpoints(), "b")
	wa := watch(t, a)

	px.Cut()
	eventually(t, 4*time.Second, "a disconnected", func() bool { return !a.Connected() })
	if _, err := a.Commit(context.Background(), []state.Op{put("pins/a.", `{"pool":"x"}`)}); !errors.Is(err, state.ErrUnavailable) {
		t.Fatalf("commit while cut: %v", err)
	}
	d, err := b.Commit(context.Background(), []state.Op{put("config/pools/eu", `{}`)})
	if err != nil {
		t.Fatal(err)
	}
	b.PublishVote("k", Vote{Healthy: true})
	// Partitioned, a decides alone on its own verdict.
	if down, n, of := a.Quorum("k", false, 50); !down || n != 1 || of != 1 {
		t.Fatalf("Quorum while partitioned: %v %d/%d", down, n, of)
	}
	px.Restore()
	restored := time.Now()
	eventually(t, 2*time.Second, "a catches up", func() bool { return wa.last().Revision >= d.Revision })
	t.Logf("caught up %v after the link's return", time.Since(restored).Round(time.Millisecond))
	eventually(t, 2*time.Second, "a counts b's vote", func() bool {
		down, n, of := a.Quorum("k", false, 50)
		return down && n == 1 && of == 2
	})
}

// A watch behind a compacted revision lists again: the node converges.
func TestCompactionRelist(t *testing.T) {
	srv := etcdtest.Start(t)
	px := etcdtest.NewProxy(t, srv.Endpoint())
	a := open(t, px.Endpoints(), "a")
	wa := watch(t, a)
	raw := rawClient(t, srv.Endpoints())
	ctx := context.Background()

	// The watch idiom itself: a watch from a compacted revision is refused with ErrCompacted.
	var last int64
	for i := range 10 {
		r, err := raw.Put(ctx, fmt.Sprintf("/gtm/pins/%d.", i), `{"pool":"x"}`)
		if err != nil {
			t.Fatal(err)
		}
		last = r.Header.Revision
	}
	if _, err := raw.Compact(ctx, last); err != nil {
		t.Fatal(err)
	}
	if err := a.watch(1); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Fatalf("watch from a compacted revision: %v", err)
	}

	// Cut a off, write and delete behind its back, compact, let it back.
	eventually(t, 2*time.Second, "a at the last put", func() bool { return wa.last().Revision >= last })
	px.Cut()
	eventually(t, 4*time.Second, "a disconnected", func() bool { return !a.Connected() })
	raw.Delete(ctx, "/gtm/pins/0.")
	r, _ := raw.Put(ctx, "/gtm/pins/new.", `{"pool":"y"}`)
	if _, err := raw.Compact(ctx, r.Header.Revision); err != nil {
		t.Fatal(err)
	}
	px.Restore()
	eventually(t, 3*time.Second, "a converges after compaction", func() bool {
		d := wa.last()
		_, gone := d.Entries["pins/0."]
		_, added := d.Entries["pins/new."]
		return d.Revision >= r.Header.Revision && !gone && added && len(d.Entries) == 10
	})
}

// A burst of many keys is one delivery (or very few), not one per key.
func TestBurstDebounced(t *testing.T) {
	srv := etcdtest.Start(t)
	a := open(t, srv.Endpoints(), "a")
	wa := watch(t, a)
	raw := rawClient(t, srv.Endpoints())
	time.Sleep(100 * time.Millisecond)
	base := wa.count.Load()
	// 1000 keys in 10 transactions of 100 (etcd's default --max-txn-ops is 128).
	var wg sync.WaitGroup
	for g := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ops []clientv3.Op
			for i := range 100 {
				ops = append(ops, clientv3.OpPut(fmt.Sprintf("/gtm/modes/p%d/192.0.2.%d", g, i), `{"mode":"down"}`))
			}
			if _, err := raw.Txn(context.Background()).Then(ops...).Commit(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	eventually(t, 2*time.Second, "1000 keys delivered", func() bool { return len(wa.last().Entries) == 1000 })
	time.Sleep(200 * time.Millisecond)
	n := wa.count.Load() - base
	t.Logf("1000 keys in %d deliveries", n)
	if n > 2 {
		t.Fatalf("1000 keys in %d deliveries", n)
	}
}

func TestLeaseExpiryAndVotes(t *testing.T) {
	srv := etcdtest.Start(t)
	ttl := func(c *Config) { c.LeaseTTL = 2 * time.Second }
	a := open(t, srv.Endpoints(), "a", ttl)
	b := open(t, srv.Endpoints(), "b", ttl)
	c := open(t, srv.Endpoints(), "c", ttl)
	names := func(ns []Node) string {
		s := ""
		for _, n := range ns {
			s += n.Name + " "
		}
		return s
	}
	eventually(t, 3*time.Second, "three nodes", func() bool { return names(a.Nodes()) == "a b c " })

	key := "eu/192.0.2.1/web"
	for _, n := range []*Backend{a, b, c} {
		if err := n.PublishVote(key, Vote{Healthy: n != a, Error: map[bool]string{true: "connection refused"}[n == a]}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 2*time.Second, "three votes", func() bool { return len(a.Votes()[key]) == 3 })
	vs := a.Votes()[key]
	if vs[0].Node != "a" || vs[0].Healthy || vs[0].Error != "connection refused" || vs[0].Region != "r-a" || !vs[1].Healthy {
		t.Fatalf("votes %+v", vs)
	}
	if down, n, of := Decide(true, vs, a.LiveNodes(), 50); down || n != 1 || of != 3 {
		t.Fatalf("Decide: %v %d/%d", down, n, of)
	}
	// An unchanged verdict is not written again.
	r0, _ := rawClient(t, srv.Endpoints()).Get(context.Background(), "/gtm/votes/"+key+"/b")
	b.PublishVote(key, Vote{Healthy: true})
	time.Sleep(200 * time.Millisecond)
	r1, _ := rawClient(t, srv.Endpoints()).Get(context.Background(), "/gtm/votes/"+key+"/b")
	if r0.Kvs[0].ModRevision != r1.Kvs[0].ModRevision {
		t.Fatal("an unchanged vote was written again")
	}
	b.PublishVote(key, Vote{Healthy: false, Error: "timeout"})
	// Both a and c (whose Quorum is asked below) must have seen it: each learns through its
	// own watch.
	eventually(t, 2*time.Second, "b's changed vote on a and c", func() bool {
		for _, n := range []*Backend{a, c} {
			if vs := n.Votes()[key]; len(vs) != 3 || vs[1].Healthy {
				return false
			}
		}
		return true
	})
	if down, n, of := Decide(true, a.Votes()[key], a.LiveNodes(), 50); !down || n != 2 || of != 3 {
		t.Fatalf("Decide: %v %d/%d", down, n, of)
	}
	if down, n, of := c.Quorum(key, true, 50); !down || n != 2 || of != 3 {
		t.Fatalf("Quorum on c: %v %d/%d", down, n, of)
	}
	if down, n, of := c.Quorum(key, false, 100); !down || n != 3 || of != 3 {
		t.Fatalf("Quorum on c with its own verdict down, not yet written: %v %d/%d", down, n, of)
	}

	// A killed node (no revoke) drops out when its lease expires.
	killed := time.Now()
	b.crash()
	eventually(t, 10*time.Second, "b's lease expired", func() bool { return names(a.Nodes()) == "a c " && len(a.Votes()[key]) == 2 })
	t.Logf("killed node gone after %v (TTL 2s)", time.Since(killed).Round(time.Millisecond))
	// A closed node leaves at once.
	closed := time.Now()
	c.Close()
	eventually(t, time.Second, "c left", func() bool { return names(a.Nodes()) == "a " })
	t.Logf("closed node gone after %v", time.Since(closed).Round(time.Millisecond))
	if down, n, of := Decide(true, a.Votes()[key], a.LiveNodes(), 50); !down || n != 1 || of != 1 {
		t.Fatalf("Decide alone: %v %d/%d", down, n, of)
	}
	a.WithdrawVote(key)
	eventually(t, 2*time.Second, "vote withdrawn", func() bool { return len(a.Votes()[key]) == 0 })
}

// The session is the process's: when its lease is lost (revoked here, as etcd does to one
// that expired in a partition) a new one is made and everything is registered again.
func TestSessionRecreated(t *testing.T) {
	srv := etcdtest.Start(t)
	a := open(t, srv.Endpoints(), "a", func(c *Config) { c.LeaseTTL = 2 * time.Second })
	raw := rawClient(t, srv.Endpoints())
	a.PublishVote("k", Vote{Healthy: true})
	leaseOf := func(key string) clientv3.LeaseID {
		r, err := raw.Get(context.Background(), key)
		if err != nil || len(r.Kvs) == 0 {
			return 0
		}
		return clientv3.LeaseID(r.Kvs[0].Lease)
	}
	eventually(t, 2*time.Second, "registered", func() bool { return leaseOf("/gtm/nodes/a") != 0 && leaseOf("/gtm/votes/k/a") != 0 })
	old := leaseOf("/gtm/nodes/a")
	if _, err := raw.Revoke(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "registered under a new lease", func() bool {
		n, v := leaseOf("/gtm/nodes/a"), leaseOf("/gtm/votes/k/a")
		return n != 0 && n != old && v == n
	})

	// And through an etcd restart longer than the TTL.
	srv.Stop()
	time.Sleep(3 * time.Second)
	srv.Restart()
	eventually(t, 8*time.Second, "registered after the restart", func() bool {
		return leaseOf("/gtm/nodes/a") != 0 && leaseOf("/gtm/votes/k/a") != 0 && len(a.Nodes()) == 1
	})
}

func TestCacheFileAtStart(t *testing.T) {
	srv := etcdtest.Start(t)
	cache := filepath.Join(t.TempDir(), "gtm-cache.json")
	withCache := func(c *Config) { c.CacheFile = cache }
	a := open(t, srv.Endpoints(), "a", withCache)
	d, err := a.Commit(context.Background(), []state.Op{
		put("config/pools/eu", `{"lb":"weighted"}`),
		put("pins/www.example.", "not json"),
	})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "cache written", func() bool {
		c, _, err := readCache(cache, "/gtm")
		return err == nil && c != nil && c.Revision == d.Revision
	})
	a.Close()
	srv.Stop()

	start := time.Now()
	b := open(t, srv.Endpoints(), "a", withCache, func(c *Config) { c.DialTimeout = 500 * time.Millisecond })
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Open with etcd away took %v", took)
	}
	if b.Connected() {
		t.Fatal("connected with etcd stopped")
	}
	got, _ := b.Load(context.Background())
	if got.Revision != d.Revision || string(got.Entries["config/pools/eu"].Value) != `{"lb":"weighted"}` ||
		string(got.Entries["pins/www.example."].Value) != "not json" || got.Entries["config/pools/eu"].Revision != d.Revision {
		t.Fatalf("from the cache: %+v", got)
	}
	// Without a cache: empty, still no error.
	e := open(t, srv.Endpoints(), "e", func(c *Config) { c.DialTimeout = 200 * time.Millisecond })
	if got, _ := e.Load(context.Background()); len(got.Entries) != 0 {
		t.Fatal("state without etcd or cache")
	}

	srv.Restart()
	wb := watch(t, b)
	raw := rawClient(t, srv.Endpoints())
	wr, err := raw.Put(context.Background(), "/gtm/pins/new.", `{"pool":"eu"}`)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "caught up after start without etcd", func() bool { return wb.last().Revision >= wr.Header.Revision })
	eventually(t, 2*time.Second, "cache follows", func() bool {
		c, _, _ := readCache(cache, "/gtm")
		return c != nil && c.Revision >= wr.Header.Revision
	})
	// A corrupt cache is not fatal.
	os.WriteFile(cache, []byte("{"), 0o644)
	open(t, srv.Endpoints(), "f", withCache)
}

func TestCacheRoundTrip(t *testing.T) {
	f := filepath.Join(t.TempDir(), "c.json")
	d := &state.Data{Revision: 7, Entries: map[string]state.Entry{
		"config/pools/eu": {Value: []byte(`{"a":1}`), Revision: 5},
		"pins/x.":         {Value: []byte("\x00raw"), Revision: 6},
		"modes/p/a":       {Value: []byte{}, Revision: 7},
	}}
	if err := writeCacheFile(f, "/gtm", d, history{}); err != nil {
		t.Fatal(err)
	}
	got, _, err := readCache(f, "/gtm")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(d)
	b, _ := json.Marshal(got)
	if string(a) != string(b) {
		t.Fatalf("%s\n%s", a, b)
	}
	if _, _, err := readCache(f, "/other"); err == nil {
		t.Fatal("a cache of another path was taken")
	}
}

// A silent partition (no connection refused, bytes just stop): the node notices through
// its probe, a Commit sent into it answers ErrUnknown in bounded time (it went out: whether
// it lands is not known), and the node catches up on return.
func TestSilentPartition(t *testing.T) {
	srv := etcdtest.Start(t)
	px := etcdtest.NewProxy(t, srv.Endpoint())
	a := open(t, px.Endpoints(), "a")
	b := open(t, srv.Endpoints(), "b")
	wa := watch(t, a)

	px.Blackhole()
	start := time.Now()
	_, err := a.Commit(context.Background(), []state.Op{put("pins/a.", `{"pool":"x"}`)})
	if !errors.Is(err, state.ErrUnknown) || time.Since(start) > 3*time.Second {
		t.Fatalf("commit in a silent partition: %v after %v", err, time.Since(start))
	}
	eventually(t, 3*time.Second, "a disconnected", func() bool { return !a.Connected() })
	t.Logf("disconnected %v after the partition", time.Since(start).Round(time.Millisecond))
	d, err := b.Commit(context.Background(), []state.Op{put("config/pools/eu", `{}`)})
	if err != nil {
		t.Fatal(err)
	}
	px.Restore()
	restored := time.Now()
	eventually(t, 2*time.Second, "a catches up", func() bool { return wa.last().Revision >= d.Revision })
	t.Logf("caught up %v after the link's return", time.Since(restored).Round(time.Millisecond))
}

// Two nodes race optimistic writes on one key (read, If-Match, retry on conflict) and
// unconditional ones on others: no update is lost, and both converge on etcd's state.
func TestConcurrentWritersConverge(t *testing.T) {
	srv := etcdtest.Start(t)
	nodes := []*Backend{open(t, srv.Endpoints(), "a"), open(t, srv.Endpoints(), "b")}
	ws := []*watched{watch(t, nodes[0]), watch(t, nodes[1])}
	ctx := context.Background()
	const per = 25
	var wg sync.WaitGroup
	var conflicts atomic.Int64
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range per {
				for {
					d, _ := n.Load(ctx)
					e, ok := d.Entries["config/pools/counter"]
					var c int
					if ok {
						json.Unmarshal(e.Value, &c)
					}
					val, _ := json.Marshal(c + 1)
					_, err := n.Commit(ctx, []state.Op{
						{Key: "config/pools/counter", Value: val, Check: true, Revision: e.Revision},
						put(fmt.Sprintf("pins/n%d-%d.", i, j), `{"pool":"x"}`),
					})
					if err == nil {
						break
					}
					if !errors.Is(err, state.ErrConflict) {
						t.Error(err)
						return
					}
					conflicts.Add(1)
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d conflicts retried", conflicts.Load())
	raw := rawClient(t, srv.Endpoints())
	r, err := raw.Get(ctx, "/gtm/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]state.Entry{}
	for _, kv := range r.Kvs {
		if k := string(kv.Key)[len("/gtm/"):]; stateKey(k) {
			want[k] = state.Entry{Value: kv.Value, Revision: kv.ModRevision}
		}
	}
	if string(want["config/pools/counter"].Value) != fmt.Sprint(2*per) || len(want) != 2*per+1 {
		t.Fatalf("etcd has counter %s and %d keys", want["config/pools/counter"].Value, len(want))
	}
	for i, n := range nodes {
		eventually(t, 2*time.Second, fmt.Sprintf("node %d converges", i), func() bool {
			d, _ := n.Load(ctx)
			w := ws[i].last()
			return sameState(d.Entries, want) && (w.Revision <= d.Revision) && d.Revision >= want["config/pools/counter"].Revision
		})
	}
}

func sameState(a, b map[string]state.Entry) bool {
	if len(a) != len(b) {
		return false
	}
	for k, e := range a {
		f, ok := b[k]
		if !ok || f.Revision != e.Revision || string(f.Value) != string(e.Value) {
			return false
		}
	}
	return true
}
