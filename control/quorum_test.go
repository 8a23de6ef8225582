package control

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/gtm-dns/coredns-gtm/healthcheck"
	"github.com/gtm-dns/coredns-gtm/internal/etcdtest"
	"github.com/gtm-dns/coredns-gtm/policy"
	"github.com/gtm-dns/coredns-gtm/state/etcd"
)

// Several checks in a fleet: each check is decided by the quorum of its own votes, and
// require combines those verdicts. Three nodes, quorum 50, require all: node-1 sees check a
// fail, node-2 check b; no check has a quorum of down votes, so the address stays up, although
// two of three nodes would each have called it down on their own mix of checks.
func TestQuorumPerCheck(t *testing.T) {
	srv := etcdtest.Start(t)
	ln, err := net.Listen("tcp", "127.0.65.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	reg := healthcheck.NewRegistry(healthcheck.Options{})
	t.Cleanup(reg.Close)
	failing := &healthcheck.Template{Name: "a", Protocol: healthcheck.TCP, Port: 1, Interval: time.Hour, Timeout: time.Second, Fall: 1, Rise: 1}
	passing := &healthcheck.Template{Name: "b", Protocol: healthcheck.TCP, Port: ln.Addr().(*net.TCPAddr).Port, Interval: time.Hour, Timeout: time.Second, Fall: 1, Rise: 1}
	ta, tb := reg.Acquire("127.0.65.1", failing), reg.Acquire("127.0.65.1", passing)
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("not within 15s: %s", what)
			}
		}
	}
	waitFor("first verdicts", func() bool { return ta.Ready() && tb.Ready() && !ta.Healthy() && tb.Healthy() })

	var bes []*etcd.Backend
	for i := range 3 {
		be, err := etcd.Open(context.Background(), etcd.Config{Endpoints: srv.Endpoints(), Node: fmt.Sprintf("node-%d", i+1), Region: "r", DialTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { be.Close() })
		bes = append(bes, be)
	}
	v := newVoter(bes[0])
	v.setPercent(50)
	ca, cb := v.cell(ta), v.cell(tb)
	bes[1].PublishVote(voteKey(ta), etcd.Vote{Healthy: true})
	bes[1].PublishVote(voteKey(tb), etcd.Vote{Healthy: false, Error: "refused"})
	bes[2].PublishVote(voteKey(ta), etcd.Vote{Healthy: true})
	bes[2].PublishVote(voteKey(tb), etcd.Vote{Healthy: true})
	waitFor("every vote seen", func() bool {
		all := bes[0].Votes()
		return len(all[voteKey(ta)]) == 3 && len(all[voteKey(tb)]) == 3
	})
	v.decideAll()
	set := &votedCheckSet{checkSet{names: []string{"a", "b"}, parts: []policy.Health{ca, cb}, require: healthcheck.RequireAll}}
	if !ca.Healthy() || !cb.Healthy() || !set.Healthy() {
		t.Fatalf("a %v, b %v, address %v: want every check up by quorum (one down vote of three each)", ca.Healthy(), cb.Healthy(), set.Healthy())
	}
	votes, down, of, local := set.Votes()
	if local || down != 1 || of != 3 {
		t.Fatalf("votes: %d of %d down, local %v; want 1 of 3 and this node's own mix down", down, of, local)
	}
	// Every vote carries the region of the node that cast it, this node's own too.
	for _, vt := range votes {
		if vt.Region != "r" {
			t.Errorf("vote of %s: region %q, want r", vt.Node, vt.Region)
		}
	}
	docs := set.Checks()
	if len(docs) != 2 || docs[0].Quorum == nil || docs[0].Quorum.Down != 1 || *docs[0].LocalHealthy || !docs[0].Healthy {
		t.Fatalf("checks: %+v", docs)
	}

	// A second node sees check a fail: now a has its quorum, and the address is down.
	bes[2].PublishVote(voteKey(ta), etcd.Vote{Healthy: false, Error: "refused"})
	waitFor("node-3's new vote", func() bool {
		for _, vt := range bes[0].Votes()[voteKey(ta)] {
			if vt.Node == "node-3" && !vt.Healthy {
				return true
			}
		}
		return false
	})
	v.decideAll()
	if ca.Healthy() || !cb.Healthy() || set.Healthy() {
		t.Fatalf("a %v, b %v, address %v: want a down by quorum and the address down", ca.Healthy(), cb.Healthy(), set.Healthy())
	}
	set.require = healthcheck.RequireAny
	if !set.Healthy() {
		t.Fatal("require any with b up by quorum: the address is down")
	}
}
