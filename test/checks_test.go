package test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// dnsBackend is a real DNS server on a loopback address whose rcode and answer we set.
type dnsBackend struct {
	mu     sync.Mutex
	rcode  int
	answer string // an A record's address; "" for none
	asked  atomic.Int64
}

func newDNSBackend(t *testing.T, ip string, port int) *dnsBackend {
	t.Helper()
	pc, err := net.ListenPacket("udp", fmt.Sprintf("%s:%d", ip, port))
	if err != nil {
		t.Fatalf("listen udp %s:%d: %v", ip, port, err)
	}
	d := &dnsBackend{answer: "192.0.2.1"}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		d.asked.Add(1)
		d.mu.Lock()
		rcode, answer := d.rcode, d.answer
		d.mu.Unlock()
		m := new(dns.Msg)
		m.SetRcode(q, rcode)
		if answer != "" && len(q.Question) == 1 {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP(answer)})
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return d
}

func (d *dnsBackend) set(rcode int, answer string) {
	d.mu.Lock()
	d.rcode, d.answer = rcode, answer
	d.mu.Unlock()
}

// strictBackend is an HTTP server that answers 200 only to POST /health with the token and
// Host the check must send, and records what it saw.
type strictBackend struct {
	status atomic.Int32 // what a correct request gets
	mu     sync.Mutex
	seen   []string // "METHOD host token"
}

func newStrictBackend(t *testing.T, ip string, port int) *strictBackend {
	t.Helper()
	ln, err := net.Listen("tcp", fmt.Sprintf("%s:%d", ip, port))
	if err != nil {
		t.Fatalf("listen %s:%d: %v", ip, port, err)
	}
	b := &strictBackend{}
	b.status.Store(200)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.seen = append(b.seen, r.Method+" "+r.Host+" "+r.Header.Get("X-Token"))
		b.mu.Unlock()
		if r.Method != http.MethodPost || r.Host != "www.example.com" || r.Header.Get("X-Token") != "s3 cret" || r.URL.Path != "/health" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		w.WriteHeader(int(b.status.Load()))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return b
}

// freeUDPPort finds a UDP port free on the given loopback addresses.
func freeUDPPort(t *testing.T, ips ...string) int {
	t.Helper()
	for range 50 {
		pc, err := net.ListenPacket("udp", ips[0]+":0")
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		pc.Close()
		ok := true
		for _, ip := range ips[1:] {
			c, err := net.ListenPacket("udp", fmt.Sprintf("%s:%d", ip, port))
			if err != nil {
				ok = false
				break
			}
			c.Close()
		}
		if ok {
			return port
		}
	}
	t.Fatal("no UDP port free on all addresses")
	return 0
}

// checkStatus is one check of an address in GET /api/v1/status.
type checkStatus struct {
	Name     string `json:"name"`
	Healthy  bool   `json:"healthy"`
	Checked  bool   `json:"checked"`
	Probes   uint64 `json:"probes"`
	Failures uint64 `json:"failures"`
}

// addrChecks returns an address's checks in the status (ok false if the address is not there).
func (c *apiClient) addrChecks(pool, addr string) ([]checkStatus, bool) {
	c.t.Helper()
	r := c.mustCall(200, "GET", "/api/v1/status", "")
	var st struct {
		Pools []struct {
			Name         string   `json:"name"`
			HealthChecks []string `json:"healthchecks"`
			Require      string   `json:"require"`
			Addresses    []struct {
				Address string        `json:"address"`
				Checks  []checkStatus `json:"checks"`
			} `json:"addresses"`
		} `json:"pools"`
	}
	if err := json.Unmarshal(r.body, &st); err != nil {
		c.t.Fatalf("status: %v", err)
	}
	for _, p := range st.Pools {
		if p.Name != pool {
			continue
		}
		for _, a := range p.Addresses {
			if a.Address == addr {
				return a.Checks, true
			}
		}
	}
	return nil, false
}

func checksCorefile(dnsPort, udpPort, httpPort int, apiAddr, token, state, coreChecks string) string {
	return fmt.Sprintf(`.:%d {
    bind 127.0.0.1
    gtm gtm.example.net {
        ttl 1
        healthcheck resolver {
            protocol dns
            port %d
            query www.example.com A
            expect NOERROR
            answer ^192\.0\.2\.1$
            interval 200ms
            timeout 150ms
            fall 2
            rise 2
        }
        healthcheck web {
            protocol http
            port %d
            path /health
            method POST
            header X-Token "s3 cret"
            header Host www.example.com
            interval 200ms
            timeout 150ms
            fall 2
            rise 2
        }
        healthcheck port {
            protocol tcp
            port %d
            interval 200ms
            timeout 150ms
            fall 2
            rise 2
        }
        pool every {
            address 127.0.64.1
            address 127.0.64.2
            lb all
            healthcheck resolver web
        }
        pool either {
            address 127.0.64.1
            address 127.0.64.2
            lb all
            healthcheck resolver web require any
        }
        pool two {
            address 127.0.64.1
            address 127.0.64.2
            lb all
            healthcheck resolver web port require 2
        }
        pool core {
            address 127.0.64.3
            healthcheck %s
        }
        domain every.gtm.example.net {
            route default every
        }
        domain either.gtm.example.net {
            route default either
        }
        domain two.gtm.example.net {
            route default two
        }
        domain core.gtm.example.net {
            route default core
        }
        api %s {
            token_file %s
            state %s
        }
    }
}
`, dnsPort, udpPort, httpPort, httpPort, coreChecks, apiAddr, token, state)
}

type checksEnv struct {
	t    *testing.T
	dir  string
	s    *server
	c    *apiClient
	p    *proc
	conf string
	udp  int
	http int
	dns  map[string]*dnsBackend
	web  map[string]*strictBackend
}

// startChecks runs the binary with DNS and HTTP targets on 127.0.64.1-3, all healthy.
func startChecks(t *testing.T) *checksEnv {
	t.Helper()
	e := &checksEnv{t: t, dir: t.TempDir(), dns: map[string]*dnsBackend{}, web: map[string]*strictBackend{}}
	ips := []string{"127.0.64.1", "127.0.64.2", "127.0.64.3"}
	e.udp, e.http = freeUDPPort(t, ips...), freePort(t)
	for _, ip := range ips {
		e.dns[ip] = newDNSBackend(t, ip, e.udp)
		e.web[ip] = newStrictBackend(t, ip, e.http)
	}
	token := writeFile(t, filepath.Join(e.dir, "token"), "checks-token\n")
	dnsPort := freePort(t)
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	e.conf = filepath.Join(e.dir, "Corefile")
	writeFile(t, e.conf, checksCorefile(dnsPort, e.udp, e.http, apiAddr, token, filepath.Join(e.dir, "state.json"), "web"))
	e.s = &server{t: t, udp: fmt.Sprintf("127.0.0.1:%d", dnsPort), tcp: fmt.Sprintf("127.0.0.1:%d", dnsPort)}
	e.c = &apiClient{t: t, base: "http://" + apiAddr, token: "checks-token"}
	e.p = startBinary(t, e.dir, e.conf)
	eventually(t, 30*time.Second, func() string {
		if _, err := e.s.exchange(query{name: "every.gtm.example.net", qtype: dns.TypeA}); err != nil {
			return "DNS not answering: " + err.Error() + "\n" + e.p.out.String()
		}
		for _, a := range []string{"127.0.64.1", "127.0.64.2"} {
			checks, ok := e.c.addrChecks("two", a)
			if !ok || len(checks) != 3 {
				return fmt.Sprintf("%s: checks %+v", a, checks)
			}
			for _, ch := range checks {
				if !ch.Checked || !ch.Healthy {
					return fmt.Sprintf("%s: check %+v not healthy yet", a, ch)
				}
			}
		}
		return ""
	})
	return e
}

func (e *checksEnv) answer(name string) string {
	got := answers(e.s.ask(query{name: name, qtype: dns.TypeA}))
	slices.Sort(got)
	return join(got)
}

// until waits for every domain to answer what want says and returns how long that took.
func (e *checksEnv) until(what string, want map[string]string) time.Duration {
	e.t.Helper()
	took := eventually(e.t, 15*time.Second, func() string {
		for name, w := range want {
			if got := e.answer(name); got != w {
				return fmt.Sprintf("%s: %s answers %q, want %q", what, name, got, w)
			}
		}
		return ""
	})
	e.t.Logf("%s: in force after %s", what, took.Round(10*time.Millisecond))
	return took
}

// Several checks per address through the built binary: dns checks judge the rcode and the
// answer, the http check sends its method and headers, and require all, any and 2 decide
// the address as its checks go down and come back.
func TestBinaryHealthCheckKinds(t *testing.T) {
	e := startChecks(t)
	both := "127.0.64.1 127.0.64.2"
	e.until("all healthy", map[string]string{"every.gtm.example.net": both, "either.gtm.example.net": both, "two.gtm.example.net": both})

	// The http check sent POST with its headers, and Host as the request's Host.
	web := e.web["127.0.64.1"]
	web.mu.Lock()
	seen := slices.Clone(web.seen)
	web.mu.Unlock()
	if len(seen) == 0 || seen[len(seen)-1] != "POST www.example.com s3 cret" {
		t.Fatalf("the http check sent %q", seen)
	}
	if e.dns["127.0.64.1"].asked.Load() == 0 {
		t.Fatal("the dns check never asked")
	}

	// .1's DNS fails (SERVFAIL): require all drops it; any and 2 (web and port pass) keep it.
	e.dns["127.0.64.1"].set(dns.RcodeServerFailure, "192.0.2.1")
	down := e.until("dns SERVFAIL on .1", map[string]string{"every.gtm.example.net": "127.0.64.2"})
	for range 10 {
		if got := e.answer("either.gtm.example.net"); got != both {
			t.Fatalf("require any with one check failing answers %q", got)
		}
		if got := e.answer("two.gtm.example.net"); got != both {
			t.Fatalf("require 2 with two of three passing answers %q", got)
		}
	}
	checks, _ := e.c.addrChecks("every", "127.0.64.1")
	if len(checks) != 2 || checks[0].Name != "resolver" || checks[0].Healthy || checks[1].Name != "web" || !checks[1].Healthy {
		t.Fatalf("status checks of .1: %+v", checks)
	}

	// .1's http fails too: any and 2 drop it now (only the tcp check passes).
	e.web["127.0.64.1"].status.Store(500)
	down2 := e.until("dns and http failing on .1", map[string]string{"either.gtm.example.net": "127.0.64.2", "two.gtm.example.net": "127.0.64.2"})

	// Both come back: every pool answers .1 again after rise.
	e.dns["127.0.64.1"].set(dns.RcodeSuccess, "192.0.2.1")
	e.web["127.0.64.1"].status.Store(200)
	back := e.until("both back on .1", map[string]string{"every.gtm.example.net": both, "either.gtm.example.net": both, "two.gtm.example.net": both})

	// A NOERROR answer that does not match `answer` fails the dns check.
	e.dns["127.0.64.2"].set(dns.RcodeSuccess, "192.0.2.9")
	wrong := e.until("wrong answer on .2", map[string]string{"every.gtm.example.net": "127.0.64.1", "two.gtm.example.net": both})
	e.dns["127.0.64.2"].set(dns.RcodeSuccess, "192.0.2.1")
	e.until(".2 back", map[string]string{"every.gtm.example.net": both})
	e.dns["127.0.64.2"].set(dns.RcodeSuccess, "")
	e.until("empty answer on .2", map[string]string{"every.gtm.example.net": "127.0.64.1"})
	t.Logf("failover times (interval 200ms, fall 2, rise 2): dns down %s, dns+http down %s, back up %s, answer mismatch %s",
		down.Round(10*time.Millisecond), down2.Round(10*time.Millisecond), back.Round(10*time.Millisecond), wrong.Round(10*time.Millisecond))
}

// A second check added to a pool, through the API or a Corefile reload, does not re-probe or
// reset the first: its probe counters go on.
func TestBinaryAddCheckKeepsCounters(t *testing.T) {
	e := startChecks(t)
	c := e.c
	// An API pool with one check, then the same pool with two.
	c.mustCall(201, "PUT", "/api/v1/config/pools/dyn", `{"addresses":[{"address":"127.0.64.3"}],"healthcheck":"web"}`)
	first := waitProbes(t, c, "dyn", "127.0.64.3", "web", 5)
	r := c.mustCall(200, "PUT", "/api/v1/config/pools/dyn", `{"addresses":[{"address":"127.0.64.3"}],"healthcheck":["web","resolver"],"require":"all"}`)
	var stored struct {
		HealthCheck []string `json:"healthcheck"`
		Require     string   `json:"require"`
	}
	if err := json.Unmarshal(r.body, &stored); err != nil || !slices.Equal(stored.HealthCheck, []string{"web", "resolver"}) || stored.Require != "all" {
		t.Fatalf("stored pool: %s (%v)", r.body, err)
	}
	checks, _ := c.addrChecks("dyn", "127.0.64.3")
	if len(checks) != 2 || checks[0].Name != "web" || checks[0].Probes < first.Probes || !checks[0].Checked || !checks[0].Healthy {
		t.Fatalf("after the API write the first check is %+v, was %+v: its state was reset", checks, first)
	}
	waitProbes(t, c, "dyn", "127.0.64.3", "resolver", 1)

	// The Corefile pool gains a check on a reload (SIGUSR1).
	before := waitProbes(t, c, "core", "127.0.64.3", "web", 5)
	conf, _ := os.ReadFile(e.conf)
	writeFile(t, e.conf, strings.Replace(string(conf), "healthcheck web\n        }\n        domain every", "healthcheck web resolver\n        }\n        domain every", 1))
	if err := e.p.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, func() string {
		checks, ok := c.addrChecks("core", "127.0.64.3")
		if !ok || len(checks) != 2 {
			return fmt.Sprintf("the reload is not in force: %+v\n%s", checks, e.p.out.String())
		}
		if checks[0].Name != "web" || checks[0].Probes < before.Probes || !checks[0].Checked {
			t.Fatalf("after the reload the first check is %+v, was %+v: its state was reset", checks[0], before)
		}
		return ""
	})
	// The prober is the one of the API pool too: both report the same counters' growth.
	a, _ := c.addrChecks("core", "127.0.64.3")
	b, _ := c.addrChecks("dyn", "127.0.64.3")
	if d := int64(a[0].Probes) - int64(b[0].Probes); d > 1 || d < -1 {
		t.Fatalf("core's web probes %d, dyn's %d: not one shared prober", a[0].Probes, b[0].Probes)
	}
}

// waitProbes waits until the named check of an address has at least n probes and returns it.
func waitProbes(t *testing.T, c *apiClient, pool, addr, check string, n uint64) checkStatus {
	t.Helper()
	var got checkStatus
	eventually(t, 15*time.Second, func() string {
		checks, _ := c.addrChecks(pool, addr)
		for _, ch := range checks {
			if ch.Name == check && ch.Checked && ch.Probes >= n {
				got = ch
				return ""
			}
		}
		return fmt.Sprintf("%s %s: check %s has not %d probes: %+v", pool, addr, check, n, checks)
	})
	return got
}
