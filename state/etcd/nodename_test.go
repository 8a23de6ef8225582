package etcd

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gtm-dns/coredns-gtm/internal/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Two processes with one node name: the second is fenced (it writes no node record and no
// vote over the first's, and says why) until the first leaves, then takes the name.
func TestDuplicateNodeNameFenced(t *testing.T) {
	srv := etcdtest.Start(t)
	raw := rawClient(t, srv.Endpoints())
	first := open(t, srv.Endpoints(), "a", func(c *Config) { c.Region = "eu" })
	if err := first.PublishVote("web/192.0.2.1/tcp", Vote{Healthy: true}); err != nil {
		t.Fatal(err)
	}
	vote := func() Vote {
		resp, err := raw.Get(context.Background(), "/gtm/votes/web/192.0.2.1/tcp/a")
		if err != nil || len(resp.Kvs) == 0 {
			return Vote{}
		}
		var v Vote
		json.Unmarshal(resp.Kvs[0].Value, &v)
		return v
	}
	eventually(t, 5*time.Second, "the first node's vote", func() bool { return vote().Region == "eu" })
	if first.NodeConflict() != "" {
		t.Fatalf("the first node is fenced: %s", first.NodeConflict())
	}

	second := open(t, srv.Endpoints(), "a", func(c *Config) { c.Region = "us" })
	changes := make(chan string, 4)
	second.OnNodeConflict(func(msg string) { changes <- msg })
	second.PublishVote("web/192.0.2.1/tcp", Vote{Healthy: false, Error: "refused"})
	eventually(t, 5*time.Second, "the second node fenced", func() bool { return second.NodeConflict() != "" })
	if msg := <-changes; !strings.Contains(msg, `node name "a" is registered by another process (region "eu"`) {
		t.Fatalf("conflict message: %s", msg)
	}
	time.Sleep(heartbeat + time.Second) // a few rounds of the fenced node
	if v := vote(); v.Region != "eu" || !v.Healthy {
		t.Fatalf("the fenced node wrote over the first's vote: %+v", v)
	}
	resp, _ := raw.Get(context.Background(), "/gtm/nodes/a")
	var n Node
	json.Unmarshal(resp.Kvs[0].Value, &n)
	if n.Region != "eu" {
		t.Fatalf("the fenced node wrote over the first's record: %+v", n)
	}

	// The first leaves: the name is the second's within a heartbeat.
	first.Close()
	eventually(t, heartbeat+3*time.Second, "the second node takes the free name", func() bool {
		return second.NodeConflict() == "" && vote().Region == "us"
	})
	if msg := <-changes; msg != "" {
		t.Fatalf("the end of the conflict reported %q", msg)
	}
}

// A node restarted after a crash finds its old record under its dead process's lease: it
// is fenced until that lease ends (at most its TTL), then registers; a session this
// process replaced is its own and is taken over at once.
func TestNodeNameAfterCrash(t *testing.T) {
	srv := etcdtest.Start(t)
	raw := rawClient(t, srv.Endpoints())
	g, err := raw.Grant(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	raw.Put(context.Background(), "/gtm/nodes/a", `{"name":"a","region":"old"}`, clientv3.WithLease(g.ID))
	b := open(t, srv.Endpoints(), "a")
	took := eventually(t, 10*time.Second, "the restarted node registers once the old lease ends", func() bool {
		resp, _ := raw.Get(context.Background(), "/gtm/nodes/a")
		return len(resp.Kvs) == 1 && strings.Contains(string(resp.Kvs[0].Value), `"r-a"`) && b.NodeConflict() == ""
	})
	t.Logf("registered after %v", took)

	// Its own record of an earlier session (a lease it replaced) is not a conflict.
	old := clientv3.LeaseID(0)
	b.reg.mu.Lock()
	if b.reg.session != nil {
		old = b.reg.session.Lease()
	}
	b.reg.mu.Unlock()
	g2, _ := raw.Grant(context.Background(), 30)
	b.rememberLease(g2.ID)
	raw.Put(context.Background(), "/gtm/nodes/a", `{"name":"a"}`, clientv3.WithLease(g2.ID))
	if holder, err := b.claimNode(old, `{"name":"a","region":"r-a"}`); err != nil || holder != nil {
		t.Fatalf("claim over its own earlier lease: holder %v, err %v", holder, err)
	}
}
