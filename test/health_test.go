package test

import (
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// backend is a real HTTP server on a loopback address whose health we flip.
type backend struct {
	addr   string // IP only
	port   int
	status atomic.Int32
	hits   atomic.Int64
	srv    *http.Server
}

func newBackend(t *testing.T, ip string, port int) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("listen %s:%d: %v", ip, port, err)
	}
	b := &backend{addr: ip, port: ln.Addr().(*net.TCPAddr).Port}
	b.status.Store(200)
	b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		w.WriteHeader(int(b.status.Load()))
		fmt.Fprintln(w, "ok")
	})}
	go b.srv.Serve(ln)
	t.Cleanup(func() { b.srv.Close() })
	return b
}

// freePort finds a port that is free on the test's loopback addresses.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func healthCorefile(port int, extra string) string {
	return fmt.Sprintf(`.:0 {
    bind 127.0.0.1
    gtm gtm.example.net {
        healthcheck web {
            protocol http
            port %d
            path /health
            interval 300ms
            timeout 200ms
            fall 2
            rise 2
        }
        pool primary {
            address 127.0.20.1
            address 127.0.20.2
            healthcheck web
            min_available 2
        }
        pool standby {
            address 127.0.21.1
            healthcheck web
        }
        domain www.gtm.example.net {
            route default primary standby
        }
        %s
    }
}`, port, extra)
}

func TestFailoverAndRecovery(t *testing.T) {
	port := freePort(t)
	p1, p2 := newBackend(t, "127.0.20.1", port), newBackend(t, "127.0.20.2", port)
	s1 := newBackend(t, "127.0.21.1", port)
	s := start(t, healthCorefile(port, ""))
	ask := func() string {
		return join(answers(s.ask(query{name: "www.gtm.example.net", qtype: dns.TypeA})))
	}
	inPrimary := func() string {
		if a := ask(); a != "127.0.20.1" && a != "127.0.20.2" {
			return "answer " + a + ", want a primary address"
		}
		return ""
	}
	eventually(t, 3*time.Second, inPrimary)
	// Let every target reach steady state (first verdict plus one more probe) so the
	// timings below measure rise/fall, not the first verdict.
	eventually(t, 3*time.Second, func() string {
		for _, b := range []*backend{p1, p2, s1} {
			if b.hits.Load() < 2 {
				return b.addr + " not probed twice yet"
			}
		}
		return ""
	})

	// One primary address fails: with min_available 2 the pool is unavailable, the route
	// fails over. Detection takes fall (2) probes at a 300 ms interval: ~0.6-0.9 s.
	p2.status.Store(503)
	took := eventually(t, 5*time.Second, func() string {
		if a := ask(); a != "127.0.21.1" {
			return "answer " + a + ", want the standby"
		}
		return ""
	})
	t.Logf("failover after %s", took)
	if took < 250*time.Millisecond {
		t.Fatalf("failover after %s: fall 2 at a 300ms interval cannot be that fast", took)
	}

	p2.status.Store(200)
	took = eventually(t, 5*time.Second, inPrimary)
	t.Logf("recovery after %s", took)
	if took < 250*time.Millisecond {
		t.Fatalf("recovery after %s: rise 2 at a 300ms interval cannot be that fast", took)
	}

	// Everything down: fail open to the first pool.
	for _, b := range []*backend{p1, p2, s1} {
		b.status.Store(500)
	}
	eventually(t, 5*time.Second, func() string {
		m := s.ask(query{name: "www.gtm.example.net", qtype: dns.TypeA})
		if a := join(answers(m)); a != "127.0.20.1" && a != "127.0.20.2" {
			return "answer " + a + ", want fail-open to a primary address"
		}
		return ""
	})
	// Both primary addresses are answered in fail-open (weighted lb, one per answer).
	seen := map[string]bool{}
	for range 50 {
		seen[join(answers(s.ask(query{name: "www.gtm.example.net", qtype: dns.TypeA})))] = true
	}
	if len(seen) != 2 || seen["127.0.21.1"] {
		t.Fatalf("fail-open answers %v, want both primary addresses", seen)
	}
}

func TestHealthSurvivesReload(t *testing.T) {
	port := freePort(t)
	newBackend(t, "127.0.20.1", port)
	p2 := newBackend(t, "127.0.20.2", port)
	newBackend(t, "127.0.21.1", port)
	p2.status.Store(500)
	s := start(t, healthCorefile(port, ""))
	standby := func() string {
		if a := join(answers(s.ask(query{name: "www.gtm.example.net", qtype: dns.TypeA}))); a != "127.0.21.1" {
			return "answer " + a
		}
		return ""
	}
	eventually(t, 5*time.Second, standby)

	// Reload with an unrelated change: the down verdict must carry over (a fresh prober
	// would count 127.0.20.2 healthy until its first probe and answer from primary).
	before := runtime.NumGoroutine()
	for i := range 50 {
		extra := fmt.Sprintf("domain r%d.gtm.example.net {\n route default standby\n }", i)
		if err := s.reload(healthCorefile(port, extra)); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		if msg := standby(); msg != "" {
			t.Fatalf("after reload %d the health state was lost: %s", i, msg)
		}
	}
	// No goroutine leak over 50 reloads (probers, listeners, servers).
	eventually(t, 5*time.Second, func() string {
		if n := runtime.NumGoroutine(); n > before+10 {
			return fmt.Sprintf("%d goroutines after 50 reloads, %d before", n, before)
		}
		return ""
	})

	// A bad config on reload leaves the running one serving.
	if err := s.reload(healthCorefile(port, "domain bad.gtm.example.net {\n route default nosuchpool\n }")); err == nil {
		t.Fatal("a reload with an unknown pool must fail")
	}
	if msg := standby(); msg != "" {
		t.Fatalf("after a failed reload: %s", msg)
	}
}

func TestProbesStopWhenPoolRemoved(t *testing.T) {
	port := freePort(t)
	newBackend(t, "127.0.20.1", port)
	newBackend(t, "127.0.20.2", port)
	gone := newBackend(t, "127.0.21.1", port)
	s := start(t, healthCorefile(port, ""))
	eventually(t, 3*time.Second, func() string {
		if gone.hits.Load() < 2 {
			return "standby not probed yet"
		}
		return ""
	})
	without := `.:0 {
    bind 127.0.0.1
    gtm gtm.example.net {
        pool primary {
            address 127.0.20.1
        }
        domain www.gtm.example.net {
            route default primary
        }
    }
}`
	if err := s.reload(without); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond) // a probe in flight at the reload may still land
	n := gone.hits.Load()
	time.Sleep(1200 * time.Millisecond) // four intervals
	if m := gone.hits.Load(); m != n {
		t.Fatalf("the removed pool is still probed: %d hits after removal", m-n)
	}
}
