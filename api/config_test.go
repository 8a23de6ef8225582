package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gtm-dns/coredns-gtm/config"
	"github.com/gtm-dns/coredns-gtm/policy"
	"github.com/gtm-dns/coredns-gtm/state"
)

// fakeControl is a block with a Corefile part (pool "core", template "tcp", domain
// core.gtm.test.) whose in-force configuration follows the store as the plugin's does.
type fakeControl struct {
	st   *state.Store
	base *config.Config
	env  config.Env
	mu   sync.Mutex
	cur  *config.Config
	rev  int64
}

func newFakeControl(tb testing.TB, durable bool) *fakeControl {
	tb.Helper()
	var be state.Backend = state.NewMemory()
	if durable {
		f, err := state.OpenFile(filepath.Join(tb.TempDir(), "state.json"))
		if err != nil {
			tb.Fatal(err)
		}
		be = f
	}
	st, err := state.Open(context.Background(), be)
	if err != nil {
		tb.Fatal(err)
	}
	hc := config.NewHealthCheck("tcp")
	hc.Protocol, hc.Port, hc.Source, hc.Line = "tcp", 80, config.SourceCorefile, 3
	hc.Normalize()
	core := config.NewPool("core")
	core.Addresses, core.Source, core.Line = []config.Address{config.NewAddress("192.0.2.100")}, config.SourceCorefile, 7
	dom := config.NewDomain("core.gtm.test.", 30)
	dom.Routes, dom.Source, dom.Line = []config.Route{config.NewRoute("default", "core")}, config.SourceCorefile, 10
	c := &fakeControl{st: st, base: &config.Config{HealthChecks: []*config.HealthCheck{hc}, Pools: []*config.Pool{core}, Domains: []*config.Domain{dom}},
		env: config.Env{Zones: []string{"gtm.test."}}}
	c.cur = c.base
	st.Subscribe(func(d *state.Data) {
		if res, errs := c.Merge(d); len(errs) == 0 {
			c.mu.Lock()
			c.cur, c.rev = res, d.Revision
			c.mu.Unlock()
		}
	})
	return c
}

func (c *fakeControl) Store() *state.Store { return c.st }
func (c *fakeControl) Merge(d *state.Data) (*config.Config, config.Errors) {
	return config.Merge(c.base, c.env, 30, d)
}
func (c *fakeControl) Corefile() *config.Config { return c.base }
func (c *fakeControl) InForce() *config.Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur
}
func (c *fakeControl) Revision() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rev
}
func (c *fakeControl) DefaultTTL() uint32 { return 30 }
func (c *fakeControl) Zones() []string    { return c.env.Zones }

type apiClient struct {
	t   *testing.T
	url string
}

func newConfigAPI(t *testing.T, durable bool) (*apiClient, *fakeControl, *Events) {
	ctl := newFakeControl(t, durable)
	ev := NewEvents(100)
	h := NewHandler(Config{Token: "t", Control: ctl, Events: ev, Snapshot: func() *policy.Snapshot { return nil }})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &apiClient{t: t, url: srv.URL}, ctl, ev
}

type reply struct {
	code int
	etag string
	body string
}

func (a *apiClient) do(method, path, body string, hdr ...string) reply {
	a.t.Helper()
	req, err := http.NewRequest(method, a.url+path, strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer t")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header.Get("ETag"), string(b)}
}

func (a *apiClient) want(r reply, code int, contains ...string) {
	a.t.Helper()
	if r.code != code {
		a.t.Fatalf("status %d, want %d: %s", r.code, code, r.body)
	}
	for _, c := range contains {
		if !strings.Contains(r.body, c) {
			a.t.Fatalf("body %s lacks %q", r.body, c)
		}
	}
	if code >= 400 && !strings.Contains(r.body, `"error"`) {
		a.t.Fatalf("a %d without a JSON error: %s", code, r.body)
	}
}

const poolEU = `{"addresses":[{"address":"192.0.2.1","weight":3},{"address":"192.0.2.2"}],"lb":"weighted"}`

// Every status code of the contract's config endpoints, and that a refused write changes
// nothing.
func TestConfigEndpoints(t *testing.T) {
	a, ctl, ev := newConfigAPI(t, true)

	r := a.do("PUT", "/api/v1/config/pools/eu", poolEU)
	a.want(r, 201, `"weight": 3`, `"source": "api"`, `"min_available": 1`)
	tag := r.etag
	if tag == "" {
		t.Fatal("no ETag on create")
	}
	a.want(a.do("PUT", "/api/v1/config/pools/eu", poolEU, "If-None-Match", "*"), 412)
	r = a.do("GET", "/api/v1/config/pools/eu", "")
	a.want(r, 200, `"192.0.2.2"`)
	if r.etag != tag {
		t.Fatalf("GET ETag %s, PUT said %s", r.etag, tag)
	}
	a.want(a.do("PUT", "/api/v1/config/pools/eu", poolEU, "If-Match", `"999"`), 412)
	r = a.do("PUT", "/api/v1/config/pools/eu", `{"addresses":[{"address":"192.0.2.1"}]}`, "If-Match", tag)
	a.want(r, 200)
	if r.etag == tag {
		t.Fatal("the ETag did not change with the resource")
	}

	// A domain referencing it, through the path without the final dot and in upper case.
	a.want(a.do("PUT", "/api/v1/config/domains/WWW.gtm.test", `{"routes":[{"selector":"default","pools":["eu","core"]}]}`), 201, `"select": "failover"`, `"ttl": 30`)
	a.want(a.do("DELETE", "/api/v1/config/pools/eu", ""), 409, "pool eu is used by domain www.gtm.test.")

	// Refused writes, each changing nothing.
	before := ctl.Store().Data().Revision
	for _, tc := range []struct {
		path, body string
		code       int
		want       string
	}{
		{"/api/v1/config/pools/bad", `{"addresses":[{"address":"300.1.1.1"}]}`, 400, `pool bad: address \"300.1.1.1\": not an IP address or domain name`},
		{"/api/v1/config/pools/bad", `{"addresses":[{"address":"192.0.2.1"},{"address":"x.example.org"}]}`, 400, "either IP addresses or domain names"},
		{"/api/v1/config/pools/bad", `{"addresses":[{"address":"192.0.2.1","weight":0}]}`, 400, `weight \"0\": expected a number from 1`},
		{"/api/v1/config/pools/bad", `{"addresses":[{"address":"192.0.2.1"}],"colour":"blue"}`, 400, "colour"},
		{"/api/v1/config/pools/bad", `{"Addresses":[{"address":"192.0.2.1"}]}`, 400, "Addresses"},
		{"/api/v1/config/pools/bad", `{"addresses":[],"addresses":[{"address":"192.0.2.1"}]}`, 400, "duplicate"},
		{"/api/v1/config/pools/bad", `{"addresses":"192.0.2.1"}`, 400, "addresses"},
		{"/api/v1/config/pools/bad", `{"addresses":[{"address":"192.0.2.1"}]`, 400, "malformed JSON"},
		{"/api/v1/config/pools/bad", `{"addresses":[{"address":"127.0.50.1."}]}`, 400, "an IP address takes no final dot (write 127.0.50.1)"},
		{"/api/v1/config/pools/bad", `{"addresses":[{"address":"192.0.2.1"}],"healthcheck":"nope"}`, 400, `unknown healthcheck \"nope\"`},
		{"/api/v1/config/pools/bad%20name", `{"addresses":[{"address":"192.0.2.1"}]}`, 400, "name"},
		{"/api/v1/config/healthchecks/h", `{"protocol":"tcp"}`, 400, "protocol tcp needs a port"},
		{"/api/v1/config/healthchecks/h", `{"protocol":"http","interval":"2s","timeout":"2s"}`, 400, "timeout 2s must be less than interval 2s"},
		{"/api/v1/config/healthchecks/h", `{"protocol":"http","interval":"soon"}`, 400, "interval"},
		{"/api/v1/config/domains/www.example.com", `{"routes":[{"selector":"default","pools":["eu"]}]}`, 400, "outside the zones"},
		{"/api/v1/config/domains/x.gtm.test", `{"routes":[{"selector":"default","pools":["nope"]}]}`, 400, `unknown pool \"nope\"`},
		{"/api/v1/config/domains/x.gtm.test", `{"routes":[{"selector":"country:DE","pools":["eu"]}]}`, 400, "need a geoip database"},
		{"/api/v1/config/domains/x.gtm.test", `{"routes":[]}`, 400, "no route"},
		{"/api/v1/config/pools/core", poolEU, 409, "defined in the Corefile"},
		{"/api/v1/config/widgets/x", `{}`, 404, "widgets"},
	} {
		r := a.do("PUT", tc.path, tc.body)
		if r.code != tc.code || !strings.Contains(r.body, tc.want) {
			t.Errorf("PUT %s %s: %d %s, want %d with %q", tc.path, tc.body, r.code, r.body, tc.code, tc.want)
		}
	}
	a.want(a.do("DELETE", "/api/v1/config/pools/core", ""), 409, "Corefile")
	a.want(a.do("DELETE", "/api/v1/config/healthchecks/tcp", ""), 409, "Corefile")
	a.want(a.do("DELETE", "/api/v1/config/pools/nope", ""), 404)
	a.want(a.do("GET", "/api/v1/config/pools/nope", ""), 404)
	a.want(a.do("PUT", "/api/v1/config/pools/big", `{"addresses":[`+strings.Repeat(`{"address":"192.0.2.1"},`, 60000)+`]}`), 413)
	if rev := ctl.Store().Data().Revision; rev != before {
		t.Fatalf("refused writes moved the revision from %d to %d", before, rev)
	}

	// The whole configuration, with sources.
	var all map[string]any
	r = a.do("GET", "/api/v1/config", "")
	a.want(r, 200)
	json.Unmarshal([]byte(r.body), &all)
	pools := all["pools"].(map[string]any)
	if pools["core"].(map[string]any)["source"] != "corefile" || pools["eu"].(map[string]any)["source"] != "api" {
		t.Fatalf("sources: %s", r.body)
	}
	if _, ok := all["domains"].(map[string]any)["www.gtm.test."]; !ok || all["revision"].(float64) < 1 {
		t.Fatalf("config: %s", r.body)
	}

	a.want(a.do("DELETE", "/api/v1/config/domains/www.gtm.test.", ""), 204)
	a.want(a.do("DELETE", "/api/v1/config/pools/eu", ""), 204)
	a.want(a.do("GET", "/api/v1/config/pools/eu", ""), 404)

	var actions []string
	for _, e := range ev.Since(0) {
		if e.Kind == "config" {
			if e.Client == "" || e.Resource == "" {
				t.Fatalf("config event without client or resource: %+v", e)
			}
			actions = append(actions, e.Action+" "+e.Resource)
		}
	}
	want := "create pools/eu,update pools/eu,create domains/www.gtm.test.,delete domains/www.gtm.test.,delete pools/eu"
	if strings.Join(actions, ",") != want {
		t.Fatalf("config events %v, want %s", actions, want)
	}
}

// Without state FILE (or a cluster) nothing persists a config write: 409, nothing changes.
func TestConfigWriteWithoutPersistence(t *testing.T) {
	a, ctl, _ := newConfigAPI(t, false)
	a.want(a.do("PUT", "/api/v1/config/pools/eu", poolEU), 409, "persist")
	if len(ctl.Store().Data().Entries) != 0 {
		t.Fatal("a refused write changed the state")
	}
}

// 20 writers doing read-modify-write with If-Match on one pool for 10 s lose no update: the
// final list holds every writer's last successful address.
func TestConcurrentIfMatchWriters(t *testing.T) {
	a, ctl, _ := newConfigAPI(t, true)
	a.want(a.do("PUT", "/api/v1/config/pools/shared", `{"addresses":[{"address":"192.0.2.1"}]}`), 201)
	const writers = 20
	deadline := time.Now().Add(10 * time.Second)
	last := make([]string, writers)
	wins := make([]int, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline) && i < 10000; i++ {
				addr := fmt.Sprintf("10.%d.%d.1", w, i)
				for {
					r := a.do("GET", "/api/v1/config/pools/shared", "")
					var p struct {
						Addresses []map[string]any `json:"addresses"`
					}
					json.Unmarshal([]byte(r.body), &p)
					var kept []map[string]any
					prefix := fmt.Sprintf("10.%d.", w)
					for _, x := range p.Addresses {
						if !strings.HasPrefix(x["address"].(string), prefix) {
							kept = append(kept, x)
						}
					}
					kept = append(kept, map[string]any{"address": addr})
					b, _ := json.Marshal(map[string]any{"addresses": kept})
					put := a.do("PUT", "/api/v1/config/pools/shared", string(b), "If-Match", r.etag)
					if put.code == 200 {
						last[w] = addr
						wins[w]++
						break
					}
					if put.code != 412 {
						t.Errorf("PUT: %d %s", put.code, put.body)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("successful writes per writer: %v", wins)
	p := ctl.InForce().Pool("shared")
	got := map[string]bool{}
	for _, x := range p.Addresses {
		got[x.Address] = true
	}
	for w, addr := range last {
		if !got[addr] {
			t.Errorf("writer %d's last write %s was lost (pool holds %v)", w, addr, p.Addresses)
		}
	}
	if len(p.Addresses) != writers+1 {
		t.Errorf("pool has %d addresses, want %d", len(p.Addresses), writers+1)
	}
}

// What GET answers can be written back as it is: the "source" member it adds is accepted
// when it says api, and refused when it says corefile.
func TestGetBodyWritesBack(t *testing.T) {
	a, _, _ := newConfigAPI(t, true)
	a.want(a.do("PUT", "/api/v1/config/pools/eu", poolEU), 201)
	r := a.do("GET", "/api/v1/config/pools/eu", "")
	a.want(a.do("PUT", "/api/v1/config/pools/eu", r.body, "If-Match", r.etag), 200, `"source": "api"`)
	a.want(a.do("PUT", "/api/v1/config/pools/eu", strings.Replace(r.body, `"source": "api"`, `"source": "corefile"`, 1)), 400, "read-only")
}
