package etcd

import (
	"context"
	"testing"
	"time"

	"github.com/gtm-dns/coredns-gtm/internal/etcdtest"
)

// A vote is written on a verdict change only: publishing the same verdict again writes
// nothing and keeps its "at" (the verdict's start), however long it stays; a vote etcd lost
// (deleted by hand here) is written again by the reconciliation with the watched copy.
func TestVoteWrittenOnChangeAndWhenLost(t *testing.T) {
	every, after := reconcileEvery, reconcileAfter
	reconcileEvery, reconcileAfter = 300*time.Millisecond, 200*time.Millisecond
	srv := etcdtest.Start(t)
	a := open(t, srv.Endpoints(), "a")
	t.Cleanup(func() { a.Close(); reconcileEvery, reconcileAfter = every, after })
	raw := rawClient(t, srv.Endpoints())
	get := func() (rev int64, v []byte) {
		r, err := raw.Get(context.Background(), "/gtm/votes/10.0.0.1/abc/a")
		if err != nil || len(r.Kvs) == 0 {
			return 0, nil
		}
		return r.Kvs[0].ModRevision, r.Kvs[0].Value
	}
	since := time.Now().Add(-time.Hour).Round(time.Second)
	a.PublishVote("10.0.0.1/abc", Vote{Healthy: true, At: since})
	eventually(t, 2*time.Second, "vote written", func() bool { r, _ := get(); return r != 0 })
	r0, _ := get()
	for range 5 { // across several heartbeats and reconciliations
		a.PublishVote("10.0.0.1/abc", Vote{Healthy: true, At: time.Now()})
		time.Sleep(time.Second)
	}
	if r1, _ := get(); r1 != r0 {
		t.Fatalf("an unchanged vote was written again (revision %d, then %d)", r0, r1)
	}
	if vs := a.Votes()["10.0.0.1/abc"]; len(vs) != 1 || !vs[0].At.Equal(since) {
		t.Fatalf("votes %+v: want at %v (the verdict's start)", vs, since)
	}

	if _, err := raw.Delete(context.Background(), "/gtm/votes/10.0.0.1/abc/a"); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, 5*time.Second, "lost vote written again", func() bool { r, _ := get(); return r != 0 })
	t.Logf("lost vote written again after %v", took.Round(time.Millisecond))
	// a learns of its own rewrite through its watch, a moment after etcd has it.
	eventually(t, 2*time.Second, "rewritten vote in a's view, at the verdict's start", func() bool {
		vs := a.Votes()["10.0.0.1/abc"]
		return len(vs) == 1 && vs[0].At.Equal(since)
	})

	// A new verdict is written, with its own time.
	a.PublishVote("10.0.0.1/abc", Vote{Healthy: false, Error: "timeout"})
	eventually(t, 2*time.Second, "new verdict", func() bool {
		vs := a.Votes()["10.0.0.1/abc"]
		return len(vs) == 1 && !vs[0].Healthy && vs[0].At.After(since)
	})
}
