package test

// End-to-end tests of pushed verdicts (one node and a fleet on a real etcd), the
// mass-failure brake, and vantage regions.

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/gtm-dns/coredns-gtm/internal/etcdtest"
)

var (
	gtmctlOnce sync.Once
	gtmctlPath string
	gtmctlErr  error
)

// gtmctlBinary builds ./cmd/gtmctl once per test run.
func gtmctlBinary(t *testing.T) string {
	t.Helper()
	gtmctlOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gtmctl-bin")
		if err != nil {
			gtmctlErr = err
			return
		}
		gtmctlPath = filepath.Join(dir, "gtmctl")
		cmd := exec.Command("go", "build", "-o", gtmctlPath, "./cmd/gtmctl")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			gtmctlErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if gtmctlErr != nil {
		t.Fatal(gtmctlErr)
	}
	return gtmctlPath
}

func pushCorefile(apiAddr, token, cluster string, tcpPort int) string {
	return fmt.Sprintf(`.:0 {
    bind 127.0.0.1
    gtm gtm.example.net {
        api %s {
            token_file %s
        }
        %s
        healthcheck deploy {
            protocol push
        }
        healthcheck web {
            protocol tcp
            port %d
            interval 300ms
            timeout 250ms
        }
        pool app {
            address 127.0.60.1
            healthcheck deploy
        }
        pool web {
            address 127.0.60.3
            healthcheck web deploy require any
        }
        pool standby {
            address 127.0.60.2
        }
        domain push.gtm.example.net {
            route default app standby
        }
    }
}`, apiAddr, token, cluster, tcpPort)
}

func putHealth(api *apiClient, pool, addr, body string) (int, map[string]any) {
	return api.do("PUT", "/api/v1/pools/"+pool+"/addresses/"+addr+"/health", body, true)
}

// A pushed verdict takes an address out at once, a healthy one with a short ttl expires
// into failed, gtmctl pushes, and bad pushes answer 404 or 400 naming what is wrong.
func TestPushedVerdictExpires(t *testing.T) {
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	dir := t.TempDir()
	token := writeFile(t, filepath.Join(dir, "token"), "tok\n")
	api := &apiClient{t: t, base: "http://" + apiAddr, token: "tok"}
	s := start(t, pushCorefile(apiAddr, token, "", freePort(t)))
	ask := func() string { return join(answers(s.ask(query{name: "push.gtm.example.net", qtype: dns.TypeA}))) }
	if got := ask(); got != "127.0.60.1" {
		t.Fatalf("before any push the address counts healthy: answers %s", got)
	}
	if code, body := putHealth(api, "app", "127.0.60.1", `{"healthy":false,"ttl":"30s","reason":"deploying v2"}`); code != 200 || body["check"] != "deploy" {
		t.Fatalf("push: %d %v", code, body)
	}
	eventually(t, time.Second, func() string {
		if got := ask(); got != "127.0.60.2" {
			return "answers " + got + " after a pushed down verdict"
		}
		return ""
	})
	st := addressStatus(t, api, "app", "127.0.60.1")
	if st["healthy"] != false || st["last_result"] != "push" || !strings.Contains(fmt.Sprint(st["last_error"]), "deploying v2") {
		t.Fatalf("status after the push: %v", st)
	}
	// gtmctl pushes a healthy verdict for 2s: in force at once, failed after it expires.
	bin := gtmctlBinary(t)
	pushed := time.Now() // the verdict's ttl starts after this
	ctl := exec.Command(bin, "--server", api.base, "--token-file", token, "health", "push", "app", "127.0.60.1", "--healthy", "--ttl", "2s", "--reason", "v2 live")
	out, err := ctl.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "check deploy pushed healthy") {
		t.Fatalf("gtmctl health push: %v\n%s", err, out)
	}
	eventually(t, time.Second, func() string {
		if got := ask(); got != "127.0.60.1" {
			return "answers " + got + " after a pushed healthy verdict"
		}
		return ""
	})
	took := eventually(t, 5*time.Second, func() string {
		if got := ask(); got != "127.0.60.2" {
			return "answers " + got + " after the verdict's ttl"
		}
		return ""
	})
	if since := time.Since(pushed); since < 2*time.Second {
		t.Fatalf("the verdict expired after %s, before its ttl of 2s", since)
	}
	t.Logf("expired %s after the check", took)
	st = addressStatus(t, api, "app", "127.0.60.1")
	if !strings.Contains(fmt.Sprint(st["last_error"]), "expired") {
		t.Fatalf("status after expiry: %v", st)
	}
	_, ev := api.do("GET", "/api/v1/events?since=0", "", true)
	if !strings.Contains(fmt.Sprint(ev["events"]), "action:push") {
		t.Fatalf("no push event: %v", ev["events"])
	}

	// Bad pushes.
	for _, c := range []struct {
		pool, addr, body string
		code             int
		want             string
	}{
		{"nope", "127.0.60.1", `{"healthy":true,"ttl":"30s"}`, 404, `no pool "nope"`},
		{"app", "127.0.60.9", `{"healthy":true,"ttl":"30s"}`, 404, `pool "app" has no address "127.0.60.9"`},
		{"app", "127.0.60.1", `{"healthy":true,"ttl":"30s","check":"other"}`, 404, `pool app has no check "other"`},
		{"standby", "127.0.60.2", `{"healthy":true,"ttl":"30s"}`, 404, "pool standby has no push check"},
		{"web", "127.0.60.3", `{"healthy":true,"ttl":"30s","check":"web"}`, 400, "check web is protocol tcp: only protocol push checks take pushed verdicts"},
		{"app", "127.0.60.1", `{"healthy":true,"ttl":"0s"}`, 400, `ttl "0s": expected a duration from 1s to 24h0m0s`},
		{"app", "127.0.60.1", `{"healthy":true,"ttl":"48h"}`, 400, `ttl "48h"`},
		{"app", "127.0.60.1", `{"healthy":true,"ttl":"soon"}`, 400, `ttl "soon"`},
		{"app", "127.0.60.1", `{"healthy":true}`, 400, "ttl: required"},
		{"app", "127.0.60.1", `{"ttl":"30s"}`, 400, "healthy: required"},
		{"app", "127.0.60.1", `{"healthy":true,"ttl":"30s","colour":"red"}`, 400, "colour"},
	} {
		code, body := putHealth(api, c.pool, c.addr, c.body)
		if code != c.code || !strings.Contains(fmt.Sprint(body["error"]), c.want) {
			t.Errorf("PUT %s/%s %s: %d %v, want %d %q", c.pool, c.addr, c.body, code, body["error"], c.code, c.want)
		}
	}
	if code, _ := api.do("PUT", "/api/v1/pools/app/addresses/127.0.60.1/health", `{"healthy":true,"ttl":"30s"}`, false); code != 401 {
		t.Errorf("a push without the token: %d, want 401", code)
	}
}

// In a fleet a verdict pushed to one node is in force on every node (etcd, under a lease).
func TestPushedVerdictFleet(t *testing.T) {
	etcd := etcdtest.Start(t)
	dir := t.TempDir()
	token := writeFile(t, filepath.Join(dir, "token"), "tok\n")
	type node struct {
		s   *server
		api *apiClient
	}
	mk := func(name, region string) node {
		apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		cl := fmt.Sprintf("cluster {\n            endpoint %s\n            node %s\n            region %s\n        }", etcd.Endpoint(), name, region)
		// Addresses of their own: the process's registry keeps the verdicts pushed in the
		// test before (as it keeps them across reloads).
		s := start(t, strings.ReplaceAll(pushCorefile(apiAddr, token, cl, freePort(t)), "127.0.60.", "127.0.61."))
		return node{s, &apiClient{t: t, base: "http://" + apiAddr, token: "tok"}}
	}
	a, b := mk("a", "eu"), mk("b", "us")
	ask := func(n node) string {
		return join(answers(n.s.ask(query{name: "push.gtm.example.net", qtype: dns.TypeA})))
	}
	for _, n := range []node{a, b} {
		if got := ask(n); got != "127.0.61.1" {
			t.Fatalf("before any push: %s", got)
		}
	}
	if code, body := putHealth(a.api, "app", "127.0.61.1", `{"healthy":false,"ttl":"60s","reason":"canary failed"}`); code != 200 {
		t.Fatalf("push to a: %d %v", code, body)
	}
	took := eventually(t, propagation, func() string {
		if got := ask(b); got != "127.0.61.2" {
			return "node b answers " + got + " after a verdict pushed to a"
		}
		return ""
	})
	t.Logf("node b took the verdict pushed to a in %s", took)
	if st := addressStatus(t, b.api, "app", "127.0.61.1"); !strings.Contains(fmt.Sprint(st["last_error"]), "canary failed") {
		t.Fatalf("node b's status: %v", st)
	}
	if code, body := putHealth(b.api, "app", "127.0.61.1", `{"healthy":true,"ttl":"60s"}`); code != 200 {
		t.Fatalf("push to b: %d %v", code, body)
	}
	eventually(t, propagation, func() string {
		if got := ask(a); got != "127.0.61.1" {
			return "node a answers " + got + " after a verdict pushed to b"
		}
		return ""
	})
}

// brakePools are the brake tests' template (tcp on port, judged in 300 ms), pool big of the
// address lines under it (lb all), a standby pool and domain big routing to both.
func brakePools(port int, lines, standby string) string {
	return fmt.Sprintf(`        healthcheck tcp {
            protocol tcp
            port %d
            interval 300ms
            timeout 250ms
            fall 1
            rise 1
        }
        pool big {
%s            lb all
            healthcheck tcp
        }
        pool standby {
            address %s
        }
        domain big.gtm.example.net {
            route default big standby
        }
`, port, lines, standby)
}

// brakeTarget is a TCP listener that can be killed and revived.
type brakeTarget struct {
	mu   sync.Mutex
	addr string
	ln   net.Listener
}

func (b *brakeTarget) up(t *testing.T) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ln, err := net.Listen("tcp", b.addr)
	if err != nil {
		t.Fatal(err)
	}
	b.ln = ln
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

func (b *brakeTarget) down() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ln != nil {
		b.ln.Close()
		b.ln = nil
	}
}

// 20 targets, 15 killed at once under brake 50 10s: the answers do not change, an event and
// the metric say the brake is engaged, explain names the held addresses; released through
// the API, the real verdicts apply.
func TestBrakeHoldsMassFailure(t *testing.T) {
	port := freePort(t)
	targets := make([]*brakeTarget, 20)
	var addrs []string
	for i := range targets {
		ip := fmt.Sprintf("127.0.70.%d", i+1)
		targets[i] = &brakeTarget{addr: fmt.Sprintf("%s:%d", ip, port)}
		targets[i].up(t)
		addrs = append(addrs, ip)
	}
	t.Cleanup(func() {
		for _, b := range targets {
			b.down()
		}
	})
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	metrics := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	token := writeFile(t, filepath.Join(t.TempDir(), "token"), "tok\n")
	api := &apiClient{t: t, base: "http://" + apiAddr, token: "tok"}
	var lines strings.Builder
	for _, a := range addrs {
		fmt.Fprintf(&lines, "            address %s\n", a)
	}
	s := start(t, fmt.Sprintf(`.:0 {
    bind 127.0.0.1
    prometheus %s
    gtm gtm.example.net {
        api %s {
            token_file %s
        }
        brake 50 10s
%s    }
}`, metrics, apiAddr, token, brakePools(port, lines.String(), "127.0.71.1")))
	ask := func() []string {
		got := answers(s.ask(query{name: "big.gtm.example.net", qtype: dns.TypeA}))
		sort.Strings(got)
		return got
	}
	all := append([]string(nil), addrs...)
	sort.Strings(all)
	eventually(t, 3*time.Second, func() string {
		for _, a := range addrs {
			if st := addressStatus(t, api, "big", a); st["checked"] != true || st["healthy"] != true {
				return a + " not judged healthy yet"
			}
		}
		return ""
	})
	if got := ask(); strings.Join(got, " ") != strings.Join(all, " ") {
		t.Fatalf("before: %v", got)
	}
	for _, b := range targets[:15] {
		b.down()
	}
	// The 15 fail their checks (fall 1, 300ms)...
	eventually(t, 3*time.Second, func() string {
		for _, a := range addrs[:15] {
			if st := addressStatus(t, api, "big", a); st["healthy"] != false {
				return a + " not judged down yet"
			}
		}
		return ""
	})
	// ... and the answers do not change.
	for i := 0; i < 5; i++ {
		if got := ask(); strings.Join(got, " ") != strings.Join(all, " ") {
			t.Fatalf("with the brake engaged the answer changed: %v", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	code, br := api.do("GET", "/api/v1/brake", "", true)
	if code != 200 || br["engaged"] != true || br["down"] != 15.0 || br["of"] != 20.0 || br["held"] != 15.0 {
		t.Fatalf("brake status: %d %v", code, br)
	}
	// The status document and the page say it, with the page's release button.
	if _, st := api.do("GET", "/api/v1/status", "", true); fmt.Sprint(st["brake"]) == "<nil>" || st["brake"].(map[string]any)["engaged"] != true {
		t.Fatalf("status brake: %v", st["brake"])
	}
	if page := pageText(t, api); !strings.Contains(page, "Brake engaged: 15 of 20 checked addresses turned down within 10s (more than 50%); 15 answered by their verdict from before the wave.") || !strings.Contains(page, `data-action="release-brake"`) {
		t.Fatalf("the page does not show the engaged brake:\n%s", page)
	}
	if text := scrapeText(t, metrics); metric(text, "coredns_gtm_brake_engaged ") != 1 {
		t.Fatalf("coredns_gtm_brake_engaged is not 1:\n%s", grepLines(text, "brake"))
	}
	_, ev := api.do("GET", "/api/v1/events?since=0", "", true)
	if !strings.Contains(fmt.Sprint(ev["events"]), "action:brake") || !strings.Contains(fmt.Sprint(ev["events"]), "of 20 checked addresses turned down within 10s (more than 50%)") {
		t.Fatalf("no brake event: %v", ev["events"])
	}
	if _, ex := api.do("GET", "/api/v1/explain?domain=big.gtm.example.net&client=192.0.2.1", "", true); !strings.Contains(fmt.Sprint(ex), "held up by the brake") {
		t.Fatalf("explain does not say the brake holds: %v", ex)
	}

	// Released by the API: the real verdicts apply; the same wave does not engage it again.
	if code, body := api.do("POST", "/api/v1/brake/release", "", true); code != 200 || body["released"] != true {
		t.Fatalf("release: %d %v", code, body)
	}
	eventually(t, time.Second, func() string {
		if got := ask(); strings.Join(got, " ") != strings.Join(sortedCopy(addrs[15:]), " ") {
			return fmt.Sprintf("after the release: %v", got)
		}
		return ""
	})
	time.Sleep(500 * time.Millisecond)
	if _, br = api.do("GET", "/api/v1/brake", "", true); br["engaged"] != false {
		t.Fatalf("the released wave engaged the brake again: %v", br)
	}
	if page := pageText(t, api); strings.Contains(page, "Brake engaged") {
		t.Fatal("the page still shows the brake after its release")
	}
	if text := scrapeText(t, metrics); metric(text, "coredns_gtm_brake_engaged ") != 0 {
		t.Fatalf("coredns_gtm_brake_engaged after the release:\n%s", grepLines(text, "brake"))
	}
}

// pageText is the status page as served (its first paint, without JavaScript).
func pageText(t *testing.T, api *apiClient) string {
	t.Helper()
	req, _ := http.NewRequest("GET", api.base+"/", nil)
	req.Header.Set("Authorization", "Bearer "+api.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

// scrapeText reads the metrics of CoreDNS's prometheus plugin at addr.
func scrapeText(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func grepLines(text, word string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Three nodes in eu, us and ap; a target that answers only probes from eu's source address;
// `vantage eu`: only eu probes and votes, and the whole fleet follows it. Without vantage,
// the two others would vote it down (2 of 3 at quorum 50).
func TestVantageFollowsRegion(t *testing.T) {
	etcd := etcdtest.Start(t)
	var broken atomic.Bool
	ln, err := net.Listen("tcp", "127.0.80.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if host, _, _ := net.SplitHostPort(r.RemoteAddr); host != "127.0.0.2" || broken.Load() {
			w.WriteHeader(500) // only eu's source address sees it up
			return
		}
		fmt.Fprintln(w, "ok")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	port := ln.Addr().(*net.TCPAddr).Port
	token := writeFile(t, filepath.Join(t.TempDir(), "token"), "tok\n")
	type node struct {
		name string
		s    *server
		api  *apiClient
	}
	mk := func(name, region, source string) node {
		apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		s := start(t, vantageCorefile(apiAddr, token, etcd.Endpoint(), name, region, source, port, "127.0.80"))
		return node{name, s, &apiClient{t: t, base: "http://" + apiAddr, token: "tok"}}
	}
	nodes := []node{mk("eu1", "eu", "127.0.0.2"), mk("us1", "us", "127.0.0.3"), mk("ap1", "ap", "127.0.0.4")}
	ask := func(n node) string {
		return join(answers(n.s.ask(query{name: "www.gtm.example.net", qtype: dns.TypeA})))
	}
	// eu sees it up: every node answers it, though us and ap could not reach it.
	for _, n := range nodes {
		eventually(t, 5*time.Second, func() string {
			if got := ask(n); got != "127.0.80.1" {
				return n.name + " answers " + got + ", want the primary that eu sees up"
			}
			st := addressStatus(t, n.api, "primary", "127.0.80.1")
			q, _ := st["quorum"].(map[string]any)
			if q == nil || q["of"] != 1.0 {
				return fmt.Sprintf("%s: quorum %v, want of 1 (eu alone votes)", n.name, st["quorum"])
			}
			return ""
		})
	}
	st := addressStatus(t, nodes[1].api, "primary", "127.0.80.1")
	q := st["quorum"].(map[string]any)
	if q["follower"] != true || fmt.Sprint(q["vantage"]) != "[eu]" || !strings.Contains(fmt.Sprint(st["votes"]), "node:eu1") || strings.Contains(fmt.Sprint(st["votes"]), "node:us1") {
		t.Fatalf("us1's status: quorum %v votes %v", q, st["votes"])
	}
	// eu sees it fail: the fleet follows.
	broken.Store(true)
	for _, n := range nodes {
		eventually(t, 3*time.Second, func() string {
			if got := ask(n); got != "127.0.80.2" {
				return n.name + " answers " + got + " after eu saw the primary fail"
			}
			return ""
		})
	}
	broken.Store(false)
	for _, n := range nodes {
		eventually(t, 3*time.Second, func() string {
			if got := ask(n); got != "127.0.80.1" {
				return n.name + " answers " + got + " after eu saw the primary back"
			}
			return ""
		})
	}
}
