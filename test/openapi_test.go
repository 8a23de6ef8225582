package test

import (
	"bytes"
	"context"
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
	start(t, healthCorefile(port, fmt.Sprintf("api %s {\n token_file %s\n state %s\n }\n pool geo {\n address 2001:db8::1\n location 50.1 8.6\n }",
		apiAddr, token, filepath.Join(dir, "state.json"))))
	base := "http://" + apiAddr
	doc.Servers = openapi3.Servers{{URL: base}}
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

	calls := []struct {
		method, path, body string
		auth               bool
		code               int
	}{
		{"GET", "/api/v1/status", "", true, 200},
		{"GET", "/api/v1/status", "", false, 401},
		{"GET", "/api/v1/events", "", true, 200},
		{"GET", "/api/v1/events?since=1", "", true, 200},
		{"GET", "/api/v1/events?since=x", "", true, 400},
		{"PUT", "/api/v1/pools/primary/addresses/127.0.20.1/mode", `{"mode":"down"}`, true, 200},
		{"PUT", "/api/v1/pools/geo/addresses/2001:DB8:0::1/mode", `{"mode":"up"}`, true, 200},
		{"PUT", "/api/v1/pools/primary/addresses/127.0.20.1/mode", `{"mode":"off"}`, true, 400},
		{"PUT", "/api/v1/pools/primary/addresses/127.0.20.9/mode", `{"mode":"up"}`, true, 404},
		{"PUT", "/api/v1/pools/primary/addresses/127.0.20.1/mode", `{"mode":"up"}`, false, 401},
		{"PUT", "/api/v1/pools/primary/addresses/127.0.20.1/mode", `{"mode":"` + strings.Repeat("x", 70<<10) + `"}`, true, 413},
		{"PUT", "/api/v1/domains/www.gtm.example.net/pin", `{"pool":"standby"}`, true, 200},
		{"PUT", "/api/v1/domains/www.gtm.example.net/pin", `{"pool":""}`, true, 200},
		{"PUT", "/api/v1/domains/www.gtm.example.net/pin", `{"pool":"nope"}`, true, 404},
		{"PUT", "/api/v1/domains/www.gtm.example.net/pin", `[]`, true, 400},
		{"GET", "/", "", true, 200},
		{"GET", "/", "", false, 401},
	}
	for _, c := range calls {
		req, _ := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
		if c.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if c.auth {
			req.Header.Set("Authorization", "Bearer oa-token")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.code {
			t.Errorf("%s %s: status %d, want %d: %s", c.method, c.path, resp.StatusCode, c.code, body)
			continue
		}
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Errorf("%s %s: not in the document: %v", c.method, c.path, err)
			continue
		}
		in := &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
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
