package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gtm-dns/coredns-gtm/policy"
)

// FuzzAPIBodies sends arbitrary bodies and path segments to the override endpoints (mode, pin, pool mode, with their from/until): the
// handler must never panic, and must answer 200 or a 4xx (never a 5xx: the store is in
// memory, so there is no I/O to fail).
func FuzzAPIBodies(f *testing.F) {
	for _, s := range []string{`{"mode":"down"}`, `{"mode":"auto"}`, `{"pool":"hz"}`, `{"pool":""}`, `{"mode":1}`, `[]`, `{"mode":"up"}{}`, "\x00", `{"pool":null}`,
		`{"mode":"down","until":"2099-01-01T00:00:00Z"}`, `{"mode":"down","from":"2099-01-01T00:00:00Z","until":"2099-01-02T00:00:00Z"}`,
		`{"mode":"down","until":"2000-01-01T00:00:00Z"}`, `{"mode":"up","from":"x"}`, `{"pool":"hz","from":"2099-01-01T00:00:00+02:00"}`,
		`{"pool":"","until":"2099-01-01T00:00:00Z"}`, `{"mode":"auto","from":null}`} {
		f.Add(s, "hz", "192.0.2.1", "www.example.net")
	}
	ctl := newFakeControl(f, false)
	snap := snapshot(ctl.Store())
	h := NewHandler(Config{Token: "t", Control: ctl, Events: NewEvents(16), Snapshot: func() *policy.Snapshot { return snap }})
	f.Fuzz(func(t *testing.T, body, pool, addr, domain string) {
		for _, path := range []string{
			"/api/v1/pools/" + pool + "/addresses/" + addr + "/mode",
			"/api/v1/domains/" + domain + "/pin",
			"/api/v1/domains/" + domain + "/failback",
			"/api/v1/pools/" + pool + "/mode",
		} {
			method := "PUT"
			if strings.HasSuffix(path, "/failback") {
				method = "POST"
			}
			req, err := http.NewRequest(method, "http://x"+path, strings.NewReader(body))
			if err != nil {
				return // not a URL at all: the HTTP server would reject it first
			}
			req.Header.Set("Authorization", "Bearer t")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code >= 500 {
				t.Fatalf("PUT %s %q: %d %s", path, body, w.Code, w.Body)
			}
			if w.Code != 200 && !strings.Contains(w.Body.String(), `"error"`) {
				t.Fatalf("PUT %s %q: %d without a JSON error: %s", path, body, w.Code, w.Body)
			}
		}
	})
}
