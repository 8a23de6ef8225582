package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// proc is a running coredns-gtm binary.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{} // closed when the process has exited
}

// startBinary runs the built binary on conf in dir and stops it at cleanup.
func startBinary(t *testing.T, dir, conf string) *proc {
	t.Helper()
	p := &proc{t: t, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(binary(t), "-conf", conf)
	p.cmd.Dir, p.cmd.Stdout, p.cmd.Stderr = dir, p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.kill)
	return p
}

// kill ends the process at once: no shutdown code runs, so whatever survives was on disk.
func (p *proc) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// httpCall is one admin API call with the whole response.
type httpCall struct {
	code int
	body []byte
	hdr  http.Header
}

func (c *apiClient) call(method, path, body string, hdr ...string) httpCall {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+c.token)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return httpCall{code: resp.StatusCode, body: b, hdr: resp.Header}
}

func (c *apiClient) mustCall(code int, method, path, body string, hdr ...string) httpCall {
	c.t.Helper()
	r := c.call(method, path, body, hdr...)
	if r.code != code {
		c.t.Fatalf("%s %s: %d, want %d: %s", method, path, r.code, code, r.body)
	}
	return r
}

// configDoc is GET /api/v1/config.
type configDoc struct {
	Revision     int64                     `json:"revision"`
	HealthChecks map[string]map[string]any `json:"healthchecks"`
	Pools        map[string]map[string]any `json:"pools"`
	Domains      map[string]map[string]any `json:"domains"`
}

func (c *apiClient) config() configDoc {
	c.t.Helper()
	r := c.mustCall(200, "GET", "/api/v1/config", "")
	var d configDoc
	if err := json.Unmarshal(r.body, &d); err != nil {
		c.t.Fatalf("GET /api/v1/config: %v: %s", err, r.body)
	}
	return d
}

// addrStatus is an address of GET /api/v1/status.
type addrStatus struct {
	Address  string `json:"address"`
	Healthy  bool   `json:"healthy"`
	Checked  bool   `json:"checked"`
	Probes   uint64 `json:"probes"`
	Failures uint64 `json:"failures"`
}

// addrStatus returns an address's entry in /api/v1/status (ok false if it is not there).
func (c *apiClient) addrStatus(pool, addr string) (addrStatus, bool) {
	c.t.Helper()
	r := c.mustCall(200, "GET", "/api/v1/status", "")
	var st struct {
		Pools []struct {
			Name      string       `json:"name"`
			Addresses []addrStatus `json:"addresses"`
		} `json:"pools"`
	}
	if err := json.Unmarshal(r.body, &st); err != nil {
		c.t.Fatalf("status: %v", err)
	}
	for _, p := range st.Pools {
		if p.Name == pool {
			for _, a := range p.Addresses {
				if a.Address == addr {
					return a, true
				}
			}
		}
	}
	return addrStatus{}, false
}

func configAPICorefile(dnsPort, backPort, ttl int, apiAddr, token, state string) string {
	return fmt.Sprintf(`.:%d {
    bind 127.0.0.1
    gtm gtm.example.net {
        ttl %d
        healthcheck web {
            protocol http
            port %d
            path /health
            interval 200ms
            timeout 150ms
            fall 2
            rise 2
        }
        pool cf {
            address 127.0.30.1
            address 127.0.30.2
            lb all
            healthcheck web
        }
        domain cf.gtm.example.net {
            route default cf
        }
        api %s {
            token_file %s
            state %s
        }
    }
}
`, dnsPort, ttl, backPort, apiAddr, token, state)
}

// TestBinaryConfigAPI drives the control layer through the built binary: resources created
// through the API answer DNS at once, survive a kill and a Corefile reload, a refused write
// changes nothing, and a write does not reset the health of unchanged (address, check) pairs.
func TestBinaryConfigAPI(t *testing.T) {
	dir := t.TempDir()
	backPort := freePort(t)
	down := newBackend(t, "127.0.30.1", backPort)
	down.status.Store(500)
	newBackend(t, "127.0.30.2", backPort)
	newBackend(t, "127.0.31.1", backPort)
	newBackend(t, "127.0.31.2", backPort)
	token := writeFile(t, filepath.Join(dir, "token"), "cfg-token\n")
	stateFile := filepath.Join(dir, "state.json")
	dnsPort := freePort(t)
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	conf := writeFile(t, filepath.Join(dir, "Corefile"), configAPICorefile(dnsPort, backPort, 30, apiAddr, token, stateFile))
	s := &server{t: t, udp: fmt.Sprintf("127.0.0.1:%d", dnsPort), tcp: fmt.Sprintf("127.0.0.1:%d", dnsPort)}
	c := &apiClient{t: t, base: "http://" + apiAddr, token: "cfg-token"}
	ask := func(name string) []string {
		got := answers(s.ask(query{name: name, qtype: dns.TypeA}))
		slices.Sort(got)
		return got
	}
	up := func(p *proc) {
		t.Helper()
		eventually(t, 20*time.Second, func() string {
			if _, err := s.exchange(query{name: "cf.gtm.example.net", qtype: dns.TypeA}); err != nil {
				return "DNS not answering: " + err.Error() + "\n" + p.out.String()
			}
			req, _ := http.NewRequest("GET", c.base+"/api/v1/status", nil)
			req.Header.Set("Authorization", "Bearer "+c.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return "API not answering: " + err.Error()
			}
			resp.Body.Close()
			return ""
		})
	}
	// knownDown waits until the Corefile pool's failing target has its verdict and returns
	// its status.
	knownDown := func() addrStatus {
		t.Helper()
		var st addrStatus
		eventually(t, 10*time.Second, func() string {
			var ok bool
			if st, ok = c.addrStatus("cf", "127.0.30.1"); !ok {
				return "127.0.30.1 not in the status"
			}
			if !st.Checked || st.Healthy {
				return fmt.Sprintf("127.0.30.1 not known down yet: %+v", st)
			}
			return ""
		})
		if got := join(ask("cf.gtm.example.net")); got != "127.0.30.2" {
			t.Fatalf("cf with 127.0.30.1 down: %s", got)
		}
		return st
	}
	// stillDown asserts, right after a change, that the down target was never answered and
	// kept its verdict and probe counters (no new fall window opened).
	stillDown := func(what string, before addrStatus) {
		t.Helper()
		for i := range 30 {
			if got := join(ask("cf.gtm.example.net")); got != "127.0.30.2" {
				t.Fatalf("%s: query %d answered %s: the down target's verdict was reset", what, i, got)
			}
			if i%10 == 0 {
				st, ok := c.addrStatus("cf", "127.0.30.1")
				if !ok || st.Healthy || !st.Checked || st.Probes < before.Probes || st.Failures < before.Failures {
					t.Fatalf("%s: 127.0.30.1 is %+v (ok %v), was %+v: health state not kept", what, st, ok, before)
				}
			}
		}
	}

	p := startBinary(t, dir, conf)
	up(p)
	knownDown()

	// Create a template, a pool and a domain; the domain answers on the next query.
	hc := fmt.Sprintf(`{"protocol":"http","port":%d,"path":"/health","interval":"200ms","timeout":"150ms","fall":2,"rise":1}`, backPort)
	c.mustCall(201, "PUT", "/api/v1/config/healthchecks/api-hc", hc, "If-None-Match", "*")
	pool := `{"addresses":[{"address":"127.0.31.1"}],"healthcheck":"api-hc"}`
	created := c.mustCall(201, "PUT", "/api/v1/config/pools/api-pool", pool, "If-None-Match", "*")
	c.mustCall(201, "PUT", "/api/v1/config/domains/api.gtm.example.net", `{"ttl":20,"routes":[{"selector":"default","pools":["api-pool"]}]}`)
	m := s.ask(query{name: "api.gtm.example.net", qtype: dns.TypeA})
	if got := join(answers(m)); got != "127.0.31.1" || m.Answer[0].Header().Ttl != 20 {
		t.Fatalf("API domain right after its PUT: %v", m.Answer)
	}
	if b, err := os.ReadFile(stateFile); err != nil || !strings.Contains(string(b), "config/pools/api-pool") {
		t.Fatalf("the pool is not in the state file when the PUT returned: %v\n%s", err, b)
	}

	// A refused write changes nothing: not the revision, not the resource, not the file.
	before := c.config()
	fileBefore, _ := os.ReadFile(stateFile)
	for _, bad := range []struct{ path, body string }{
		{"/api/v1/config/pools/api-pool", `{"addresses":[{"address":"300.1.1.1"}],"healthcheck":"api-hc"}`},
		{"/api/v1/config/pools/api-pool", `{"addresses":[{"address":"127.0.31.1"}],"healthcheck":"nope"}`},
		{"/api/v1/config/pools/other", `{"addresses":[{"address":"127.0.31.1"},{"address":"www.example.com"}]}`},
		{"/api/v1/config/domains/api.gtm.example.net", `{"routes":[{"selector":"default","pools":["api-pool","nope"]}]}`},
		{"/api/v1/config/healthchecks/api-hc", `{"protocol":"tcp"}`},
	} {
		r := c.mustCall(400, "PUT", bad.path, bad.body)
		var e struct {
			Error  string `json:"error"`
			Errors []struct{ Resource, Field, Message string }
		}
		if json.Unmarshal(r.body, &e) != nil || e.Error == "" || len(e.Errors) == 0 || e.Errors[0].Resource == "" {
			t.Errorf("PUT %s %s: the 400 does not name resource and field: %s", bad.path, bad.body, r.body)
		}
	}
	after := c.config()
	fileAfter, _ := os.ReadFile(stateFile)
	if after.Revision != before.Revision || string(fileAfter) != string(fileBefore) {
		t.Fatalf("refused writes changed the revision %d -> %d or the state file", before.Revision, after.Revision)
	}
	if _, ok := after.Pools["other"]; ok {
		t.Fatal("a refused create left the pool")
	}
	if got := c.mustCall(200, "GET", "/api/v1/config/pools/api-pool", ""); got.hdr.Get("ETag") != created.hdr.Get("ETag") {
		t.Fatalf("refused writes changed the pool's ETag %s -> %s", created.hdr.Get("ETag"), got.hdr.Get("ETag"))
	}
	if got := join(ask("api.gtm.example.net")); got != "127.0.31.1" {
		t.Fatalf("after refused writes: %s", got)
	}

	// Kill the binary (no shutdown code runs) and start it again: the API resources are back.
	p.kill()
	p = startBinary(t, dir, conf)
	up(p)
	if got := join(ask("api.gtm.example.net")); got != "127.0.31.1" {
		t.Fatalf("API domain after a restart: %s\n%s", got, p.out.String())
	}
	cfg := c.config()
	for kind, res := range map[string]map[string]map[string]any{"healthchecks": cfg.HealthChecks, "pools": cfg.Pools, "domains": cfg.Domains} {
		apiName := map[string]string{"healthchecks": "api-hc", "pools": "api-pool", "domains": "api.gtm.example.net."}[kind]
		cfName := map[string]string{"healthchecks": "web", "pools": "cf", "domains": "cf.gtm.example.net."}[kind]
		if res[apiName]["source"] != "api" || res[cfName]["source"] != "corefile" {
			t.Fatalf("after a restart, %s: %v", kind, res)
		}
	}
	if cfg.Revision != before.Revision {
		t.Errorf("revision after a restart %d, before %d", cfg.Revision, before.Revision)
	}

	// While the Corefile pool's target is known down, change another pool: the down target
	// stays down on every query right after the write, its probe counters go on.
	st := knownDown()
	etag := c.mustCall(200, "GET", "/api/v1/config/pools/api-pool", "").hdr.Get("ETag")
	if etag != created.hdr.Get("ETag") {
		t.Errorf("the pool's ETag changed over a restart: %s, then %s", created.hdr.Get("ETag"), etag)
	}
	put := c.mustCall(200, "PUT", "/api/v1/config/pools/api-pool", `{"addresses":[{"address":"127.0.31.1"},{"address":"127.0.31.2"}],"lb":"all","healthcheck":"api-hc"}`, "If-Match", etag)
	stillDown("after a write of another pool", st)
	if tag := c.mustCall(200, "GET", "/api/v1/config/pools/api-pool", "").hdr.Get("ETag"); tag == etag || tag != put.hdr.Get("ETag") {
		t.Errorf("ETags: before the PUT %s, its response %s, GET after it %s", etag, put.hdr.Get("ETag"), tag)
	}
	c.mustCall(412, "PUT", "/api/v1/config/pools/api-pool", pool, "If-Match", etag)
	eventually(t, 5*time.Second, func() string {
		if got := join(ask("api.gtm.example.net")); got != "127.0.31.1 127.0.31.2" {
			return "API pool after adding an address: " + got
		}
		return ""
	})
	// Even a write of the template the down target's pool does not use, and a domain, keep it.
	st, _ = c.addrStatus("cf", "127.0.30.1")
	c.mustCall(200, "PUT", "/api/v1/config/healthchecks/api-hc", strings.Replace(hc, `"rise":1`, `"rise":2`, 1))
	c.mustCall(201, "PUT", "/api/v1/config/domains/both.gtm.example.net", `{"routes":[{"selector":"default","pools":["cf","api-pool"]}]}`)
	stillDown("after writes of a template and a domain", st)

	// A Corefile reload (SIGUSR1) keeps the API resources and the health state.
	st, _ = c.addrStatus("cf", "127.0.30.1")
	writeFile(t, conf, configAPICorefile(dnsPort, backPort, 45, apiAddr, token, stateFile))
	if err := p.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() string {
		m := s.ask(query{name: "cf.gtm.example.net", qtype: dns.TypeA})
		if len(m.Answer) == 0 || m.Answer[0].Header().Ttl != 45 {
			return fmt.Sprintf("the reload is not in force: %v\n%s", m.Answer, p.out.String())
		}
		return ""
	})
	stillDown("after a Corefile reload", st)
	if got := join(ask("api.gtm.example.net")); got != "127.0.31.1 127.0.31.2" {
		t.Fatalf("API pool after a reload: %s", got)
	}
	cfg = c.config()
	if cfg.Pools["api-pool"]["source"] != "api" || cfg.HealthChecks["api-hc"]["source"] != "api" || cfg.Domains["both.gtm.example.net."]["source"] != "api" {
		t.Fatalf("API resources after a reload: %+v", cfg)
	}
	if strings.Contains(p.out.String(), "cfg-token") {
		t.Fatal("the token reached the logs")
	}
}
