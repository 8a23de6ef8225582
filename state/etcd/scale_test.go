//go:build scale

// The health votes at scale (issue 14): 5 nodes, 10,000 targets each, on a real etcd. Not
// part of `make test` (build tag scale); the numbers go to docs/BENCHMARKS.md:
//
//	bash scripts/etcd.sh
//	go test -tags scale -run TestVoteScale -v -timeout 30m ./state/etcd
//
// GTM_SCALE_WINDOW (default 2m) is the steady window; GTM_SCALE_TARGETS (default 10000) and
// GTM_SCALE_NODES (default 5) the size.
package etcd

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gtm-dns/coredns-gtm/internal/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// etcdSample is what etcd did so far, from its metrics, its process and a watch.
type etcdSample struct {
	at       time.Time
	rev      int64
	puts     float64 // etcd_mvcc_put_total
	deletes  float64 // etcd_mvcc_delete_total
	txns     float64 // etcd_mvcc_txn_total
	walBytes float64 // etcd_disk_wal_write_bytes_total
	fsyncs   float64 // etcd_disk_wal_fsync_duration_seconds_count
	dbSize   float64 // etcd_mvcc_db_total_size_in_bytes
	dbInUse  float64 // etcd_mvcc_db_total_size_in_use_in_bytes
	cpu      time.Duration
	events   int64 // watch events under the prefix
	evBytes  int64 // their key+value bytes
}

type scaleRig struct {
	t      *testing.T
	srv    *etcdtest.Server
	cli    *clientv3.Client
	events atomic.Int64
	bytes  atomic.Int64
}

func (r *scaleRig) sample() etcdSample {
	r.t.Helper()
	s := etcdSample{at: time.Now(), events: r.events.Load(), evBytes: r.bytes.Load()}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := r.cli.Status(ctx, r.srv.Endpoint())
	if err != nil {
		r.t.Fatal(err)
	}
	s.rev = st.Header.Revision
	resp, err := http.Get(r.srv.MetricsURL() + "/metrics")
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		f, _ := strconv.ParseFloat(val, 64)
		switch name {
		case "etcd_mvcc_put_total":
			s.puts = f
		case "etcd_mvcc_delete_total":
			s.deletes = f
		case "etcd_mvcc_txn_total":
			s.txns = f
		case "etcd_disk_wal_write_bytes_total":
			s.walBytes = f
		case "etcd_disk_wal_fsync_duration_seconds_count":
			s.fsyncs = f
		case "etcd_mvcc_db_total_size_in_bytes":
			s.dbSize = f
		case "etcd_mvcc_db_total_size_in_use_in_bytes":
			s.dbInUse = f
		}
	}
	s.cpu = procCPU(r.t, r.srv.PID())
	return s
}

// procCPU is utime+stime of a process (/proc/PID/stat fields 14 and 15, at USER_HZ 100).
func procCPU(t *testing.T, pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from 3 on
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

func (a etcdSample) delta(b etcdSample) string {
	d := b.at.Sub(a.at).Seconds()
	return fmt.Sprintf("%.1fs: %d revisions (%.2f/s), %.0f puts (%.1f/s), %.0f deletes, %.0f txns, %d watch events (%.1f/s, %.1f KB/s key+value), WAL %.2f MB (%.1f KB/s), %.0f fsyncs, etcd CPU %v (%.1f%% of a core), db %.1f MB (in use %.1f MB)",
		d, b.rev-a.rev, float64(b.rev-a.rev)/d, b.puts-a.puts, (b.puts-a.puts)/d, b.deletes-a.deletes, b.txns-a.txns,
		b.events-a.events, float64(b.events-a.events)/d, float64(b.evBytes-a.evBytes)/d/1024,
		(b.walBytes-a.walBytes)/1e6, (b.walBytes-a.walBytes)/d/1024, b.fsyncs-a.fsyncs,
		(b.cpu - a.cpu).Round(10*time.Millisecond), 100*(b.cpu-a.cpu).Seconds()/d, b.dbSize/1e6, b.dbInUse/1e6)
}

// latencyProbe writes and reads one key every 20 ms from its own client and keeps the
// latencies, to see whether etcd stalls.
type latencyProbe struct {
	mu   sync.Mutex
	lat  []time.Duration
	stop chan struct{}
	done chan struct{}
}

func startProbe(cli *clientv3.Client) *latencyProbe {
	p := &latencyProbe{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			select {
			case <-p.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := cli.Put(ctx, "/probe/latency", start.String())
			if err == nil {
				_, err = cli.Get(ctx, "/probe/latency")
			}
			cancel()
			d := time.Since(start)
			if err != nil {
				d = 10 * time.Second
			}
			p.mu.Lock()
			p.lat = append(p.lat, d)
			p.mu.Unlock()
		}
	}()
	return p
}

func (p *latencyProbe) end() string {
	close(p.stop)
	<-p.done
	l := append([]time.Duration(nil), p.lat...)
	if len(l) == 0 {
		return "no samples"
	}
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	q := func(f float64) time.Duration {
		return l[min(int(f*float64(len(l))), len(l)-1)].Round(100 * time.Microsecond)
	}
	return fmt.Sprintf("put+get p50 %v, p99 %v, max %v (%d samples)", q(0.5), q(0.99), l[len(l)-1].Round(100*time.Microsecond), len(l))
}

// seen counts, on b, the keys that have n votes, and those among keys whose vote of node is
// unhealthy.
func seen(b *Backend, want int) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, byNode := range b.votes {
		if len(byNode) == want {
			n++
		}
	}
	return n
}

func flipped(b *Backend, node string, keys []string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, k := range keys {
		if v, ok := b.votes[k][node]; ok && !v.Healthy {
			n++
		}
	}
	return n
}

func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Since(start)
}

func TestVoteScale(t *testing.T) {
	targets := envInt("GTM_SCALE_TARGETS", 10000)
	nNodes := envInt("GTM_SCALE_NODES", 5)
	window := 2 * time.Minute
	if d, err := time.ParseDuration(os.Getenv("GTM_SCALE_WINDOW")); err == nil && d > 0 {
		window = d
	}
	srv := etcdtest.Start(t)
	r := &scaleRig{t: t, srv: srv, cli: rawClient(t, srv.Endpoints())}
	wcli := rawClient(t, srv.Endpoints())
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	go func() {
		for wr := range wcli.Watch(wctx, "/gtm/", clientv3.WithPrefix()) {
			var n int64
			for _, ev := range wr.Events {
				n += int64(len(ev.Kv.Key) + len(ev.Kv.Value))
			}
			r.events.Add(int64(len(wr.Events)))
			r.bytes.Add(n)
		}
	}()
	t.Logf("%d nodes, %d targets each, heartbeat %v, reconcile every %v, batch %d ops / %d KiB, relay %v", nNodes, targets, heartbeat, reconcileEvery, batch, batchBytes>>10, relay)

	idle0 := r.sample()
	time.Sleep(10 * time.Second)
	t.Logf("IDLE etcd (no node yet): %s", idle0.delta(r.sample()))

	keys := make([]string, targets)
	for i := range keys {
		keys[i] = fmt.Sprintf("10.%d.%d.%d/abcdef0123456789", i>>16&255, i>>8&255, i&255)
	}
	nodes := make([]*Backend, nNodes)
	var fleetCalls []*atomic.Int64
	for i := range nodes {
		nodes[i] = open(t, srv.Endpoints(), fmt.Sprintf("node-%d", i+1))
		c := new(atomic.Int64)
		nodes[i].OnFleet(func() { c.Add(1) })
		fleetCalls = append(fleetCalls, c)
	}
	waitFor(t, 10*time.Second, "node list", func() bool {
		for _, b := range nodes {
			if len(b.LiveNodes()) != nNodes {
				return false
			}
		}
		return true
	})

	// 1. Every node publishes its votes; until every node sees them all.
	s0 := r.sample()
	for _, b := range nodes {
		for _, k := range keys {
			if err := b.PublishVote(k, Vote{Healthy: true}); err != nil {
				t.Fatal(err)
			}
		}
	}
	took := waitFor(t, 5*time.Minute, "all votes everywhere", func() bool {
		for _, b := range nodes {
			if seen(b, nNodes) != targets {
				return false
			}
		}
		return true
	})
	s1 := r.sample()
	t.Logf("INITIAL: %d votes seen by all %d nodes in %v", targets*nNodes, nNodes, took.Round(time.Millisecond))
	t.Logf("INITIAL etcd: %s", s0.delta(s1))

	// 2. Steady state: nothing changes.
	time.Sleep(2 * time.Second) // let the last watch events land
	f0 := fleetCalls[0].Load()
	s2 := r.sample()
	time.Sleep(window)
	s3 := r.sample()
	f1 := fleetCalls[0].Load()
	t.Logf("STEADY etcd: %s", s2.delta(s3))
	t.Logf("STEADY fleet notifications on node-1: %d (%.2f/s)", f1-f0, float64(f1-f0)/window.Seconds())
	probe := startProbe(r.cli) // after the window: its own writes are not the fleet's
	time.Sleep(10 * time.Second)
	t.Logf("STEADY probe (10 s, its own 25 writes/s): %s", probe.end())

	// 3. 1% of node-1's verdicts flip.
	flip := keys[:targets/100]
	s4 := r.sample()
	for _, k := range flip {
		nodes[0].PublishVote(k, Vote{Healthy: false, Error: "dial tcp " + k[:strings.IndexByte(k, '/')] + ":80: connect: connection refused"})
	}
	took = waitFor(t, time.Minute, "flips everywhere", func() bool {
		for _, b := range nodes[1:] {
			if flipped(b, "node-1", flip) != len(flip) {
				return false
			}
		}
		return true
	})
	s5 := r.sample()
	t.Logf("FLIP: %d verdicts of node-1 seen by the %d others in %v", len(flip), nNodes-1, took.Round(time.Millisecond))
	t.Logf("FLIP etcd: %s", s4.delta(s5))

	// 4. What reading the votes costs a node.
	var vs map[string][]Vote
	n := 20
	st := time.Now()
	for range n {
		vs = nodes[1].Votes()
	}
	perVotes := time.Since(st) / time.Duration(n)
	live := nodes[1].LiveNodes()
	st = time.Now()
	downs := 0
	for range n {
		downs = 0
		for _, v := range vs {
			if d, _, _ := Decide(true, v, live, 50); d {
				downs++
			}
		}
	}
	perDecide := time.Since(st) / time.Duration(n)
	t.Logf("READ: Votes() of %d keys × %d votes: %v; Decide over all: %v (%d down)", len(vs), nNodes, perVotes.Round(10*time.Microsecond), perDecide.Round(10*time.Microsecond), downs)

	// 5. One node's lease is lost (a partition longer than the TTL): it registers again and
	// writes all its votes; then every lease at once (every node partitioned, or etcd
	// restored without its leases).
	for _, who := range [][]*Backend{nodes[:1], nodes} {
		time.Sleep(3 * time.Second)
		probe = startProbe(r.cli)
		s6 := r.sample()
		st := time.Now()
		for _, b := range who {
			b.reg.mu.Lock()
			s := b.reg.session
			b.reg.mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if _, err := r.cli.Revoke(ctx, s.Lease()); err != nil {
				t.Fatal(err)
			}
			cancel()
		}
		revoked := time.Since(st)
		gone := waitFor(t, time.Minute, "votes gone", func() bool {
			for _, b := range nodes {
				if seen(b, nNodes) == targets {
					return false
				}
			}
			return true
		})
		during := probe.end()
		probe = startProbe(r.cli)
		took = waitFor(t, 5*time.Minute, "all votes back everywhere", func() bool {
			for _, b := range nodes {
				if seen(b, nNodes) != targets {
					return false
				}
			}
			return true
		})
		s7 := r.sample()
		t.Logf("RELEASE %d: %d lease(s) revoked in %v, the votes gone on every node after %v; every vote back on every node %v later", len(who), len(who), revoked.Round(time.Millisecond), gone.Round(time.Millisecond), took.Round(time.Millisecond))
		t.Logf("RELEASE %d etcd: %s", len(who), s6.delta(s7))
		t.Logf("RELEASE %d probe during the revoke: %s", len(who), during)
		t.Logf("RELEASE %d probe during the rewrite: %s", len(who), probe.end())
	}
}
