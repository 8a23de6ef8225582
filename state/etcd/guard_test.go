package etcd

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/gtm-dns/coredns-gtm/internal/etcdtest"
	"github.com/gtm-dns/coredns-gtm/state"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// A guarded commit built on a state another node changed since is refused with the state
// now, read in the same transaction; built on that state, it lands.
func TestCommitGuardedStale(t *testing.T) {
	srv := etcdtest.Start(t)
	a := open(t, srv.Endpoints(), "a")
	b := open(t, srv.Endpoints(), "b")
	ctx := context.Background()
	base, _ := a.Load(ctx)
	bd, err := b.Commit(ctx, []state.Op{put("config/pools/q1", `{}`)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.CommitGuarded(ctx, base, []state.Op{put("config/domains/d.", `{}`)})
	var stale *state.StaleError
	if !errors.As(err, &stale) || !errors.Is(err, state.ErrConflict) {
		t.Fatalf("guarded commit on an old base: %v, want a StaleError", err)
	}
	if _, ok := stale.Data.Entries["config/pools/q1"]; !ok || stale.Data.Revision < bd.Revision {
		t.Fatalf("the stale error's state (revision %d) lacks b's write (revision %d)", stale.Data.Revision, bd.Revision)
	}
	d, err := a.CommitGuarded(ctx, stale.Data, []state.Op{put("config/domains/d.", `{}`)})
	if err != nil {
		t.Fatalf("guarded commit on the fresh state: %v", err)
	}
	if d.Generation != d.Revision || len(d.Entries) != 2 {
		t.Fatalf("after the commit: revision %d generation %d entries %v", d.Revision, d.Generation, d.Entries)
	}
	// A mode write does not touch the configuration, but it is a commit: it moves the
	// generation, so a config write built before it runs again.
	if _, err := b.Commit(ctx, []state.Op{put("modes/q1/192.0.2.1", `{"mode":"down"}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CommitGuarded(ctx, d, []state.Op{put("config/pools/q2", `{}`)}); !errors.As(err, &stale) {
		t.Fatalf("guarded commit after another commit: %v", err)
	}
	// A write around the API (etcdctl) under config/ is seen too.
	raw := rawClient(t, srv.Endpoints())
	now, _ := a.Fresh(ctx)
	if _, err := raw.Put(ctx, "/gtm/config/pools/q3", `{}`); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CommitGuarded(ctx, now, []state.Op{put("config/pools/q4", `{}`)}); !errors.As(err, &stale) {
		t.Fatalf("guarded commit after a write around the API: %v", err)
	}
}

// Nodes holding the same state report the same revision, whether they listed it or
// followed it through the watch.
func TestRevisionOfState(t *testing.T) {
	srv := etcdtest.Start(t)
	a := open(t, srv.Endpoints(), "a")
	ctx := context.Background()
	d, err := a.Commit(ctx, []state.Op{put("config/pools/eu", `{}`)})
	if err != nil {
		t.Fatal(err)
	}
	// Heartbeats and votes move etcd's revision, not the state's.
	time.Sleep(1200 * time.Millisecond)
	b := open(t, srv.Endpoints(), "b")
	bd, _ := b.Load(ctx)
	if bd.Revision != d.Revision || a.Revision() != d.Revision {
		t.Fatalf("same state, revisions: commit %d, a %d, b (listed) %d", d.Revision, a.Revision(), bd.Revision)
	}
}

// etcd restarted on an empty data directory: the node keeps its state, raises the fault,
// refuses writes, and takes the state an operator restores (a new epoch, lower revision).
func TestRegressionAndRestore(t *testing.T) {
	srv := etcdtest.Start(t)
	cache := filepath.Join(t.TempDir(), "cache.json")
	a := open(t, srv.Endpoints(), "a", func(c *Config) { c.CacheFile = cache })
	st, err := state.Open(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	faults := make(chan error, 10)
	a.OnFault(func(err error) { faults <- err })
	ctx := context.Background()
	var last *state.Data
	for _, k := range []string{"config/pools/eu", "config/pools/us", "pins/www.example.", "config/domains/www.example."} {
		if last, err = st.Commit(ctx, []state.Op{put(k, `{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 2*time.Second, "cache written", func() bool {
		c, _, _ := readCache(cache, "/gtm")
		return c != nil && c.Revision == last.Revision
	})

	srv.RestartEmpty()
	eventually(t, 5*time.Second, "fault raised", func() bool { return a.Fault() != nil })
	t.Logf("fault: %v", a.Fault())
	if got := <-faults; !errors.Is(got, state.ErrRegressed) {
		t.Fatalf("fault callback: %v", got)
	}
	if d := st.Data(); len(d.Entries) != 4 || d.Revision != last.Revision {
		t.Fatalf("the node dropped its state: revision %d, %d entries", d.Revision, len(d.Entries))
	}
	if _, err := st.Commit(ctx, []state.Op{put("config/pools/x", `{}`)}); !errors.Is(err, state.ErrRegressed) {
		t.Fatalf("write on a regressed store: %v, want ErrRegressed", err)
	}
	// Nothing of the node's reached the empty etcd.
	raw := rawClient(t, srv.Endpoints())
	if r, err := raw.Get(ctx, "/gtm/config/", clientv3.WithPrefix()); err != nil || len(r.Kvs) != 0 {
		t.Fatalf("etcd after the refused write: %v %v", r, err)
	}
	// A node restarted with its cache notices as well.
	b := open(t, srv.Endpoints(), "a2", func(c *Config) { c.CacheFile = cache })
	if b.Fault() == nil {
		t.Fatal("a node started from the cache took the empty store")
	}
	if d, _ := b.Load(ctx); len(d.Entries) != 4 {
		t.Fatalf("the restarted node serves %d entries", len(d.Entries))
	}

	// Restore from the cache file.
	cd, _, err := ReadCache(cache)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := a.Restore(ctx, entriesOf(cd))
	if err != nil {
		t.Fatal(err)
	}
	if a.Fault() != nil || len(rd.Entries) != 4 || rd.Epoch == "" {
		t.Fatalf("after the restore: fault %v, %d entries, epoch %q", a.Fault(), len(rd.Entries), rd.Epoch)
	}
	eventually(t, 5*time.Second, "b takes the restored state", func() bool {
		d, _ := b.Load(ctx)
		return b.Fault() == nil && d.Epoch == rd.Epoch && len(d.Entries) == 4
	})
	eventually(t, 2*time.Second, "the store takes the new epoch", func() bool { return st.Data().Epoch == rd.Epoch })
	if _, err := st.Commit(ctx, []state.Op{put("config/pools/x", `{}`)}); err != nil {
		t.Fatalf("write after the restore: %v", err)
	}
}

// A write through b right after one through a is built on b's newest view (the watch has
// a's write before its debounced delivery): one attempt, not a commit sure to be refused.
func TestUpdateBuildsOnTheView(t *testing.T) {
	srv := etcdtest.Start(t)
	a := open(t, srv.Endpoints(), "a")
	b := open(t, srv.Endpoints(), "b")
	ctx := context.Background()
	sb, err := state.Open(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	retried := 0
	for i := range 10 {
		key := "config/pools/v" + string(rune('0'+i))
		ad, err := a.Commit(ctx, []state.Op{put(key, `{}`)})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, 2*time.Second, "b's watch has a's write", func() bool {
			v := b.View()
			return v != nil && v.Revision >= ad.Revision
		})
		tries := 0
		if _, err := sb.Update(ctx, func(d *state.Data) ([]state.Op, error) {
			tries++
			if _, ok := d.Entries[key]; !ok {
				return nil, errors.New("built on a state without a's write")
			}
			return []state.Op{put("config/domains/v.", `{}`)}, nil
		}); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if tries > 1 {
			retried++
		}
	}
	if retried > 0 {
		t.Fatalf("%d of 10 updates right after another node's write ran more than once", retried)
	}
}
