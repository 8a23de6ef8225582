package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Every YAML document of the file is applied (a later document's resources were deleted
// when only the first was read), and a domain created without ttl gets the server's
// default, not a placeholder of 1.
func TestApplyEveryDocumentAndDefaultTTL(t *testing.T) {
	server, token := serve(t)
	file := filepath.Join(t.TempDir(), "multi.yaml")
	os.WriteFile(file, []byte(`pools:
  web: {addresses: [{address: 192.0.2.10}]}
---
domains:
  app.gtm.example.net:
    routes: [{selector: default, pools: [web]}]
---
`), 0o600)
	out := must(t, server, token, "apply", "-f", file)
	if !strings.Contains(out, "applied 2 changes in one commit") {
		t.Fatalf("apply: %s", out)
	}
	var dom map[string]any
	if err := json.Unmarshal([]byte(must(t, server, token, "get", "domains", "app.gtm.example.net")), &dom); err != nil {
		t.Fatal(err)
	}
	if dom["ttl"] != float64(30) {
		t.Fatalf("domain created without ttl has ttl %v, want the default 30", dom["ttl"])
	}
	if out := must(t, server, token, "apply", "-f", file); !strings.Contains(out, "no changes") {
		t.Fatalf("second apply: %s", out)
	}
	// The same resource in two documents, or a key given twice: refused, nothing written.
	os.WriteFile(file, []byte("pools:\n  web: {addresses: [{address: 192.0.2.10}]}\n---\npools:\n  web: {addresses: [{address: 192.0.2.11}]}\n"), 0o600)
	if _, errs, code := ctl(t, server, token, "apply", "-f", file); code == 0 || !strings.Contains(errs, "earlier document") {
		t.Fatalf("a resource in two documents: exit %d: %s", code, errs)
	}
	os.WriteFile(file, []byte("pools:\n  web: {addresses: [{address: 192.0.2.10}]}\n  web: {addresses: [{address: 192.0.2.11}]}\n"), 0o600)
	if _, errs, code := ctl(t, server, token, "apply", "-f", file); code == 0 || !strings.Contains(errs, "web") {
		t.Fatalf("a key given twice: exit %d: %s", code, errs)
	}
}

// An apply is one commit: a refused resource leaves every other change unwritten.
func TestApplyAllOrNothing(t *testing.T) {
	server, token := serve(t)
	file := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(file, []byte(`pools:
  good: {addresses: [{address: 192.0.2.20}]}
domains:
  bad.gtm.example.net:
    routes: [{selector: default, pools: [missing]}]
`), 0o600)
	if _, errs, code := ctl(t, server, token, "apply", "-f", file); code == 0 || !strings.Contains(errs, "missing") {
		t.Fatalf("apply of an invalid set: exit %d: %s", code, errs)
	}
	if _, errs, code := ctl(t, server, token, "get", "pools", "good"); code == 0 {
		t.Fatalf("pool good was written by a refused apply: %s", errs)
	}
}

// A saved GET /api/v1/config is a backup apply restores: revision and source ignored,
// the Corefile's resources skipped.
func TestApplySavedConfig(t *testing.T) {
	server, token := serve(t)
	file := filepath.Join(t.TempDir(), "one.yaml")
	os.WriteFile(file, []byte("pools:\n  web: {addresses: [{address: 192.0.2.10}]}\n"), 0o600)
	must(t, server, token, "apply", "-f", file)
	saved := must(t, server, token, "get")
	os.WriteFile(file, []byte("{}\n"), 0o600)
	must(t, server, token, "apply", "-f", file) // deletes web
	if _, _, code := ctl(t, server, token, "get", "pools", "web"); code == 0 {
		t.Fatal("web survived an apply of {}")
	}
	os.WriteFile(file, []byte(saved), 0o600)
	out := must(t, server, token, "apply", "-f", file)
	if !strings.Contains(out, "applied 1 changes") {
		t.Fatalf("apply of the saved config: %s", out)
	}
	must(t, server, token, "get", "pools", "web")
}

// A 200 that is not the API's JSON (a proxy's page, a wrong --server) is a failure.
func TestHTMLAnswerIsNoSuccess(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<html>login</html>"))
	}))
	defer srv.Close()
	token := filepath.Join(t.TempDir(), "token")
	os.WriteFile(token, []byte("x"), 0o600)
	for _, args := range [][]string{{"pin", "www.gtm.example.net", "core"}, {"get"}, {"status"}} {
		if _, errs, code := ctl(t, srv.URL, token, args...); code == 0 || !strings.Contains(errs, "not JSON") {
			t.Fatalf("gtmctl %v, a 200 HTML answer: exit %d: %s", args, code, errs)
		}
	}
}

// Event ids print as integers that --since takes back.
func TestEventIDsAreIntegers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"events":[{"id":1234567,"time":"2026-12-06T00:00:00Z","kind":"config","message":"m"}],"last":1234567}`))
	}))
	defer srv.Close()
	token := filepath.Join(t.TempDir(), "token")
	os.WriteFile(token, []byte("x"), 0o600)
	out, errs, code := ctl(t, srv.URL, token, "events")
	if code != 0 || !strings.HasPrefix(out, "1234567 ") {
		t.Fatalf("events: exit %d: %q %s", code, out, errs)
	}
	id := strings.Fields(out)[0]
	if _, errs, code := ctl(t, srv.URL, token, "events", "--since", id); code != 0 {
		t.Fatalf("events --since %s (the id printed): exit %d: %s", id, code, errs)
	}
}

// A domain of the file without ttl keeps the ttl in force (the whole-configuration write
// does not reset it to the default), and one with ttl changes it.
func TestApplyKeepsTTLInForce(t *testing.T) {
	server, token := serve(t)
	file := filepath.Join(t.TempDir(), "ttl.yaml")
	os.WriteFile(file, []byte("pools:\n  web: {addresses: [{address: 192.0.2.10}]}\ndomains:\n  app.gtm.example.net: {ttl: 120, routes: [{selector: default, pools: [web]}]}\n"), 0o600)
	must(t, server, token, "apply", "-f", file)
	os.WriteFile(file, []byte("pools:\n  web: {addresses: [{address: 192.0.2.11}]}\ndomains:\n  app.gtm.example.net: {routes: [{selector: default, pools: [web]}]}\n"), 0o600)
	if out := must(t, server, token, "apply", "-f", file); !strings.Contains(out, "applied 1 changes") {
		t.Fatalf("apply: %s", out)
	}
	var dom map[string]any
	json.Unmarshal([]byte(must(t, server, token, "get", "domains", "app.gtm.example.net")), &dom)
	if dom["ttl"] != float64(120) {
		t.Fatalf("ttl %v after an apply without ttl, want 120 kept", dom["ttl"])
	}
}

// --wait asks the server for ?wait=synced (with --wait-timeout as its timeout); a 504 of
// the wait is a failure that says the write stands. restore --from-cache posts the file.
func TestApplyWaitAndRestoreRequests(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.RequestURI())
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == "GET":
			w.Write([]byte(`{"revision":3,"healthchecks":{},"pools":{},"domains":{}}`))
		case r.URL.Path == "/api/v1/cluster/restore":
			b, _ := io.ReadAll(r.Body)
			if string(b) != `{"cache":1}` {
				w.WriteHeader(400)
				w.Write([]byte(`{"error":"wrong body"}`))
				return
			}
			w.Write([]byte(`{"revision":9,"epoch":"e2","restored":4}`))
		case r.URL.Query().Get("timeout") == "1s":
			w.WriteHeader(504)
			w.Write([]byte(`{"error":"not every node reached revision 4 within 1s: c (revision 3) lags","revision":4}`))
		default:
			w.Header().Set("X-GTM-Revision", "4")
			w.Write([]byte(`{"revision":4,"changes":[{"action":"create","kind":"pools","name":"web"}]}`))
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	os.WriteFile(token, []byte("x"), 0o600)
	file := filepath.Join(dir, "c.yaml")
	os.WriteFile(file, []byte("pools:\n  web: {addresses: [{address: 192.0.2.10}]}\n"), 0o600)
	if out := must(t, srv.URL, token, "apply", "-f", file, "--wait"); !strings.Contains(out, "in force on every live node") {
		t.Fatalf("apply --wait: %s", out)
	}
	if _, errs, code := ctl(t, srv.URL, token, "apply", "-f", file, "--wait", "--wait-timeout", "1s"); code != 1 || !strings.Contains(errs, "c (revision 3) lags") || !strings.Contains(errs, "the write stands") {
		t.Fatalf("apply --wait with a laggard: exit %d: %s", code, errs)
	}
	cache := filepath.Join(dir, "cache.json")
	os.WriteFile(cache, []byte(`{"cache":1}`), 0o600)
	if out := must(t, srv.URL, token, "restore", "--from-cache", cache); !strings.Contains(out, "4 keys, new epoch e2, revision 9") {
		t.Fatalf("restore --from-cache: %s", out)
	}
	if _, _, code := ctl(t, srv.URL, token, "restore", "192.0.2.1", "--from-cache", cache); code != 2 {
		t.Fatalf("restore ADDRESS --from-cache: exit %d, want 2", code)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"PUT /api/v1/config?wait=synced", "PUT /api/v1/config?wait=synced&timeout=1s", "POST /api/v1/cluster/restore"}
	for _, w := range want {
		if !slices.Contains(seen, w) {
			t.Errorf("no request %q among %v", w, seen)
		}
	}
}

// The fleet example file of the docs applies (its domain is the test Corefile's here, so
// it is left alone with a note).
func TestApplyDocsFleetExample(t *testing.T) {
	server, token := serve(t)
	out := must(t, server, token, "apply", "-f", "../../docs/examples/fleet.yaml", "--wait")
	if !strings.Contains(out, "+ pools/web (create)") || !strings.Contains(out, "in force on every live node") {
		t.Fatalf("apply of docs/examples/fleet.yaml: %s", out)
	}
}
