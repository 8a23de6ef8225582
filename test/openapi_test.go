package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// TestOpenAPIDocument checks real responses of a running server against docs/openapi.yaml:
// every operation, success and error statuses, bodies against their schemas.
func TestOpenAPIDocument(t *testing.T) {
	ctx := context.Background()
	doc, err := openapi3.NewLoader().LoadFromFile("../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(ctx); err != nil {
		t.Fatalf("docs/openapi.yaml is not valid OpenAPI 3: %v", err)
	}

	port := freePort(t)
	newBackend(t, "127.0.20.1", port)
	newBackend(t, "127.0.20.2", port).status.Store(500)
	newBackend(t, "127.0.21.1", port)
	dir := t.TempDir()
	token := writeFile(t, filepath.Join(dir, "token"), "oa-token")
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	start(t, healthCorefile(port, fmt.Sprintf("api %s {\n token_file %s\n state %s\n webhook http://127.0.0.1:%d/closed {\n name oa\n }\n }\n pool geo {\n address 2001:db8::1\n location 50.1 8.6\n }",
		apiAddr, token, filepath.Join(dir, "state.json"), freePort(t))))
	base := "http://" + apiAddr
	noState := fmt.Sprintf("127.0.0.1:%d", freePort(t)) // a second block, without state FILE
	doc.Servers = openapi3.Servers{{URL: base}, {URL: "http://" + noState}}
	openapi3filter.RegisterBodyDecoder("text/html", func(r io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
		b, err := io.ReadAll(r)
		return string(b), err
	})
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	// Let the first probes land so addresses have results, RTTs and change times.
	eventually(t, 5*time.Second, func() string {
		if !strings.Contains(get(t, base+"/api/v1/status", "oa-token"), `"last_result": "status"`) {
			return "no probe result yet"
		}
		return ""
	})

	// Config writes: {etag} in a header stands for the ETag of the last response that had one.
	big := `{"lb":"` + strings.Repeat("x", 1<<20) + `"}`
	hc := fmt.Sprintf(`{"protocol":"tcp","port":%d,"interval":"1s","timeout":"500ms","fall":2,"rise":1}`, port)
	apiPool := `{"addresses":[{"address":"127.0.21.1","weight":2},{"address":"192.0.2.10","priority":1,"disabled":true}],"location":{"lat":50.11,"lon":8.68},"lb":"weighted","answers":1,"healthcheck":"api-hc","min_available":"50%","weight":3,"slow_start":"30s"}`
	apiDomain := `{"ttl":60,"ttl_degraded":10,"fallback":"nodata","failback":"manual","routes":[{"selector":"net:10.0.0.0/8","pools":["api-pool","standby"],"select":"failover"},{"selector":"default","pools":["api-pool"]}]}`
	ifNone := map[string]string{"If-None-Match": "*"}
	ifMatch := map[string]string{"If-Match": "{etag}"}
	type call struct {
		method, path, body string
		auth               bool
		code               int
		hdr                map[string]string
	}
	calls := []call{
		{"GET", "/api/v1/status", "", true, 200, nil},
		{"GET", "/api/v1/status", "", false, 401, nil},
		{"GET", "/api/v1/events", "", true, 200, nil},
		{"GET", "/api/v1/events?since=1", "", true, 200, nil},
		{"GET", "/api/v1/events?since=x", "", true, 400, nil},
		{"PUT", "/api/v1/pools/primary/addresses/127.0.20.1/mode", `{"mode":"down"}`, true, 200, nil},
		{"PUT", "/api/v1/pools/geo/addresses/2001:DB8:0::1/mode", `{"mode":"up"}`, true, 200, nil},
		{"PUT", "/api/v1/pools/primary/addresses/127.0.20.1/mode", `{"mode":"off"}`, true, 400, nil},
		{"PUT", "/api/v1/pools/primary/addresses/127.0.20.9/mode", `{"mode":"up"}`, true, 404, nil},
		{"PUT", "/api/v1/pools/primary/addresses/127.0.20.1/mode", `{"mode":"up"}`, false, 401, nil},
		{"PUT", "/api/v1/pools/primary/addresses/127.0.20.1/mode", `{"mode":"` + strings.Repeat("x", 70<<10) + `"}`, true, 413, nil},
		{"PUT", "/api/v1/domains/www.gtm.example.net/pin", `{"pool":"standby"}`, true, 200, nil},
		{"PUT", "/api/v1/domains/www.gtm.example.net/pin", `{"pool":""}`, true, 200, nil},
		{"PUT", "/api/v1/domains/www.gtm.example.net/pin", `{"pool":"nope"}`, true, 404, nil},
		{"PUT", "/api/v1/domains/www.gtm.example.net/pin", `[]`, true, 400, nil},
		// Timed overrides and the pool mode (issue 15 item 6).
		{"PUT", "/api/v1/pools/primary/addresses/127.0.20.1/mode", `{"mode":"down","until":"2099-01-01T00:00:00Z"}`, true, 200, nil},
		{"PUT", "/api/v1/pools/primary/addresses/127.0.20.1/mode", `{"mode":"down","until":"2000-01-01T00:00:00Z"}`, true, 400, nil},
		{"PUT", "/api/v1/pools/primary/addresses/127.0.20.2/mode", `{"mode":"up","from":"2099-01-01T00:00:00Z","until":"2099-01-02T00:00:00Z"}`, true, 200, nil},
		{"PUT", "/api/v1/domains/www.gtm.example.net/pin", `{"pool":"standby","until":"2099-01-01T00:00:00Z"}`, true, 200, nil},
		{"PUT", "/api/v1/pools/standby/mode", `{"mode":"down","from":"2099-01-01T00:00:00Z"}`, true, 200, nil},
		{"PUT", "/api/v1/pools/primary/mode", `{"mode":"up","until":"2099-01-01T00:00:00Z"}`, true, 200, nil},
		{"PUT", "/api/v1/pools/primary/mode", `{"mode":"up","from":"2099-01-02T00:00:00Z","until":"2099-01-01T00:00:00Z"}`, true, 400, nil},
		{"PUT", "/api/v1/pools/primary/mode", `{"mode":"up"}`, false, 401, nil},
		{"PUT", "/api/v1/pools/nope/mode", `{"mode":"up"}`, true, 404, nil},
		{"PUT", "/api/v1/pools/primary/mode", `{"mode":"` + strings.Repeat("x", 70<<10) + `"}`, true, 413, nil},
		{"GET", "/api/v1/pools/primary/mode", "", true, 200, nil},
		{"GET", "/api/v1/pools/nope/mode", "", true, 404, nil},
		{"GET", "/api/v1/pools/primary/mode", "", false, 401, nil},
		{"GET", "/api/v1/status", "", true, 200, nil},
		{"DELETE", "/api/v1/pools/primary/mode", "", true, 200, nil},
		{"DELETE", "/api/v1/pools/nope/mode", "", true, 404, nil},
		{"DELETE", "/api/v1/pools/primary/mode", "", false, 401, nil},
		{"DELETE", "/api/v1/pools/standby/mode", "", true, 200, nil},
		{"PUT", "/api/v1/domains/www.gtm.example.net/pin", `{"pool":""}`, true, 200, nil},
		{"PUT", "/api/v1/pools/primary/addresses/127.0.20.2/mode", `{"mode":"auto"}`, true, 200, nil},
		{"PUT", "/api/v1/pools/primary/addresses/127.0.20.1/mode", `{"mode":"down"}`, true, 200, nil},
		{"POST", "/api/v1/domains/www.gtm.example.net/failback", "", true, 200, nil},
		{"POST", "/api/v1/domains/nope.gtm.example.net/failback", "", true, 404, nil},
		{"POST", "/api/v1/domains/www.gtm.example.net/failback", "", false, 401, nil},
		{"GET", "/api/v1/explain?domain=www.gtm.example.net&type=A&subnet=10.1.0.0/16", "", true, 200, nil},
		{"GET", "/api/v1/explain?domain=WWW.gtm.example.net.&type=aaaa&client=127.0.0.1", "", true, 200, nil},
		{"GET", "/api/v1/explain?domain=www.gtm.example.net&subnet=nope", "", true, 400, nil},
		{"GET", "/api/v1/explain?domain=nope.gtm.example.net&client=127.0.0.1", "", true, 404, nil},
		{"GET", "/api/v1/explain?domain=www.gtm.example.net&client=127.0.0.1", "", false, 401, nil},
		{"GET", "/api/v1/history", "", true, 200, nil},
		// Health from outside: this block has no push check and no brake.
		{"PUT", "/api/v1/pools/primary/addresses/127.0.20.1/health", `{"healthy":false,"ttl":"30s"}`, true, 404, nil},
		{"PUT", "/api/v1/pools/primary/addresses/127.0.20.1/health", `{"healthy":false,"ttl":"30s","check":"web"}`, true, 400, nil},
		{"PUT", "/api/v1/pools/nope/addresses/127.0.20.1/health", `{"healthy":false,"ttl":"30s"}`, true, 404, nil},
		{"PUT", "/api/v1/pools/primary/addresses/127.0.20.1/health", `{"healthy":false,"ttl":"30s"}`, false, 401, nil},
		{"GET", "/api/v1/brake", "", true, 404, nil},
		{"POST", "/api/v1/brake/release", "", true, 404, nil},
		{"GET", "/api/v1/history", "", false, 401, nil},
		{"GET", "/", "", true, 200, nil},
		{"GET", "/", "", false, 401, nil},

		{"GET", "/api/v1/config", "", true, 200, nil},
		{"GET", "/api/v1/config", "", false, 401, nil},
		{"GET", "/api/v1/config/healthchecks/web", "", true, 200, nil},
		{"GET", "/api/v1/config/pools/primary", "", true, 200, nil},
		{"GET", "/api/v1/config/pools/geo", "", true, 200, nil},
		{"GET", "/api/v1/config/domains/WWW.gtm.example.net.", "", true, 200, nil},
		{"GET", "/api/v1/config/pools/nope", "", true, 404, nil},
		{"GET", "/api/v1/config/healthchecks/nope", "", true, 404, nil},
		{"GET", "/api/v1/config/domains/nope.gtm.example.net", "", true, 404, nil},
		{"GET", "/api/v1/config/domains/www.example.org", "", true, 400, nil},
		{"PUT", "/api/v1/config/healthchecks/api-hc", hc, true, 201, ifNone},
		{"PUT", "/api/v1/config/healthchecks/api-hc", hc, true, 412, ifNone},
		{"PUT", "/api/v1/config/healthchecks/api-hc", hc, true, 200, ifMatch},
		{"PUT", "/api/v1/config/healthchecks/api-hc", hc, false, 401, nil},
		{"PUT", "/api/v1/config/healthchecks/web", hc, true, 409, nil},
		{"PUT", "/api/v1/config/healthchecks/bad", `{"protocol":"tcp","port":80,"interval":"1s","timeout":"2s"}`, true, 400, nil},
		{"PUT", "/api/v1/config/healthchecks/bad", `{"protocol":"tcp","colour":"blue"}`, true, 400, nil},
		{"PUT", "/api/v1/config/healthchecks/bad", big, true, 413, nil},
		{"PUT", "/api/v1/config/pools/api-pool", apiPool, true, 201, nil},
		{"GET", "/api/v1/config/pools/api-pool", "", true, 200, nil},
		{"PUT", "/api/v1/config/pools/api-pool", apiPool, true, 200, ifMatch},
		{"PUT", "/api/v1/config/pools/api-pool", apiPool, true, 412, map[string]string{"If-Match": `"1"`}},
		{"PUT", "/api/v1/config/pools/api-pool", apiPool, true, 412, ifNone},
		{"PUT", "/api/v1/config/pools/primary", apiPool, true, 409, nil},
		{"PUT", "/api/v1/config/pools/api-pool", apiPool, false, 401, nil},
		{"PUT", "/api/v1/config/pools/bad", `{"addresses":[{"address":"300.1.1.1"},{"address":"192.0.2.1","weight":0}]}`, true, 400, nil},
		{"PUT", "/api/v1/config/pools/bad", `{"addresses":[{"address":"192.0.2.1"}],"healthcheck":"nope"}`, true, 400, nil},
		{"PUT", "/api/v1/config/pools/bad", `{"addresses":`, true, 400, nil},
		{"PUT", "/api/v1/config/pools/bad", `{"addresses":"192.0.2.1"}`, true, 400, nil},
		{"PUT", "/api/v1/config/pools/bad", big, true, 413, nil},
		{"PUT", "/api/v1/config/domains/api.gtm.example.net", apiDomain, true, 201, ifNone},
		{"GET", "/api/v1/config/domains/api.gtm.example.net", "", true, 200, nil},
		{"PUT", "/api/v1/config/domains/api.gtm.example.net.", apiDomain, true, 200, ifMatch},
		{"PUT", "/api/v1/config/domains/api.gtm.example.net", apiDomain, true, 412, ifNone},
		{"PUT", "/api/v1/config/domains/www.gtm.example.net", apiDomain, true, 409, nil},
		{"PUT", "/api/v1/config/domains/api.gtm.example.net", apiDomain, false, 401, nil},
		{"PUT", "/api/v1/config/domains/api.example.org", apiDomain, true, 400, nil},
		{"PUT", "/api/v1/config/domains/bad.gtm.example.net", `{"routes":[{"selector":"default","pools":["nope"]}]}`, true, 400, nil},
		{"PUT", "/api/v1/config/domains/bad.gtm.example.net", big, true, 413, nil},
		{"GET", "/api/v1/config", "", true, 200, nil},
		{"DELETE", "/api/v1/config/pools/api-pool", "", true, 409, nil},
		{"DELETE", "/api/v1/config/healthchecks/api-hc", "", true, 409, nil},
		{"DELETE", "/api/v1/config/pools/primary", "", true, 409, nil},
		{"DELETE", "/api/v1/config/pools/nope", "", true, 404, nil},
		{"DELETE", "/api/v1/config/domains/nope.gtm.example.net", "", true, 404, nil},
		{"DELETE", "/api/v1/config/healthchecks/nope", "", true, 404, nil},
		{"DELETE", "/api/v1/config/domains/api.gtm.example.net", "", true, 412, map[string]string{"If-Match": `"1"`}},
		{"DELETE", "/api/v1/config/domains/api.gtm.example.net", "", false, 401, nil},
		{"DELETE", "/api/v1/config/domains/api.gtm.example.net", "", true, 204, nil},
		{"DELETE", "/api/v1/config/pools/api-pool", "", true, 204, nil},
		{"DELETE", "/api/v1/config/healthchecks/api-hc", "", true, 204, nil},
		// Whole-configuration writes (issue 25).
		{"PUT", "/api/v1/config?wait=synced&timeout=2s", `{"revision":3,"pools":{"whole":{"addresses":[{"address":"192.0.2.77"}],"source":"api"},"primary":{"source":"corefile"}}}`, true, 200, nil},
		{"PUT", "/api/v1/config", `{"pools":{"whole":{"addresses":[{"address":"192.0.2.77"}]}},"domains":{"w.gtm.example.net":{"routes":[{"selector":"default","pools":["nope"]}]}}}`, true, 400, nil},
		{"PUT", "/api/v1/config", `{}`, true, 200, nil},
		{"PUT", "/api/v1/config?wait=soon", `{}`, true, 400, nil},
		{"POST", "/api/v1/cluster/restore", `{"version":1,"path":"/gtm","revision":1,"entries":{}}`, true, 409, nil},
		{"POST", "/api/v1/cluster/restore", `{"version":7}`, true, 400, nil},
		{"GET", "/api/v1/events?since=0", "", true, 200, nil},
		{"GET", "/api/v1/audit", "", true, 200, nil},
		{"GET", "/api/v1/audit?since=0&limit=1000", "", true, 200, nil},
		{"GET", "/api/v1/audit?limit=0", "", true, 400, nil},
		{"GET", "/api/v1/audit", "", false, 401, nil},
	}
	lastETag := ""
	seen := map[string]bool{} // "METHOD path-template status" validated
	check := func(base string, c call) {
		newReq := func() *http.Request {
			req, _ := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
			if c.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if c.auth {
				req.Header.Set("Authorization", "Bearer oa-token")
			}
			for k, v := range c.hdr {
				req.Header.Set(k, strings.ReplaceAll(v, "{etag}", lastETag))
			}
			return req
		}
		req := newReq()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if tag := resp.Header.Get("ETag"); tag != "" {
			lastETag = tag
		}
		if resp.StatusCode != c.code {
			t.Errorf("%s %s: status %d, want %d: %s", c.method, c.path, resp.StatusCode, c.code, body)
			return
		}
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Errorf("%s %s: not in the document: %v", c.method, c.path, err)
			return
		}
		seen[fmt.Sprintf("%s %s %d", c.method, route.Path, c.code)] = true
		in := &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
		}
		// What the server accepts, the document accepts too.
		if c.code < 300 && c.auth {
			vreq := newReq()
			vin := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route,
				Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
			if err := openapi3filter.ValidateRequest(ctx, vin); err != nil {
				t.Errorf("%s %s: accepted by the server (%d) but the request does not match docs/openapi.yaml: %v", c.method, c.path, c.code, err)
			}
		}
		out := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in,
			Status:                 resp.StatusCode,
			Header:                 resp.Header,
			Body:                   io.NopCloser(bytes.NewReader(body)),
			Options:                &openapi3filter.Options{IncludeResponseStatus: true},
		}
		if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
			t.Errorf("%s %s -> %d does not match docs/openapi.yaml: %v\n%s", c.method, c.path, resp.StatusCode, err, body)
		}
	}
	// The event ring is the process's: only this test's events count.
	var mark struct{ Last uint64 }
	json.Unmarshal([]byte(get(t, base+"/api/v1/events", "oa-token")), &mark)
	for _, c := range calls {
		check(base, c)
	}
	// A block without `state FILE` has nowhere to persist config writes: 409.
	start(t, fmt.Sprintf(".:0 {\n bind 127.0.0.1\n gtm gtm.example.net {\n api %s {\n token_file %s\n }\n pool p {\n address 192.0.2.1\n }\n }\n}", noState, token))
	check("http://"+noState, call{"PUT", "/api/v1/config/pools/q", `{"addresses":[{"address":"192.0.2.2"}]}`, true, 409, nil})
	check("http://"+noState, call{"DELETE", "/api/v1/config/healthchecks/q", "", true, 409, nil})

	// Every config operation is exercised with every status the test can provoke (503 needs
	// an unreachable cluster).
	for _, kind := range []string{"healthchecks/{name}", "pools/{name}", "domains/{domain}"} {
		p := "/api/v1/config/" + kind
		for _, want := range []string{"GET %s 200", "GET %s 404", "PUT %s 201", "PUT %s 200", "PUT %s 400", "PUT %s 401", "PUT %s 409", "PUT %s 412", "PUT %s 413", "DELETE %s 204", "DELETE %s 404"} {
			if k := fmt.Sprintf(want, p); !seen[k] {
				t.Errorf("not validated: %s", k)
			}
		}
	}
	for _, k := range []string{"GET /api/v1/explain 200", "GET /api/v1/explain 400", "GET /api/v1/explain 404", "GET /api/v1/explain 401", "GET /api/v1/history 200", "GET /api/v1/history 401", "DELETE /api/v1/config/pools/{name} 409", "DELETE /api/v1/config/healthchecks/{name} 409", "DELETE /api/v1/config/domains/{domain} 412", "GET /api/v1/config 200", "GET /api/v1/config 401"} {
		if !seen[k] {
			t.Errorf("not validated: %s", k)
		}
	}
	// Accepted config writes are events of kind config naming resource, action and client.
	var evs struct {
		Events []struct{ Kind, Resource, Action, Client string }
	}
	if err := json.Unmarshal([]byte(get(t, fmt.Sprintf("%s/api/v1/events?since=%d", base, mark.Last), "oa-token")), &evs); err != nil {
		t.Fatal(err)
	}
	var writes []string
	for _, e := range evs.Events {
		if e.Kind == "config" {
			if !strings.HasPrefix(e.Client, "127.0.0.1:") {
				t.Errorf("config event without the client address: %+v", e)
			}
			writes = append(writes, e.Action+" "+e.Resource)
		}
	}
	want := "create healthchecks/api-hc,update healthchecks/api-hc,create pools/api-pool,update pools/api-pool,create domains/api.gtm.example.net.,update domains/api.gtm.example.net.,delete domains/api.gtm.example.net.,delete pools/api-pool,delete healthchecks/api-hc,create pools/whole,delete pools/whole"
	if got := strings.Join(writes, ","); got != want {
		t.Errorf("config events:\n got %s\nwant %s", got, want)
	}
}

func get(t *testing.T, url, token string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
