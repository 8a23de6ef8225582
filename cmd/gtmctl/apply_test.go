package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
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
	if _, errs, code := ctl(t, srv.URL, token, "pin", "www.gtm.example.net", "core"); code == 0 || !strings.Contains(errs, "not JSON") {
		t.Fatalf("a 200 HTML answer: exit %d: %s", code, errs)
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
}
