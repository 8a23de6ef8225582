package control

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/gtm-dns/coredns-gtm/healthcheck"
	"github.com/gtm-dns/coredns-gtm/internal/etcdtest"
	"github.com/gtm-dns/coredns-gtm/state/etcd"
)

// BenchmarkDecideAll is the voter's recomputation of every verdict (after a vote changed, and
// every 2 s) with 10,000 probed targets and 5 nodes voting on each, on a real etcd. Not part
// of `make test` (benchmarks run with -bench only); docs/BENCHMARKS.md, "Health votes at
// scale":
//
//	go test -run '^$' -bench BenchmarkDecideAll -benchtime 50x ./plugin
func BenchmarkDecideAll(b *testing.B) {
	const targets, nodes = 10000, 5
	srv := etcdtest.Start(b)
	l, err := net.Listen("tcp", "0.0.0.0:0") // every 127.x.y.z answers
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	reg := healthcheck.NewRegistry(healthcheck.Options{})
	tmpl := &healthcheck.Template{Name: "tcp", Protocol: healthcheck.TCP, Port: l.Addr().(*net.TCPAddr).Port, Interval: time.Hour, Timeout: 2 * time.Second, Fall: 1, Rise: 1}
	ts := make([]*healthcheck.Target, targets)
	for i := range ts {
		ts[i] = reg.Acquire(fmt.Sprintf("127.%d.%d.%d", 1+i>>16&255, i>>8&255, 1+i&255), tmpl)
		defer reg.Release(ts[i])
	}
	var bes []*etcd.Backend
	for i := range nodes {
		be, err := etcd.Open(context.Background(), etcd.Config{Endpoints: srv.Endpoints(), Node: fmt.Sprintf("node-%d", i+1), Region: "r", DialTimeout: time.Second})
		if err != nil {
			b.Fatal(err)
		}
		defer be.Close()
		bes = append(bes, be)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		ready := 0
		for _, t := range ts {
			if t.Ready() {
				ready++
			}
		}
		if ready == targets {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d targets ready", ready, targets)
		}
	}
	v := newVoter(bes[0])
	v.setPercent(50)
	for _, t := range ts {
		v.cell(t) // publishes node-1's vote
		for _, be := range bes[1:] {
			be.PublishVote(voteKey(t), etcd.Vote{Healthy: true})
		}
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		n := 0
		for _, vs := range bes[0].Votes() {
			if len(vs) == nodes {
				n++
			}
		}
		if n == targets {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d keys with all votes", n, targets)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		v.decideAll()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/targets*1000, "ns/cell")
}
