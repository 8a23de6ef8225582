package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// foServer is a coredns-gtm binary for the failover tests: DNS on ip:port, the admin API
// and the metrics on their own ports of the same loopback address.
type foServer struct {
	p       *proc
	dns     *server
	api     *apiClient
	metrics string
	dir     string
	conf    string
}

// failoverCorefile wraps body (the inside of the gtm block) in a server block on ip with
// the API (state in dir/state.json) and the prometheus plugin.
func startFailover(t *testing.T, ip, body string) *foServer {
	t.Helper()
	dir := t.TempDir()
	dnsPort, apiPort, metricsPort := freePortOn(t, ip), freePortOn(t, ip), freePortOn(t, ip)
	tokenFile := writeFile(t, filepath.Join(dir, "token"), "failover-token\n")
	conf := fmt.Sprintf(`.:%d {
    bind %s
    prometheus %s:%d
    gtm gtm.example.net {
        api %s:%d {
            token_file %s
            state %s
        }
%s
    }
}
`, dnsPort, ip, ip, metricsPort, ip, apiPort, tokenFile, filepath.Join(dir, "state.json"), body)
	writeFile(t, filepath.Join(dir, "Corefile"), conf)
	s := &foServer{dir: dir, conf: conf, metrics: fmt.Sprintf("http://%s:%d/metrics", ip, metricsPort),
		dns: &server{t: t, udp: net.JoinHostPort(ip, strconv.Itoa(dnsPort)), tcp: net.JoinHostPort(ip, strconv.Itoa(dnsPort))},
		api: &apiClient{t: t, base: fmt.Sprintf("http://%s:%d", ip, apiPort), token: "failover-token"}}
	s.run(t)
	return s
}

// run (re)starts the binary and waits until it answers DNS.
func (s *foServer) run(t *testing.T) {
	t.Helper()
	s.p = startBinary(t, s.dir, "Corefile")
	eventually(t, 20*time.Second, func() string {
		if _, err := s.dns.exchange(query{name: "gtm.example.net", qtype: dns.TypeSOA}); err != nil {
			return "not answering: " + err.Error() + "\n" + s.p.out.String()
		}
		return ""
	})
}

func freePortOn(t *testing.T, ip string) int {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (s *foServer) a(name string) string {
	return join(answers(s.dns.ask(query{name: name, qtype: dns.TypeA})))
}

// status is GET /api/v1/status, decoded.
type foStatus struct {
	Domains []struct {
		Name     string `json:"name"`
		Fallback string `json:"fallback"`
		Failback string `json:"failback"`
		Routes   []struct {
			Selector string `json:"selector"`
			Current  string `json:"current"`
			FailOpen bool   `json:"fail_open"`
			Held     string `json:"held"`
			Fallback string `json:"fallback"`
		} `json:"routes"`
	} `json:"domains"`
	Pools []struct {
		Name         string `json:"name"`
		Available    bool   `json:"available"`
		MinAvailable int    `json:"min_available"`
		Percent      int    `json:"min_available_percent"`
		Addresses    []struct {
			Address string `json:"address"`
			Healthy bool   `json:"healthy"`
			Checked bool   `json:"checked"`
		} `json:"addresses"`
	} `json:"pools"`
}

func (s *foServer) status(t *testing.T) foStatus {
	t.Helper()
	r := s.api.mustCall(200, "GET", "/api/v1/status", "")
	var st foStatus
	if err := json.Unmarshal(r.body, &st); err != nil {
		t.Fatalf("status: %v: %s", err, r.body)
	}
	return st
}

// route returns the status of domain's first route.
func (s *foServer) route(t *testing.T, domain string) (current, held, fallback string) {
	t.Helper()
	for _, d := range s.status(t).Domains {
		if d.Name == domain {
			r := d.Routes[0]
			return r.Current, r.Held, r.Fallback
		}
	}
	t.Fatalf("no domain %s in the status", domain)
	return
}

// healthy waits until the status reports addr (of any pool) checked and healthy == want.
func (s *foServer) healthy(t *testing.T, addr string, want bool) {
	t.Helper()
	eventually(t, 10*time.Second, func() string {
		for _, p := range s.status(t).Pools {
			for _, a := range p.Addresses {
				if a.Address == addr && a.Checked && a.Healthy == want {
					return ""
				}
			}
		}
		return fmt.Sprintf("%s not reported healthy=%v", addr, want)
	})
}

func (s *foServer) events(t *testing.T) []map[string]any {
	t.Helper()
	r := s.api.mustCall(200, "GET", "/api/v1/events?since=0", "")
	var v struct {
		Events []map[string]any `json:"events"`
	}
	json.Unmarshal(r.body, &v)
	return v.Events
}

func (s *foServer) hasEvent(t *testing.T, kind, contains string) bool {
	for _, e := range s.events(t) {
		if e["kind"] == kind && strings.Contains(fmt.Sprint(e["message"]), contains) {
			return true
		}
	}
	return false
}

func (s *foServer) scrape(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(s.metrics)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// metric returns the value of the series whose line starts with prefix, or -1.
func metric(text, prefix string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, prefix) {
			v, err := strconv.ParseFloat(strings.TrimSpace(line[len(prefix):]), 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

// check is a health-check template on port: fast, one probe decides (fall 1, rise 1).
func check(port int) string {
	return fmt.Sprintf(`        healthcheck web {
            protocol http
            port %d
            interval 200ms
            timeout 150ms
            fall 1
            rise 1
        }
`, port)
}

// fallback nodata, servfail and POOL when every listed pool is down, open as before; each
// logged as an event, counted in fallback_total, shown in the status; and back to normal
// when a pool returns. ttl DEGRADED while on the standby and in fallback.
func TestFailoverFallbackKinds(t *testing.T) {
	ip := "127.0.44.1"
	port := freePortOn(t, "127.0.44.11")
	prim, stby := newBackend(t, "127.0.44.11", port), newBackend(t, "127.0.44.12", port)
	body := check(port) + `
        pool prim {
            address 127.0.44.11
            healthcheck web
        }
        pool stby {
            address 127.0.44.12
            healthcheck web
        }
        pool last {
            address 127.0.44.19
            healthcheck web
        }
        domain nd.gtm.example.net {
            route default prim stby
            fallback nodata
            ttl 60 5
        }
        domain sf.gtm.example.net {
            route default prim stby
            fallback servfail
        }
        domain fp.gtm.example.net {
            route default prim stby
            fallback last
        }
        domain op.gtm.example.net {
            route default prim stby
        }`
	s := startFailover(t, ip, body)
	s.healthy(t, "127.0.44.11", true)
	s.healthy(t, "127.0.44.19", false) // nothing listens there: its health is ignored below

	ttl := func(name string) uint32 {
		m := s.dns.ask(query{name: name, qtype: dns.TypeA})
		if len(m.Answer) == 0 {
			return 0
		}
		return m.Answer[0].Header().Ttl
	}
	if got, tl := s.a("nd.gtm.example.net"), ttl("nd.gtm.example.net"); got != "127.0.44.11" || tl != 60 {
		t.Fatalf("nd, everything up: %s ttl %d, want 127.0.44.11 ttl 60", got, tl)
	}
	prim.status.Store(503)
	s.healthy(t, "127.0.44.11", false)
	if got, tl := s.a("nd.gtm.example.net"), ttl("nd.gtm.example.net"); got != "127.0.44.12" || tl != 5 {
		t.Fatalf("nd on the standby: %s ttl %d, want 127.0.44.12 and the degraded ttl 5", got, tl)
	}
	stby.status.Store(503)
	s.healthy(t, "127.0.44.12", false)

	m := s.dns.ask(query{name: "nd.gtm.example.net", qtype: dns.TypeA})
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 || len(m.Ns) != 1 || m.Ns[0].Header().Rrtype != dns.TypeSOA {
		t.Fatalf("fallback nodata: %v", m)
	}
	if m := s.dns.ask(query{name: "sf.gtm.example.net", qtype: dns.TypeA}); m.Rcode != dns.RcodeServerFailure || len(m.Answer) != 0 {
		t.Fatalf("fallback servfail: %v", m)
	}
	if got := s.a("fp.gtm.example.net"); got != "127.0.44.19" {
		t.Fatalf("fallback last (its health ignored): %s, want 127.0.44.19", got)
	}
	if got := s.a("op.gtm.example.net"); got != "127.0.44.11" {
		t.Fatalf("fallback open (fail-open to the first pool): %s, want 127.0.44.11", got)
	}
	if r := s.api.mustCall(200, "GET", "/api/v1/explain?domain=sf.gtm.example.net&client=127.0.0.1", ""); !strings.Contains(string(r.body), `"rcode": "SERVFAIL"`) || !strings.Contains(string(r.body), `"fallback": "servfail"`) {
		t.Errorf("explain of fallback servfail: %s", r.body)
	}
	for _, c := range []struct{ domain, current, fallback string }{
		{"nd.gtm.example.net.", "", "nodata"}, {"sf.gtm.example.net.", "", "servfail"}, {"fp.gtm.example.net.", "last", "pool"}, {"op.gtm.example.net.", "prim", "open"},
	} {
		if cur, _, fb := s.route(t, c.domain); cur != c.current || fb != c.fallback {
			t.Errorf("status of %s: current %q fallback %q, want %q %q", c.domain, cur, fb, c.current, c.fallback)
		}
	}
	for i := 0; i < 5; i++ {
		s.a("nd.gtm.example.net")
	}
	text := s.scrape(t)
	for _, c := range []struct {
		series string
		min    float64
	}{
		{`coredns_gtm_fallback_total{domain="nd.gtm.example.net",kind="nodata"}`, 6},
		{`coredns_gtm_fallback_total{domain="sf.gtm.example.net",kind="servfail"}`, 1},
		{`coredns_gtm_fallback_total{domain="fp.gtm.example.net",kind="pool"}`, 1},
		{`coredns_gtm_fallback_total{domain="op.gtm.example.net",kind="open"}`, 1},
		{`coredns_gtm_failopen_total{domain="op.gtm.example.net",route="default"}`, 1},
	} {
		if v := metric(text, c.series); v < c.min {
			t.Errorf("%s = %v, want >= %v", c.series, v, c.min)
		}
	}
	if v := metric(text, `coredns_gtm_failopen_total{domain="nd.gtm.example.net",route="default"}`); v != 0 {
		t.Errorf("a nodata fallback counted as fail-open: %v", v)
	}
	// One event at the start of each episode, however many queries.
	n := 0
	for _, e := range s.events(t) {
		if e["kind"] == "fallback" && e["domain"] == "nd.gtm.example.net." {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d fallback events for nd during one episode, want 1", n)
	}

	stby.status.Store(200)
	s.healthy(t, "127.0.44.12", true)
	if got := s.a("nd.gtm.example.net"); got != "127.0.44.12" {
		t.Fatalf("nd, standby back: %s", got)
	}
	if got := s.a("sf.gtm.example.net"); got != "127.0.44.12" {
		t.Fatalf("sf, standby back: %s", got)
	}
	if !s.hasEvent(t, "fallback", "fallback nodata ended") {
		t.Errorf("no event for the end of nd's fallback: %v", s.events(t))
	}
	prim.status.Store(200)
	s.healthy(t, "127.0.44.11", true)
	if got, tl := s.a("nd.gtm.example.net"), ttl("nd.gtm.example.net"); got != "127.0.44.11" || tl != 60 {
		t.Fatalf("nd back on the primary: %s ttl %d, want 127.0.44.11 ttl 60", got, tl)
	}
}

// failback manual: after a failover the route stays on the standby when the primary
// returns, across a SIGKILL restart (the hold is in the state file), until POST failback;
// the standby failing too ends a hold.
func TestFailoverFailbackManual(t *testing.T) {
	ip := "127.0.45.1"
	port := freePortOn(t, "127.0.45.11")
	prim, stby := newBackend(t, "127.0.45.11", port), newBackend(t, "127.0.45.12", port)
	body := check(port) + `
        pool prim {
            address 127.0.45.11
            healthcheck web
        }
        pool stby {
            address 127.0.45.12
            healthcheck web
        }
        domain www.gtm.example.net {
            route default prim stby
            failback manual
        }`
	s := startFailover(t, ip, body)
	s.healthy(t, "127.0.45.11", true)
	if got := s.a("www.gtm.example.net"); got != "127.0.45.11" {
		t.Fatalf("start: %s", got)
	}
	prim.status.Store(503)
	s.healthy(t, "127.0.45.11", false)
	eventually(t, 5*time.Second, func() string {
		if _, held, _ := s.route(t, "www.gtm.example.net."); held != "stby" {
			return "not held on stby: " + held
		}
		return ""
	})
	prim.status.Store(200)
	s.healthy(t, "127.0.45.11", true)
	// The primary is healthy again; the route stays where it went.
	for i := 0; i < 10; i++ {
		if got := s.a("www.gtm.example.net"); got != "127.0.45.12" {
			t.Fatalf("failback manual: query %d after the primary came back answered %s, want the standby", i, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if cur, held, _ := s.route(t, "www.gtm.example.net."); cur != "stby" || held != "stby" {
		t.Fatalf("status: current %s held %s, want stby stby", cur, held)
	}
	if r := s.api.mustCall(200, "GET", "/api/v1/explain?domain=www.gtm.example.net&client=127.0.0.1", ""); !strings.Contains(string(r.body), `"held": "stby"`) || !strings.Contains(string(r.body), `"degraded": true`) {
		t.Errorf("explain of a held route: %s", r.body)
	}
	if !s.hasEvent(t, "hold", "held there") {
		t.Errorf("no hold event: %v", s.events(t))
	}

	// SIGKILL and start again: the hold was on disk.
	s.p.kill()
	s.run(t)
	s.healthy(t, "127.0.45.11", true)
	s.healthy(t, "127.0.45.12", true)
	for i := 0; i < 5; i++ {
		if got := s.a("www.gtm.example.net"); got != "127.0.45.12" {
			t.Fatalf("after a SIGKILL restart: %s, want the standby still (the hold persisted)", got)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The operator fails back.
	r := s.api.mustCall(200, "POST", "/api/v1/domains/www.gtm.example.net/failback", "")
	if !strings.Contains(string(r.body), `"released": [`) || !strings.Contains(string(r.body), `"default"`) {
		t.Fatalf("failback: %s", r.body)
	}
	if got := s.a("www.gtm.example.net"); got != "127.0.45.11" {
		t.Fatalf("right after POST failback: %s, want the primary", got)
	}
	if r := s.api.call("POST", "/api/v1/domains/nope.gtm.example.net/failback", ""); r.code != 404 || !strings.Contains(string(r.body), `"error"`) {
		t.Fatalf("failback of an unknown domain: %d %s", r.code, r.body)
	}

	// Held again, then the standby fails too: the hold ends, the route takes the primary.
	prim.status.Store(503)
	s.healthy(t, "127.0.45.11", false)
	eventually(t, 5*time.Second, func() string {
		if _, held, _ := s.route(t, "www.gtm.example.net."); held != "stby" {
			return "not held: " + held
		}
		return ""
	})
	prim.status.Store(200)
	s.healthy(t, "127.0.45.11", true)
	if got := s.a("www.gtm.example.net"); got != "127.0.45.12" {
		t.Fatalf("held again: %s", got)
	}
	stby.status.Store(503)
	took := eventually(t, 5*time.Second, func() string {
		if got := s.a("www.gtm.example.net"); got != "127.0.45.11" {
			return "standby down, answer " + got
		}
		return ""
	})
	t.Logf("held route back on the primary %s after its standby failed", took)
	eventually(t, 5*time.Second, func() string {
		if _, held, _ := s.route(t, "www.gtm.example.net."); held != "" {
			return "still held on " + held
		}
		return ""
	})
}

// failback DURATION: back to the primary only after it stayed available that long.
func TestFailoverFailbackDuration(t *testing.T) {
	ip := "127.0.46.1"
	port := freePortOn(t, "127.0.46.11")
	prim, _ := newBackend(t, "127.0.46.11", port), newBackend(t, "127.0.46.12", port)
	body := check(port) + `
        pool prim {
            address 127.0.46.11
            healthcheck web
        }
        pool stby {
            address 127.0.46.12
            healthcheck web
        }
        domain www.gtm.example.net {
            route default prim stby
            failback 2s
        }`
	s := startFailover(t, ip, body)
	s.healthy(t, "127.0.46.11", true)
	prim.status.Store(503)
	s.healthy(t, "127.0.46.11", false)
	eventually(t, 5*time.Second, func() string {
		if _, held, _ := s.route(t, "www.gtm.example.net."); held != "stby" {
			return "not held: " + held
		}
		return ""
	})
	prim.status.Store(200)
	s.healthy(t, "127.0.46.11", true)
	back := time.Now()
	took := eventually(t, 10*time.Second, func() string {
		if got := s.a("www.gtm.example.net"); got != "127.0.46.11" {
			return "still " + got
		}
		return ""
	})
	t.Logf("failback 2s: back on the primary %s after it was reported healthy", time.Since(back).Round(10*time.Millisecond))
	if took < 1500*time.Millisecond {
		t.Fatalf("failback 2s went back after %s", took)
	}
	if took > 5*time.Second {
		t.Fatalf("failback 2s took %s", took)
	}
	if !s.hasEvent(t, "failback", "stayed available for 2s") {
		t.Errorf("no failback event: %v", s.events(t))
	}
}

// min_available 50%: a pool of 3 needs 2 up; draining one (mode down) leaves 2 enabled,
// which need 1.
func TestFailoverMinAvailablePercent(t *testing.T) {
	ip := "127.0.47.1"
	port := freePortOn(t, "127.0.47.11")
	a1, a2 := newBackend(t, "127.0.47.11", port), newBackend(t, "127.0.47.12", port)
	newBackend(t, "127.0.47.13", port)
	newBackend(t, "127.0.47.21", port)
	body := check(port) + `
        pool prim {
            address 127.0.47.11
            address 127.0.47.12
            address 127.0.47.13
            healthcheck web
            min_available 50%
        }
        pool stby {
            address 127.0.47.21
            healthcheck web
        }
        domain www.gtm.example.net {
            route default prim stby
        }`
	s := startFailover(t, ip, body)
	s.healthy(t, "127.0.47.11", true)
	inPrim := func(a string) bool { return strings.HasPrefix(a, "127.0.47.1") }
	a1.status.Store(503)
	s.healthy(t, "127.0.47.11", false)
	for i := 0; i < 10; i++ {
		if got := s.a("www.gtm.example.net"); !inPrim(got) {
			t.Fatalf("2 of 3 up with 50%%: %s, want the primary", got)
		}
	}
	a2.status.Store(503)
	s.healthy(t, "127.0.47.12", false)
	if got := s.a("www.gtm.example.net"); got != "127.0.47.21" {
		t.Fatalf("1 of 3 up with 50%%: %s, want the standby", got)
	}
	var st foStatus = s.status(t)
	for _, p := range st.Pools {
		if p.Name == "prim" && (p.Available || p.MinAvailable != 2 || p.Percent != 50) {
			t.Errorf("status of prim: %+v, want unavailable, min_available 2 (50%%)", p)
		}
	}
	// Drain 127.0.47.11: 2 enabled addresses need 1, and 127.0.47.13 is up.
	s.api.mustCall(200, "PUT", "/api/v1/pools/prim/addresses/127.0.47.11/mode", `{"mode":"down"}`)
	if got := s.a("www.gtm.example.net"); got != "127.0.47.13" {
		t.Fatalf("one drained, 1 of 2 enabled up with 50%%: %s, want 127.0.47.13", got)
	}
}

// lb hashed: a client network keeps its address; when one of 4 fails only its networks
// move (about a quarter); the ECS scope is the hashed prefix.
func TestFailoverHashedStickiness(t *testing.T) {
	ip := "127.0.48.1"
	port := freePortOn(t, "127.0.48.11")
	var backs []*backend
	for i := 1; i <= 4; i++ {
		backs = append(backs, newBackend(t, fmt.Sprintf("127.0.48.1%d", i), port))
	}
	body := check(port) + `
        pool h {
            address 127.0.48.11
            address 127.0.48.12
            address 127.0.48.13
            address 127.0.48.14
            healthcheck web
            lb hashed
        }
        domain www.gtm.example.net {
            route default h
        }`
	s := startFailover(t, ip, body)
	s.healthy(t, "127.0.48.14", true)
	const nets = 400
	ask := func(i int) (string, int) {
		m := s.dns.ask(query{name: "www.gtm.example.net", qtype: dns.TypeA, subnet: fmt.Sprintf("10.%d.%d.0/24", i/250, i%250)})
		return join(answers(m)), scope(m)
	}
	before := make([]string, nets)
	count := map[string]int{}
	for i := range nets {
		a, sc := ask(i)
		if sc != 24 {
			t.Fatalf("lb hashed answer for a /24: scope %d, want 24", sc)
		}
		if again, _ := ask(i); again != a {
			t.Fatalf("network %d answered %s then %s", i, a, again)
		}
		before[i] = a
		count[a]++
	}
	if len(count) != 4 {
		t.Fatalf("400 networks over 4 addresses used %v", count)
	}
	down := "127.0.48.12"
	backs[1].status.Store(503)
	s.healthy(t, down, false)
	moved, wrong := 0, 0
	for i := range nets {
		a, _ := ask(i)
		if a == down {
			t.Fatalf("network %d still answered the failed address", i)
		}
		if a != before[i] {
			moved++
			if before[i] != down {
				wrong++
			}
		}
	}
	t.Logf("lb hashed: one of 4 addresses down moved %d of %d client networks (%.3f); shares before: %v", moved, nets, float64(moved)/nets, count)
	if wrong > 0 || moved < nets/10 || moved > nets*45/100 {
		t.Fatalf("moved %d (%d not from the failed address), want about a quarter and only its own", moved, wrong)
	}
	if r := s.api.mustCall(200, "GET", "/api/v1/explain?domain=www.gtm.example.net&subnet=10.0.5.0/24", ""); !strings.Contains(string(r.body), `"hashed_prefix": "10.0.5.0/24"`) || !strings.Contains(string(r.body), `"scope": 24`) {
		t.Errorf("explain of lb hashed: %s", r.body)
	}
	m := s.dns.ask(query{name: "www.gtm.example.net", qtype: dns.TypeA, subnet: "10.7.0.0/20"})
	if sc := scope(m); sc != 20 {
		t.Errorf("ECS /20 (shorter than /24): scope %d, want 20", sc)
	}
}

// slow_start: a recovered address's share of a weighted pool ramps up over the duration.
func TestFailoverSlowStart(t *testing.T) {
	ip := "127.0.49.1"
	port := freePortOn(t, "127.0.49.11")
	newBackend(t, "127.0.49.11", port)
	b := newBackend(t, "127.0.49.12", port)
	body := check(port) + `
        pool w {
            address 127.0.49.11
            address 127.0.49.12
            healthcheck web
            slow_start 8s
        }
        domain www.gtm.example.net {
            route default w
        }`
	s := startFailover(t, ip, body)
	s.healthy(t, "127.0.49.12", true)
	b.status.Store(503)
	s.healthy(t, "127.0.49.12", false)
	b.status.Store(200)
	s.healthy(t, "127.0.49.12", true)
	upAt := time.Now()
	share := func(n int) float64 {
		k := 0
		for range n {
			if s.a("www.gtm.example.net") == "127.0.49.12" {
				k++
			}
		}
		return float64(k) / float64(n)
	}
	early := share(300)
	earlyAt := time.Since(upAt)
	time.Sleep(time.Until(upAt.Add(9 * time.Second)))
	late := share(300)
	t.Logf("slow_start 8s: recovered address got %.3f of answers in its first %s, %.3f after the ramp (even weights: 0.5)", early, earlyAt.Round(10*time.Millisecond), late)
	if early > 0.3 {
		t.Errorf("early share %.3f: slow start should keep it well below 0.5\n%s", early, s.p.out.String())
	}
	if late < 0.38 || late > 0.62 {
		t.Errorf("after the ramp share %.3f, want about 0.5", late)
	}
}
