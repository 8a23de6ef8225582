package control

import (
	"context"
	"testing"

	"github.com/gtm-dns/coredns-gtm/policy"
)

// pinnedBlock is a started block whose domain www is pinned to pool b.
func pinnedBlock(tb testing.TB) (*Block, *policy.Domain) {
	tb.Helper()
	cfg := testConfig(tb, "gtm.pin.test.", `{
	"pools": {"a": {"addresses": [{"address": "192.0.2.1"}]}, "b": {"addresses": [{"address": "192.0.2.2"}]}},
	"domains": {"www.gtm.pin.test": {"routes": [{"selector": "default", "pools": ["a"]}]}}
}`)
	b := startBlock(tb, cfg)
	if err := b.st.SetPin(context.Background(), "www.gtm.pin.test.", "b"); err != nil {
		tb.Fatal(err)
	}
	return b, b.Snapshot().Domain("www.gtm.pin.test.")
}

// A pinned answer's accounting, after its first, allocates nothing and takes no lock: the
// answers_total child is held by the domain's handle (before, every pinned answer looked it
// up in the vector under its lock, and the route counters under routeTable's).
func TestPinnedAnswerAllocatesNothing(t *testing.T) {
	b, d := pinnedBlock(t)
	cs := b.Snapshot()
	var buf [8]*policy.Address
	var cl policy.Client
	res, route, pinned := cs.Decide(d, &cl, policy.IPv4, buf[:0])
	if !pinned || route != nil || res.Pool.Name != "b" {
		t.Fatalf("not pinned: %v %v %v", pinned, route, res.Pool)
	}
	cs.Account(d, route, &res)
	if n := testing.AllocsPerRun(1000, func() { cs.Account(d, route, &res) }); n != 0 {
		t.Fatalf("a pinned answer's accounting allocates %v times", n)
	}
	// No lock: with routeTable's lock held (as a scrape or a compile holds it), pinned
	// answers still count.
	routeTable.Lock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 100 {
			cs.Account(d, route, &res)
		}
	}()
	<-done
	routeTable.Unlock()
}

// BenchmarkPinnedAnswer is the decision and accounting of a pinned domain's answer on the
// query path: 0 allocations, no lock (see TestPinnedAnswerAllocatesNothing); run in parallel
// to show it does not serialise.
func BenchmarkPinnedAnswer(b *testing.B) {
	blk, d := pinnedBlock(b)
	cs := blk.Snapshot()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var buf [8]*policy.Address
		var cl policy.Client
		for pb.Next() {
			res, route, _ := cs.Decide(d, &cl, policy.IPv4, buf[:0])
			cs.Account(d, route, &res)
		}
	})
}

// Explain is a pure read: explaining a failed-over route many times moves no detector and
// counts nothing, so a query afterwards still sees the failover (counted and told once).
func TestExplainDecideIsPure(t *testing.T) {
	cfg := testConfig(t, "gtm.ex.test.", `{
	"pools": {"a": {"addresses": [{"address": "192.0.2.1"}]}, "b": {"addresses": [{"address": "192.0.2.2"}]}},
	"domains": {"www.gtm.ex.test": {"routes": [{"selector": "default", "pools": ["a", "b"]}], "fallback": "nodata"}}
}`)
	b := startBlock(t, cfg)
	cs := b.Snapshot()
	d := cs.Domain("www.gtm.ex.test.")
	r := d.Routes[0]
	ref := cs.routes[r]
	var buf [8]*policy.Address
	var cl policy.Client
	query := func() policy.Result {
		res, route, _ := cs.Decide(d, &cl, policy.IPv4, buf[:0])
		cs.Account(d, route, &res)
		return res
	}
	query() // a answers: the route's current pool
	ctx := context.Background()
	if err := b.st.SetMode(ctx, "a", "192.0.2.1", policy.ModeDown); err != nil {
		t.Fatal(err)
	}
	cs = b.Snapshot()
	before := ref.c.failovers.Load()
	for range 10 {
		res, _, _ := cs.ExplainDecide(d, &cl, policy.IPv4, buf[:0])
		if res.Pool.Name != "b" || !res.Switched {
			t.Fatalf("explain: pool %v switched %v, want b, a switch to come", res.Pool, res.Switched)
		}
	}
	if got := ref.c.failovers.Load(); got != before || ref.ep.bits.Load() != 0 {
		t.Fatalf("explain counted failovers (%d -> %d) or noted an episode (%b)", before, got, ref.ep.bits.Load())
	}
	if res := query(); !res.Switched {
		t.Fatal("after explain the query does not see the failover: explain moved the detector")
	}
	if got := ref.c.failovers.Load(); got != before+1 {
		t.Fatalf("failovers %d, want %d", got, before+1)
	}
	// The fallback episode: explain sees it coming, and leaves it to the query.
	if err := b.st.SetMode(ctx, "b", "192.0.2.2", policy.ModeDown); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if res, _, _ := cs.ExplainDecide(d, &cl, policy.IPv4, buf[:0]); !res.InFallback || res.Episode != 1 {
			t.Fatalf("explain: in fallback %v, episode %d; want the episode's beginning", res.InFallback, res.Episode)
		}
	}
	if r.InEpisode() {
		t.Fatal("explain began the fallback episode")
	}
	if res := query(); res.Episode != 1 {
		t.Fatalf("the query's episode %d, want 1 (explain took it)", res.Episode)
	}
}
