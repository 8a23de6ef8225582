package api

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gtm-dns/coredns-gtm/policy"
)

// The first paint is HTML made on the server: without JavaScript it names every domain,
// pool and address and their state, and escapes what it prints.
func TestPageServerRendered(t *testing.T) {
	ctl := newFakeControl(t, false)
	snap := snapshot(ctl.Store())
	snap.Pools[0].Addrs[1].Mode.Set(policy.ModeDown)
	snap.Domains[0].Pin.Set("hz")
	ev := NewEvents(10)
	ev.Add(Event{Kind: "health", Message: "192.0.2.1 is <up>"})
	h := NewHandler(Config{Token: "tok", PublicRead: true, Control: ctl, Events: ev, Snapshot: func() *policy.Snapshot { return snap }})
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(b)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		`<tr data-domain="www.example.net.">`,
		`<div class="pool" data-pool="hz">`,
		`<tr data-address="192.0.2.1" data-state="up">`,
		`<tr data-address="2001:db8::1" data-state="down">`,
		`<span class="badge pin">down</span>`, // the address's mode
		`hz<span class="badge pin">pinned</span>`,
		`<b>1/2</b> addresses up`,
		`Pinned: www.example.net.`,
		`192.0.2.1 is &lt;up&gt;`,
		`<script src="app.js"></script>`,
		`<button class="act" data-action="drain" data-pool="hz" data-address="192.0.2.1" disabled>Drain</button>`,
		`<button class="act" data-action="restore" data-pool="hz" data-address="2001:db8::1" disabled>Restore</button>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	for _, path := range []string{"/app.js", "/style.css"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %v %v", path, resp, err)
		}
		resp.Body.Close()
	}
}

// The token is taken from the Authorization header only: never from a cookie or the URL,
// so a page elsewhere cannot make a browser act (no CSRF).
func TestTokenOnlyInHeader(t *testing.T) {
	ctl := newFakeControl(t, false)
	snap := snapshot(ctl.Store())
	h := NewHandler(Config{Token: "tok", Control: ctl, Events: NewEvents(10), Snapshot: func() *policy.Snapshot { return snap }})
	cases := []struct {
		name string
		mod  func(*http.Request)
		want int
	}{
		{"header", func(r *http.Request) { r.Header.Set("Authorization", "Bearer tok") }, 200},
		{"cookie", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "token", Value: "tok"}) }, 401},
		{"authorization cookie", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "Authorization", Value: "Bearer tok"}) }, 401},
		{"query token", func(r *http.Request) { r.URL.RawQuery = "token=tok" }, 401},
		{"query access_token", func(r *http.Request) { r.URL.RawQuery = "access_token=tok" }, 401},
		{"basic", func(r *http.Request) { r.SetBasicAuth("tok", "tok") }, 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("PUT", "/api/v1/pools/hz/addresses/192.0.2.1/mode", strings.NewReader(`{"mode":"auto"}`))
			tc.mod(r)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.want, w.Body)
			}
		})
	}
}
