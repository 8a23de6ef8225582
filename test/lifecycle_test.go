package test

// The lifecycle of a gtm block across reloads (issue 23, PRODUCT.md Part 3 "Reloads and the
// fleet"), in-process against a real etcd: a write in the reload window is never lost, a
// reload that changes the node takes the old node down at once, and reloads leave nothing
// running.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	"github.com/miekg/dns"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/gtm-dns/coredns-gtm/control"
	"github.com/gtm-dns/coredns-gtm/internal/etcdtest"
	gtm "github.com/gtm-dns/coredns-gtm/plugin"
)

// reloadHook runs inside a Corefile load, after gtm's setup and before any OnStartup: the
// directive gtmreloadwindow, placed right after gtm, calls it from its own setup. A reload
// runs every setup of the new instance, then its startups, then stops the old one.
var reloadHook atomic.Pointer[func()]

func init() {
	gtm.EnsureDirective()
	plugin.Register("gtmreloadwindow", func(c *caddy.Controller) error {
		for c.Next() {
		}
		if f := reloadHook.Load(); f != nil {
			(*f)()
		}
		return nil
	})
	i := slices.Index(dnsserver.Directives, "gtm")
	dnsserver.Directives = slices.Insert(dnsserver.Directives, i+1, "gtmreloadwindow")
}

// clusterCorefile is a fleet node in-process: node NAME of the etcd at endpoint, its API at
// apiAddr, one checked pool (a TCP check of a local listener at checkAddr) and the quorum q.
func clusterCorefile(endpoint, node, apiAddr, token, checkAddr string, q int) string {
	host, port, _ := net.SplitHostPort(checkAddr)
	return fmt.Sprintf(`.:0 {
    bind 127.0.0.1
    gtmreloadwindow
    gtm gtm.example.net {
        ns ns1.gtm.example.net 127.0.0.1
        api %s {
            token_file %s
        }
        cluster {
            endpoint %s
            node %s
            region eu
            quorum %d
        }
        healthcheck tcp {
            protocol tcp
            port %s
            interval 200ms
            timeout 100ms
            fall 1
            rise 1
        }
        pool base {
            address %s
            healthcheck tcp
        }
        domain base.gtm.example.net {
            route default base
        }
    }
}`, apiAddr, token, endpoint, node, q, port, host)
}

// tcpListener accepts and closes connections on a loopback port until the test ends.
func tcpListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln.Addr().String()
}

func etcdClient(t *testing.T, srv *etcdtest.Server) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// nodesIn lists the node records under /gtm/nodes/.
func nodesIn(t *testing.T, cli *clientv3.Client) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "/gtm/nodes/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, kv := range resp.Kvs {
		out = append(out, strings.TrimPrefix(string(kv.Key), "/gtm/nodes/"))
	}
	slices.Sort(out)
	return out
}

// TestReloadWindowWriteKept: a pool and a domain written through the running instance's API
// while a reload is in progress (after the new block's setup, before its startup) are in
// force once the reload completes, and DNS, GET /api/v1/config, GET
// /api/v1/config/{kind}/{name} and /api/v1/cluster agree on them and on the revision.
func TestReloadWindowWriteKept(t *testing.T) {
	srv := etcdtest.Start(t)
	dir := t.TempDir()
	token := writeFile(t, filepath.Join(dir, "token"), "tok")
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	check := tcpListener(t)
	s := start(t, clusterCorefile(srv.Endpoint(), "n1", apiAddr, token, check, 50))
	c := &apiClient{t: t, base: "http://" + apiAddr, token: "tok"}
	eventually(t, 10*time.Second, func() string {
		if got := join(answers(s.ask(query{name: "base.gtm.example.net", qtype: dns.TypeA}))); got != "127.0.0.1" {
			return "base answers " + got
		}
		return ""
	})

	wrote := false
	hook := func() {
		if wrote {
			return
		}
		wrote = true
		c.mustCall(201, "PUT", "/api/v1/config/pools/late", `{"addresses":[{"address":"192.0.2.7"}]}`)
		c.mustCall(201, "PUT", "/api/v1/config/domains/late.gtm.example.net", `{"routes":[{"selector":"default","pools":["late"]}]}`)
	}
	reloadHook.Store(&hook)
	err := s.reload(clusterCorefile(srv.Endpoint(), "n1", apiAddr, token, check, 60))
	reloadHook.Store(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !wrote {
		t.Fatal("the reload window's writes did not run")
	}

	// In force at once, everywhere, at one revision.
	if got := join(answers(s.ask(query{name: "late.gtm.example.net", qtype: dns.TypeA}))); got != "192.0.2.7" {
		t.Errorf("DNS after the reload: late.gtm.example.net answers %q, want 192.0.2.7", got)
	}
	doc := c.config()
	if _, ok := doc.Pools["late"]; !ok {
		t.Errorf("GET /api/v1/config after the reload has no pool late: %v", doc.Pools)
	}
	if _, ok := doc.Domains["late.gtm.example.net."]; !ok {
		t.Errorf("GET /api/v1/config after the reload has no domain late.gtm.example.net.")
	}
	one := c.mustCall(200, "GET", "/api/v1/config/domains/late.gtm.example.net", "")
	tag, _ := strconv.ParseInt(strings.Trim(one.hdr.Get("ETag"), `"`), 10, 64)
	var cl struct {
		Revision int64 `json:"revision"`
	}
	json.Unmarshal(c.mustCall(200, "GET", "/api/v1/cluster", "").body, &cl)
	if doc.Revision != cl.Revision || doc.Revision < tag {
		t.Errorf("revisions: /api/v1/config %d, /api/v1/cluster %d, the domain's ETag %d: want config = cluster >= ETag", doc.Revision, cl.Revision, tag)
	}
}

// TestReloadNodeChangeLeavesAtOnce: reloading `node node-a` to `node node-b` takes node-a
// down with the old block: its lease is revoked, so its record leaves etcd (and every node
// list) at once rather than after the lease, and a stays gone.
func TestReloadNodeChangeLeavesAtOnce(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := etcdClient(t, srv)
	dir := t.TempDir()
	token := writeFile(t, filepath.Join(dir, "token"), "tok")
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	check := tcpListener(t)
	s := start(t, clusterCorefile(srv.Endpoint(), "node-a", apiAddr, token, check, 50))
	eventually(t, 10*time.Second, func() string {
		if got := nodesIn(t, cli); !slices.Equal(got, []string{"node-a"}) {
			return fmt.Sprintf("nodes %v, want [node-a]", got)
		}
		return ""
	})
	if err := s.reload(clusterCorefile(srv.Endpoint(), "node-b", apiAddr, token, check, 50)); err != nil {
		t.Fatal(err)
	}
	// At once: well within the 5 s lease a kept-alive ghost would hold.
	d := eventually(t, 2*time.Second, func() string {
		if got := nodesIn(t, cli); !slices.Equal(got, []string{"node-b"}) {
			return fmt.Sprintf("nodes after the reload %v, want [node-b]", got)
		}
		return ""
	})
	t.Logf("node-a left and node-b joined %v after the reload", d)
	// And it stays gone for longer than a lease (a heartbeat would bring it back).
	for deadline := time.Now().Add(6 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if got := nodesIn(t, cli); slices.Contains(got, "node-a") {
			t.Fatalf("node-a is back in etcd: %v", got)
		}
	}
	c := &apiClient{t: t, base: "http://" + apiAddr, token: "tok"}
	var doc struct {
		Node  string `json:"node"`
		Nodes []struct {
			Name string `json:"name"`
		} `json:"nodes"`
	}
	json.Unmarshal(c.mustCall(200, "GET", "/api/v1/cluster", "").body, &doc)
	if doc.Node != "node-b" || len(doc.Nodes) != 1 || doc.Nodes[0].Name != "node-b" {
		t.Errorf("/api/v1/cluster after the reload: %+v", doc)
	}
}

// TestReloadsLeaveNothingRunning: 20 reloads alternating two cluster configurations (node
// a and node b, and two quorum shares, while the fleet votes on a checked address) leave
// the goroutine count and the etcd lease count where they started. Under -race it is also
// the check of the voter's quorum share, which a reload sets while the voter decides.
func TestReloadsLeaveNothingRunning(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := etcdClient(t, srv)
	dir := t.TempDir()
	token := writeFile(t, filepath.Join(dir, "token"), "tok")
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	check := tcpListener(t)
	conf := func(i int) string {
		node, q := "node-a", 50
		if i%2 == 1 {
			node, q = "node-b", 60
		}
		return clusterCorefile(srv.Endpoint(), node, apiAddr, token, check, q)
	}
	s := start(t, conf(0))
	leases := func() int {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := cli.Leases(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(resp.Leases)
	}
	settle := func() {
		eventually(t, 10*time.Second, func() string {
			if n := leases(); n != 1 {
				return fmt.Sprintf("%d leases, want 1 (this node's)", n)
			}
			if got := join(answers(s.ask(query{name: "base.gtm.example.net", qtype: dns.TypeA}))); got != "127.0.0.1" {
				return "base answers " + got
			}
			return ""
		})
	}
	// The first reload's pair is the baseline: what a steady node runs (the first start
	// also starts process-wide pieces: the API listener, the DNS server's goroutines).
	if err := s.reload(conf(1)); err != nil {
		t.Fatal(err)
	}
	settle()
	time.Sleep(500 * time.Millisecond)
	base, baseLeases := runtime.NumGoroutine(), leases()
	for i := 2; i < 22; i++ {
		if err := s.reload(conf(i)); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		time.Sleep(100 * time.Millisecond) // let the voter and probers run between reloads
	}
	settle()
	var now int
	eventually(t, 10*time.Second, func() string {
		now = runtime.NumGoroutine()
		if now > base+3 { // slack: a finishing HTTP keep-alive, a timer firing
			return fmt.Sprintf("%d goroutines after 20 reloads, %d before", now, base)
		}
		return ""
	})
	if n := leases(); n != baseLeases {
		t.Errorf("%d etcd leases after 20 reloads, %d before", n, baseLeases)
	}
	if open := control.OpenStores(); len(open) != 1 {
		t.Errorf("open stores after 20 reloads: %v, want the node's one", open)
	}
	t.Logf("goroutines %d before, %d after 20 reloads; leases %d", base, now, baseLeases)
	if t.Failed() {
		buf := make([]byte, 1<<20)
		t.Logf("goroutines:\n%s", buf[:runtime.Stack(buf, true)])
	}
}
