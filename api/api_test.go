package api

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gtm-dns/coredns-gtm/policy"
	"github.com/gtm-dns/coredns-gtm/state"
)

func TestEventsRing(t *testing.T) {
	ev := NewEvents(3)
	first := ev.Epoch()
	for i := range 5 {
		ev.Add(Event{Kind: "health", Message: fmt.Sprint(i)})
	}
	got := ev.Since(0)
	if len(got) != 3 || got[0].ID != first+2 || got[2].ID != first+4 || got[2].Message != "4" {
		t.Fatalf("ring: %+v", got)
	}
	if got := ev.Since(first + 3); len(got) != 1 || got[0].ID != first+4 {
		t.Fatalf("since 4: %+v", got)
	}
	if ev.Last() != first+4 || len(ev.Since(first+4)) != 0 {
		t.Fatal("last")
	}
	// A restarted process's ring continues above the old ids: a follower of the old one
	// sees the new events, and the epoch says the process changed.
	time.Sleep(time.Millisecond)
	next := NewEvents(3)
	id := next.Add(Event{Kind: "reload"})
	if id <= ev.Last() || next.Epoch() == ev.Epoch() || len(next.Since(ev.Last())) != 1 {
		t.Fatalf("after a restart: id %d, old last %d, epochs %d %d", id, ev.Last(), ev.Epoch(), next.Epoch())
	}
}

func snapshot(store *state.Store) *policy.Snapshot {
	p := &policy.Pool{Name: "hz", MinAvailable: 1, Weight: 1, Addrs: []*policy.Address{
		{Text: "192.0.2.1", Weight: 1, Mode: store.ModeCell("hz", "192.0.2.1")},
		{Text: "2001:db8::1", Weight: 1, Mode: store.ModeCell("hz", "2001:db8::1")},
	}}
	p.Addrs[0].IP = mustAddr("192.0.2.1")
	p.Addrs[1].IP = mustAddr("2001:db8::1")
	d := &policy.Domain{Name: "www.example.net.", Pin: store.PinCell("www.example.net."), Routes: []*policy.Route{{Selector: policy.Selector{Default: true, Text: "default"}, Pools: []*policy.Pool{p}}}}
	s := &policy.Snapshot{Zones: []string{"example.net."}, Pools: []*policy.Pool{p}, Domains: []*policy.Domain{d}}
	s.Index()
	return s
}

// The token never reaches the log, whatever the request carries.
func TestTokenNeverLogged(t *testing.T) {
	var mu sync.Mutex
	var logs []string
	ctl := newFakeControl(t, false)
	snap := snapshot(ctl.Store())
	h := NewHandler(Config{Token: "top-secret-token", Control: ctl, Events: NewEvents(10), Snapshot: func() *policy.Snapshot { return snap },
		Log: func(f string, a ...any) { mu.Lock(); logs = append(logs, fmt.Sprintf(f, a...)); mu.Unlock() }})
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, tok := range []string{"top-secret-token", "wrong-top-secret-token"} {
		req, _ := http.NewRequest("PUT", srv.URL+"/api/v1/pools/hz/addresses/2001:DB8::1/mode", strings.NewReader(`{"mode":"down"}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	if len(logs) == 0 {
		t.Fatal("the override was not logged")
	}
	for _, l := range logs {
		if strings.Contains(l, "top-secret") {
			t.Fatalf("token in the log: %s", l)
		}
	}
	if snap.Pools[0].Addrs[1].Mode.Get() != policy.ModeDown {
		t.Fatal("IPv6 address in another spelling not matched")
	}
}

func TestListenerSharedAndReleased(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	a, err := Acquire(addr)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Acquire(addr)
	if err != nil || a != b {
		t.Fatalf("second acquire: %v %v", err, a == b)
	}
	a.SetHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("one")) }))
	b.SetHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("two")) }))
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 3)
	resp.Body.Read(buf)
	resp.Body.Close()
	if string(buf) != "two" {
		t.Fatalf("the last handler set must serve: %q", buf)
	}
	a.Release()
	if _, err := http.Get("http://" + addr + "/"); err != nil {
		t.Fatal("one reference left: must still serve")
	}
	b.Release()
	if l, err := net.Listen("tcp", addr); err != nil {
		t.Fatalf("port not freed after the last release: %v", err)
	} else {
		l.Close()
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// Without a token_file nothing is authorized: writes are 401 whatever the header says (an
// empty "Bearer " included), and reads are open only with public_read.
func TestNoTokenRefusesEverythingButPublicReads(t *testing.T) {
	ctl := newFakeControl(t, false)
	store := ctl.Store()
	snap := snapshot(store)
	for _, publicRead := range []bool{false, true} {
		h := NewHandler(Config{Control: ctl, Events: NewEvents(10), PublicRead: publicRead, Snapshot: func() *policy.Snapshot { return snap }})
		srv := httptest.NewServer(h)
		for _, auth := range []string{"", "Bearer ", "Bearer x"} {
			req, _ := http.NewRequest("PUT", srv.URL+"/api/v1/pools/hz/addresses/192.0.2.1/mode", strings.NewReader(`{"mode":"down"}`))
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("public_read %v, write with %q: %d, want 401", publicRead, auth, resp.StatusCode)
			}
		}
		resp, err := http.Get(srv.URL + "/api/v1/status")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := map[bool]int{false: 401, true: 200}[publicRead]; resp.StatusCode != want {
			t.Errorf("public_read %v, read: %d, want %d", publicRead, resp.StatusCode, want)
		}
		srv.Close()
	}
	if snap.Pools[0].Addrs[0].Mode.Get() != policy.ModeAuto {
		t.Fatal("an unauthorized write took effect")
	}
}

// raw sends one raw request on a new connection and reads the answer.
func raw(t *testing.T, addr, req string) (*http.Response, map[string]any) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%q: %v", req[:min(len(req), 40)], err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var doc map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%q: answer %d is not JSON: %q", req[:min(len(req), 40)], resp.StatusCode, b)
		}
	}
	return resp, doc
}

// apiListener serves a handler with a token on a listener of its own.
func apiListener(t *testing.T) string {
	t.Helper()
	ctl := newFakeControl(t, false)
	snap := snapshot(ctl.Store())
	l, err := Acquire("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Release)
	l.SetHandler(NewHandler(Config{Token: "tok", Control: ctl, Events: NewEvents(10), Snapshot: func() *policy.Snapshot { return snap }}))
	return l.Addr().String()
}

// Requests net/http refuses before any handler runs get JSON errors with the security
// headers too, not net/http's text/plain.
func TestUnparsableRequestsGetJSON(t *testing.T) {
	addr := apiListener(t)
	for _, tc := range []struct {
		name, req string
		code      int
		says      string
	}{
		{"malformed header", "GET /api/v1/status HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400, "bad request"},
		{"bad header name", "GET /api/v1/status HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n", 400, "invalid header name"},
		{"missing Host", "GET /api/v1/status HTTP/1.1\r\n\r\n", 400, "missing required Host header"},
		{"oversized headers", "GET /api/v1/status HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 2*maxHeaderBytes) + "\r\n\r\n", 431, "too large"},
		{"unknown transfer encoding", "PUT /api/v1/domains/www.example.net/pin HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: rot13\r\n\r\n", 501, "transfer encoding"},
	} {
		resp, doc := raw(t, addr, tc.req)
		msg, _ := doc["error"].(string)
		if resp.StatusCode != tc.code || resp.Header.Get("Content-Type") != "application/json" || !strings.Contains(msg, tc.says) {
			t.Errorf("%s: %d %s %q; want %d, JSON, saying %q", tc.name, resp.StatusCode, resp.Header.Get("Content-Type"), msg, tc.code, tc.says)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: no security headers: %v", tc.name, resp.Header)
		}
	}
	// The connection still serves well-formed requests, and their answers are untouched.
	resp, doc := raw(t, addr, "GET /api/v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\n\r\n")
	if resp.StatusCode != 200 || doc["zones"] == nil {
		t.Fatalf("status: %d %v", resp.StatusCode, doc)
	}
}

// "OPTIONS *" is authorized like any other request and carries the security headers; OPTIONS
// of a resource lists its methods; Allow names HEAD wherever GET is allowed.
func TestOptionsAndAllow(t *testing.T) {
	addr := apiListener(t)
	resp, doc := raw(t, addr, "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 401 || doc["error"] == nil || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("OPTIONS * without a token: %d %v %v", resp.StatusCode, doc, resp.Header)
	}
	resp, _ = raw(t, addr, "OPTIONS * HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\n\r\n")
	if resp.StatusCode != 204 || !strings.Contains(resp.Header.Get("Allow"), "HEAD") || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("OPTIONS * with the token: %d %v", resp.StatusCode, resp.Header)
	}
	for _, tc := range []struct {
		method, path string
		code         int
		allow        string
	}{
		{"OPTIONS", "/api/v1/status", 204, "GET, HEAD, OPTIONS"},
		{"DELETE", "/api/v1/status", 405, "GET, HEAD, OPTIONS"},
		{"GET", "/api/v1/domains/www.example.net/pin", 405, "PUT, OPTIONS"},
	} {
		resp, doc := raw(t, addr, tc.method+" "+tc.path+" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\n\r\n")
		if resp.StatusCode != tc.code || resp.Header.Get("Allow") != tc.allow || (tc.code == 405 && doc["error"] == nil) {
			t.Errorf("%s %s: %d Allow %q %v; want %d Allow %q", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Allow"), doc, tc.code, tc.allow)
		}
	}
}
