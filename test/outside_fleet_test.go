package test

import (
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/gtm-dns/coredns-gtm/internal/etcdtest"
)

// stop shuts a server down as SIGTERM does (its blocks leave the fleet: leases revoked).
// The cleanup of start runs the same again, which is harmless.
func (s *server) stop() {
	s.inst.ShutdownCallbacks()
	s.inst.Stop()
}

// vantageCorefile is a fleet node of region whose template `web` (HTTP on port, probing
// from source) has `vantage eu`; pool primary is NET.1 with that check, standby NET.2.
func vantageCorefile(apiAddr, token, endpoint, name, region, source string, port int, net string) string {
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
            quorum 50
        }
        healthcheck web {
            protocol http
            port %d
            source %s
            vantage eu
            interval 300ms
            timeout 250ms
            fall 1
            rise 1
        }
        pool primary {
            address %s.1
            healthcheck web
        }
        pool standby {
            address %s.2
        }
        domain www.gtm.example.net {
            route default primary standby
        }
    }
}`, apiAddr, token, endpoint, name, region, port, source, net, net)
}

// `vantage eu` with the only eu node gone: the us node has no voter left, keeps the last
// verdict of the fleet (down: it answers the standby), says `no_voter`, and does not start
// probing the target itself (which it sees up).
func TestVantageNoVoterKeepsVerdict(t *testing.T) {
	etcd := etcdtest.Start(t)
	var broken atomic.Bool
	ln, err := net.Listen("tcp", "127.0.81.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if host, _, _ := net.SplitHostPort(r.RemoteAddr); host == "127.0.0.2" && broken.Load() {
			w.WriteHeader(500) // eu sees it fail; any other prober would see it up
			return
		}
		fmt.Fprintln(w, "ok")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	port := ln.Addr().(*net.TCPAddr).Port
	token := writeFile(t, filepath.Join(t.TempDir(), "token"), "tok\n")
	mk := func(name, region, source string) (*server, *apiClient) {
		apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		s := start(t, vantageCorefile(apiAddr, token, etcd.Endpoint(), name, region, source, port, "127.0.81"))
		return s, &apiClient{t: t, base: "http://" + apiAddr, token: "tok"}
	}
	eu, _ := mk("eu1", "eu", "127.0.0.2")
	us, usAPI := mk("us1", "us", "127.0.0.3")
	ask := func(s *server) string {
		return join(answers(s.ask(query{name: "www.gtm.example.net", qtype: dns.TypeA})))
	}
	for _, s := range []*server{eu, us} {
		eventually(t, 5*time.Second, func() string {
			if got := ask(s); got != "127.0.81.1" {
				return "answers " + got + ", want the primary"
			}
			return ""
		})
	}
	broken.Store(true)
	eventually(t, 3*time.Second, func() string {
		if got := ask(us); got != "127.0.81.2" {
			return "us1 answers " + got + " after eu saw the primary fail"
		}
		return ""
	})
	eu.stop()
	// No voter alive: us1 keeps the fleet's last verdict, though it would see the target up.
	eventually(t, 12*time.Second, func() string {
		st := addressStatus(t, usAPI, "primary", "127.0.81.1")
		q, _ := st["quorum"].(map[string]any)
		if q == nil || q["no_voter"] != true {
			return fmt.Sprintf("us1's quorum %v, want no_voter once eu1 left", st["quorum"])
		}
		return ""
	})
	for range 5 {
		if got := ask(us); got != "127.0.81.2" {
			t.Fatalf("with no voter alive us1 answers %s, want the standby (the last verdict)", got)
		}
		time.Sleep(200 * time.Millisecond)
	}
	st := addressStatus(t, usAPI, "primary", "127.0.81.1")
	if st["up"] != false {
		t.Fatalf("us1 status of the primary with no voter: %v", st)
	}
}

// The fleet's brake (`brake` in `cluster`): 3 of 4 checked addresses down at once engage it
// on both nodes, which keep answering all four; a release through one node releases both,
// and both answer the real verdicts.
func TestFleetBrake(t *testing.T) {
	etcd := etcdtest.Start(t)
	port := freePort(t)
	targets := make([]*brakeTarget, 4)
	var addrs []string
	for i := range targets {
		ip := fmt.Sprintf("127.0.82.%d", i+1)
		targets[i] = &brakeTarget{addr: fmt.Sprintf("%s:%d", ip, port)}
		targets[i].up(t)
		addrs = append(addrs, ip)
	}
	t.Cleanup(func() {
		for _, b := range targets {
			b.down()
		}
	})
	token := writeFile(t, filepath.Join(t.TempDir(), "token"), "tok\n")
	var lines strings.Builder
	for _, a := range addrs {
		fmt.Fprintf(&lines, "            address %s\n", a)
	}
	mk := func(name string) (*server, *apiClient) {
		apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		s := start(t, fmt.Sprintf(`.:0 {
    bind 127.0.0.1
    gtm gtm.example.net {
        api %s {
            token_file %s
        }
        cluster {
            endpoint %s
            node %s
            quorum 50
            brake 50 10s
        }
%s    }
}`, apiAddr, token, etcd.Endpoint(), name, brakePools(port, lines.String(), "127.0.82.9")))
		return s, &apiClient{t: t, base: "http://" + apiAddr, token: "tok"}
	}
	a, aAPI := mk("a")
	b, bAPI := mk("b")
	ask := func(s *server) string {
		got := answers(s.ask(query{name: "big.gtm.example.net", qtype: dns.TypeA}))
		sort.Strings(got)
		return join(got)
	}
	all := join(sortedCopy(addrs))
	for _, s := range []*server{a, b} {
		eventually(t, 5*time.Second, func() string {
			if got := ask(s); got != all {
				return "answers " + got + ", want all four"
			}
			return ""
		})
	}
	for _, tg := range targets[:3] {
		tg.down()
	}
	for _, api := range []*apiClient{aAPI, bAPI} {
		eventually(t, 5*time.Second, func() string {
			_, br := api.do("GET", "/api/v1/brake", "", true)
			if br["engaged"] != true || br["fleet"] != true || br["held"] != 3.0 {
				return fmt.Sprintf("%s brake: %v", api.base, br)
			}
			return ""
		})
	}
	for range 5 {
		for _, s := range []*server{a, b} {
			if got := ask(s); got != all {
				_, ba := aAPI.do("GET", "/api/v1/brake", "", true)
				_, bb := bAPI.do("GET", "/api/v1/brake", "", true)
				t.Fatalf("with the fleet's brake engaged node %p answers %s, want all four (a %p: %v, b %p: %v)", s, got, a, ba, b, bb)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, body := aAPI.do("POST", "/api/v1/brake/release", "", true); code != 200 || body["released"] != true {
		t.Fatalf("release through a: %d %v", code, body)
	}
	for _, s := range []*server{a, b} {
		eventually(t, 5*time.Second, func() string {
			if got := ask(s); got != addrs[3] {
				return "after the release through a, answers " + got + ", want " + addrs[3]
			}
			return ""
		})
	}
	if _, br := bAPI.do("GET", "/api/v1/brake", "", true); br["engaged"] != false {
		t.Fatalf("b's brake after a's release: %v", br)
	}
}
