package test

import (
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/gtm-dns/coredns-gtm/internal/etcdtest"
)

// onlyFrom is an HTTP target that answers 200 to probes from one local address and 500 to
// the others: two fleet nodes on one machine see it differently.
func onlyFrom(t *testing.T, ip, from string) int {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if host, _, _ := net.SplitHostPort(r.RemoteAddr); host != from {
			w.WriteHeader(500)
			return
		}
		fmt.Fprintln(w, "ok")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

func quorumCorefile(node, region, source, endpoint, apiAddr, token string, port, quorum int) string {
	return fmt.Sprintf(`.:0 {
    bind 127.0.0.1
    gtm gtm.example.net {
        api %s {
            token_file %s
        }
        cluster {
            endpoint %s
            node %s
            region %s
            quorum %d
        }
        healthcheck web {
            protocol http
            port %d
            source %s
            interval 300ms
            timeout 250ms
            fall 2
            rise 1
        }
        pool primary {
            address 127.0.40.1
            healthcheck web
        }
        pool standby {
            address 127.0.40.2
        }
        domain www.gtm.example.net {
            route default primary standby
        }
    }
}`, apiAddr, token, endpoint, node, region, quorum, port, source)
}

type quorumNode struct {
	s   *server
	api *apiClient
}

func startQuorumNodes(t *testing.T, quorum int) (a, b quorumNode) {
	t.Helper()
	etcd := etcdtest.Start(t)
	port := onlyFrom(t, "127.0.40.1", "127.0.0.2")
	token := writeFile(t, filepath.Join(t.TempDir(), "token"), "tok\n")
	mk := func(node, region, source string) quorumNode {
		apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		s := start(t, quorumCorefile(node, region, source, etcd.Endpoint(), apiAddr, token, port, quorum))
		return quorumNode{s: s, api: &apiClient{t: t, base: "http://" + apiAddr, token: "tok"}}
	}
	// a probes from the address the target likes, b from one it refuses.
	return mk("a", "eu", "127.0.0.2"), mk("b", "us", "127.0.0.3")
}

func (n quorumNode) answer(t *testing.T) string {
	return join(answers(n.s.ask(query{name: "www.gtm.example.net", qtype: dns.TypeA})))
}

// primaryStatus returns the status of 127.0.40.1: its quorum, votes and local verdict.
func (n quorumNode) primaryStatus(t *testing.T) map[string]any {
	_, st := n.api.do("GET", "/api/v1/status", "", true)
	for _, p := range st["pools"].([]any) {
		pm := p.(map[string]any)
		if pm["name"] == "primary" {
			return pm["addresses"].([]any)[0].(map[string]any)
		}
	}
	t.Fatal("no pool primary in the status")
	return nil
}

// Two nodes, quorum 50: one node's down vote is enough (1 of 2), so both answer from the
// standby, though node a sees the primary up. The status names both votes.
func TestQuorumOneOfTwoIsDown(t *testing.T) {
	a, b := startQuorumNodes(t, 50)
	for _, n := range []quorumNode{a, b} {
		eventually(t, 5*time.Second, func() string {
			if got := n.answer(t); got != "127.0.40.2" {
				return "answers " + got + ", want the standby 127.0.40.2"
			}
			return ""
		})
	}
	st := a.primaryStatus(t)
	q, _ := st["quorum"].(map[string]any)
	if st["healthy"] != false || st["local_healthy"] != true || q["down"] != 1.0 || q["of"] != 2.0 {
		t.Fatalf("node a's status of the primary: healthy %v local %v quorum %v", st["healthy"], st["local_healthy"], q)
	}
	votes := fmt.Sprint(st["votes"])
	if !strings.Contains(votes, "node:a") || !strings.Contains(votes, "node:b") || !strings.Contains(votes, "region:us") {
		t.Fatalf("votes %s do not name both nodes", votes)
	}
	_, ev := a.api.do("GET", "/api/v1/events?since=0", "", true)
	if !strings.Contains(fmt.Sprint(ev["events"]), "by quorum (1 of 2 report it down") {
		t.Fatalf("no quorum event naming the votes: %v", ev["events"])
	}
}

// Quorum 100: all must agree, so node b's down vote alone does not take the primary out —
// not even on node b, which sees it down itself.
func TestQuorumAllMustAgree(t *testing.T) {
	a, b := startQuorumNodes(t, 100)
	// Wait until both votes are in: node b's local view is down, its quorum verdict up.
	eventually(t, 5*time.Second, func() string {
		st := b.primaryStatus(t)
		q, _ := st["quorum"].(map[string]any)
		if q == nil || q["of"] != 2.0 || st["local_healthy"] != false {
			return fmt.Sprintf("node b: quorum %v local %v", q, st["local_healthy"])
		}
		return ""
	})
	for _, n := range []quorumNode{a, b} {
		for range 5 {
			if got := n.answer(t); got != "127.0.40.1" {
				t.Fatalf("answers %s with only one of two votes down at quorum 100, want the primary", got)
			}
		}
	}
}

// A partitioned node decides alone: node a, cut off from etcd, answers on its own verdict
// (primary up) while node b still counts a's last vote... until a's lease expires, when b
// decides with b's vote alone (down).
func TestQuorumPartitionedNodeDecidesAlone(t *testing.T) {
	etcd := etcdtest.Start(t)
	proxy := etcdtest.NewProxy(t, etcd.Endpoint())
	port := onlyFrom(t, "127.0.40.1", "127.0.0.2")
	token := writeFile(t, filepath.Join(t.TempDir(), "token"), "tok\n")
	apiA := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	a := quorumNode{s: start(t, quorumCorefile("a", "eu", "127.0.0.2", proxy.Endpoint(), apiA, token, port, 50)), api: &apiClient{t: t, base: "http://" + apiA, token: "tok"}}
	apiB := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	b := quorumNode{s: start(t, quorumCorefile("b", "us", "127.0.0.3", etcd.Endpoint(), apiB, token, port, 50)), api: &apiClient{t: t, base: "http://" + apiB, token: "tok"}}
	eventually(t, 5*time.Second, func() string {
		if got := a.answer(t); got != "127.0.40.2" {
			return "node a answers " + got + " before the partition, want the standby (b votes down)"
		}
		return ""
	})
	proxy.Blackhole()
	eventually(t, 8*time.Second, func() string {
		if got := a.answer(t); got != "127.0.40.1" {
			return "partitioned node a answers " + got + ", want the primary (its own verdict)"
		}
		return ""
	})
	proxy.Restore()
	eventually(t, 8*time.Second, func() string {
		if got := a.answer(t); got != "127.0.40.2" {
			return "reconnected node a answers " + got + ", want the standby again"
		}
		return ""
	})
	if got := b.answer(t); got != "127.0.40.2" {
		t.Fatalf("node b answers %s, want the standby", got)
	}
}
