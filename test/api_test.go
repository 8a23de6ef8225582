package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func apiCorefile(apiAddr, tokenFile, state string, publicRead bool) string {
	pr := ""
	if publicRead {
		pr = "public_read"
	}
	return fmt.Sprintf(`.:0 {
    bind 127.0.0.1
    gtm gtm.example.net {
        api %s {
            token_file %s
            state %s
            %s
        }
        pool hz {
            address 192.0.2.1
            address 192.0.2.2
            lb all
        }
        pool sg {
            address 198.51.100.1
        }
        domain www.gtm.example.net {
            route default hz sg
        }
    }
}`, apiAddr, tokenFile, state, pr)
}

type apiClient struct {
	t     *testing.T
	base  string
	token string
}

func (c *apiClient) do(method, path, body string, auth bool) (int, map[string]any) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if auth {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v map[string]any
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &v); err != nil {
			c.t.Fatalf("%s %s: bad JSON %q", method, path, b)
		}
	}
	return resp.StatusCode, v
}

func TestAdminAPI(t *testing.T) {
	dir := t.TempDir()
	token := writeFile(t, filepath.Join(dir, "token"), "  s3cret-token \n")
	state := filepath.Join(dir, "state.json")
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	corefile := apiCorefile(apiAddr, token, state, false)
	s := start(t, corefile)
	c := &apiClient{t: t, base: "http://" + apiAddr, token: "s3cret-token"}
	ask := func() string {
		return join(answers(s.ask(query{name: "www.gtm.example.net", qtype: dns.TypeA})))
	}

	// Authentication: everything needs the token without public_read.
	for _, path := range []string{"/api/v1/status", "/api/v1/events", "/"} {
		if code, body := c.do("GET", path, "", false); code != 401 || body["error"] == nil {
			t.Fatalf("GET %s without a token: %d %v", path, code, body)
		}
	}
	wrong := &apiClient{t: t, base: c.base, token: "nope"}
	if code, _ := wrong.do("GET", "/api/v1/status", "", true); code != 401 {
		t.Fatalf("wrong token: %d", code)
	}
	code, st := c.do("GET", "/api/v1/status", "", true)
	if code != 200 || len(st["domains"].([]any)) != 1 || len(st["pools"].([]any)) != 2 {
		t.Fatalf("status: %d %v", code, st)
	}

	// Drain one address; the next query sees it.
	if code, body := c.do("PUT", "/api/v1/pools/hz/addresses/192.0.2.1/mode", `{"mode":"down"}`, true); code != 200 {
		t.Fatalf("mode down: %d %v", code, body)
	}
	if got := ask(); got != "192.0.2.2" {
		t.Fatalf("after draining 192.0.2.1: %s", got)
	}
	// Pin the domain to the standby pool.
	if code, body := c.do("PUT", "/api/v1/domains/WWW.gtm.example.net./pin", `{"pool":"sg"}`, true); code != 200 {
		t.Fatalf("pin: %d %v", code, body)
	}
	if got := ask(); got != "198.51.100.1" {
		t.Fatalf("pinned to sg: %s", got)
	}
	// Bad input is 4xx with a JSON error, never 5xx.
	bad := []struct {
		method, path, body string
		code               int
	}{
		{"PUT", "/api/v1/pools/nope/addresses/192.0.2.1/mode", `{"mode":"down"}`, 404},
		{"PUT", "/api/v1/pools/hz/addresses/192.0.2.99/mode", `{"mode":"down"}`, 404},
		{"PUT", "/api/v1/pools/hz/addresses/192.0.2.1/mode", `{"mode":"sideways"}`, 400},
		{"PUT", "/api/v1/pools/hz/addresses/192.0.2.1/mode", `{"mode":`, 400},
		{"PUT", "/api/v1/pools/hz/addresses/192.0.2.1/mode", `{"mode":"up","extra":1}`, 400},
		{"PUT", "/api/v1/pools/hz/addresses/192.0.2.1/mode", `{"mode":"` + strings.Repeat("a", 70000) + `"}`, 413},
		{"PUT", "/api/v1/domains/nope.gtm.example.net/pin", `{"pool":"sg"}`, 404},
		{"PUT", "/api/v1/domains/www.gtm.example.net/pin", `{"pool":"nope"}`, 404},
		{"PUT", "/api/v1/domains/www.gtm.example.net/pin", `{}`, 400},
		{"GET", "/api/v1/events?since=-1", "", 400},
		{"DELETE", "/api/v1/status", "", 405},
		{"GET", "/api/v1/nothing", "", 404},
		{"GET", "/../../../../etc/passwd", "", 404},
		{"GET", "/%2e%2e/%2e%2e/etc/passwd", "", 404},
	}
	for _, b := range bad {
		if code, body := c.do(b.method, b.path, b.body, true); code != b.code || body["error"] == nil {
			t.Errorf("%s %s: %d %v, want %d with a JSON error", b.method, b.path, code, body, b.code)
		}
	}

	// Events record the override and the pin.
	_, ev := c.do("GET", "/api/v1/events?since=0", "", true)
	kinds := map[string]bool{}
	for _, e := range ev["events"].([]any) {
		kinds[e.(map[string]any)["kind"].(string)] = true
	}
	if !kinds["mode"] || !kinds["pin"] || !kinds["reload"] {
		t.Fatalf("events: %v", ev)
	}

	// Overrides are on disk before the call returned.
	b, err := os.ReadFile(state)
	if err != nil || !strings.Contains(string(b), `"modes/hz/192.0.2.1"`) || !strings.Contains(string(b), `"mode": "down"`) || !strings.Contains(string(b), `"pool": "sg"`) {
		t.Fatalf("state file: %s %v", b, err)
	}

	// ...and in force after a reload.
	if err := s.reload(corefile); err != nil {
		t.Fatal(err)
	}
	if got := ask(); got != "198.51.100.1" {
		t.Fatalf("pin lost over reload: %s", got)
	}
	c.do("PUT", "/api/v1/domains/www.gtm.example.net/pin", `{"pool":""}`, true)
	if got := ask(); got != "192.0.2.2" {
		t.Fatalf("after unpin, the drained address must stay out: %s", got)
	}
}

func TestAdminAPIPublicRead(t *testing.T) {
	dir := t.TempDir()
	token := writeFile(t, filepath.Join(dir, "token"), "tok")
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	start(t, apiCorefile(apiAddr, token, filepath.Join(dir, "state.json"), true))
	c := &apiClient{t: t, base: "http://" + apiAddr, token: "tok"}
	if code, _ := c.do("GET", "/api/v1/status", "", false); code != 200 {
		t.Fatalf("public_read status: %d", code)
	}
	resp, err := http.Get(c.base + "/")
	if err != nil || resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("status page: %v %v", resp, err)
	}
	resp.Body.Close()
	if code, _ := c.do("PUT", "/api/v1/domains/www.gtm.example.net/pin", `{"pool":"sg"}`, false); code != 401 {
		t.Fatalf("public_read must not open writes: %d", code)
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	token := writeFile(t, filepath.Join(dir, "token"), "tok")
	state := filepath.Join(dir, "state.json")
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	corefile := apiCorefile(apiAddr, token, state, false)
	writeFile(t, state, `{"version":1,"modes":{"hz/192.0.2.2":"down"},"pins":{}}`)
	s := start(t, corefile)
	for range 10 {
		if got := join(answers(s.ask(query{name: "www.gtm.example.net", qtype: dns.TypeA}))); got != "192.0.2.1" {
			t.Fatalf("override from the state file not in force: %s", got)
		}
	}
}
